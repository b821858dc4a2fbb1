import { inflateRawSync } from 'node:zlib';
// Shared by the config and the tests: which Chromium, with which flags, and page helpers.
import { expect } from '@playwright/test';

/** Debian's Chromium: Playwright never downloads a browser here. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Flags that are neither about WebGPU nor about headless mode (Playwright adds that). */
export const BASE_ARGS = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** With these flags headless Chromium offers a WebGPU adapter (SwiftShader, on the CPU). */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', ...BASE_ARGS];

/** Without `--enable-unsafe-webgpu`, headless Chromium on Linux reports no adapter. */
export const NO_WEBGPU_ARGS = [...BASE_ARGS];

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A small seeded generator (mulberry32), so a failing prompt can be reproduced. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `<segment> <filler> <segment>`: a random segment of distinct characters, other random
 * characters, then the segment again. Token positions: BOS 0, segment 1..n, filler, repeat.
 */
export function inductionPrompt(seed, segLen = 12, fillLen = 8) {
  const r = rng(seed);
  const pool = ALPHABET.split('');
  const take = () => pool.splice(Math.floor(r() * pool.length), 1)[0];
  const segment = Array.from({ length: segLen }, take).join('');
  const filler = Array.from({ length: fillLen }, take).join('');
  return {
    text: `${segment} ${filler} ${segment}`,
    segment,
    filler,
    /** Position of the i-th token of the second occurrence. */
    repeatPos: (i) => 1 + segLen + fillLen + i,
    /** Position of the i-th token of the first occurrence. */
    firstPos: (i) => 1 + i,
    nTokens: 1 + 2 * segLen + fillLen,
  };
}

/** Shows the load panel's fields (collapsed behind its button by default); a no-op when open. */
export async function openLoadPanel(page) {
  const toggle = page.getByTestId('load-open');
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await expect(page.getByTestId('hub-repo')).toBeVisible();
}

/** Waits until the model is loaded and the first run is shown. */
export async function waitForModel(page) {
  await expect(page.getByTestId('loaded')).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('top5').first()).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('run')).toBeEnabled();
}

/** Types `text` into the prompt box, runs it, and waits for its tokens to be shown. */
export async function runPrompt(page, text) {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('run').click();
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', text);
  await expect(page.getByTestId('run')).toBeEnabled();
  await settled(page);
}

/** Waits until the views show the experiment's own run: while a run computes, the previous
 * run's views stay on screen, marked `aria-busy` (and faded if it takes a moment). */
export async function settled(page) {
  await expect(page.locator('[aria-busy="true"]')).toHaveCount(0, { timeout: 120_000 });
}

/** The rows of the top-5 table: [{ token, prob }], most likely first (of the settled run). */
export async function top5(page) {
  await settled(page);
  return page.getByTestId('top5').evaluateAll((rows) =>
    rows.map((r) => ({ token: r.dataset.token, prob: Number(r.dataset.prob), text: r.textContent })),
  );
}

/** Clicks the attention heatmap's canvas on cell (q, k): the canvas maps the point to the cell. */
export async function clickHeatmapCell(page, q, k = 0) {
  const canvas = page.getByTestId('heatmap');
  const [cell, left, top] = await canvas.evaluate((c) => [c.dataset.cell, c.dataset.left, c.dataset.top].map(Number));
  await canvas.click({ position: { x: left + (k + 0.5) * cell, y: top + (q + 0.5) * cell } });
}

/** One query row of the shown attention pattern: values by key position. The page lists the
 * chosen query's row as a table (for screen readers); another row is chosen by clicking it. */
export async function patternRow(page, q) {
  await settled(page);
  const values = page.getByTestId('heatmap-values');
  if ((await values.getAttribute('data-q')) !== String(q)) {
    await clickHeatmapCell(page, q);
    await expect(values).toHaveAttribute('data-q', String(q));
  }
  // The table lists the keys up to the query (later keys are masked: weight 0).
  const n = Number(await page.getByTestId('heatmap').getAttribute('data-n'));
  const row = new Array(n).fill(0);
  const cells = await values.locator('tr.cell').evaluateAll((cs) => cs.map((c) => ({ k: Number(c.dataset.k), value: Number(c.dataset.value) })));
  expect(cells.map((c) => c.k)).toEqual(Array.from({ length: q + 1 }, (_, k) => k));
  for (const c of cells) row[c.k] = c.value;
  return row;
}

export function argmax(values) {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
}

/** Collects every URL the page requests, to check that nothing leaves the site. */
export function recordRequests(page) {
  const urls = [];
  page.on('request', (req) => urls.push(req.url()));
  return urls;
}

/** The induction score the page shows for each head of the chosen layer (NaN where none). */
export async function inductionScores(page) {
  return page.getByTestId('head-button').evaluateAll((bs) => bs.map((b) => Number(b.dataset.induction ?? NaN)));
}

/** The experiment a share link carries (`#v1/` + base64url(raw DEFLATE(JSON))), decoded the way
 * glassbox_core::share does; null when the URL has no share fragment. */
export function experimentOf(url) {
  const hash = new URL(url).hash.replace(/^#/, '');
  if (!hash.startsWith('v1/')) return null;
  const payload = hash.slice(3).split('&')[0];
  return JSON.parse(inflateRawSync(Buffer.from(payload, 'base64url')).toString('utf8'));
}

/** The induction prompt (`inductionPrompt(seed, 10, 6)`) cut after 5 tokens of the second
 * occurrence, and the same with the first occurrence replaced by other characters (equal token
 * length): the clean run predicts the segment's next character (`answer`) by induction, the
 * corrupted one cannot. The causal views' tests patch between the two. */
export function inductionPair(seed) {
  const p = inductionPrompt(seed, 10, 6);
  const k = 5;
  const used = new Set((p.segment + p.filler).split(''));
  const other = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('').filter((c) => !used.has(c));
  return {
    clean: `${p.segment} ${p.filler} ${p.segment.slice(0, k)}`,
    corrupted: `${other.slice(0, p.segment.length).join('')} ${p.filler} ${p.segment.slice(0, k)}`,
    answer: p.segment[k],
  };
}
