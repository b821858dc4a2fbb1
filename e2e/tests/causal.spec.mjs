// The causal views (issue 10), driven as a reader would: an activation patching sweep on the
// induction model singles out the induction heads its card names, and a cell opens its patched
// run; a zero ablation of those heads drops the induction accuracy to the card's figure; bad
// input (prompts of different lengths, a head out of range, an empty dataset, Cancel) gives a
// message and the page keeps working; a GPT-2 model from the hub mimic runs a resid_pre sweep.
import { test, expect } from '@playwright/test';
import { inductionPair, runPrompt, openLoadPanel, waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const HUB = `http://127.0.0.1:${PORT}/hub`;

/** The cells of the patching heatmap: [{ layer, head, pos, value, normalized }]. */
async function patchCells(page) {
  return page.getByTestId('patch-cell').evaluateAll((els) =>
    els.map((e) => ({
      layer: Number(e.dataset.layer),
      head: e.dataset.head === '' ? null : Number(e.dataset.head),
      pos: e.dataset.pos === '' ? null : Number(e.dataset.pos),
      value: Number(e.dataset.value),
      normalized: Number(e.dataset.normalized),
    })),
  );
}

test('induction model: a head-output patching sweep singles out the card\'s induction heads; a cell opens its patched run (screenshots/patching-induction.png)', async ({ page }) => {
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  const card = await (await page.request.get('./models/induction-2l/card.json')).json();
  const named = card.mechanism.induction_heads.map(([l, h]) => `${l}.${h}`).sort();
  const pair = inductionPair(7);
  await runPrompt(page, pair.clean);
  await page.getByTestId('tab-patching').click();
  await page.getByTestId('corrupted-prompt').fill(pair.corrupted);
  await page.getByTestId('patch-component').selectOption('z');
  await page.getByTestId('patch-by').selectOption('all');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-summary')).toContainText('patched runs');
  // Layer x head: 2 x 4 cells; the two largest restorations are the card's induction heads.
  const cells = await patchCells(page);
  expect(cells).toHaveLength(8);
  const ranked = [...cells].sort((a, b) => b.normalized - a.normalized);
  expect(ranked.slice(0, named.length).map((c) => `${c.layer}.${c.head}`).sort()).toEqual(named);
  console.log(`[patching] induction model, z by head: ${ranked.map((c) => `L${c.layer}H${c.head} ${c.normalized.toFixed(3)}`).join(', ')}`);
  expect(ranked[named.length - 1].normalized).toBeGreaterThan(2 * Math.abs(ranked[named.length].normalized));
  // The metric defaults to the clean prediction (the segment's next character) minus the corrupted one.
  await expect(page.getByTestId('patch-summary')).toContainText(`logit \u201c${pair.answer}\u201d`);
  await page.screenshot({ path: 'screenshots/patching-induction.png', fullPage: true });

  // A cell opens that patched run: the page runs the corrupted prompt with the head patched in.
  const best = ranked[0];
  await page.locator(`[data-testid="patch-cell"][data-layer="${best.layer}"][data-head="${best.head}"]`).click();
  await expect(page.getByTestId('interventions')).toContainText(`blocks.${best.layer}.attn.hook_z head ${best.head}`);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', pair.corrupted);
  await page.getByTestId('interventions-clear').click();
  await expect(page.getByTestId('interventions')).toHaveCount(0);
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', pair.clean);

  // By position: resid_pre, layers x positions, labelled with the tokens.
  await page.getByTestId('patch-component').selectOption('resid_pre');
  await page.getByTestId('patch-by').selectOption('pos');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-summary')).toContainText('residual stream before the block');
  const n = 1 + pair.clean.replace(/ /g, '').length;
  await expect(page.getByTestId('patch-cell')).toHaveCount(2 * n);
  // Layer 0's residual at the last position is the whole input there: patching it restores nothing
  // of the (earlier) segment, patching every earlier position of the first occurrence at layer 0 matters.
  const resid = await patchCells(page);
  const last0 = resid.find((c) => c.layer === 0 && c.pos === n - 1);
  expect(Math.abs(last0.normalized)).toBeLessThan(0.5);
});

test('induction model: a zero ablation of the induction heads drops the induction accuracy to the card\'s figure (screenshots/ablation-induction.png)', async ({ page }) => {
  await page.goto('./?model=induction-2l&view=ablation');
  await waitForModel(page);
  const card = await (await page.request.get('./models/induction-2l/card.json')).json();
  const pair = inductionPair(11);
  await runPrompt(page, pair.clean);
  await page.getByTestId('ablation-target').fill(card.mechanism.induction_heads.map(([l, h]) => `${l}.${h}`).join(', '));
  await page.getByTestId('ablation-run').click();
  const task = page.getByTestId('ablation-task');
  await expect(task).toBeVisible();
  const before = Number(await task.getAttribute('data-before'));
  const after = Number(await task.getAttribute('data-after'));
  expect(Math.abs(before - card.metrics.heldout_induction_accuracy)).toBeLessThan(2e-3);
  expect(Math.abs(after - card.mechanism.zero_ablation.induction_accuracy)).toBeLessThan(2e-3);
  await expect(task).toContainText('The model card states');
  // The answer's logit difference falls; the ablated run's top predictions are shown beside the normal ones.
  expect(Number(await page.getByTestId('ablation-summary').getAttribute('data-change'))).toBeLessThan(0);
  await expect(page.getByTestId('ablation-base-top').locator('li').first()).toHaveAttribute('data-token', pair.answer);
  await expect(page.getByTestId('ablation-top').locator('li')).toHaveCount(5);
  await page.screenshot({ path: 'screenshots/ablation-induction.png', fullPage: true });
  // Applied to the page's run: every view shows the ablated model, until removed.
  await page.getByTestId('ablation-apply').click();
  await expect(page.getByTestId('interventions')).toContainText('blocks.1.attn.hook_z head 0 at every position set to zero');
  await page.getByTestId('interventions-clear').click();
  await expect(page.getByTestId('interventions')).toHaveCount(0);
});

test('bad input: prompts of different lengths, a head out of range, a dataset of another length; the page keeps working', async ({ page }) => {
  await page.goto('./?model=induction-2l&backend=cpu');
  await waitForModel(page);
  const pair = inductionPair(3);
  await runPrompt(page, pair.clean);
  await page.getByTestId('tab-patching').click();
  // Different token lengths: both tokenizations are shown.
  await page.getByTestId('corrupted-prompt').fill(pair.corrupted + 'xy');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-error')).toContainText('needs the same number');
  await expect(page.getByTestId('patch-error')).toContainText('Corrupted: <bos> |');
  // With equal lengths it runs.
  await page.getByTestId('corrupted-prompt').fill(pair.corrupted);
  await page.getByTestId('patch-component').selectOption('v');
  await page.getByTestId('patch-by').selectOption('all');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-cell')).toHaveCount(8);

  await page.getByTestId('tab-ablation').click();
  await page.getByTestId('ablation-target').fill('1.9');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-error')).toContainText('Head 9 is out of range');
  await page.getByTestId('ablation-target').fill('one');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-error')).toContainText('is not a head');
  // A mean ablation with prompts of another length, then with the task's generator.
  await page.getByTestId('ablation-target').fill('1.0');
  await page.getByTestId('ablation-kind').selectOption('mean');
  await page.getByTestId('ablation-dataset').fill('abc');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-error')).toContainText('Dataset prompt 1 has 4 tokens');
  await page.getByTestId('ablation-dataset').fill('');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-summary')).toContainText('mean ablation of head L1H0');
  await expect(page.getByTestId('ablation-summary')).toContainText('random sequences');
  // The prompt still runs.
  await runPrompt(page, pair.corrupted);
});

test('English model: Cancel stops a large sweep between chunks and the next one runs; a mean ablation needs typed prompts (it has no generator), resample reads them', async ({ page }) => {
  await page.goto('./?model=english-char-3l&backend=cpu&view=patching');
  await waitForModel(page);
  const clean = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was';
  await runPrompt(page, clean);
  // q by position: 3 layers x 120 positions x 4 heads = 1,440 patched runs of 120 tokens.
  await page.getByTestId('corrupted-prompt').fill(clean.replace('best', 'rest'));
  await page.getByTestId('patch-component').selectOption('q');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-progress')).toContainText('patched runs');
  await page.getByTestId('patch-cancel').click();
  await expect(page.getByTestId('patch-error')).toContainText('Cancelled');
  await expect(page.getByTestId('patch-progress')).toHaveCount(0);
  // The page still works: a smaller sweep runs to the end.
  await page.getByTestId('patch-component').selectOption('mlp_out');
  await page.getByTestId('patch-by').selectOption('all');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-cell')).toHaveCount(3);

  await page.getByTestId('tab-ablation').click();
  await runPrompt(page, 'the whale');
  await page.getByTestId('ablation-what').selectOption('mlp');
  await page.getByTestId('ablation-target').fill('1');
  await page.getByTestId('ablation-kind').selectOption('resample');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-error')).toContainText('need a dataset');
  await page.getByTestId('ablation-dataset').fill('the sails\nand a sea\nit was so');
  await page.getByTestId('ablation-run').click();
  await expect(page.getByTestId('ablation-summary')).toContainText('resample ablation of the MLP of layer 1');
  await expect(page.getByTestId('ablation-summary')).toContainText('3 prompts typed below');
});

test('a GPT-2 model loaded from the hub mimic runs a resid_pre sweep (screenshots/patching-gpt2.png)', async ({ page }) => {
  await page.goto(`./?hub=${encodeURIComponent(HUB)}`);
  await waitForModel(page);
  await openLoadPanel(page);
  await page.getByTestId('hub-repo').fill('glassbox-test/tiny-gpt2-gguf');
  await page.getByTestId('hub-format').selectOption('gguf');
  await page.getByTestId('hub-file').fill('model-q8_0.gguf');
  await page.getByTestId('load-button').click();
  await expect(page.getByTestId('loaded-model')).toContainText('GPT-2', { timeout: 180_000 });
  await runPrompt(page, 'The cat sat on the mat');
  await page.getByTestId('tab-patching').click();
  await page.getByTestId('corrupted-prompt').fill('The dog sat on the mat');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-summary')).toContainText('patched runs');
  const cells = await patchCells(page);
  const layers = new Set(cells.map((c) => c.layer)).size;
  expect(cells.length % layers).toBe(0);
  // At layer 0 the residual stream is the token (and position) embedding: patching a position
  // whose token is the same in both prompts changes nothing; a position where they differ does.
  const clean = await page.locator('.token-row').nth(0).locator('.tok-chip').allTextContents();
  const corrupted = await page.locator('.token-row').nth(1).locator('.tok-chip').allTextContents();
  expect(cells.length).toBe(layers * clean.length);
  const layer0 = cells.filter((c) => c.layer === 0);
  for (const c of layer0) {
    if (clean[c.pos] === corrupted[c.pos]) expect(Math.abs(c.value - Number(layer0.find((x) => x.pos === 0).value))).toBeLessThan(1e-5);
  }
  expect(layer0.some((c) => clean[c.pos] !== corrupted[c.pos] && Math.abs(c.normalized) > 0.01)).toBe(true);
  await page.screenshot({ path: 'screenshots/patching-gpt2.png', fullPage: true });
});
