// The engine off the page's thread (issue 14): what a user sees when runs overlap with loads,
// with other runs and with typing. These are written against the behaviour the Web Worker
// engine brings; a build whose engine runs on the page's thread fails them (see each test).
import { test, expect } from '@playwright/test';
import { runPrompt, top5, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;

/** Prompts of 124 characters for the English model: distinct slices of Moby-Dick's opening. */
const ENGLISH = [
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particula',
  'There now is your insular city of the Manhattoes, belted round by wharves as Indian isles by coral reefs, commerce surrounds',
  'It is a way I have of driving off the spleen and regulating the circulation. Whenever I find myself growing grim about the m',
];
/** The i-th of `n` different English prompts of 124 characters. */
function englishPrompt(i) {
  const base = ENGLISH[i % ENGLISH.length];
  const tag = ` ${i}`;
  return base.slice(0, 124 - tag.length) + tag;
}

async function loadHub(page, repo) {
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill(repo);
  await page.getByTestId('hub-format').selectOption('safetensors');
  await page.getByTestId('load-button').click();
}

/** The shown run: its prompt, its token chips, and the top 5 at its last position. */
async function shownRun(page) {
  const chips = page.getByTestId('token');
  const tokens = await chips.evaluateAll((cs) => cs.map((c) => c.dataset.token));
  await chips.last().click();
  await expect(chips.last()).toHaveClass(/selected/);
  return {
    prompt: await page.getByTestId('tokens').getAttribute('data-prompt'),
    tokens,
    top5: await top5(page),
  };
}

/** Waits until no run is in progress and none starts within `quiet` ms. */
async function settle(page, quiet = 1500) {
  const busy = () => page.evaluate(() => {
    const run = document.querySelector('[data-testid="run"]');
    return !run || run.disabled || /Running/.test(run.textContent) || !!document.querySelector('[data-testid="backend"] .spinner.on');
  });
  await expect.poll(busy, { timeout: 180_000 }).toBe(false);
  await page.waitForTimeout(quiet);
  await expect.poll(busy, { timeout: 180_000 }).toBe(false);
}

function expectSameRun(shown, ref, what) {
  expect(shown.prompt, what).toBe(ref.prompt);
  expect(shown.tokens, `${what}: token chips`).toEqual(ref.tokens);
  expect(shown.top5.map((r) => r.token), `${what}: top-5 tokens`).toEqual(ref.top5.map((r) => r.token));
  shown.top5.forEach((r, i) => expect(r.prob, `${what}: top-5 probability ${i}`).toBeCloseTo(ref.top5[i].prob, 4));
}

// Old bug: Run pressed while an outside model was starting started a run of the model still
// in use; the new model's own first run then found a run in progress and returned, and the old
// model's run, finishing last, was shown under "In use: <new model>" (the English model's
// character chips under tiny-llama's name). Run is pressed from the moment the load panel
// says "Reading the model and starting it" until the new model is named in use; the English
// model runs a 124-character prompt on WebGPU (SwiftShader), long enough to overlap the swap.
test('Run pressed while a newly loaded model is starting shows the new model\'s run under "In use: <new model>"', async ({ page }) => {
  test.setTimeout(360_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const text = englishPrompt(0);
  await page.goto(`./?model=english-char-3l&backend=webgpu&hub=${encodeURIComponent(HUB)}&prompt=${encodeURIComponent(text)}`);
  await waitForModel(page);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', text);
  const before = await shownRun(page);

  // A user who keeps pressing Run while the new model starts (the load panel's
  // load-starting line is shown), and stops once the new model is named in use.
  await page.evaluate(() => {
    window.__presses = 0;
    const press = () => {
      if (document.querySelector('[data-testid="loaded-model"]')) return;
      if (!document.querySelector('[data-testid="load-starting"]')) return;
      const run = document.querySelector('[data-testid="run"]');
      if (run && !run.disabled) {
        run.click();
        window.__presses++;
      }
    };
    // Every 5 ms (faster than any hand; a MutationObserver that clicks on every DOM change
    // would instead starve the page's event loop, since Run now stays enabled while running).
    window.__pressTimer = setInterval(press, 5);
  });
  await loadHub(page, 'glassbox-test/tiny-llama');
  await expect(page.getByTestId('loaded-model')).toContainText('glassbox-test/tiny-llama', { timeout: 180_000 });
  await expect(page.getByTestId('model-family')).toHaveText('Llama');
  await page.evaluate(() => clearInterval(window.__pressTimer));
  expect(await page.evaluate(() => window.__presses), 'Run was pressed while the new model was starting').toBeGreaterThan(0);
  await settle(page);
  await expect(page.getByTestId('loaded-model')).toContainText('glassbox-test/tiny-llama');
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', text);
  const shown = await shownRun(page);
  // Not the English model's run of the prompt...
  expect(shown.tokens, 'the token chips under "In use: glassbox-test/tiny-llama" are the English model\'s').not.toEqual(before.tokens);

  // ...but exactly the new model's: its own run of the same prompt, now.
  await runPrompt(page, 'Call me Ishmael.');
  await runPrompt(page, text);
  const ref = await shownRun(page);
  expectSameRun(shown, ref, 'the run shown after the load');
  expect(errors).toEqual([]);
});

// Old bug: Run is disabled while a run is in progress, so presses during a run were dropped;
// after 20 quick presses the page showed the run of some earlier prompt while the box held the
// 20th (and nothing ran it). Each press here sets a different prompt and presses Run at once
// (`force`: as a user's click, whether or not the button is enabled at that instant).
test('20 quick runs end with the 20th prompt\'s tokens and predictions shown', async ({ page }) => {
  test.setTimeout(360_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const prompts = Array.from({ length: 20 }, (_, i) => englishPrompt(i));
  await page.goto('./?model=english-char-3l');
  await waitForModel(page);
  // The 20th prompt's run on its own, for reference; then something else on show.
  await runPrompt(page, prompts[19]);
  const ref = await shownRun(page);
  await runPrompt(page, 'the captain of the shi');

  const box = page.getByTestId('prompt');
  const run = page.getByTestId('run');
  for (const p of prompts) {
    await box.fill(p);
    await run.click({ force: true });
  }
  await expect(box).toHaveValue(prompts[19]);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', prompts[19], { timeout: 180_000 });
  await settle(page);
  // Still the 20th: no earlier prompt's run lands after it.
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', prompts[19]);
  const shown = await shownRun(page);
  // Token chips match the 20th prompt: <bos> then its characters.
  expect(shown.tokens.slice(1).join('')).toBe(prompts[19]);
  expectSameRun(shown, ref, 'the run shown after 20 quick runs');
  await expect(page.getByTestId('prompt-error')).toHaveCount(0);
  expect(errors).toEqual([]);
});

// Old bug: on the CPU path the forward pass ran on the page's thread, so during a run of a
// large model (GPT-2 small's shape, 300 tokens: seconds) nothing typed appeared until it
// finished: the first keystroke waited for the whole run. Here
// each keystroke's delay is the time from sending the key to the next frame after the box's
// value changed (page clock and Node's clock are both wall time on this machine), and a 10 ms
// interval probe records the page's event-loop gaps meanwhile.
test('typing stays responsive during a CPU run of a GPT-2-small-shaped model: each keystroke shows within 100 ms', async ({ page }) => {
  test.setTimeout(600_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`./?backend=cpu&hub=${encodeURIComponent(HUB)}`);
  await waitForModel(page);
  await loadHub(page, 'glassbox-test/gpt2-small-random');
  await expect(page.getByTestId('loaded-model')).toContainText('glassbox-test/gpt2-small-random', { timeout: 420_000 });
  await expect(page.getByTestId('loaded-model')).toContainText('12 layers, d_model 768');
  await settle(page, 500);
  await expect(page.getByTestId('backend')).toHaveText(/Backend: CPU/);

  const box = page.getByTestId('prompt');
  // About 300 tokens: a run of several seconds on the CPU, so that the typing below (under a
  // second) falls inside it even on a faster machine.
  const text = [...ENGLISH, ...ENGLISH].join(' ');
  await box.fill(text);
  await box.focus();
  await box.press('End');
  await page.evaluate(() => {
    const box = document.querySelector('[data-testid="prompt"]');
    window.__keys = [];
    box.addEventListener('input', (ev) => {
      const k = { value: box.value, input: performance.timeOrigin + performance.now(), eventStamp: performance.timeOrigin + ev.timeStamp };
      k.running = /Running/.test(document.querySelector('[data-testid="run"]')?.textContent ?? '')
        || !!document.querySelector('[data-testid="backend"] .spinner.on');
      window.__keys.push(k);
      requestAnimationFrame(() => { k.shown = performance.timeOrigin + performance.now(); });
    });
    window.__gaps = [];
    let last = performance.now();
    window.__probe = setInterval(() => {
      const now = performance.now();
      window.__gaps.push(now - last);
      last = now;
    }, 10);
    // Run pressed in a task of its own, so that this call returns before the run starts.
    setTimeout(() => document.querySelector('[data-testid="run"]').click(), 0);
  });
  await page.waitForTimeout(200); // the run is under way

  const typed = ' and the sea';
  const sent = [];
  for (const ch of typed) {
    sent.push(Date.now());
    await page.keyboard.type(ch);
    await page.waitForTimeout(40);
  }
  await expect(box).toHaveValue(text + typed);
  await expect.poll(() => page.evaluate(() => window.__keys.filter((k) => k.shown).length)).toBe(typed.length);
  const keys = await page.evaluate(() => window.__keys);
  const gaps = await page.evaluate(() => { clearInterval(window.__probe); return window.__gaps; });
  const delays = keys.map((k, i) => Math.round(k.shown - sent[i]));
  const report = `keystroke delays (ms): ${delays.join(', ')}; largest event-loop gap ${Math.round(Math.max(...gaps))} ms; `
    + `keys typed while the run was in progress: ${keys.filter((k) => k.running).length} of ${keys.length}`;
  console.log(report);
  // Every keystroke appeared in order, each within 100 ms of being typed.
  expect(keys.map((k) => k.value)).toEqual(Array.from(typed, (_, i) => text + typed.slice(0, i + 1)));
  for (const d of delays) expect(d, report).toBeLessThan(100);
  // And the keys really were typed during the run.
  expect(keys.filter((k) => k.running).length, report).toBeGreaterThanOrEqual(typed.length / 2);
  // The run finishes and is shown; the box keeps what was typed.
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', text, { timeout: 300_000 });
  await expect(box).toHaveValue(text + typed);
  expect(errors).toEqual([]);
});
