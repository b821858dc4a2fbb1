// Export (issue 11, item 6), in headless Chromium under the strict CSP: the attention view's
// PNG / SVG / CSV / JSON hold the numbers its cells carry; the run's activations download as an
// .npz whose entries are the TransformerLens hook names (parsed here with a small zip reader: no
// numpy in CI) with [1, ...] shapes, and one hook as an .npy; an ablation's table exports its
// change. Labels are text: the SVG holds only svg/title/rect/text/line elements and "<bos>"
// escaped (the unit tests of app/src/export.rs cover `<img src=x onerror=...>` payloads).
import { readFile } from 'node:fs/promises';
import { test, expect } from '@playwright/test';
import { inductionPair, patternRow, runPrompt, waitForModel } from './browser.mjs';

/** Clicks `button` inside the export bar `scope` (or a whole-page test id) and reads the download. */
async function download(page, locator) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), locator.click()]);
  return { name: d.suggestedFilename(), bytes: await readFile(await d.path()) };
}
const bar = (page, view, fmt) => page.getByTestId(`export-${view}`).getByTestId(`export-${fmt}`);

/** RFC 4180 CSV -> rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else field += c;
  }
  return rows;
}

/** The entries of a zip archive from its central directory: { name, method, data }. */
function unzip(buf) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  expect(eocd).toBeGreaterThanOrEqual(0);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = [];
  for (let i = 0; i < count; i++) {
    expect(buf.readUInt32LE(p)).toBe(0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const size = buf.readUInt32LE(p + 20);
    const [n, e, c] = [buf.readUInt16LE(p + 28), buf.readUInt16LE(p + 30), buf.readUInt16LE(p + 32)];
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + n);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    out.push({ name, method, data: buf.subarray(start, start + size) });
    p += 46 + n + e + c;
  }
  return out;
}

/** An .npy file's header dict (as text), its shape and its float32 data. */
function npy(buf) {
  expect(buf.subarray(0, 8).toString('latin1')).toBe('\x93NUMPY\x01\x00');
  const len = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + len);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const body = buf.subarray(10 + len);
  const data = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
  expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
  return { header, shape, data, aligned: (10 + len) % 64 === 0 };
}

/** Parses an SVG in the page (DOMParser, never inserted) and reports what it holds. */
async function svgFacts(page, text) {
  return page.evaluate((t) => {
    const doc = new DOMParser().parseFromString(t, 'image/svg+xml');
    const tags = [...new Set([...doc.querySelectorAll('*')].map((e) => e.localName))].sort();
    const cells = [...doc.querySelectorAll('rect.cell')].map((r) => ({ row: Number(r.dataset.row), col: Number(r.dataset.col), value: r.dataset.value }));
    return { error: doc.querySelector('parsererror') !== null, tags, cells, texts: [...doc.querySelectorAll('text')].map((e) => e.textContent) };
  }, text);
}

function pngFacts(bytes) {
  return { magic: bytes.subarray(0, 8).toString('hex'), width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), size: bytes.length };
}

test('attention view: PNG, SVG, CSV and JSON hold the pattern on screen; activations as .npz (TransformerLens hook names, [1, ...] shapes) and one hook as .npy (screenshots/export-bar.png)', async ({ page }) => {
  await page.goto('./?model=induction-2l');
  await waitForModel(page);
  const pair = inductionPair(5);
  await runPrompt(page, pair.clean);
  await page.getByTestId('tab-attention').click();
  await page.getByTestId('head-button').nth(2).click();
  // What the page shows, row by row (each query row is read from the page's table of the
  // chosen row, choosing each row on the canvas in turn).
  const n = await page.getByTestId('heatmap').evaluate((c) => Number(c.dataset.n));
  const shownRows = [];
  for (let q = 0; q < n; q++) shownRows.push(await patternRow(page, q));
  const shown = (q, k) => shownRows[q][k];

  const svg = await download(page, bar(page, 'attention', 'svg'));
  const m = svg.name.match(/^glassbox-attention-L(\d+)H(\d+)\.svg$/);
  expect(m, svg.name).not.toBeNull();
  const [L, H] = [Number(m[1]), Number(m[2])];
  const facts = await svgFacts(page, svg.bytes.toString('utf8'));
  expect(facts.error).toBe(false);
  // Only drawing elements: nothing a label could have injected.
  for (const t of facts.tags) expect(['line', 'rect', 'svg', 'text', 'title']).toContain(t);
  expect(facts.tags).toEqual(expect.arrayContaining(['rect', 'svg', 'text']));
  expect(facts.cells).toHaveLength(n * n);
  for (const c of facts.cells) expect(Math.abs(Number(c.value) - shown(c.row, c.col))).toBeLessThan(1e-6);
  expect(facts.texts).toContain('0 <bos>'); // the text, parsed back from "&lt;bos&gt;"
  expect(svg.bytes.toString('utf8')).toContain('0 &lt;bos&gt;');

  const csv = parseCsv((await download(page, bar(page, 'attention', 'csv'))).bytes.toString('utf8'));
  expect(csv).toHaveLength(n + 1);
  expect(csv[0][0]).toBe('query \\ key');
  expect(csv[0].slice(1, 3)).toEqual(['0 <bos>', `1 ${pair.clean[0]}`]);
  for (let q = 0; q < n; q++) {
    expect(csv[q + 1]).toHaveLength(n + 1);
    for (let k = 0; k < n; k++) expect(Math.abs(Number(csv[q + 1][k + 1]) - shown(q, k))).toBeLessThan(1e-6);
  }

  const json = JSON.parse((await download(page, bar(page, 'attention', 'json'))).bytes.toString('utf8'));
  expect(json).toMatchObject({ kind: 'heatmap', name: `attention-L${L}H${H}`, row_axis: 'query', col_axis: 'key' });
  expect(json.values).toHaveLength(n * n);
  json.values.forEach((v, i) => expect(Math.abs(v - shown(Math.floor(i / n), i % n))).toBeLessThan(1e-6));

  const png = await download(page, bar(page, 'attention', 'png'));
  expect(png.name).toBe(`glassbox-attention-L${L}H${H}.png`);
  const pf = pngFacts(png.bytes);
  expect(pf.magic).toBe('89504e470d0a1a0a');
  expect(pf.width).toBeGreaterThan(300);
  expect(pf.height).toBeGreaterThan(300);
  expect(pf.size).toBeGreaterThan(5_000);

  // The predictions' bars: the top-5 on screen.
  const top = await page.getByTestId('top5').evaluateAll((rows) => rows.map((r) => [r.dataset.token, Number(r.dataset.prob)]));
  const pcsv = parseCsv((await download(page, bar(page, 'predictions', 'csv'))).bytes.toString('utf8'));
  expect(pcsv[0]).toEqual(['label', 'probability']);
  expect(pcsv.slice(1).map(([t, p]) => [t, Number(Number(p).toFixed(4))])).toEqual(top.map(([t, p]) => [t, Number(p.toFixed(4))]));

  // Activations: every hook of the run, named as TransformerLens names them.
  const hooks = await page.getByTestId('export-hook').locator('option').evaluateAll((os) => os.map((o) => o.value));
  expect(hooks).toContain('blocks.0.attn.hook_pattern');
  const npz = await download(page, page.getByTestId('export-npz'));
  expect(npz.name).toBe('glassbox-activations.npz');
  const entries = unzip(npz.bytes);
  expect(entries.map((e) => e.name)).toEqual(hooks.map((h) => `${h}.npy`));
  expect(entries.every((e) => e.method === 0)).toBe(true);
  const cfg = await (await page.request.get('./models/induction-2l/config.json')).json();
  const pat = npy(entries.find((e) => e.name === `blocks.${L}.attn.hook_pattern.npy`).data);
  expect(pat.header).toContain(`'descr': '<f4'`);
  expect(pat.shape).toEqual([1, cfg.n_head, n, n]);
  expect(pat.aligned).toBe(true);
  for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) expect(Math.abs(pat.data[(H * n + q) * n + k] - shown(q, k))).toBeLessThan(1e-5);
  expect(npy(entries.find((e) => e.name === 'hook_embed.npy').data).shape).toEqual([1, n, cfg.n_embd]);
  await expect(page.getByTestId('export-activations-status')).toContainText(`${hooks.length} arrays`);

  // One hook alone.
  await page.getByTestId('export-hook').selectOption('blocks.1.hook_resid_post');
  const one = await download(page, page.getByTestId('export-npy'));
  expect(one.name).toBe('blocks.1.hook_resid_post.npy');
  expect(npy(one.bytes).shape).toEqual([1, n, cfg.n_embd]);

  await page.getByTestId('export-attention').scrollIntoViewIfNeeded();
  await page.locator('.w-view').screenshot({ path: 'screenshots/export-bar.png' });
});

test('ablation on the induction model: the table exports the change the page shows, as CSV, JSON, SVG and PNG', async ({ page }) => {
  await page.goto('./?model=induction-2l&view=ablation');
  await waitForModel(page);
  const card = await (await page.request.get('./models/induction-2l/card.json')).json();
  await runPrompt(page, inductionPair(11).clean);
  await expect(bar(page, 'ablation', 'csv')).toBeDisabled();
  await page.getByTestId('ablation-target').fill(card.mechanism.induction_heads.map(([l, h]) => `${l}.${h}`).join(', '));
  await page.getByTestId('ablation-run').click();
  const summary = page.getByTestId('ablation-summary');
  await expect(summary).toBeVisible();
  const change = Number(await summary.getAttribute('data-change'));
  const csv = parseCsv((await download(page, bar(page, 'ablation', 'csv'))).bytes.toString('utf8'));
  expect(csv[0]).toEqual(['', 'normal run', 'ablated run', 'change']);
  expect(csv[1][0]).toMatch(/^metric: /);
  expect(Math.abs(Number(csv[1][3]) - change)).toBeLessThan(1e-6);
  const json = JSON.parse((await download(page, bar(page, 'ablation', 'json'))).bytes.toString('utf8'));
  expect(json.kind).toBe('table');
  expect(Math.abs(json.source.result.change - change)).toBeLessThan(1e-6);
  const svg = await download(page, bar(page, 'ablation', 'svg'));
  expect(svg.name).toBe('glassbox-ablation.svg');
  const facts = await svgFacts(page, svg.bytes.toString('utf8'));
  expect(facts.error).toBe(false);
  expect(facts.texts).toContain('ablated run');
  const png = pngFacts((await download(page, bar(page, 'ablation', 'png'))).bytes);
  expect(png.magic).toBe('89504e470d0a1a0a');
  expect(png.size).toBeGreaterThan(2_000);
});
