// How tokens read (issue 12): a space is `␣` in every view that shows tokens (chips, the
// attention heatmap's labels, the top-5 table, the logit lens), never blank; Enter in the
// prompt box runs (Shift+Enter types a new line); a cut prompt's notice quotes only the start
// of what was cut.
import { test, expect } from '@playwright/test';
import { waitForModel, top5 } from './browser.mjs';

const SPACE = '\u2423';

test('the space token is visible in every view; Enter runs the prompt, Shift+Enter adds a line', async ({ page }) => {
  await page.goto('./?model=english-char-3l');
  await waitForModel(page);
  const prompt = page.getByTestId('prompt');
  await prompt.fill('');
  await prompt.pressSequentially('Call me');
  await prompt.press('Shift+Enter');
  await expect(prompt).toHaveValue('Call me\n');
  await prompt.press('Backspace');
  await prompt.pressSequentially(' Ishmael. The whale');
  await prompt.press('Enter');
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'Call me Ishmael. The whale');
  await expect(prompt).toHaveValue('Call me Ishmael. The whale');

  // Token chips: the space chip shows ␣.
  const space = page.locator('[data-testid=token][data-token=" "]').first();
  await expect(space).toContainText(SPACE);
  // The attention heatmap's labels (drawn on its canvas from the same function) and its table
  // of the chosen row's weights.
  await expect(page.getByTestId('heatmap-values').locator('th', { hasText: SPACE }).first()).toBeAttached();
  await expect(page.getByTestId('heatmap-readout')).toContainText(/query \d+ \u201c.*\u201d: most attention on key/);
  // The top-5 table after "Call me": a space is among the predictions, written ␣.
  await page.locator('[data-testid=token][data-pos="7"]').click();
  const rows = await top5(page);
  const spaces = rows.filter((r) => r.token === ' ');
  expect(spaces.length, JSON.stringify(rows)).toBe(1);
  expect(spaces[0].text).toContain(SPACE);
  // The logit lens's column labels.
  await page.getByTestId('tab-lens').click();
  await expect(page.locator('table.lens th.tok-col', { hasText: SPACE }).first()).toBeVisible();
});

test('keyboard only: type and run, move the position in the token strip and the heatmap, pick a head', async ({ page }) => {
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  const prompt = page.getByTestId('prompt');
  await prompt.focus();
  await page.keyboard.press('Control+a');
  await page.keyboard.type('abcdefgh 12345 abcdefgh');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-prompt', 'abcdefgh 12345 abcdefgh');
  // Run comes right after the prompt box.
  await prompt.focus();
  await page.keyboard.press('Tab');
  await expect(page.getByTestId('run')).toBeFocused();
  const selected = page.locator('.chip.selected');
  await expect(selected).toHaveAttribute('data-pos', '21');
  // The strip is one Tab stop: the chosen chip; the arrows, Home and End move it.
  await selected.focus();
  await page.keyboard.press('ArrowLeft');
  await expect(selected).toHaveAttribute('data-pos', '20');
  await expect(page.locator('.chip[data-pos="20"]')).toBeFocused();
  await page.keyboard.press('Home');
  await expect(selected).toHaveAttribute('data-pos', '0');
  await page.keyboard.press('End');
  await expect(selected).toHaveAttribute('data-pos', '21');
  expect(await page.locator('.chip[tabindex="0"]').count()).toBe(1);
  // The heatmap: up and down move the query row.
  await page.locator('.heatmap-wrap').focus();
  await page.keyboard.press('ArrowUp');
  await expect(page.getByTestId('heatmap-values')).toHaveAttribute('data-q', '20');
  await expect(page.getByTestId('heatmap')).toHaveAttribute('data-selected', '20');
  await expect(selected).toHaveAttribute('data-pos', '20');
  // A head, by Enter on its button.
  const head = page.getByTestId('head-button').nth(1);
  await head.focus();
  await page.keyboard.press('Enter');
  await expect(head).toHaveClass(/selected/);
});

test('at 390 px wide the page does not scroll sideways; wide views pan inside their own box (screenshots/explorer-390.png)', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('./?model=english-char-3l');
  await waitForModel(page);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: 'screenshots/explorer-390.png', fullPage: true });
});

test('dark mode follows the system and the header toggle (screenshots/explorer-light.png, explorer-dark.png)', async ({ browser }) => {
  const context = await browser.newContext({ colorScheme: 'dark', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  const ink = () => page.evaluate(() => getComputedStyle(document.body).color);
  const luminance = (rgb) => rgb.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
  expect(luminance(await background())).toBeLessThan(60);
  expect(luminance(await ink())).toBeGreaterThan(180);
  await page.screenshot({ path: 'screenshots/explorer-dark.png' });
  // The toggle switches to light, and the pick is remembered on reload.
  await page.getByTestId('theme-toggle').click();
  expect(luminance(await background())).toBeGreaterThan(240);
  await page.reload();
  await waitForModel(page);
  expect(luminance(await background())).toBeGreaterThan(240);
  await expect(page.getByTestId('theme-toggle')).toHaveAttribute('aria-pressed', 'false');
  await page.screenshot({ path: 'screenshots/explorer-light.png' });
  await context.close();
});

test('head buttons show only the scores the model card says mean something (none for balanced parentheses; prev and induction for the induction model); padding is hidden from the token chips, the heatmap, the neuron grid, the logit lens and a patching sweep by position', async ({ page }) => {
  await page.goto('./?model=balanced-parens');
  await waitForModel(page);
  const first = page.getByTestId('head-button').first();
  await expect(first).toBeVisible();
  await expect(first.locator('.score')).toHaveCount(0);
  // Its prompts are padded to 41 tokens: the token chips and the heatmap hide the padding but
  // keep the last position (the readout, chosen); the arrow keys skip the hidden positions; the
  // reader can show them.
  const heatmap = page.getByTestId('heatmap');
  const shown = Number(await heatmap.getAttribute('data-n'));
  expect(shown).toBeLessThan(20);
  await expect(page.getByTestId('token')).toHaveCount(shown);
  const readout = page.locator('[data-testid="token"][data-pos="40"]');
  await expect(readout).toHaveClass(/selected/);
  await readout.focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.locator(`[data-testid="token"][data-pos="${shown - 2}"]`)).toHaveClass(/selected/);
  await page.keyboard.press('ArrowRight');
  await expect(readout).toHaveClass(/selected/);
  await expect(page.getByTestId('show-padding').locator('..')).toContainText(`${41 - shown} hidden`);
  await page.getByTestId('show-padding').check();
  await expect(heatmap).toHaveAttribute('data-n', '41');
  await expect(page.getByTestId('token')).toHaveCount(41);
  await page.getByTestId('show-padding').uncheck();
  await expect(heatmap).toHaveAttribute('data-n', String(shown));
  await expect(page.getByTestId('token')).toHaveCount(shown);
  // The neuron grid and the logit lens have a column per shown position too, the readout last.
  await page.getByTestId('tab-neurons').click();
  const neuronRow = page.getByTestId('neuron-row').first();
  await expect(neuronRow.locator('td')).toHaveCount(shown);
  await page.getByTestId('tab-lens').click();
  const lensRow = page.getByTestId('lens-cell').filter({ has: page.locator(':scope[data-row="0"]') });
  await expect(lensRow).toHaveCount(shown);
  await expect(lensRow.last()).toHaveAttribute('data-pos', '40');
  await page.getByTestId('show-padding').check();
  await expect(lensRow).toHaveCount(41);
  await page.getByTestId('show-padding').uncheck();
  // So does a patching sweep by position (resid_pre: layers x positions).
  await page.getByTestId('tab-patching').click();
  await page.getByTestId('corrupted-prompt').fill('(()(())(');
  await page.getByTestId('patch-component').selectOption('resid_pre');
  await page.getByTestId('patch-by').selectOption('pos');
  await page.getByTestId('patch-run').click();
  await expect(page.getByTestId('patch-summary')).toContainText('patched runs', { timeout: 120_000 });
  const patchRow = page.locator('[data-testid="patch-cell"][data-layer="0"]');
  await expect(patchRow).toHaveCount(shown);
  await expect(patchRow.last()).toHaveAttribute('data-pos', '40');
  await page.getByTestId('show-padding').check();
  await expect(patchRow).toHaveCount(41);
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  await expect(page.getByTestId('head-button').first().locator('.score')).toHaveText([/^prev /, /^induction /]);
});
