// Embeds (issue 11): a page on another origin shows three explorer widgets, two by iframe and one
// by the <glassbox-widget> custom element (public/glassbox-embed.js); each renders its one widget
// without the page's chrome and sizes its frame through the documented height message.
import { test, expect } from '@playwright/test';
import { waitForModel } from './browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);
const SITE = `http://127.0.0.1:${PORT}/`;
// Another origin: the test server's second port plays an outside site (`/page?html=`).
const OUTSIDE = `http://127.0.0.1:${PORT + 1}/page`;

test('an outside page embeds the attention, predictions (static) and logit-lens widgets by iframe and by <glassbox-widget>; they size themselves (screenshots/embed-host.png)', async ({ page }) => {
  // The experiment: the shipped induction model's example, layer 1, head 3.
  await page.goto('./?model=induction-2l&layer=1&head=3');
  await waitForModel(page);
  await expect.poll(() => new URL(page.url()).hash.startsWith('#v1/')).toBe(true);
  const fragment = new URL(page.url()).hash.slice(1);
  // The Embed button's snippet: an iframe, or the custom element (used as given below).
  await page.getByTestId('embed-show').click();
  await page.getByTestId('embed-widget').selectOption('lens');
  await expect(page.getByTestId('embed-snippet')).toHaveValue(/&widget=lens/);
  const snippet = await page.getByTestId('embed-snippet').inputValue();
  expect(snippet).toContain(`<glassbox-widget experiment="${fragment}" widget="lens">`);
  const element = snippet.slice(snippet.indexOf('<script')).replace('<glassbox-widget ', '<glassbox-widget id="lens" height="200" ');

  const html = `<!doctype html><html><head><meta charset="utf-8"><title>A blog post</title></head><body>
<h1>A post about induction heads</h1>
<p>Plain iframes, sized by the height message:</p>
<iframe id="attention" src="${SITE}#${fragment}&widget=attention" style="width:100%;height:150px;border:0"></iframe>
<iframe id="predictions" src="${SITE}#${fragment}&widget=predictions&static=1" style="width:100%;height:150px;border:0"></iframe>
<script>
window.addEventListener('message', (ev) => {
  if (!ev.data || ev.data.type !== 'glassbox:height') return;
  for (const f of document.querySelectorAll('iframe[id]')) if (f.contentWindow === ev.source) f.style.height = ev.data.height + 'px';
});
</script>
<p>The custom element:</p>
${element}
</body></html>`;
  await page.goto(`${OUTSIDE}?html=${Buffer.from(html).toString('base64url')}`);

  const attention = page.frameLocator('#attention');
  await expect(attention.getByTestId('heatmap')).toBeVisible({ timeout: 120_000 });
  // No page chrome: no prompt box, no tabs, no load panel.
  await expect(attention.getByTestId('prompt')).toBeHidden();
  await expect(attention.getByTestId('tab-lens')).toBeHidden();
  const made = attention.getByTestId('made-with');
  await expect(made).toBeVisible();
  const full = await made.getAttribute('href');
  expect(full).toContain('#v1/');
  expect(full).not.toContain('widget=');

  const predictions = page.frameLocator('#predictions');
  await expect(predictions.getByTestId('top5').first()).toBeVisible({ timeout: 120_000 });
  await expect(predictions.getByTestId('heatmap')).toBeHidden();

  const lens = page.frameLocator('glassbox-widget#lens iframe');
  await expect(lens.getByTestId('lens-cell').first()).toBeVisible({ timeout: 120_000 });

  // Each frame took its widget's height (from 150 px, and from the element's 200 px).
  const height = (sel) => page.locator(sel).evaluate((f) => f.getBoundingClientRect().height);
  await expect.poll(() => height('#attention')).toBeGreaterThan(300);
  await expect.poll(() => height('#predictions')).not.toBe(150);
  await expect.poll(() => height('glassbox-widget#lens iframe')).toBeGreaterThan(200);
  await page.screenshot({ path: 'screenshots/embed-host.png', fullPage: true });
});
