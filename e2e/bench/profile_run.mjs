// Where a run's main-thread time goes (issue 12): opens english-char-3l, runs a short prompt,
// then records a Chrome trace and a CPU profile of one full-context run (128 tokens) and prints
// the longest tasks with their breakdown (script, style, layout, paint) and the functions with
// the most self time inside them. Function names need a build with its name section:
//   CARGO_PROFILE_RELEASE_STRIP=none trunk build --release --dist /tmp/dist-names
//   PORT=4300 DIST_DIR=/tmp/dist-names node e2e/server.mjs &
//   node e2e/bench/profile_run.mjs [cpu|webgpu] [repeats]      (BASE=http://127.0.0.1:4300/)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const backend = process.argv[2] ?? 'cpu';
const repeats = Number(process.argv[3] ?? 3);
const corpus = readFileSync(join(here, '..', '..', 'public', 'corpus', 'moby-dick-heldout.txt'), 'utf8').replace(/\s+/g, ' ');
const FULL = (i) => corpus.slice(2000 + 300 * i).trimStart().slice(0, 126) + 'x';

const base = process.env.BASE ?? 'http://127.0.0.1:4300/';
const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${base}?model=english-char-3l&backend=${backend}`);
await page.getByTestId('loaded').waitFor({ timeout: 180_000 });
await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
const cdp = await page.context().newCDPSession(page);

async function run(text) {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('run').click();
  await page.waitForFunction((t) => document.querySelector('[data-testid="tokens"]')?.dataset.prompt === t, text, { timeout: 120_000 });
  await page.waitForTimeout(400);
}
await run('Call me Ishmael');
await run(FULL(99));

for (let r = 0; r < repeats; r++) {
  const events = [];
  cdp.on('Tracing.dataCollected', (d) => events.push(...d.value));
  const done = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline,v8.execute,blink', transferMode: 'ReportEvents' });
  await cdp.send('Profiler.start');
  await run(FULL(r));
  await run('Call me Ishmael');
  const { profile } = await cdp.send('Profiler.stop');
  await cdp.send('Tracing.end');
  await done;
  cdp.removeAllListeners('Tracing.dataCollected');

  // Main thread: the renderer's main thread is the one with the most RunTask time.
  const tasks = events.filter((e) => e.name === 'RunTask' && e.ph === 'X');
  const byTid = new Map();
  for (const t of tasks) byTid.set(t.tid, (byTid.get(t.tid) ?? 0) + t.dur);
  const mainTid = [...byTid.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const main = tasks.filter((t) => t.tid === mainTid).sort((a, b) => b.dur - a.dur).slice(0, 4);
  console.log(`\n== repeat ${r}: longest main-thread tasks (${backend})`);
  for (const t of main) {
    const inside = events.filter((e) => e.tid === mainTid && e.ph === 'X' && e.ts >= t.ts && e.ts + (e.dur ?? 0) <= t.ts + t.dur && e !== t);
    const sum = {};
    for (const e of inside) if (['FunctionCall', 'EvaluateScript', 'V8.Execute', 'UpdateLayoutTree', 'Layout', 'Paint', 'PrePaint', 'Layerize', 'Commit', 'HitTest', 'ParseHTML', 'RunMicrotasks', 'FireAnimationFrame', 'TimerFire', 'EventDispatch', 'v8.run'].includes(e.name)) sum[e.name] = (sum[e.name] ?? 0) + e.dur / 1000;
    console.log(`  task ${(t.dur / 1000).toFixed(1)} ms: ${Object.entries(sum).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  }
  // CPU profile: self time by function over the whole window.
  const self = new Map();
  const dt = profile.timeDeltas;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const n = nodes.get(id);
    const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0) / 1000);
  });
  console.log('  self time (ms), top 25:');
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`    ${v.toFixed(1).padStart(7)}  ${k}`);
}
await browser.close();
