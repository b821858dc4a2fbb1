// Share links (issue 11): the experiment in the URL fragment (`#v1/...`), recomputed in the
// reader's browser. A link built in the page (an intervention, a selection) opens in a fresh
// browser context with the same numbers; an old `?model=` link and a committed v1 fixture open;
// Back and Forward step through committed changes; a link whose model is on the hub waits for Load
// and downloads nothing before; broken and malicious links open the default view and inject nothing.
import { readFileSync } from 'node:fs';
import { test, expect } from '@playwright/test';
import { experimentOf, runPrompt, settled, top5, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;
const fixture = (name) => readFileSync(new URL(`../../fixtures/links/v1/${name}.txt`, import.meta.url), 'utf8').split('\n')[0].trim();

test('a link with an ablation and a selection opens in a fresh browser with the same numbers; Back and Forward step through runs (screenshots/share-round-trip.png)', async ({ page, browser }) => {
  await page.goto('./?model=induction-2l&view=ablation');
  await waitForModel(page);
  await runPrompt(page, 'ab3kQ9xZ 7tY ab3kQ');
  await runPrompt(page, 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9p');
  await page.getByTestId('ablation-target').fill('1.3');
  await page.getByTestId('ablation-run').click();
  await page.getByTestId('ablation-apply').click();
  await expect(page.getByTestId('interventions')).toContainText('blocks.1.attn.hook_z head 3');
  await page.locator('[data-testid="token"][data-pos="20"]').click();
  await expect(page.locator('[data-testid="token"][data-pos="20"]')).toHaveClass(/selected/);
  const before = await top5(page);
  await page.getByTestId('share-copy').click();
  const link = await page.getByTestId('share-link').inputValue();
  expect(link).toBe(page.url());
  const url = new URL(link);
  expect(url.search).toBe('');
  expect(url.hash.startsWith('#v1/')).toBe(true);
  const e = experimentOf(link);
  expect(e.interventions).toHaveLength(1);
  expect(e.view.pos).toBe(20);
  console.log(`[share] link of ${link.length} characters for an ablation experiment`);

  const context = await browser.newContext();
  const fresh = await context.newPage();
  await fresh.goto(link);
  await waitForModel(fresh);
  await expect(fresh.getByTestId('interventions')).toContainText('blocks.1.attn.hook_z head 3');
  await expect(fresh.locator('[data-testid="token"][data-pos="20"]')).toHaveClass(/selected/);
  const after = await top5(fresh);
  expect(after.map((r) => r.token)).toEqual(before.map((r) => r.token));
  after.forEach((r, i) => expect(r.prob).toBeCloseTo(before[i].prob, 4));
  // The link's ablation view recomputes its result too.
  await expect(fresh.getByTestId('ablation-summary')).toContainText('zero ablation of head L1H3');
  await fresh.screenshot({ path: 'screenshots/share-round-trip.png', fullPage: true });
  await context.close();

  // Back: the run before (the ablation removed, then the first prompt); Forward again.
  // The URL follows a change after the next frame: Back pressed before that would skip the
  // change (the page drops the stale write rather than cut off Forward's entries).
  await page.getByTestId('interventions-clear').click();
  await expect(page.getByTestId('interventions')).toHaveCount(0);
  await expect.poll(() => (experimentOf(page.url())?.interventions ?? []).length).toBe(0);
  await page.goBack();
  await expect(page.getByTestId('interventions')).toContainText('blocks.1.attn.hook_z head 3');
  await page.goForward();
  await expect(page.getByTestId('interventions')).toHaveCount(0);
  let guard = 0;
  while ((await page.getByTestId('prompt').inputValue()) !== 'ab3kQ9xZ 7tY ab3kQ' && guard++ < 12) await page.goBack();
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'ab3kQ9xZ 7tY ab3kQ');
  // One history entry per run (the run's placing of the position amends it): Back from the
  // first prompt's run reaches the page as it opened, and Forward comes back.
  await settled(page);
  await page.goBack();
  await expect(page.getByTestId('prompt')).not.toHaveValue('ab3kQ9xZ 7tY ab3kQ');
  await settled(page);
  await page.goForward();
  await expect(page.getByTestId('prompt')).toHaveValue('ab3kQ9xZ 7tY ab3kQ');
  // A change, then Back at once (before the URL followed the change, if the browser is quick):
  // Forward still has an entry to go to; a late write of the change would have cut it off.
  await settled(page);
  await page.locator('[data-testid="token"][data-pos="3"]').click();
  await page.goBack();
  await settled(page);
  await page.waitForTimeout(400);
  const backUrl = page.url();
  await page.goForward();
  await expect.poll(() => page.url()).not.toBe(backUrl);
});

test('an old ?model= link is rewritten to the fragment; a committed v1 fixture link opens; broken and future links say what is wrong', async ({ page }) => {
  await page.goto('./?model=induction-2l&prompt=ab3kQ9xZ%207tY%20ab3kQ&layer=0');
  await waitForModel(page);
  await expect.poll(() => new URL(page.url()).search).toBe('');
  const e = experimentOf(page.url());
  expect([e.prompt, e.view.layer]).toEqual(['ab3kQ9xZ 7tY ab3kQ', 0]);

  await page.goto(`./#${fixture('shipped-inspect')}`);
  await waitForModel(page);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ');
  await expect(page.locator('[data-testid="layer-button"][data-layer="1"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('notice')).toHaveCount(0);

  const good = fixture('shipped-inspect');
  for (const [hash, says] of [
    [good.slice(0, 40), 'could not be opened'],
    ['v1/%%%%', 'could not be opened'],
    [`v9/${good.slice(3)}`, 'newer'],
  ]) {
    // A fresh page (a hash change alone would stay in the same document).
    await page.goto('about:blank');
    await page.goto(`./#${hash}`);
    await waitForModel(page);
    await expect(page.getByTestId('notice').first()).toContainText(says);
    // The page works: the default model's prompt runs.
    await runPrompt(page, 'ab3kQ9xZ 7tY ab3kQ');
  }
});

test('a malicious link injects nothing; a link to a hub model downloads nothing before Load, then shows the same numbers, and loads at once from the cache (screenshots/share-hub.png)', async ({ page, browser }) => {
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  // (The fixture is an embed link, `&widget=lens&static=1`: the embed shows the notice alone.)
  await page.goto(`./#${fixture('xss-strings')}`);
  await expect(page.getByTestId('link-model')).toContainText('<img src=x onerror=alert(1)>');
  expect(await page.locator('img[src="x"]').count()).toBe(0);
  expect(await page.locator('script:not([src])').count()).toBe(0);
  expect(dialogs).toEqual([]);

  // A model from the hub mimic, a prompt and a selection.
  await page.goto(`./?hub=${encodeURIComponent(HUB)}`);
  await waitForModel(page);
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-gpt2-gguf');
  await page.getByTestId('hub-format').selectOption('gguf');
  await page.getByTestId('hub-file').fill('model-q8_0.gguf');
  await page.getByTestId('load-button').click();
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 180_000 });
  await runPrompt(page, 'The cat sat on the mat');
  await page.locator('[data-testid="token"][data-pos="3"]').click();
  const before = await top5(page);
  await page.getByTestId('share-copy').click();
  const link = await page.getByTestId('share-link').inputValue();
  const e = experimentOf(link);
  expect(e.model.source).toMatchObject({ kind: 'hub', repo: 'glassbox-test/tiny-gpt2-gguf', file: 'model-q8_0.gguf' });
  expect(e.model.sha256).toHaveLength(1);

  const context = await browser.newContext();
  const fresh = await context.newPage();
  const hubRequests = [];
  fresh.on('request', (r) => { if (r.url().includes('/hub/')) hubRequests.push(r.url()); });
  await fresh.goto(link);
  await waitForModel(fresh);
  await expect(fresh.getByTestId('link-model')).toContainText('glassbox-test/tiny-gpt2-gguf/model-q8_0.gguf');
  await fresh.waitForTimeout(500);
  expect(hubRequests).toEqual([]);
  await fresh.screenshot({ path: 'screenshots/share-hub.png', fullPage: true });
  await fresh.getByTestId('link-load').click();
  await expect(fresh.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 180_000 });
  await expect(fresh.getByTestId('link-model')).toHaveCount(0);
  await expect(fresh.getByTestId('tokens')).toHaveAttribute('data-prompt', 'The cat sat on the mat');
  await expect(fresh.locator('[data-testid="token"][data-pos="3"]')).toHaveClass(/selected/);
  const after = await top5(fresh);
  expect(after.map((r) => r.token)).toEqual(before.map((r) => r.token));
  after.forEach((r, i) => expect(r.prob).toBeCloseTo(before[i].prob, 4));
  expect(hubRequests.length).toBeGreaterThan(0);
  // Opened again in the same browser, whose cache now holds the files: it loads at once.
  const again = await context.newPage();
  await again.goto(link);
  await expect(again.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 180_000 });
  await expect(again.getByTestId('link-model')).toHaveCount(0);
  await expect(again.getByTestId('loaded-model')).toContainText('cache');
  await expect(again.getByTestId('tokens')).toHaveAttribute('data-prompt', 'The cat sat on the mat');
  await expect(again.locator('[data-testid="token"][data-pos="3"]')).toHaveClass(/selected/);
  const cachedTop = await top5(again);
  expect(cachedTop.map((r) => r.token)).toEqual(before.map((r) => r.token));
  await context.close();
});
