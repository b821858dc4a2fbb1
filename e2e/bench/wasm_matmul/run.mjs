// Times the three matmuls of src/lib.rs in headless Chromium on GPT-2 small's shapes (rows =
// tokens; 768 x 3072 is W_in, 3072 x 768 W_out, 768 x 2304 W_QKV, 768 x 768 W_O), interleaved,
// median of 15 after 4 warm-ups each, and checks that the three agree (not a test):
//
//   node e2e/bench/wasm_matmul/run.mjs          # builds with +simd128 into /tmp first
import { chromium } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, BASE_ARGS } from '../../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const target = process.env.TARGET_DIR ?? '/tmp/wasm-matmul-target';
execFileSync('cargo', ['build', '--release', '--offline', '--target', 'wasm32-unknown-unknown', '--target-dir', target], {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, RUSTFLAGS: '-C target-feature=+simd128' },
});
const wasm = readFileSync(`${target}/wasm32-unknown-unknown/release/wasm_matmul_bench.wasm`).toString('base64');
const SHAPES = [[14, 768, 3072], [63, 768, 3072], [129, 768, 3072], [14, 3072, 768], [63, 3072, 768], [63, 768, 2304], [129, 768, 768]];

const browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
const page = await browser.newPage();
const rows = await page.evaluate(async ({ wasm, shapes }) => {
  const { instance } = await WebAssembly.instantiate(Uint8Array.from(atob(wasm), (c) => c.charCodeAt(0)), {});
  const ex = instance.exports;
  const out = [];
  for (const [m, k, n] of shapes) {
    const [a, b] = [ex.alloc_f32(m * k), ex.alloc_f32(k * n)];
    const c = { gemm: ex.alloc_f32(m * n), packed_per_call: ex.alloc_f32(m * n), prepacked: ex.alloc_f32(m * n) };
    let f = new Float32Array(ex.memory.buffer);
    for (let i = 0; i < m * k; i++) f[a / 4 + i] = Math.sin(i * 0.37);
    for (let i = 0; i < k * n; i++) f[b / 4 + i] = Math.cos(i * 0.11);
    ex.prepack(k, n, b);
    const times = { gemm: [], packed_per_call: [], prepacked: [] };
    for (let r = 0; r < 19; r++) {
      for (const name of Object.keys(times)) {
        const t = performance.now();
        ex[name](m, k, n, a, b, c[name]);
        if (r >= 4) times[name].push(performance.now() - t);
      }
    }
    f = new Float32Array(ex.memory.buffer);
    let diff = 0;
    for (const name of ['packed_per_call', 'prepacked']) for (let i = 0; i < m * n; i++) diff = Math.max(diff, Math.abs(f[c[name] / 4 + i] - f[c.gemm / 4 + i]));
    const row = { shape: `${m} x ${k} x ${n}`, max_abs_diff: diff };
    for (const [name, t] of Object.entries(times)) {
      const ms = t.sort((x, y) => x - y)[7];
      row[`${name}_ms`] = +ms.toFixed(2);
      row[`${name}_gflops`] = +((2 * m * k * n) / ms / 1e6).toFixed(1);
    }
    out.push(row);
  }
  return out;
}, { wasm, shapes: SHAPES });
await browser.close();
for (const r of rows) console.log(JSON.stringify(r));
console.log('\n| A x B | gemm (GFLOP/s) | packed per call | weights packed once | once / gemm |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.shape} | ${r.gemm_gflops} | ${r.packed_per_call_gflops} | ${r.prepacked_gflops} | ${(r.gemm_ms / r.prepacked_ms).toFixed(2)}x |`);
