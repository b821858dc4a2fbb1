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
  // The attention heatmap's key labels.
  await expect(page.locator('.hm-label.key', { hasText: SPACE }).first()).toBeVisible();
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
