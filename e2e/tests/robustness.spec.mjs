// Issue 15: hostile files and hostile pages. The site under the strict Content-Security-Policy
// that server.mjs sends with every response (no inline script or style, wasm allowed); a
// server announcing a 3 GB model file; a hub repository whose tokenizer.json the tokenizers
// crate would panic on. In each case the model in use keeps answering and the load panel is
// usable again.
import { test, expect } from '@playwright/test';
import { clickHeatmapCell, recordRequests, runPrompt, top5, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;

/** Collects the page's `securitypolicyviolation` events (installed before any page script). */
async function watchViolations(page) {
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, source: e.sourceFile, line: e.lineNumber });
    });
  });
}

async function loadHub(page, repo, file) {
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill(repo);
  if (file) {
    await page.getByTestId('hub-format').selectOption('gguf');
    await page.getByTestId('hub-file').fill(file);
  } else {
    await page.getByTestId('hub-format').selectOption('safetensors');
  }
  await page.getByTestId('load-button').click();
}

test('under a strict CSP the site boots from external scripts, styles through the CSSOM and reports no violation', async ({ page, request }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await watchViolations(page);
  const response = await page.goto('./?model=modular-addition');
  const csp = response.headers()['content-security-policy'];
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(csp).toContain("style-src 'self'");
  expect(csp).toContain("default-src 'self'");
  await waitForModel(page);
  // No inline script, no style element, no data: URL anywhere in the document.
  expect(await page.locator('script:not([src])').count()).toBe(0);
  expect(await page.locator('style').count()).toBe(0);
  expect(await page.evaluate(() => [...document.querySelectorAll('[href^="data:"], [src^="data:"]')].length)).toBe(0);
  // The Fourier bars got their heights (style.setProperty, which the policy allows).
  await expect(page.getByTestId('fourier-panel')).toBeVisible();
  const heights = await page.locator('.fbar .fill').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
  expect(heights.length).toBeGreaterThan(0);
  expect(Math.max(...heights)).toBeGreaterThan(5);

  // The induction model: prediction bars and heatmap cells styled, a run, a click on the map.
  await page.goto('./');
  await waitForModel(page);
  await runPrompt(page, 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ');
  const bars = await page.locator('.bar').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
  expect(bars.length).toBeGreaterThan(0);
  expect(Math.max(...bars)).toBeGreaterThan(1);
  // The attention heatmap is a canvas sized through the CSSOM (no style attribute): it has its
  // width, and its pixels are shaded (more than a handful of colours).
  const heat = await page.getByTestId('heatmap').evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { width: c.getBoundingClientRect().width, colours: colours.size };
  });
  expect(heat.width).toBeGreaterThan(100);
  expect(heat.colours).toBeGreaterThan(8);
  await clickHeatmapCell(page, 3);
  await expect(page.getByTestId('heatmap-values')).toHaveAttribute('data-q', '3');

  expect(await page.evaluate(() => window.__csp)).toEqual([]);
  const reported = await (await request.get('/csp-reports')).json();
  expect(reported).toEqual([]);
  expect(errors).toEqual([]);
});

test('a server announcing a 3 GB model file is refused before anything is allocated; the panel unlocks and the model in use keeps working', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await watchViolations(page);
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  const prompt = 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ';
  await runPrompt(page, prompt);
  const before = await top5(page);

  await loadHub(page, 'glassbox-test/huge', 'model.gguf');
  const error = page.getByTestId('load-error');
  await expect(error).toContainText('this file is 3.0 GB; the limit here is', { timeout: 30_000 });
  await expect(error).toContainText('model.gguf');
  await expect(error).toContainText('The model in use is unchanged');
  await expect(page.getByTestId('load-progress')).toHaveCount(0);
  await expect(page.getByTestId('load-button')).toBeEnabled();
  // Nothing of it was cached.
  await expect(page.getByTestId('cached-entry')).toHaveCount(0);

  // The model in use still answers as before.
  await runPrompt(page, prompt + ' a');
  await runPrompt(page, prompt);
  expect((await top5(page)).map((r) => r.token)).toEqual(before.map((r) => r.token));

  // And the panel loads a real model afterwards.
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await runPrompt(page, 'The whale was white');
  expect((await top5(page)).length).toBe(5);
  expect(await page.evaluate(() => window.__csp)).toEqual([]);
  expect(errors).toEqual([]);
});

test('a hub repository whose tokenizer.json would make the tokenizers crate panic is refused by field; a valid repository loads after it', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  const prompt = 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ';
  await runPrompt(page, prompt);
  const before = await top5(page);

  await loadHub(page, 'glassbox-test/hostile-tokenizer', null);
  const error = page.getByTestId('load-error');
  await expect(error).toContainText('tokenizer.json', { timeout: 120_000 });
  await expect(error).toContainText('post_processor.single[0]');
  await expect(error).not.toContainText('panicked');
  await expect(page.getByTestId('load-button')).toBeEnabled();
  // No engine restart was needed: nothing trapped.
  await expect(page.getByTestId('engine-notice')).toHaveCount(0);
  await runPrompt(page, prompt);
  expect((await top5(page)).map((r) => r.token)).toEqual(before.map((r) => r.token));
  // The files of a model that failed are not kept.
  await expect(page.getByTestId('cached-entry')).toHaveCount(0);

  await loadHub(page, 'glassbox-test/tiny-llama', null);
  await expect(page.getByTestId('loaded-model')).toContainText('Llama', { timeout: 120_000 });
  await runPrompt(page, 'Call me Ishmael.');
  expect((await top5(page)).length).toBe(5);
  expect(errors).toEqual([]);
});

test('a hub chosen by the link is named with its host, and nothing is downloaded from it before the reader presses Load a second time', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Another origin than the page's (server.mjs serves the hub on the next port too).
  const other = `127.0.0.1:${PORT + 1}`;
  const HUB_OTHER = `http://${other}/hub`;
  await page.goto('./?hub=' + encodeURIComponent(HUB_OTHER));
  await waitForModel(page);
  await expect(page.getByTestId('hub-base')).toHaveValue(HUB_OTHER);
  const requests = recordRequests(page);
  // The suggested models say where they would come from.
  await openLoadPanel(page);
  await page.getByTestId('load-panel').locator('summary', { hasText: 'Suggested models' }).click();
  await expect(page.getByTestId('curated-host')).toHaveText(`Downloaded from ${other}`);

  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  const error = page.getByTestId('load-error');
  await expect(error).toContainText(`would be downloaded from ${other}`);
  await expect(error).toContainText('press Load again');
  expect(requests.filter((u) => u.includes(other))).toEqual([]);

  // Confirmed: now it downloads (this hub sends no CORS headers, so the browser refuses it).
  await openLoadPanel(page);
  await page.getByTestId('load-button').click();
  await expect(error).toContainText('refused the request or could not be reached', { timeout: 30_000 });
  expect(requests.some((u) => u.includes(other))).toBe(true);
  expect(errors).toEqual([]);
});

test('memory under repetition: 500 runs keep the page heap and the engine worker\'s wasm memory bounded', async ({ page }) => {
  test.setTimeout(600_000);
  // On the CPU path: what is measured (the page heap, the worker's wasm memory) is the same on
  // both backends, and a run on this machine's software WebGPU costs ten times as much.
  await page.goto('./?backend=cpu');
  await waitForModel(page);
  const heapMb = () => page.evaluate(() => performance.memory.usedJSHeapSize / 2 ** 20);
  const wasmMb = async () => {
    const [worker] = page.workers();
    return worker.evaluate(() => self.glassboxWasmBytes() / 2 ** 20);
  };
  const prompts = Array.from({ length: 10 }, (_, i) => `xQ7bLm2Rk9p${i} vT3nW8cY xQ7bLm2Rk9p${i}`);
  const figures = [];
  let heap50 = 0;
  let wasm50 = 0;
  for (let i = 1; i <= 500; i++) {
    await runPrompt(page, prompts[i % prompts.length] + (i % 2 ? '' : ' a'));
    if (i === 50 || i % 100 === 0) {
      // Let the page collect what it can before reading its heap.
      await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
      const f = { runs: i, heapMb: await heapMb(), wasmMb: await wasmMb() };
      figures.push(f);
      if (i === 50) {
        heap50 = f.heapMb;
        wasm50 = f.wasmMb;
      }
    }
  }
  console.log(`memory under repetition (induction-2l): ${JSON.stringify(figures)}`);
  const last = figures[figures.length - 1];
  // After the first 50 runs have warmed everything up, 450 more leave both where they were
  // (a leak of one run's views or cache would add up to many MB here).
  expect(last.heapMb - heap50).toBeLessThan(16);
  expect(last.wasmMb - wasm50).toBeLessThan(16);
  expect(page.workers().length).toBe(1);
});

test('GPU memory under repetition: runs on WebGPU leave the engine\'s live GPU buffers where they were', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto('./?backend=webgpu');
  await waitForModel(page);
  await expect(page.getByTestId('backend')).toContainText('WebGPU');
  // The engine's own counter: bytes of GPU storage buffers alive in its worker (weights and any
  // tensor a run still holds); staging and uniform buffers live for one submission.
  const gpuMb = async () => {
    const [worker] = page.workers();
    return worker.evaluate(() => self.glassboxGpuBytes() / 2 ** 20);
  };
  const loaded = await gpuMb();
  expect(loaded).toBeGreaterThan(0);
  const figures = [];
  for (let i = 1; i <= 40; i++) {
    await runPrompt(page, `xQ7bLm2Rk9p${i % 7} vT3nW8cY xQ7bLm2Rk9p${i % 7}` + (i % 2 ? '' : ' a'));
    if (i % 10 === 0) figures.push({ runs: i, gpuMb: await gpuMb() });
  }
  console.log(`GPU memory under repetition (induction-2l, WebGPU): loaded ${loaded.toFixed(3)} MB, ${JSON.stringify(figures)}`);
  // Runs free what they allocate: the live bytes never grow past what the loaded engine held
  // (a leak of one run's tensors would add to them every run), and they settle.
  for (const f of figures) expect(f.gpuMb).toBeLessThanOrEqual(loaded + 1e-9);
  expect(figures.at(-1).gpuMb).toBeCloseTo(figures.at(-2).gpuMb, 9);
  expect(figures.at(-1).gpuMb).toBeGreaterThan(0);
});
