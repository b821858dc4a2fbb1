// The model organisms: switching between them in the model picker, a known answer from each,
// their vocabularies' messages, and the modular-addition model's Fourier view.
import { test, expect } from '@playwright/test';
import { experimentOf, runPrompt, top5, waitForModel } from './browser.mjs';

/** Chooses a model in the picker (the page reloads with it) and waits for its first run. */
async function choose(page, id) {
  await page.getByTestId('model-select').selectOption(id);
  await expect.poll(() => page.url().includes(`model=${id}`) || experimentOf(page.url())?.model?.source?.id === id).toBe(true);
  await waitForModel(page);
  await expect(page.getByTestId('model-select')).toHaveValue(id);
}

async function answer(page, text) {
  await runPrompt(page, text);
  // New prompts select the last position: where the readout (or the next character) is.
  return (await top5(page))[0];
}

test('the model picker switches between the four organisms; each answers a known example and names what its vocabulary cannot take', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('./');
  await waitForModel(page);
  const options = await page.getByTestId('model-select').locator('option').evaluateAll((os) => os.map((o) => o.value));
  expect(options).toEqual(['induction-2l', 'modular-addition', 'balanced-parens', 'english-char-3l']);

  // Modular addition: 37 + 85 = 122 = 9 (mod 113), and 112 + 1 = 0.
  await choose(page, 'modular-addition');
  await expect(page.getByTestId('prompt-help')).toContainText('0 to 112');
  await expect(page.getByTestId('model-metrics')).toContainText(/accuracy (99\.\d\d|100\.00)%/);
  let top = await answer(page, '37 + 85 =');
  expect(top.token).toBe('9');
  expect(top.prob).toBeGreaterThan(0.9);
  await expect(page.getByRole('heading', { name: 'Answer' })).toBeVisible();
  expect((await answer(page, '112 + 1 =')).token).toBe('0');
  // A number outside 0..112 is named, and the prompt stays.
  await page.getByTestId('prompt').fill('200 + 3 =');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('prompt-error')).toContainText('"200"');
  await expect(page.getByTestId('prompt')).toHaveValue('200 + 3 =');
  // Known tokens in a form the model does not take: said, and the prompt stays.
  await page.getByTestId('prompt').fill('37 + 85');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('prompt-error')).toContainText('of the form');
  await expect(page.getByTestId('prompt')).toHaveValue('37 + 85');

  // Balanced parentheses: a balanced string, an unbalanced one with equal counts (the hard
  // case), and a letter, which the vocabulary rejects by name.
  await choose(page, 'balanced-parens');
  await expect(page.getByTestId('prompt-help')).toContainText('( and ) only');
  top = await answer(page, '(()(()))');
  expect(top.token).toBe('balanced');
  expect(top.prob).toBeGreaterThan(0.9);
  expect((await answer(page, '())(()')).token).toBe('unbalanced');
  // The example buttons put a prompt in the box and run it.
  await page.getByTestId('example').filter({ hasText: '((((' }).click();
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', '((((');
  expect((await top5(page))[0].token).toBe('unbalanced');
  await page.getByTestId('prompt').fill('(a)');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('prompt-error')).toContainText('not in the vocabulary: "a"');
  await expect(page.getByTestId('prompt')).toHaveValue('(a)');

  // English: the next character of an obvious word.
  await choose(page, 'english-char-3l');
  await expect(page.getByTestId('model-metrics')).toContainText('bigram');
  expect((await answer(page, 'the captain of the shi')).token).toBe('p');
  expect((await answer(page, 'Call me Ishmael. The whale swam in the se')).token).toBe('a');

  // And back to the default.
  await choose(page, 'induction-2l');
  expect(errors).toEqual([]);
});

test('the modular-addition model in the Fourier basis: a few key frequencies, neurons periodic at them (screenshots/modular-addition.png)', async ({ page }) => {
  await page.goto('./?model=modular-addition');
  await waitForModel(page);
  const bars = page.getByTestId('fourier-embedding');
  await expect(bars).toBeVisible();
  // A handful of the 56 frequencies hold most of the embedding (random: about 11% for 6).
  const share = Number(await bars.getAttribute('data-share'));
  expect(share).toBeGreaterThan(0.5);
  const keys = (await bars.getAttribute('data-top')).split(',').map(Number);
  expect(keys).toHaveLength(6);
  await expect(page.locator('.fbar.key')).toHaveCount(6);

  // Run all 12,769 inputs, then look at neurons: most are periodic at one frequency, and
  // the strongest ones are at key frequencies of the embedding.
  await page.getByTestId('fourier-compute').click();
  const freq = page.getByTestId('neuron-frequency');
  await expect(freq).toBeVisible({ timeout: 180_000 });
  await expect(page.getByTestId('neuron-canvas')).toBeVisible();
  // A neuron's share of variance at its main frequency: a non-periodic random grid gives about
  // 0.001; the grokked model's neurons give 0.2-0.98 (several use two frequencies).
  const fractions = [];
  for (let n = 0; n < 8; n++) {
    await page.getByTestId('neuron-input').fill(String(n));
    await page.getByTestId('neuron-input').dispatchEvent('change');
    await expect(freq).toContainText(`Neuron ${n}:`);
    fractions.push(Number(await freq.getAttribute('data-fraction')));
    const k = Number(await freq.getAttribute('data-k'));
    expect(k).toBeGreaterThanOrEqual(1);
    expect(k).toBeLessThanOrEqual(56);
  }
  expect(Math.min(...fractions)).toBeGreaterThan(0.15);
  expect(fractions.filter((f) => f > 0.3).length).toBeGreaterThanOrEqual(5);
  await page.screenshot({ path: 'screenshots/modular-addition.png', fullPage: true });
});
