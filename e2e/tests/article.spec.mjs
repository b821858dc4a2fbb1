// The article "Induction heads, live" (issue 11): its five live figures compute as they scroll
// into view from ONE model download and ONE engine worker; editing the prompt in one figure
// recomputes all of them; without WebAssembly the static images stay.
//
// GLASSBOX_ARTICLE_FIGURES=write also writes those static images (public/article/<kind>.png)
// from the live figures for the default prompt.
import { test, expect } from '@playwright/test';
import { inductionPrompt, recordRequests } from './browser.mjs';

const DEFAULT_PROMPT = 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ';
const KINDS = ['predictions', 'attention', 'ablation', 'lens', 'attribution'];
const figure = (page, kind) => page.locator(`figure[data-figure="${kind}"]`);
const live = (page, kind) => figure(page, kind).getByTestId('live-figure');

test('the article computes its five figures as they scroll into view, from one model download and one engine; editing one prompt recomputes all (screenshots/article.png)', async ({ page }) => {
  const requests = recordRequests(page);
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  await page.goto('./article.html');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Induction heads, live');
  // Live: the static images give way to live figures; those below the fold wait.
  for (const kind of KINDS) await expect(figure(page, kind)).toHaveClass(/is-live/);
  await expect(live(page, 'attribution')).toHaveAttribute('data-state', 'waiting');

  // Scroll through the article: each figure computes when it comes into view.
  for (const kind of KINDS) {
    await figure(page, kind).scrollIntoViewIfNeeded();
    await expect(live(page, kind)).toHaveAttribute('data-state', 'ready', { timeout: 120_000 });
  }
  await expect(page.getByTestId('article-status')).toHaveAttribute('data-state', 'ready');
  const times = await page.getByTestId('live-figure').evaluateAll((fs) => fs.map((f) => Number(f.dataset.readyMs)));
  console.log(`article: figures ready at ${times.map((t) => `${(t / 1000).toFixed(2)} s`).join(', ')} after navigation (scrolled one by one)`);

  // Figure 1: the repeat is predicted, the first occurrence is not.
  const summary = live(page, 'predictions').getByTestId('loss-summary');
  const repeat = Number(await summary.getAttribute('data-repeat'));
  const rest = Number(await summary.getAttribute('data-rest'));
  expect(repeat).toBeLessThan(0.5);
  expect(rest).toBeGreaterThan(2.5);
  // Figure 2: it opens on a layer-1 head with a strong induction score (the card: L1H0, L1H3).
  const head = live(page, 'attention').getByTestId('attention-head');
  await expect(head).toHaveAttribute('data-layer', '1');
  expect(['0', '3']).toContain(await head.getAttribute('data-head'));
  expect(Number(await head.getAttribute('data-score'))).toBeGreaterThan(0.3);
  await live(page, 'attention').locator('[data-testid=figure-head][data-layer="0"][data-head="0"]').click();
  await expect(head).toHaveAttribute('data-layer', '0');
  // Figure 3: every head ablated; the largest damage is in the card's circuit.
  const cells = await live(page, 'ablation').getByTestId('ablation-cell').evaluateAll((cs) =>
    cs.map((c) => ({ l: Number(c.dataset.layer), h: Number(c.dataset.head), change: Number(c.dataset.change) })),
  );
  expect(cells).toHaveLength(8);
  const worst = cells.reduce((a, b) => (b.change > a.change ? b : a));
  expect(['0.0', '1.0', '1.3']).toContain(`${worst.l}.${worst.h}`);
  expect(worst.change).toBeGreaterThan(0.3);
  // As the caption says for the default prompt: L0H0 and L1H0 cost more than L1H3.
  const change = (l, h) => cells.find((c) => c.l === l && c.h === h).change;
  expect(Math.min(change(0, 0), change(1, 0))).toBeGreaterThan(change(1, 3));
  // Figure 4: the logit lens, the prediction on top in the final row at the last position.
  await expect(live(page, 'lens').getByTestId('lens-cell').first()).toBeVisible();
  await expect(live(page, 'lens').getByTestId('lens-appears')).toHaveAttribute('data-row', /\d+/);
  // As the caption says: in the repeat, the last row reads the next character at every
  // position, the row after layer 0 mostly does not.
  const tokens = ['<bos>', ...DEFAULT_PROMPT.replaceAll(' ', '')];
  const lens = await live(page, 'lens').getByTestId('lens-cell').evaluateAll((cs) => cs.map((c) => ({ label: c.dataset.label, pos: Number(c.dataset.pos), top: c.dataset.top })));
  const repeatCols = [...Array(11).keys()].map((i) => 21 + i);
  const hits = (label) => repeatCols.filter((p) => lens.find((c) => c.label === label && c.pos === p)?.top === tokens[p + 1]).length / repeatCols.length;
  expect(hits('final_post')).toBe(1);
  expect(hits('1_pre')).toBeLessThan(0.5);
  // Figure 5: direct logit attribution bars.
  await expect(live(page, 'attribution').getByTestId('attr-bar').first()).toBeVisible();

  if (process.env.GLASSBOX_ARTICLE_FIGURES === 'write') {
    for (const kind of KINDS) {
      if (kind === 'attention') await live(page, kind).locator('[data-testid=figure-head][data-layer="1"]').first().click();
      await figure(page, kind).locator('.figure-body').screenshot({ path: `../public/article/${kind}.png` });
    }
  }

  // One download of each model file, one engine worker, nothing from another origin.
  const origin = new URL(page.url()).origin;
  for (const file of ['config.json', 'model.safetensors']) {
    expect(requests.filter((u) => u.endsWith(`/models/induction-2l/${file}`)), file).toHaveLength(1);
  }
  expect(workers.filter((u) => u.includes('worker.js'))).toHaveLength(1);
  expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'))).toEqual([]);

  // Edit the prompt in the ablation figure: every figure recomputes for the new prompt.
  const next = inductionPrompt(7).text;
  const box = live(page, 'ablation').getByTestId('figure-prompt');
  await box.fill(next);
  await box.press('Enter');
  for (const kind of KINDS) {
    await expect(live(page, kind)).toHaveAttribute('data-prompt', next, { timeout: 120_000 });
    await expect(live(page, kind).getByTestId('figure-prompt')).toHaveValue(next);
  }
  expect(Number(await live(page, 'predictions').getByTestId('loss-summary').getAttribute('data-repeat'))).toBeLessThan(0.5);
  // Still one download and one engine.
  expect(requests.filter((u) => u.endsWith('/models/induction-2l/model.safetensors'))).toHaveLength(1);
  expect(workers.filter((u) => u.includes('worker.js'))).toHaveLength(1);
  // A figure opens its experiment in the explorer.
  const link = await live(page, 'lens').getByTestId('open-explorer').getAttribute('href');
  expect(link).toMatch(/^\.\/#v1\//);

  await figure(page, 'predictions').scrollIntoViewIfNeeded();
  await page.screenshot({ path: 'screenshots/article.png', fullPage: true });
});

test('without WebAssembly (or JavaScript) the article shows its static figures', async ({ browser }) => {
  for (const options of [{ javaScriptEnabled: false }, {}]) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    // The second pass keeps JavaScript but refuses the wasm file, as a browser without
    // WebAssembly would fail to run it.
    if (options.javaScriptEnabled !== false) await page.route('**/*.wasm', (route) => route.abort());
    await page.goto('./article.html');
    for (const kind of KINDS) {
      const img = figure(page, kind).locator('img.fallback');
      await img.scrollIntoViewIfNeeded();
      await expect(img).toBeVisible();
      await expect.poll(() => img.evaluate((i) => i.complete && i.naturalWidth)).toBeGreaterThan(100);
      await expect(figure(page, kind)).not.toHaveClass(/is-live/);
    }
    await expect(page.locator('[data-article-status]')).toContainText('static images');
    await context.close();
  }
});
