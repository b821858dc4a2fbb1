// The page stays responsive at the model's full context (issue 12): a run, a head click, a
// position change (click and arrow key) and a zoom each leave no main-thread task over 50 ms,
// on the CPU path and on WebGPU. The model runs in the engine's worker; what the
// main thread does is receive the answer and draw the views, and the attention pattern is one
// canvas (it was one DOM element per cell: 907 ms at 124 tokens).
//
// Long tasks are the browser's own (PerformanceObserver 'longtask', every task over 50 ms),
// recorded from before the app starts; each interaction's window runs from the input to the
// view showing its result, plus a short settle for the paint that follows.
//
// For BENCHMARKS.md the same interactions run at other lengths (characters after BOS):
//   GLASSBOX_LENGTHS=15,63,127 npx playwright test tests/responsive.spec.mjs
// (the suite runs only the full context, 127).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { clickHeatmapCell, runPrompt, waitForModel } from './browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
// english-char-3l's context is 128 positions: BOS and 127 characters of the held-out corpus.
const corpus = readFileSync(join(here, '..', '..', 'public', 'corpus', 'moby-dick-heldout.txt'), 'utf8').replace(/\s+/g, ' ');
const LENGTHS = (process.env.GLASSBOX_LENGTHS ?? '127').split(',').map(Number);
const SHORT = 'Call me Ishmael';
// The goal: no main-thread task over 50 ms for any of these interactions (issue 12). A run is
// measured five times (a short prompt, then a different full-context one each time) and its
// median is held to the goal, so that one stray task of the machine (a garbage collection, a
// test worker beside it) does not decide it; every figure is printed for BENCHMARKS.md.
const GOAL_MS = 50;
const RUNS = 5;

function instrument() {
  window.__longtasks = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longtasks.push({ start: e.startTime, duration: e.duration }))).observe({ type: 'longtask', buffered: true });
}

/** Runs `act`, waits for `done`, settles, and returns the longest task in that window (ms). */
async function longestDuring(page, act, done) {
  const t0 = await page.evaluate(() => performance.now());
  await act();
  await done();
  await page.waitForTimeout(300);
  const t1 = await page.evaluate(() => performance.now());
  return page.evaluate(([t0, t1]) => Math.round(Math.max(0, ...window.__longtasks.filter((t) => t.start + t.duration > t0 && t.start < t1).map((t) => t.duration))), [t0, t1]);
}

for (const backend of ['webgpu', 'cpu']) for (const chars of LENGTHS) {
  const n = chars + 1;
  test(`${n === 128 ? 'full context' : 'context'} (${n} tokens) on ${backend === 'cpu' ? 'the CPU path' : 'WebGPU'}: a run, a head click, a position change and a zoom leave no main-thread task over 50 ms`, async ({ page }) => {
    test.setTimeout(240_000);
    await page.addInitScript(instrument);
    await page.goto(`./?model=english-char-3l&backend=${backend}`);
    await waitForModel(page);
    await expect(page.getByTestId('backend')).toContainText(backend === 'cpu' ? 'CPU' : 'WebGPU');
    await runPrompt(page, SHORT);
    const figures = {};
    const prompt = page.getByTestId('prompt');
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      // No space at either end (the page keeps the prompt as typed, but be plain about it).
      const full = corpus.slice(2000 + 300 * i).trimStart().slice(0, chars - 1) + 'x';
      if (i > 0) await runPrompt(page, `${SHORT} ${i}`);
      await prompt.fill(full);
      runs.push(
        await longestDuring(
          page,
          () => page.getByTestId('run').click(),
          async () => {
            await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', full, { timeout: 120_000 });
            await expect(page.getByTestId('heatmap')).toHaveAttribute('data-n', String(n));
          },
        ),
      );
    }
    figures.runs = runs;
    figures.run = [...runs].sort((a, b) => a - b)[RUNS >> 1];
    expect(await page.getByTestId('token').count()).toBe(n);
    figures.head = await longestDuring(
      page,
      () => page.locator('[data-testid="head-button"][data-head="2"]').click(),
      () => expect(page.getByRole('heading', { name: /Attention pattern: layer \d+, head 2/ })).toBeVisible(),
    );
    figures.layer = await longestDuring(
      page,
      () => page.locator('[data-testid="layer-button"][data-layer="2"]').click(),
      () => expect(page.getByRole('heading', { name: 'Attention pattern: layer 2, head 2' })).toBeVisible(),
    );
    figures.position_click = await longestDuring(
      page,
      () => clickHeatmapCell(page, Math.floor(n / 2)),
      () => expect(page.getByTestId('heatmap-values')).toHaveAttribute('data-q', String(Math.floor(n / 2))),
    );
    figures.position_key = await longestDuring(
      page,
      async () => {
        await page.locator('.heatmap-wrap').focus();
        await page.keyboard.press('ArrowUp');
      },
      () => expect(page.getByTestId('heatmap-values')).toHaveAttribute('data-q', String(Math.floor(n / 2) - 1)),
    );
    const cell = await page.getByTestId('heatmap').getAttribute('data-cell');
    figures.zoom = await longestDuring(
      page,
      () => page.getByTestId('heatmap-zoom-in').click(),
      () => expect(page.getByTestId('heatmap')).not.toHaveAttribute('data-cell', cell),
    );
    console.log(`[longtask] english-char-3l, ${n} tokens, ${backend}: ${JSON.stringify(figures)}`);
    for (const [what, ms] of Object.entries(figures)) if (what !== 'runs') expect(ms, `${what}: longest main-thread task${what === 'run' ? ' (median of the runs)' : ''}`).toBeLessThan(GOAL_MS);
  });
}
