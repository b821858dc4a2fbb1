// Path patching, causal scrubbing and steering in the page (issue 10), driven as a reader would:
// path patching to the induction heads' keys singles out the previous-token head; scrubbing the
// parentheses model shows the correct hypothesis above the wrong one by the card's margin; steering
// the English model changes the generated text, and with the vector off the text is the unsteered
// one for the same seed.
import { test, expect } from '@playwright/test';
import { inductionPair, runPrompt, waitForModel } from './browser.mjs';

test('induction model: path patching to the induction heads\' keys singles out the previous-token head (screenshots/path-patching-induction.png)', async ({ page }) => {
  await page.goto('./?model=induction-2l&view=patching');
  await waitForModel(page);
  const card = await (await page.request.get('./models/induction-2l/card.json')).json();
  const pair = inductionPair(7);
  await runPrompt(page, pair.clean);
  await page.getByTestId('corrupted-prompt').fill(pair.corrupted);
  await page.getByTestId('patch-mode').selectOption('path');
  await page.getByTestId('path-receivers').selectOption('heads');
  // A receiver out of range is a clear message; then the card's induction heads.
  await page.getByTestId('path-heads').fill('1.7');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-error')).toContainText('Receiver head 7 is out of range');
  await page.getByTestId('path-heads').fill(card.mechanism.induction_heads.map(([l, h]) => `${l}.${h}`).join(', '));
  await page.getByTestId('path-input').selectOption('k');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-summary')).toContainText('Path patching');
  await expect(page.getByTestId('patch-summary')).toContainText('the keys of L1H0, L1H3');
  const cells = await page.getByTestId('patch-cell').evaluateAll((els) =>
    els.map((e) => ({ layer: Number(e.dataset.layer), head: Number(e.dataset.head), normalized: Number(e.dataset.normalized) })),
  );
  expect(cells).toHaveLength(8);
  // Layer 1 cannot reach layer 1's keys: blank. In layer 0 the previous-token head carries most of
  // the corruption (normalised as ARENA plots path patching: 0 = no effect, -1 = the whole
  // corrupted run).
  expect(cells.filter((c) => c.layer === 1).every((c) => Number.isNaN(c.normalized))).toBe(true);
  const layer0 = cells.filter((c) => c.layer === 0).sort((a, b) => a.normalized - b.normalized);
  console.log(`[path patching] -> keys of 1.0, 1.3: ${layer0.map((c) => `L0H${c.head} ${c.normalized.toFixed(3)}`).join(', ')}`);
  expect(layer0[0].head).toBe(0);
  expect(layer0[0].normalized).toBeLessThan(-0.5);
  expect(layer0[1].normalized).toBeGreaterThan(layer0[0].normalized + 0.15);
  await expect(page.getByTestId('patch-strongest')).toContainText('L0H0');
  // Its cells are paths, not runs: clicking one adds no intervention.
  await page.locator('[data-testid="patch-cell"][data-layer="0"][data-head="0"]').click();
  await expect(page.getByTestId('interventions')).toHaveCount(0);
  await page.screenshot({ path: 'screenshots/path-patching-induction.png', fullPage: true });
});

test('parentheses model: causal scrubbing shows the correct hypothesis above the wrong one by the card\'s margin (screenshots/scrubbing-parens.png)', async ({ page }) => {
  await page.goto('./?model=balanced-parens&view=scrubbing');
  await waitForModel(page);
  const card = await (await page.request.get('./models/balanced-parens/card.json')).json();
  const s = card.scrubbing;
  // The card's dataset is the default: both hypotheses, n, seed and rounds.
  await expect(page.getByTestId('scrub-n')).toHaveValue(String(s.n));
  await expect(page.getByTestId('scrub-hyp-parens-correct')).toBeChecked();
  await expect(page.getByTestId('scrub-hyp-parens-wrong')).toBeChecked();
  await page.getByTestId('scrub-run').click();
  await expect(page.getByTestId('scrub-row')).toHaveCount(2, { timeout: 180_000 });
  const got = {};
  for (const row of await page.getByTestId('scrub-row').all()) got[await row.getAttribute('data-hypothesis')] = Number(await row.getAttribute('data-recovered'));
  console.log(`[scrubbing] parens: correct ${got['parens-correct'].toFixed(4)}, wrong ${got['parens-wrong'].toFixed(4)}; card ${s.hypotheses['parens-correct'].loss_recovered}, ${s.hypotheses['parens-wrong'].loss_recovered}`);
  // The same numbers as the card (same weights, dataset and seed), and the margin it states.
  expect(Math.abs(got['parens-correct'] - s.hypotheses['parens-correct'].loss_recovered)).toBeLessThan(2e-3);
  expect(Math.abs(got['parens-wrong'] - s.hypotheses['parens-wrong'].loss_recovered)).toBeLessThan(2e-3);
  expect(got['parens-correct'] - got['parens-wrong']).toBeGreaterThan(s.margin);
  await expect(page.getByTestId('scrub-margin')).toContainText('more of the loss than the wrong one');
  await expect(page.getByTestId('scrub-interchange')).toContainText('Interchange intervention accuracy');
  await page.screenshot({ path: 'screenshots/scrubbing-parens.png', fullPage: true });
  // Bad input: no hypothesis picked.
  await page.getByTestId('scrub-hyp-parens-correct').uncheck();
  await page.getByTestId('scrub-hyp-parens-wrong').uncheck();
  await page.getByTestId('scrub-run').click();
  await expect(page.getByTestId('scrub-error')).toContainText('Pick at least one hypothesis');
});

test('English model: a steering vector changes the generated text; with it off the text is the unsteered one for the same seed (screenshots/steering-english.png)', async ({ page }) => {
  await page.goto('./?model=english-char-3l&view=steering');
  await waitForModel(page);
  await runPrompt(page, 'I went down to');
  await page.getByTestId('steer-plus').fill('the sea');
  await page.getByTestId('steer-minus').fill('the man');
  await page.getByTestId('steer-layer').selectOption('1');
  await page.getByTestId('steer-coeff').fill('4');
  await page.getByTestId('steer-coeff').dispatchEvent('change');
  await page.getByTestId('steer-run').click();
  await expect(page.getByTestId('steer-summary')).toContainText('hook_resid_pre');
  const plain = await page.getByTestId('steer-plain').textContent();
  const steered = await page.getByTestId('steer-steered').textContent();
  console.log(`[steering] plain ${JSON.stringify(plain)}\n[steering] steered ${JSON.stringify(steered)}`);
  expect(plain.length).toBeGreaterThan(10);
  expect(steered).not.toBe(plain);
  await page.screenshot({ path: 'screenshots/steering-english.png', fullPage: true });
  // The vector off: the same seed gives the unsteered text in both columns.
  await page.getByTestId('steer-on').uncheck();
  await page.getByTestId('steer-run').click();
  await expect(page.getByTestId('steer-summary')).toContainText('The vector is off');
  await expect(page.getByTestId('steer-steered')).toHaveText(plain);
  await expect(page.getByTestId('steer-plain')).toHaveText(plain);
  // Bad input: a layer the model lacks is impossible to pick; zero new tokens is refused.
  await page.getByTestId('steer-max').fill('0');
  await page.getByTestId('steer-max').dispatchEvent('change');
  await page.getByTestId('steer-run').click();
  await expect(page.getByTestId('steer-error')).toContainText('Generate 1 to 512 new tokens');
});
