// End-to-end tests of the explorer: the built site (../dist) in headless Chromium, with
// WebGPU on SwiftShader, and without WebGPU (the CPU fallback). Each test sets up what it
// reads (its own page, its own runs): none depends on another's state or on running order.
import { test, expect, chromium } from '@playwright/test';
import {
  CHROMIUM, NO_WEBGPU_ARGS, argmax, experimentOf, inductionPrompt, inductionScores, patternRow, recordRequests, runPrompt, top5, waitForModel,
} from './browser.mjs';

// E2E_SEED picks another random prompt (the tests should pass for any).
const PROMPT = inductionPrompt(Number(process.env.E2E_SEED ?? 20240611));
// A position inside the second occurrence: token segment[5], whose continuation is segment[6].
const I = 5;
const POS = PROMPT.repeatPos(I);
const EXPECTED = PROMPT.segment[I + 1];

async function openWithPrompt(page, path = './') {
  await page.goto(path);
  await waitForModel(page);
  await choosePromptAndPos(page);
}

async function choosePromptAndPos(page) {
  await runPrompt(page, PROMPT.text);
  await page.locator(`[data-testid="token"][data-pos="${POS}"]`).click();
  await expect(page.locator(`[data-testid="token"][data-pos="${POS}"]`)).toHaveClass(/selected/);
}

test('loads the default model with a progress bar, on the CPU because this browser\'s WebGPU is a software adapter, and predicts the induction continuation', async ({ page }) => {
  const requests = recordRequests(page);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Hold the weights back a moment so the progress bar can be seen.
  await page.route('**/model.safetensors', async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.goto('./');
  await expect(page.getByTestId('loading')).toContainText('model.safetensors');
  await expect(page.getByTestId('load-progress')).toBeVisible();
  await waitForModel(page);
  await expect(page.getByTestId('loading')).toHaveCount(0);
  await expect(page.getByTestId('model-description')).not.toBeEmpty();
  await expect(page.getByTestId('model-vocabulary')).toContainText('a-z');
  await choosePromptAndPos(page);
  // SwiftShader is WebGPU on the CPU, many times slower than the page's own CPU path: the page
  // runs there, and the badge says why.
  await expect(page.getByTestId('backend')).toContainText("Backend: CPU: faster than this browser's software WebGPU");
  await expect(page.getByTestId('notice')).toHaveCount(0);
  const rows = await top5(page);
  expect(rows).toHaveLength(5);
  expect(rows[0].token, `prompt ${PROMPT.text}, position ${POS}`).toBe(EXPECTED);
  expect(rows[0].prob).toBeGreaterThan(0.5);
  expect(rows[0].text).toContain(EXPECTED);
  expect(rows[0].text).toMatch(/\d+\.\d%/);
  // Everything the page fetched came from this site.
  const origin = new URL(page.url()).origin;
  expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'))).toEqual([]);
  expect(errors).toEqual([]);
});

test('a layer-1 head of the induction model attends from the repeat to the token after the earlier occurrence', async ({ page }) => {
  await openWithPrompt(page);
  await page.locator('[data-testid="layer-button"][data-layer="1"]').click();
  const heads = await page.getByTestId('head-button').count();
  expect(heads).toBeGreaterThan(0);
  const queries = Array.from({ length: PROMPT.segment.length - 1 }, (_, i) => PROMPT.repeatPos(i + 1));
  const hits = [];
  for (let h = 0; h < heads; h++) {
    await page.locator(`[data-testid="head-button"][data-head="${h}"]`).click();
    await expect(page.getByRole('heading', { name: `Attention pattern: layer 1, head ${h}` })).toBeVisible();
    let n = 0;
    for (const q of queries) {
      const row = await patternRow(page, q);
      expect(row).toHaveLength(PROMPT.nTokens);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
      // Query at repeat position i sees token segment[i]; its earlier occurrence is at
      // firstPos(i); an induction head attends to the token after it.
      const i = q - PROMPT.repeatPos(0);
      if (argmax(row) === PROMPT.firstPos(i) + 1) n++;
    }
    hits.push(n);
  }
  const best = Math.max(...hits);
  expect(best, `induction hits per head (of ${queries.length} queries): ${hits}`).toBeGreaterThanOrEqual(Math.ceil(queries.length * 0.8));
});

test('the share link (in the URL fragment) restores prompt, position, layer, head and prediction in a fresh page', async ({ page, browser }) => {
  await openWithPrompt(page);
  await page.locator('[data-testid="layer-button"][data-layer="1"]').click();
  await page.locator('[data-testid="head-button"][data-head="1"]').click();
  await expect.poll(() => experimentOf(page.url())?.view?.head).toBe(1);
  const url = new URL(page.url());
  const e = experimentOf(url.href);
  expect(e.prompt).toBe(PROMPT.text);
  expect(e.view.pos).toBe(POS);
  expect(e.view.layer).toBe(1);
  expect(e.model.source).toEqual({ kind: 'shipped', id: 'induction-2l' });
  // The prompt is in the fragment only: the static host never sees it.
  expect(url.search).toBe('');
  expect(url.hash.startsWith('#v1/')).toBe(true);
  const before = await top5(page);
  const cellsBefore = await patternRow(page, POS);

  const context = await browser.newContext();
  const fresh = await context.newPage();
  await fresh.goto(url.href);
  await waitForModel(fresh);
  await expect(fresh.getByTestId('prompt')).toHaveValue(PROMPT.text);
  await expect(fresh.locator(`[data-testid="token"][data-pos="${POS}"]`)).toHaveClass(/selected/);
  await expect(fresh.locator('[data-testid="layer-button"][data-layer="1"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(fresh.locator('[data-testid="head-button"][data-head="1"]')).toHaveAttribute('aria-pressed', 'true');
  const after = await top5(fresh);
  expect(after.map((r) => r.token)).toEqual(before.map((r) => r.token));
  after.forEach((r, i) => expect(r.prob).toBeCloseTo(before[i].prob, 4));
  const cellsAfter = await patternRow(fresh, POS);
  cellsAfter.forEach((v, k) => expect(v).toBeCloseTo(cellsBefore[k], 4));
  await expect(fresh.getByTestId('notice')).toHaveCount(0);
  await context.close();
});

test('a WebGPU device lost mid-session moves the page to the CPU, which predicts the same', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openWithPrompt(page, './?backend=webgpu');
  await expect(page.getByTestId('backend')).toContainText('Backend: WebGPU');
  const before = await top5(page);
  // Destroy the real WebGPU device, as a driver reset or an unplugged GPU would.
  expect(await page.evaluate(() => window.wasmBindings.lose_gpu_device())).toBe(true);
  await page.getByTestId('run').click();
  await expect(page.getByTestId('backend')).toHaveText(/Backend: CPU/);
  await expect(page.getByTestId('notice')).toContainText(/GPU stopped working.*Running on the CPU/);
  await expect(page.getByTestId('prompt')).toHaveValue(PROMPT.text);
  await expect(page.locator(`[data-testid="token"][data-pos="${POS}"]`)).toHaveClass(/selected/);
  const after = await top5(page);
  expect(after[0].token).toBe(before[0].token);
  expect(after[0].prob).toBeCloseTo(before[0].prob, 3);
  // And the page keeps working on the CPU.
  await runPrompt(page, 'abcabc');
  await expect(page.getByTestId('top5').first()).toBeVisible();
  expect(errors).toEqual([]);
});

for (const [name, args] of [
  ['without --enable-unsafe-webgpu', NO_WEBGPU_ARGS],
  ['with --disable-webgpu', [...NO_WEBGPU_ARGS, '--disable-webgpu']],
]) {
  test(`${name} the page says WebGPU is unavailable, runs on the CPU and predicts what WebGPU predicts`, async ({ page }) => {
    // The WebGPU figure this test compares with, from its own page (the default browser).
    await openWithPrompt(page, './?backend=webgpu');
    await expect(page.getByTestId('backend')).toContainText('Backend: WebGPU');
    const gpuTop = (await top5(page))[0];
    const browser = await chromium.launch({ executablePath: CHROMIUM, args });
    try {
      const page = await browser.newPage({ baseURL: test.info().project.use.baseURL });
      await openWithPrompt(page);
      await expect(page.getByTestId('backend')).toHaveText(/Backend: CPU/);
      await expect(page.getByTestId('notice')).toContainText(/WebGPU unavailable.*CPU/);
      const rows = await top5(page);
      expect(rows[0].token).toBe(EXPECTED);
      expect(rows[0].prob).toBeGreaterThan(0.5);
      // Same model, same prompt, other backend: the same numbers up to float rounding.
      expect(rows[0].token).toBe(gpuTop.token);
      expect(rows[0].prob).toBeCloseTo(gpuTop.prob, 3);
    } finally {
      await browser.close();
    }
  });
}

test('backend=cpu in the URL forces the CPU, says so, and stays in the link', async ({ page }) => {
  await page.goto('./?backend=cpu');
  await waitForModel(page);
  await expect(page.getByTestId('backend')).toHaveText(/Backend: CPU/);
  await expect(page.getByTestId('notice')).toContainText('backend=cpu');
  await expect.poll(() => experimentOf(page.url())?.backend).toBe('cpu');
});

test('the badge moves the model between the CPU and WebGPU; either predicts the same, and the choice stays in the link', async ({ page }) => {
  await openWithPrompt(page);
  const badge = page.getByTestId('backend');
  await expect(badge).toContainText('Backend: CPU: faster');
  const cpuTop = (await top5(page))[0];
  await page.getByTestId('backend-switch').click();
  await expect(badge).toContainText('Backend: WebGPU', { timeout: 60_000 });
  await expect.poll(() => experimentOf(page.url())?.backend).toBe('webgpu');
  await expect(page.getByTestId('prompt')).toHaveValue(PROMPT.text);
  await expect(page.locator(`[data-testid="token"][data-pos="${POS}"]`)).toHaveClass(/selected/);
  await expect(page.getByTestId('top5').first()).toBeVisible({ timeout: 60_000 });
  const gpuTop = (await top5(page))[0];
  expect(gpuTop.token).toBe(cpuTop.token);
  expect(gpuTop.prob).toBeCloseTo(cpuTop.prob, 3);
  await expect(page.getByTestId('backend-switch')).toHaveText('Use the CPU');
  await page.getByTestId('backend-switch').click();
  await expect(badge).toHaveText(/Backend: CPU/, { timeout: 60_000 });
  await expect.poll(() => experimentOf(page.url())?.backend).toBe('cpu');
});

test('the site works under the sub-path /explorer/ and fetches only from under it', async ({ page }) => {
  const requests = recordRequests(page);
  await openWithPrompt(page, '/explorer/');
  const rows = await top5(page);
  expect(rows[0].token).toBe(EXPECTED);
  expect(new URL(page.url()).pathname).toBe('/explorer/');
  const origin = new URL(page.url()).origin;
  const outside = requests.filter((u) => !u.startsWith(`${origin}/explorer/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
  expect(outside).toEqual([]);
  expect(requests.some((u) => u.includes('/explorer/models/induction-2l/model.safetensors'))).toBe(true);
});

test('bad prompts (empty, an unknown character, longer than the context) show a message; the page keeps working; Ctrl+Enter runs', async ({ page }) => {
  await page.goto('./');
  await waitForModel(page);
  const prompt = page.getByTestId('prompt');
  const error = page.getByTestId('prompt-error');

  // Empty prompt.
  await prompt.fill('   ');
  await page.getByTestId('run').click();
  await expect(error).toContainText('empty');
  await expect(prompt).toHaveValue('   ');

  // A character the vocabulary lacks: named, and the text is kept.
  await prompt.fill('abc!def');
  await page.getByTestId('run').click();
  await expect(error).toContainText('not in the vocabulary: "!"');
  await expect(prompt).toHaveValue('abc!def');

  // Longer than the context (64 with BOS): the first 63 characters run, the rest is named.
  const long = 'abcdefghij'.repeat(7); // 70 characters, 71 tokens with BOS
  await runPrompt(page, long);
  await expect(error).toHaveCount(0);
  const cut = page.getByTestId('prompt-cut');
  await expect(cut).toContainText('71 tokens');
  await expect(cut).toContainText('last 7 tokens were cut');
  await expect(cut).toContainText('\u201cdefghij\u201d');
  await expect(page.getByTestId('token')).toHaveCount(64);
  await expect(prompt).toHaveValue(long);

  // And a good prompt still runs afterwards.
  await runPrompt(page, PROMPT.text);
  await expect(cut).toHaveCount(0);
  await page.locator(`[data-testid="token"][data-pos="${POS}"]`).click();
  expect((await top5(page))[0].token).toBe(EXPECTED);

  // Ctrl+Enter runs too.
  await prompt.fill('abcabc');
  await prompt.press('Control+Enter');
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'abcabc');
});

test('broken URL parameters fall back to defaults, each named in a notice', async ({ page }) => {
  await page.goto('./?model=nope&pos=abc&layer=99&head=x&prompt=' + encodeURIComponent(PROMPT.text));
  await waitForModel(page);
  const notices = page.getByTestId('notice');
  await expect(notices.filter({ hasText: 'model=nope' })).toHaveCount(1);
  await expect(notices.filter({ hasText: 'pos=abc' })).toHaveCount(1);
  await expect(notices.filter({ hasText: 'layer=99' })).toHaveCount(1);
  await expect(notices.filter({ hasText: 'head=x' })).toHaveCount(1);
  // Defaults: the last position and the last layer; the prompt parameter still applies.
  await expect(page.getByTestId('prompt')).toHaveValue(PROMPT.text);
  await expect(page.locator(`[data-testid="token"][data-pos="${PROMPT.nTokens - 1}"]`)).toHaveClass(/selected/);
  await expect(page.locator('[data-testid="layer-button"][data-layer="1"]')).toHaveAttribute('aria-pressed', 'true');
  // The default head is the layer's strongest induction head.
  const scores = await inductionScores(page);
  const best = scores.indexOf(Math.max(...scores));
  await expect(page.locator(`[data-testid="head-button"][data-head="${best}"]`)).toHaveAttribute('aria-pressed', 'true');
  await expect(page.locator('[data-testid="head-button"][aria-pressed="true"]')).toHaveCount(1);
  // The URL is rewritten to the view actually shown, as a share link.
  await expect.poll(() => experimentOf(page.url())?.view?.layer).toBe(1);
  expect(experimentOf(page.url()).view.pos).toBe(PROMPT.nTokens - 1);
  // The page works.
  await page.locator(`[data-testid="token"][data-pos="${POS}"]`).click();
  expect((await top5(page))[0].token).toBe(EXPECTED);
  // A position past the prompt's end is named too.
  await page.goto('./?pos=500');
  await waitForModel(page);
  await expect(notices.filter({ hasText: 'pos=500' })).toHaveCount(1);
});

test('a missing or truncated model file shows an error; the prompt box stays', async ({ page }) => {
  await page.route('**/model.safetensors', (route) => route.fulfill({ status: 404, body: 'not found' }));
  await page.goto('./?prompt=abc');
  await expect(page.getByTestId('load-error')).toContainText('404');
  await expect(page.getByTestId('load-error')).toContainText('model.safetensors');
  await expect(page.getByTestId('prompt')).toHaveValue('abc');
  await expect(page.getByTestId('run')).toBeDisabled();

  // A download that breaks off: fewer bytes than the Content-Length promised.
  await page.unroute('**/model.safetensors');
  const halve = async (route, keepHeaders) => {
    const response = await route.fetch();
    const body = (await response.body()).subarray(0, Math.floor((await response.body()).length / 2));
    await route.fulfill(keepHeaders ? { response, body } : { status: 200, contentType: 'application/octet-stream', body });
  };
  await page.route('**/model.safetensors', (route) => halve(route, true));
  await page.goto('./');
  await expect(page.getByTestId('load-error')).toContainText('truncated download');

  // A file that is itself cut short: the weights cannot be read.
  await page.unroute('**/model.safetensors');
  await page.route('**/model.safetensors', (route) => halve(route, false));
  await page.goto('./');
  await expect(page.getByTestId('load-error')).toContainText('damaged');
  await expect(page.getByTestId('prompt')).toBeVisible();
});

test('screenshot of the explorer with the strongest induction head (screenshots/explorer.png)', async ({ page }) => {
  await openWithPrompt(page);
  await page.locator('[data-testid="layer-button"][data-layer="1"]').click();
  // Show the head with the highest induction score.
  const scores = await inductionScores(page);
  await page.locator(`[data-testid="head-button"][data-head="${scores.indexOf(Math.max(...scores))}"]`).click();
  await page.locator(`[data-testid="token"][data-pos="${POS}"]`).click();
  await page.screenshot({ path: 'screenshots/explorer.png', fullPage: true });
});
