// The inspect views (issue 9), driven as a reader would: the attention small multiples and
// the head-score table, the neurons heatmap and a neuron's page with a corpus scan, the logit
// lens and direct logit attribution. Values are read from the DOM (data-* attributes), not
// from pixels. Each test records the page's long tasks (PerformanceObserver) while the views
// compute and prints the longest (BENCHMARKS.md reports them; timings are not asserted).
import { test, expect } from '@playwright/test';
import { experimentOf, runPrompt, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;

test.beforeEach(async ({ page }) => {
  await page.addInitScript(() => {
    window.__longtasks = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longtasks.push(e.duration))).observe({ type: 'longtask', buffered: true });
  });
});

/** Prints the longest main-thread task since `since` (performance.now()). */
async function reportLongTasks(page, what) {
  const longest = await page.evaluate(() => Math.round(Math.max(0, ...window.__longtasks)));
  console.log(`[longtask] ${what}: longest main-thread task ${longest} ms`);
}

async function lensCells(page) {
  return page.getByTestId('lens-cell').evaluateAll((els) =>
    els.map((e) => ({ label: e.dataset.label, pos: Number(e.dataset.pos), top: e.dataset.top, p: Number(e.dataset.targetProb), rank: Number(e.dataset.targetRank) })),
  );
}

async function bars(page) {
  return page.getByTestId('attr-bar').evaluateAll((els) => els.map((e) => ({ label: e.dataset.label, kind: e.dataset.kind, value: Number(e.dataset.value) })));
}

async function sumCheck(page) {
  const s = page.getByTestId('attribution-sum');
  return { sum: Number(await s.getAttribute('data-sum')), actual: Number(await s.getAttribute('data-actual')), largest: await s.getAttribute('data-largest') };
}

test('induction model: the head-score table ranks the induction heads of its card first; the logit lens shows the answer only after layer 1 (screenshots/inspect-attention.png, inspect-lens.png)', async ({ page }) => {
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  const card = await (await page.request.get('./models/induction-2l/card.json')).json();
  const named = card.mechanism.induction_heads.map(([l, h]) => `${l}.${h}`);
  // Every head of the layer as a small picture; clicking one shows it large.
  await expect(page.getByTestId('head-thumb')).toHaveCount(4);
  await page.getByTestId('head-thumb').nth(2).click();
  await expect(page.getByRole('heading', { name: 'Attention pattern: layer 1, head 2' })).toBeVisible();
  // The table, sorted by induction score: the card's induction heads first.
  const rows = page.getByTestId('head-score-row');
  await expect(rows).toHaveCount(8);
  const ranked = await rows.evaluateAll((rs) => rs.map((r) => ({ head: `${r.dataset.layer}.${r.dataset.head}`, induction: Number(r.dataset.induction), prev: Number(r.dataset.prev) })));
  expect(ranked.slice(0, named.length).map((r) => r.head).sort()).toEqual([...named].sort());
  expect(ranked[named.length - 1].induction).toBeGreaterThan(3 * ranked[named.length].induction);
  // Sorted by previous-token score, the card's previous-token head comes first; a row selects its head.
  await page.getByTestId('head-scores-sort').first().click();
  await expect(rows.first()).toHaveAttribute('data-layer', String(card.mechanism.previous_token_heads[0][0]));
  await expect(rows.first()).toHaveAttribute('data-head', String(card.mechanism.previous_token_heads[0][1]));
  await rows.first().click();
  await expect(page.getByRole('heading', { name: `Attention pattern: layer ${card.mechanism.previous_token_heads[0][0]}, head ${card.mechanism.previous_token_heads[0][1]}` })).toBeVisible();
  // On the prompt instead of the repeated random sequence.
  await page.getByTestId('heads-on-prompt').check();
  await expect(page.getByText(/on the prompt \(\d+ tokens\)/)).toBeVisible();
  await page.screenshot({ path: 'screenshots/inspect-attention.png', fullPage: true });

  // The logit lens: at the last position (the answer follows the repeated "Z"), the answer is
  // nearly certain at the end and not before layer 1 has run.
  await page.getByTestId('tab-lens').click();
  await expect(page.getByTestId('lens-cell')).toHaveCount(3 * 33);
  const cells = await lensCells(page);
  const last = (label) => cells.find((c) => c.label === label && c.pos === 32);
  expect(last('final_post').rank).toBe(0);
  expect(last('final_post').p).toBeGreaterThan(0.5);
  expect(last('0_pre').p).toBeLessThan(0.2);
  expect(last('1_pre').p).toBeLessThan(0.2);
  // A cell's top 5.
  await page.locator('[data-testid="lens-cell"][data-label="final_post"][data-pos="32"]').click();
  await expect(page.getByTestId('lens-detail').locator('li')).toHaveCount(5);
  // Another target: its probability in every cell.
  await page.getByTestId('lens-target-input').fill('b');
  await page.getByTestId('lens-target-input').dispatchEvent('change');
  await expect(page.getByTestId('lens-target')).toContainText('P("b")');
  // A token the vocabulary lacks: a message; the lens comes back with a good one.
  await page.getByTestId('lens-target-input').fill('!!');
  await page.getByTestId('lens-target-input').dispatchEvent('change');
  await expect(page.getByTestId('lens-error')).toContainText('!!');
  await page.getByTestId('lens-target-input').fill('');
  await page.getByTestId('lens-target-input').dispatchEvent('change');
  await expect(page.getByTestId('lens-cell')).toHaveCount(3 * 33);
  await page.screenshot({ path: 'screenshots/inspect-lens.png', fullPage: true });
  // The view is in the URL: a reload restores it.
  expect(experimentOf(page.url()).view.tab).toBe('lens');
  await page.reload();
  await expect(page.getByTestId('lens-cell')).toHaveCount(3 * 33, { timeout: 120_000 });
  await reportLongTasks(page, 'induction-2l head scores and logit lens (WebGPU)');
});

test('modular addition: the attribution puts the answer on the MLP and adds up to the logit, on WebGPU and on the CPU (screenshots/inspect-attribution.png)', async ({ page }) => {
  const values = {};
  for (const backend of ['&backend=webgpu', '&backend=cpu']) {
    await page.goto(`./?model=modular-addition&view=attribution${backend}`);
    await waitForModel(page);
    await expect(page.getByTestId('attr-bar').first()).toBeVisible({ timeout: 60_000 });
    const s = await sumCheck(page);
    expect(s.largest).toBe('0_mlp_out');
    expect(Math.abs(s.sum - s.actual)).toBeLessThan(1e-3);
    const b = await bars(page);
    const mlp = b.find((x) => x.label === '0_mlp_out').value;
    expect(mlp).toBeGreaterThan(0.8 * s.actual);
    values[backend] = mlp;
  }
  const gpu = values['&backend=webgpu'];
  expect(Math.abs(gpu - values['&backend=cpu'])).toBeLessThan(1e-3 * Math.abs(gpu));
  // Target against a distractor: still adds up.
  await page.getByTestId('attr-distractor').fill('71');
  await page.getByTestId('attr-distractor').dispatchEvent('change');
  await expect(page.getByText('\u2212 logit("71")').first()).toBeVisible();
  const d = await sumCheck(page);
  expect(Math.abs(d.sum - d.actual)).toBeLessThan(1e-3);
  // Without folding ln_final's weight the terms no longer add up, and the page says so.
  await page.getByTestId('attr-unfold').check();
  await expect(page.getByTestId('attribution-sum')).toHaveClass(/bad/);
  await page.getByTestId('attr-unfold').uncheck();
  await expect(page.getByTestId('attribution-sum')).not.toHaveClass(/bad/);
  await page.screenshot({ path: 'screenshots/inspect-attribution.png', fullPage: true });
  // A target the model does not have: a message, and the page keeps working.
  await page.getByTestId('attr-target').fill('500');
  await page.getByTestId('attr-target').dispatchEvent('change');
  await expect(page.getByTestId('attribution-error')).toContainText('not one of the model');
  await page.getByTestId('attr-target').fill('');
  await page.getByTestId('attr-target').dispatchEvent('change');
  await expect(page.getByTestId('attribution-sum')).toBeVisible();
  await reportLongTasks(page, 'modular-addition attribution');
});

test('English model: a layer\'s neurons on the prompt, a neuron page with its direct effect, and top-activating examples from the corpus, pasted text and a file (screenshots/inspect-neurons.png)', async ({ page }) => {
  await page.goto('./?model=english-char-3l&view=neurons');
  await waitForModel(page);
  const rows = page.getByTestId('neuron-row');
  await expect(rows).toHaveCount(20);
  const second = await rows.nth(1).getAttribute('data-neuron');
  await rows.nth(1).click();
  await expect(page.getByTestId('neuron-title')).toHaveText(`Layer 2 neuron ${second}`);
  await expect(page.getByTestId('neuron-promoted').locator('li')).toHaveCount(10);
  await expect(page.getByTestId('neuron-act')).toHaveCount(await page.getByTestId('token').count());
  // The shipped slice: ten examples, largest first, the max token boxed.
  await page.getByTestId('scan-run').click();
  await expect(page.getByTestId('scan-done')).toBeVisible({ timeout: 180_000 });
  const examples = page.getByTestId('scan-example');
  await expect(examples).toHaveCount(10);
  const acts = await examples.evaluateAll((li) => li.map((l) => Number(l.dataset.value)));
  expect([...acts].sort((a, b) => b - a)).toEqual(acts);
  await expect(examples.first().locator('.ex-tok.max')).toHaveCount(1);
  // Another neuron's examples come without scanning again.
  const first = await examples.evaluateAll((li) => li.map((l) => l.textContent).join('|'));
  await page.getByTestId('neuron-input').fill('7');
  await page.getByTestId('neuron-input').dispatchEvent('change');
  await expect(page.getByTestId('neuron-title')).toHaveText('Layer 2 neuron 7');
  await expect(examples).toHaveCount(10);
  expect(await examples.evaluateAll((li) => li.map((l) => l.textContent).join('|'))).not.toEqual(first);
  await page.screenshot({ path: 'screenshots/inspect-neurons.png', fullPage: true });
  await reportLongTasks(page, 'english-char-3l neurons and a corpus scan (WebGPU page, scan on the CPU engine)');

  // Bad input: a neuron out of range, an empty paste, 50 MB pasted, an empty file.
  await page.getByTestId('neuron-input').fill('99999');
  await page.getByTestId('neuron-input').dispatchEvent('change');
  await expect(page.getByTestId('neuron-error')).toContainText('out of range');
  await page.getByTestId('corpus-paste').check();
  await page.getByTestId('scan-run').click();
  await expect(page.getByTestId('scan-error')).toContainText('empty');
  await page.getByTestId('corpus-text').evaluate((t) => {
    t.value = 'the whale '.repeat(5_000_000);
    t.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await page.getByTestId('scan-run').click();
  await expect(page.getByTestId('scan-error')).toContainText('50.0 million characters');
  await page.getByTestId('corpus-file').check();
  await page.getByTestId('corpus-file-input').setInputFiles({ name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) });
  await expect(page.getByTestId('scan-error')).toContainText('empty.txt is empty');
  await page.getByTestId('corpus-paste').check();
  // Pasted text scans too, and the page keeps working.
  await page.getByTestId('corpus-text').fill('Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little.');
  await page.getByTestId('neuron-input').fill('7');
  await page.getByTestId('neuron-input').dispatchEvent('change');
  await page.getByTestId('scan-run').click();
  await expect(page.getByTestId('scan-done')).toContainText('the pasted text', { timeout: 60_000 });
  await expect(examples).toHaveCount(10);
  await runPrompt(page, 'The sea was calm');
  await expect(rows).toHaveCount(20);
});

test('a GPT-2 model from the hub mimic: the token strip, attention, head scores, neurons, logit lens and attribution all render (screenshots/inspect-gpt2-*.png)', async ({ page }) => {
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-gpt2-gguf');
  await page.getByTestId('hub-format').selectOption('gguf');
  await page.getByTestId('hub-file').fill('model-q8_0.gguf');
  await page.getByTestId('load-button').click();
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await runPrompt(page, 'The whale was white and the sea');
  const n = await page.getByTestId('token').count();
  await expect(page.getByTestId('loss-token')).toHaveCount(n);
  const nHeads = await page.getByTestId('head-thumb').count();
  expect(nHeads).toBeGreaterThan(0);
  const nLayers = await page.getByTestId('layer-button').count();
  await expect(page.getByTestId('head-score-row')).toHaveCount(nLayers * nHeads);
  await page.screenshot({ path: 'screenshots/inspect-gpt2-attention.png', fullPage: true });
  await page.getByTestId('tab-neurons').click();
  await expect(page.getByTestId('neuron-row')).toHaveCount(20);
  await expect(page.getByTestId('neuron-promoted').locator('li')).toHaveCount(10);
  await page.screenshot({ path: 'screenshots/inspect-gpt2-neurons.png', fullPage: true });
  await page.getByTestId('tab-lens').click();
  await expect(page.getByTestId('lens-cell')).toHaveCount((nLayers + 1) * n);
  await page.screenshot({ path: 'screenshots/inspect-gpt2-lens.png', fullPage: true });
  await page.getByTestId('tab-attribution').click();
  await expect(page.getByTestId('attr-bar')).toHaveCount(2 + nLayers * (nHeads + 2) + 1);
  const s = await sumCheck(page);
  expect(Math.abs(s.sum - s.actual)).toBeLessThan(1e-3 * Math.max(1, Math.abs(s.actual)));
  await page.screenshot({ path: 'screenshots/inspect-gpt2-attribution.png', fullPage: true });
  await reportLongTasks(page, 'tiny GPT-2 (Q8_0 GGUF) all views');
});

test('every view fits a 390 px wide phone screen (no sideways scrolling of the page; wide grids scroll in their own box)', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [url, ready] of [['?model=induction-2l', 'head-score-row'], ['?model=induction-2l&view=lens', 'lens-cell'], ['?model=modular-addition&view=attribution', 'attr-bar'], ['?model=english-char-3l&view=neurons', 'neuron-row']]) {
    await page.goto('./' + url);
    await expect(page.getByTestId(ready).first()).toBeVisible({ timeout: 120_000 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth), url).toBeLessThanOrEqual(390);
  }
});
