// Accessibility (issue 12): axe-core (from npm, injected through the DevTools protocol, which the
// page's Content-Security-Policy does not govern) on the explorer for every shipped model, after
// its first run and on every view tab the model offers, and on the article once its figures are
// live: no serious or critical violation of WCAG 2 A/AA.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test, expect } from '@playwright/test';
import { openLoadPanel, waitForModel } from './browser.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

async function axe(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  return bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}x, e.g. ${v.nodes[0].target.join(' ')})`);
}

for (const model of ['induction-2l', 'modular-addition', 'balanced-parens', 'english-char-3l']) {
  test(`axe-core finds no serious or critical violation on the explorer (${model})`, async ({ page }) => {
    await page.goto(`./?model=${model}`);
    await waitForModel(page);
    expect(await axe(page)).toEqual([]);
    // Every view tab this model offers, each as a reader first opens it (with the load panel's
    // fields shown in the last one).
    const tabs = page.locator('[role="tablist"] [data-testid^="tab-"]');
    const ids = await tabs.evaluateAll((els) => els.map((e) => e.dataset.testid));
    expect(ids.length).toBeGreaterThan(3);
    for (const id of ids) {
      await page.getByTestId(id).click();
      await expect(page.getByTestId(id)).toHaveAttribute('aria-selected', 'true');
      if (id === ids[ids.length - 1]) await openLoadPanel(page);
      expect((await axe(page)).map((v) => `${id}: ${v}`)).toEqual([]);
    }
  });
}

test('axe-core finds no serious or critical violation on the article with live figures', async ({ page }) => {
  await page.goto('./article.html');
  for (const kind of ['predictions', 'attention', 'ablation', 'lens', 'attribution']) {
    const figure = page.locator(`figure[data-figure="${kind}"]`);
    await figure.scrollIntoViewIfNeeded();
    await expect(figure.getByTestId('live-figure')).toHaveAttribute('data-state', 'ready', { timeout: 120_000 });
  }
  expect(await axe(page)).toEqual([]);
});
