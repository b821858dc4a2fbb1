// Where the browser's CPU forward pass goes (issue 13; not a test): opens a shipped model on the
// CPU path, then records a V8 CPU profile of `bench_forward` (every hook cached, 100 passes after
// 20) and prints the wasm functions with the most self time and the most inclusive time.
// Function names need a build with its name section:
//   sed -i 's/^strip = "symbols"/strip = "none"/' Cargo.toml    # the app's release profile; revert after
//   trunk build --release --dist /tmp/dist-names
//   PORT=4300 DIST_DIR=/tmp/dist-names node e2e/server.mjs &
//   node e2e/bench/profile_forward.mjs [model=english-char-3l] [tokens=128]   (BASE=http://127.0.0.1:4300/)
import { chromium } from '@playwright/test';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';
const base = process.env.BASE ?? 'http://127.0.0.1:4300/';
const model = process.argv[2] ?? 'english-char-3l';
const n = Number(process.argv[3] ?? 128);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS });
const page = await browser.newPage();
await page.goto(`${base}?model=${model}&backend=cpu`);
await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
const text = 'the whale swam past the ship and the sailors watched it go by in silence. ';
const prompt = text.repeat(4).slice(0, n - 1);
console.log(await page.evaluate(([m, p]) => window.wasmBindings.bench_forward(m, p, 20, 'cpu'), [model, prompt]));
const cdp = await page.context().newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
await cdp.send('Profiler.start');
console.log(await page.evaluate(([m, p]) => window.wasmBindings.bench_forward(m, p, 100, 'cpu'), [model, prompt]));
const { profile } = await cdp.send('Profiler.stop');
const self = new Map(); const dt = profile.timeDeltas; const nodes = new Map(profile.nodes.map((x) => [x.id, x]));
let total = 0;
profile.samples.forEach((id, i) => { const x = nodes.get(id); const k = x.callFrame.functionName || '(anon)'; self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0) / 1000); total += (dt[i] ?? 0) / 1000; });
console.log('total', total.toFixed(0));
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${v.toFixed(1).padStart(8)} ${(100 * v / total).toFixed(1).padStart(5)}%  ${k.slice(0, 150)}`);
// inclusive time by function name containing key words
const parent = new Map(); for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const incl = new Map();
profile.samples.forEach((id, i) => { const seen = new Set(); let cur = id; while (cur !== undefined) { const k = nodes.get(cur).callFrame.functionName || '(anon)'; if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + (dt[i] ?? 0) / 1000); } cur = parent.get(cur); } });
console.log('--- inclusive');
for (const [k, v] of [...incl.entries()].sort((a, b) => b[1] - a[1]).slice(0, 60)) console.log(`${v.toFixed(1).padStart(8)} ${(100 * v / total).toFixed(1).padStart(5)}%  ${k.slice(0, 150)}`);
await browser.close();
