// The engine's worker as a reader never sees it: one worker per model, terminated (with its
// GPU device and memory) when the model is replaced; a crash inside the engine restarts it
// with the same model and experiment, and the page keeps working.
import { test, expect } from '@playwright/test';
import { runPrompt, top5, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;

async function loadGguf(page) {
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-gpt2-gguf');
  await page.getByTestId('hub-format').selectOption('gguf');
  await page.getByTestId('hub-file').fill('model-q8_0.gguf');
  await page.getByTestId('load-button').click();
}

async function loadSafetensors(page) {
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-llama');
  await page.getByTestId('hub-format').selectOption('safetensors');
  await page.getByTestId('load-button').click();
}

/** The page's JS heap in MB (Chromium's performance.memory). */
async function heapMb(page) {
  return page.evaluate(() => performance.memory.usedJSHeapSize / 2 ** 20);
}

test('the model runs in one worker; replacing it 20 times terminates each old worker and memory stays bounded', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  // The engine is a worker, not the page: exactly one runs the shipped model.
  await expect.poll(() => page.workers().length).toBe(1);
  await expect(page.getByTestId('backend')).toHaveText(/WebGPU|CPU/);
  let baseline = 0;
  for (let i = 0; i < 20; i++) {
    const gguf = i % 2 === 0;
    await (gguf ? loadGguf(page) : loadSafetensors(page));
    await expect(page.getByTestId('loaded-model')).toContainText(gguf ? 'GPT-2' : 'Llama', { timeout: 120_000 });
    await expect(page.getByTestId('top5').first()).toBeVisible({ timeout: 120_000 });
    // The replaced model's worker is gone: never more than the one in use.
    await expect.poll(() => page.workers().length, { timeout: 30_000 }).toBe(1);
    if (i === 1) baseline = await heapMb(page);
  }
  const end = await heapMb(page);
  // Each model's files are a few hundred kB; 20 loads that leaked would add them up (and a
  // leaked worker would add its whole wasm memory, which the worker count above rules out).
  expect(end - baseline).toBeLessThan(64);
  await runPrompt(page, 'The whale was white');
  expect((await top5(page)).length).toBe(5);
});

test('a panic inside the engine kills only its worker: the page says so, restarts it and keeps the experiment', async ({ page }) => {
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('./');
  await waitForModel(page);
  await runPrompt(page, 'abcdefgh 12345 abcdefgh');
  const before = await top5(page);
  const [oldWorker] = page.workers();
  expect(await page.evaluate(() => window.wasmBindings.crash_engine())).toBe(true);
  // The page names what happened, starts a new worker with the same model, and shows the
  // same experiment's results again.
  await expect(page.getByTestId('notice').filter({ hasText: 'The engine stopped' })).toContainText('crash', { timeout: 60_000 });
  await expect.poll(() => page.workers().length === 1 && page.workers()[0] !== oldWorker, { timeout: 60_000 }).toBe(true);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'abcdefgh 12345 abcdefgh', { timeout: 120_000 });
  await expect(page.getByTestId('prompt')).toHaveValue('abcdefgh 12345 abcdefgh');
  const after = await top5(page);
  expect(after[0].token).toBe(before[0].token);
  expect(after[0].prob).toBeCloseTo(before[0].prob, 3);
  // And it keeps working.
  await runPrompt(page, 'xyz xyz');
  expect((await top5(page)).length).toBe(5);
  // The only error is the crashed worker's own trap; the page itself raised none.
  expect(pageErrors.filter((m) => !/unreachable/.test(m))).toEqual([]);
});

test('the CPU path\'s own matmul on packed weights and its four-lane gelu_new, SiLU and softmax, as the browser compiles them, match double precision', async ({ page }) => {
  // The kernel's native tests run portable lanes with the same IEEE arithmetic; this runs the
  // simd128 build itself (shapes at every edge of its blocking and one of GPT-2's).
  await page.goto('./');
  await waitForModel(page);
  const worst = await page.evaluate(() => window.wasmBindings.cpu_matmul_check());
  expect(worst).toBeGreaterThanOrEqual(0);
  expect(worst).toBeLessThan(1e-6);
  // And its gelu_new, SiLU and softmax on four lanes (simd128 through `wide`) against f64.
  const elementwise = await page.evaluate(() => window.wasmBindings.cpu_elementwise_check());
  expect(elementwise).toBeGreaterThanOrEqual(0);
  expect(elementwise).toBeLessThan(2e-6);
});
