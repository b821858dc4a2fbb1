// The article and share links, cold, for BENCHMARKS.md (issue 11; not a test), in Debian's
// headless Chromium with WebGPU on SwiftShader. Each run is a fresh browser context (empty HTTP
// cache).
//
//   PORT=4300 DIST_DIR=/path/to/dist node e2e/server.mjs &
//   node e2e/bench/article_bench.mjs http://127.0.0.1:4300/ [--runs=3]
//
// article: open article.html, scroll to Figure 1 at once, then (once it shows its numbers) to each
//          later figure in turn without waiting: navigation start to the first figure's numbers
//          and to the last figure's, from each figure's own data-ready-ms (performance.now() when
//          its numbers appeared); and how many times the model's weights were downloaded.
// explorer: the peer, in the same run: the explorer opened cold on the same model, navigation
//          start to its first prediction on screen.
// link:    a share link to an activation patching sweep on the shipped induction model (the
//          attention heads' outputs, every position, clean against corrupted prompt), opened
//          cold: navigation start to the heatmap's cells on screen; the cells' values must be the
//          same on every open (printed as a checksum).
import { chromium } from '@playwright/test';
import { deflateRawSync } from 'node:zlib';
import { CHROMIUM, WEBGPU_ARGS, inductionPair } from '../tests/browser.mjs';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name, dflt) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${dflt}`).split('=')[1]);
const base = positional[0] ?? 'http://127.0.0.1:4300/';
const runs = flag('runs', 3);
const KINDS = ['predictions', 'attention', 'ablation', 'lens', 'attribution'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS, headless: true });
try {
  const first = [];
  const all = [];
  const downloads = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    let weights = 0;
    page.on('request', (r) => { if (r.url().endsWith('/model.safetensors')) weights += 1; });
    await page.goto(`${base}article.html`);
    const live = (k) => page.locator(`figure[data-figure="${k}"] [data-testid=live-figure]`);
    await page.locator('figure[data-figure="predictions"]').scrollIntoViewIfNeeded();
    await live('predictions').and(page.locator('[data-state=ready]')).waitFor({ timeout: 180_000 });
    for (const k of KINDS.slice(1)) await page.locator(`figure[data-figure="${k}"]`).scrollIntoViewIfNeeded();
    for (const k of KINDS) await live(k).and(page.locator('[data-state=ready]')).waitFor({ timeout: 180_000 });
    const ready = await page.getByTestId('live-figure').evaluateAll((fs) => fs.map((f) => Number(f.dataset.readyMs)));
    first.push(Math.min(...ready));
    all.push(Math.max(...ready));
    downloads.push(weights);
    if (i === 0) {
      const links = await page.getByTestId('open-explorer').evaluateAll((as) => as.map((a) => a.getAttribute('href').length - 2));
      console.log(JSON.stringify({ what: "article: length of each figure's share link (the fragment, characters)", links }));
    }
    await ctx.close();
  }
  console.log(JSON.stringify({ what: 'article, cold: navigation to the first live figure and to all five (scrolled through)', first_ms: Math.round(median(first)), all_ms: Math.round(median(all)), runs: first.map((f, i) => [Math.round(f), Math.round(all[i])]), weight_downloads: downloads }));

  // The peer, in the same run: the explorer's cold open to its first prediction (same model).
  const explorer = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${base}?model=induction-2l`);
    await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
    explorer.push(await page.evaluate(() => performance.now()));
    await ctx.close();
  }
  console.log(JSON.stringify({ what: 'peer: the explorer, cold: navigation to the first prediction (induction-2l)', median_ms: Math.round(median(explorer)), all_ms: explorer.map(Math.round) }));

  const pair = inductionPair(11);
  const experiment = {
    v: 1,
    model: { source: { kind: 'shipped', id: 'induction-2l' } },
    prompt: pair.clean,
    corrupted: pair.corrupted,
    analysis: { kind: 'patch', component: 'z', by: 'all_pos', direction: 'denoising', metric: 'logit_diff' },
    view: { tab: 'patching', target: pair.answer, distractor: pair.corrupted.split(' ')[0][5] },
  };
  const link = `${base}#v1/${deflateRawSync(Buffer.from(JSON.stringify(experiment))).toString('base64url')}`;
  const opens = [];
  const sums = new Set();
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(link);
    await page.getByTestId('patch-cell').first().waitFor({ timeout: 180_000 });
    opens.push(await page.evaluate(() => performance.now()));
    const values = await page.getByTestId('patch-cell').evaluateAll((cs) => cs.map((c) => Number(c.dataset.value)));
    sums.add(`${values.length} cells, sum ${values.reduce((a, b) => a + b, 0).toFixed(6)}`);
    await ctx.close();
  }
  console.log(JSON.stringify({ what: 'share link to a patching sweep (induction-2l, z by head), cold: navigation to the heatmap', link_chars: link.length - base.length, median_ms: Math.round(median(opens)), all_ms: opens.map(Math.round), values: [...sums] }));
} finally {
  await browser.close();
}
