// Loading real models as a user would, against the local server's mimic of the Hugging Face hub
// (e2e/server.mjs serves e2e/hub/ at /hub/<org>/<repo>/resolve/main/<file>; the models are made
// by python/make_hub_fixtures.py): a GGUF file and a safetensors repository by repo id, with
// the progress bar; the browser cache with the network blocked; bad files, while the model in
// use keeps working.
import { test, expect } from '@playwright/test';
import { recordRequests, runPrompt, top5, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;
// server.mjs also serves the hub on the next port without CORS headers.
const HUB_NO_CORS = `http://127.0.0.1:${PORT + 1}/hub`;

/** Records every state the load-progress bar shows (a small file can come and go between polls). */
async function watchProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => {
      const el = document.querySelector('[data-testid="load-progress"]');
      if (el) window.__progress.push({ loaded: Number(el.dataset.loaded), total: Number(el.dataset.total || NaN), text: el.textContent });
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
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

test('loads a GGUF model and a safetensors model from the hub by repo id; the browser cache lists them, serves them offline and deletes them', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const requests = recordRequests(page);
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await expect(page.getByTestId('hub-base')).toHaveValue(HUB);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });

  // (a) A Q8_0 GGUF GPT-2 with its own BPE vocabulary.
  await watchProgress(page);
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await expect(page.getByTestId('loaded-model')).toContainText('Q8_0');
  await expect(page.getByTestId('loaded-model')).not.toContainText('cache');
  // The model panel's card names the family and format of a model loaded from outside.
  await expect(page.getByTestId('model-family')).toHaveText('GPT-2');
  await expect(page.getByTestId('model-format')).toContainText('Q8_0');
  await expect(page.getByTestId('model-description')).toHaveCount(0);
  const seen = await page.evaluate(() => window.__progress);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.some((p) => p.total === 216160 && p.text.includes('model-q8_0.gguf'))).toBe(true);
  await runPrompt(page, 'The whale was white');
  const gguf = await top5(page);
  expect(gguf.length).toBe(5);
  expect(gguf[0].prob).toBeGreaterThan(0);
  await expect(page.getByTestId('tokens')).toContainText('whale');

  // (b) A Llama repository as safetensors + tokenizer.json (sentencepiece).
  await loadHub(page, 'glassbox-test/tiny-llama', null);
  await expect(page.getByTestId('loaded-model')).toContainText('Llama', { timeout: 120_000 });
  await expect(page.getByTestId('model-family')).toHaveText('Llama');
  await runPrompt(page, 'Call me Ishmael.');
  expect((await top5(page)).length).toBe(5);

  // The cache lists what was downloaded, with sizes.
  const entries = page.getByTestId('cached-entry');
  await expect(entries).toHaveCount(4); // the GGUF file, config.json, tokenizer.json, model.safetensors
  const gg = page.locator('[data-testid="cached-entry"][data-url$="model-q8_0.gguf"]');
  await expect(gg).toHaveAttribute('data-bytes', '216160');

  // (c) Reload with the hub unreachable: the GGUF model loads from the browser cache.
  await page.route('**/hub/**', (route) => route.abort('internetdisconnected'));
  await page.reload();
  await waitForModel(page);
  await watchProgress(page);
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await expect(page.getByTestId('loaded-model')).toContainText("read from this browser's cache");
  await runPrompt(page, 'The whale was white');
  expect((await top5(page)).map((r) => r.token)).toEqual(gguf.map((r) => r.token));
  // A file that is not cached fails with the network's error, and the model stays.
  await loadHub(page, 'glassbox-test/broken', 'truncated.gguf');
  await expect(page.getByTestId('load-error')).toContainText('could not be reached');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2');

  // Delete removes a cached file.
  await openLoadPanel(page);
  await gg.getByTestId('cached-delete').click();
  await expect(page.locator('[data-testid="cached-entry"][data-url$="model-q8_0.gguf"]')).toHaveCount(0);
  await expect(entries).toHaveCount(3);

  // Every request stayed on this origin.
  const origin = new URL(page.url()).origin;
  expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'))).toEqual([]);
  expect(errors).toEqual([]);
});

test('a truncated file, a missing file and a bad repo id show errors; the model in use keeps working; suggested models fill the fields (screenshots/load-panel.png)', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  const before = await top5(page);

  await loadHub(page, 'glassbox-test/broken', 'truncated.gguf');
  await expect(page.getByTestId('load-error')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('load-error')).toContainText(/past the end|truncat/);
  await expect(page.getByTestId('load-error')).toContainText('The model in use is unchanged');
  // A file that does not make a model is not kept in the cache.
  await expect(page.getByTestId('cached-entry')).toHaveCount(0);

  await loadHub(page, 'glassbox-test/nothing-here', 'model.gguf');
  await expect(page.getByTestId('load-error')).toContainText('not found (HTTP 404)');
  await expect(page.getByTestId('load-error')).toContainText('/hub/glassbox-test/nothing-here/resolve/main/model.gguf');

  await loadHub(page, 'not a repo', 'model.gguf');
  await expect(page.getByTestId('load-error')).toContainText('is not a repository id');

  // The shipped model still answers, as before.
  await expect(page.getByTestId('loaded-model')).toHaveCount(0);
  await runPrompt(page, 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ');
  expect((await top5(page)).map((r) => r.token)).toEqual(before.map((r) => r.token));
  // A suggested model fills the fields; nothing is downloaded until Load is pressed.
  const requests = recordRequests(page);
  await openLoadPanel(page);
  await page.getByTestId('load-panel').locator('summary', { hasText: 'Suggested models' }).click();
  await page.getByTestId('curated-entry').first().click();
  await expect(page.getByTestId('hub-repo')).toHaveValue('QuantFactory/gpt2-GGUF');
  await expect(page.getByTestId('hub-file')).toHaveValue('gpt2.Q8_0.gguf');
  await page.getByTestId('hub-repo').fill('not a repo');
  await page.getByTestId('hub-file').fill('model.gguf');
  expect(requests).toEqual([]);
  await page.getByTestId('load-panel').screenshot({ path: 'screenshots/load-panel.png' });
  expect(errors).toEqual([]);
});

test('a download that drops halfway resumes with a Range request, one that drops before its first byte starts again; a local file loads through the file picker', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const ranges = [];
  page.on('request', (r) => { if (r.url().includes('/flaky/')) ranges.push(r.headers()['range'] ?? 'none'); });
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });

  await loadHub(page, 'glassbox-test/flaky', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  // The first request broke off at half the file; the second asked for the rest.
  expect(ranges[0]).toBe('none');
  expect(ranges.slice(1)).toContain('bytes=108080-');
  // A connection that drops before the body's first byte leaves nothing to resume from: the
  // file is asked for again from the start (a fresh name: the server drops its first request).
  const early = [];
  page.on('request', (r) => { if (r.url().includes('/flaky-early/')) early.push(r.headers()['range'] ?? 'none'); });
  await loadHub(page, 'glassbox-test/flaky-early', `model-${Date.now()}.gguf`);
  await expect(page.getByTestId('loaded-model')).toContainText('flaky-early', { timeout: 120_000 });
  expect(early).toEqual(['none', 'none']);
  await runPrompt(page, 'The whale was white');
  const viaHub = await top5(page);

  // The same model from a file on this computer.
  await openLoadPanel(page);
  await page.getByTestId('load-file').setInputFiles('hub/glassbox-test/tiny-gpt2-gguf/model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('from the local file model-q8_0.gguf', { timeout: 120_000 });
  await runPrompt(page, 'The whale was white');
  expect((await top5(page)).map((r) => r.token)).toEqual(viaHub.map((r) => r.token));
  expect(errors).toEqual([]);
});

test('a cached file whose content no longer matches its SHA-256 is downloaded again', async ({ page }) => {
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  // Damage the cached copy (same size, one byte changed, hash header kept).
  const url = `${HUB}/glassbox-test/tiny-gpt2-gguf/resolve/main/model-q8_0.gguf`;
  await page.evaluate(async (url) => {
    const c = await caches.open('glassbox-models-v1');
    const r = await c.match(url);
    const bytes = new Uint8Array(await r.arrayBuffer());
    bytes[1000] ^= 0xff;
    await c.put(url, new Response(bytes, { headers: r.headers }));
  }, url);
  const fetched = [];
  page.on('request', (r) => { if (r.url() === url) fetched.push(r.url()); });
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  // The damaged copy is not used: the file is downloaded again, and the model loads.
  await expect.poll(() => fetched.length, { timeout: 60_000 }).toBe(1);
  await expect(page.getByTestId('load-progress')).toHaveCount(0, { timeout: 60_000 });
  await expect(page.getByTestId('load-starting')).toHaveCount(0, { timeout: 60_000 });
  await expect(page.getByTestId('load-error')).toHaveCount(0);
  await expect(page.getByTestId('loaded-model')).not.toContainText('cache');
});

test('Cancel stops a download; a hub that refuses cross-origin reads (CORS) is named; the model in use stays', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });
  const before = await top5(page);

  await loadHub(page, 'glassbox-test/slow', 'model-q8_0.gguf');
  const bar = page.getByTestId('load-progress');
  await expect(bar).toBeVisible({ timeout: 30_000 });
  await expect.poll(async () => Number(await bar.getAttribute('data-loaded')), { timeout: 30_000 }).toBeGreaterThan(0);
  await expect(bar).toHaveAttribute('data-total', '216160');
  await expect(bar).toContainText(/MB\/s|kB/);
  await page.getByTestId('load-cancel').click();
  await expect(page.getByTestId('load-error')).toContainText('cancelled');
  await expect(page.getByTestId('cached-entry')).toHaveCount(0);

  // The same hub on another origin without CORS headers: the browser refuses the response.
  await openLoadPanel(page);
  await page.getByTestId('hub-base').fill(HUB_NO_CORS);
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('load-error')).toContainText('refused the request or could not be reached', { timeout: 30_000 });

  await expect(page.getByTestId('loaded-model')).toHaveCount(0);
  await runPrompt(page, 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ');
  expect((await top5(page)).map((r) => r.token)).toEqual(before.map((r) => r.token));
  expect(errors).toEqual([]);
});

test('a model loaded over the modular-addition model takes free text and drops the Fourier view', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./?model=modular-addition&hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await expect(page.getByTestId('fourier-panel')).toBeVisible();
  await loadHub(page, 'glassbox-test/tiny-gpt2-gguf', 'model-q8_0.gguf');
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await expect(page.getByTestId('fourier-panel')).toHaveCount(0);
  // Free text, not of the form "a + b =": the loaded model takes it.
  await runPrompt(page, 'The whale was white');
  await expect(page.getByTestId('prompt-error')).toHaveCount(0);
  expect((await top5(page)).length).toBe(5);
  expect(errors).toEqual([]);
});

test('a sharded safetensors repo quantized to Q8_0 on load, a GGUF by URL, and a GGUF dropped on the panel', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./?hub=' + encodeURIComponent(HUB));
  await waitForModel(page);
  await page.evaluate(async () => { for (const k of await caches.keys()) await caches.delete(k); });

  // No model.safetensors (404): the index and its shards instead, quantized on load.
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-llama-sharded');
  await page.getByTestId('hub-format').selectOption('safetensors');
  await page.getByTestId('hub-quantize').selectOption('q8_0');
  await page.getByTestId('load-button').click();
  await expect(page.getByTestId('loaded-model')).toContainText('Llama', { timeout: 120_000 });
  await expect(page.getByTestId('model-format')).toContainText('quantized to Q8_0 on load');
  await expect(page.getByTestId('cached-entry')).toHaveCount(5); // config, tokenizer, index, 2 shards
  await expect(page.locator('[data-testid="cached-entry"][data-url$="model-00002-of-00002.safetensors"]')).toHaveCount(1);
  await runPrompt(page, 'Call me Ishmael.');
  expect((await top5(page)).length).toBe(5);

  // Any URL of a GGUF file.
  const url = `${HUB}/glassbox-test/tiny-gpt2-gguf/resolve/main/model-q8_0.gguf`;
  await openLoadPanel(page);
  await page.getByTestId('load-url').fill(url);
  await page.getByTestId('load-url-button').click();
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 120_000 });
  await expect(page.getByTestId('loaded-model')).toContainText('from model-q8_0.gguf');
  await runPrompt(page, 'The whale was white');
  const byUrl = await top5(page);

  // A file dropped on the panel.
  await page.evaluate(async (url) => {
    const buf = await (await fetch(url)).arrayBuffer();
    const dt = new DataTransfer();
    dt.items.add(new File([buf], 'dropped.gguf'));
    const panel = document.querySelector('[data-testid="load-panel"]');
    panel.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    panel.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, url);
  await expect(page.getByTestId('loaded-model')).toContainText('from the local file dropped.gguf', { timeout: 120_000 });
  await runPrompt(page, 'The whale was white');
  expect((await top5(page)).map((r) => r.token)).toEqual(byUrl.map((r) => r.token));
  expect(errors).toEqual([]);
});
