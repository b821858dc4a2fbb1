// Times the matmuls of src/lib.rs in headless Chromium on GPT-2 small's shapes (rows = tokens;
// 768 x 3072 is W_in, 3072 x 768 W_out, 768 x 2304 W_QKV, 768 x 768 W_O), interleaved, median of
// 15 after 4 warm-ups each, and checks that they agree (not a test). Then the native peer
// (src/main.rs: `gemm` on one thread, AVX2/AVX-512 with FMA) on the same shapes and values.
//
//   node e2e/bench/wasm_matmul/run.mjs          # builds into /tmp first
//
// Two wasm builds: +simd128 (what the app ships) and +simd128,+relaxed-simd, whose packed kernel
// uses relaxed SIMD's fused multiply-add (`prepacked_fma`: measured, not shipped).
import { chromium } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, BASE_ARGS } from '../../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const target = process.env.TARGET_DIR ?? '/tmp/wasm-matmul-target';
const build = (features, dir) => {
  execFileSync('cargo', ['build', '--release', '--offline', '--lib', '--target', 'wasm32-unknown-unknown', '--target-dir', dir], {
    cwd: here,
    stdio: 'inherit',
    env: { ...process.env, RUSTFLAGS: `-C target-feature=${features}` },
  });
  return readFileSync(`${dir}/wasm32-unknown-unknown/release/wasm_matmul_bench.wasm`).toString('base64');
};
const wasm = build('+simd128', target);
const wasmFma = build('+simd128,+relaxed-simd', `${target}-relaxed`);
execFileSync('cargo', ['build', '--release', '--offline', '--bin', 'wasm-matmul-bench', '--target-dir', target], { cwd: here, stdio: 'inherit' });
const SHAPES = [[14, 768, 3072], [63, 768, 3072], [129, 768, 3072], [14, 3072, 768], [63, 3072, 768], [63, 768, 2304], [129, 768, 768]];

const browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
const page = await browser.newPage();
const rows = await page.evaluate(async ({ wasm, wasmFma, shapes }) => {
  const load = async (b64) => (await WebAssembly.instantiate(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), {})).instance.exports;
  const [plain, fma] = [await load(wasm), await load(wasmFma)];
  const out = [];
  for (const [m, k, n] of shapes) {
    // Each timed kernel: its module, its export, and its own a, b and c in that module's memory.
    const kernels = { gemm: [plain, 'gemm'], packed_per_call: [plain, 'packed_per_call'], prepacked: [plain, 'prepacked'], prepacked_fma: [fma, 'prepacked'] };
    const bufs = {};
    for (const ex of [plain, fma]) {
      const [a, b] = [ex.alloc_f32(m * k), ex.alloc_f32(k * n)];
      const f = new Float32Array(ex.memory.buffer);
      for (let i = 0; i < m * k; i++) f[a / 4 + i] = Math.sin(i * 0.37);
      for (let i = 0; i < k * n; i++) f[b / 4 + i] = Math.cos(i * 0.11);
      ex.prepack(k, n, b);
      bufs[ex === plain ? 'plain' : 'fma'] = { a, b };
    }
    const c = Object.fromEntries(Object.entries(kernels).map(([name, [ex]]) => [name, ex.alloc_f32(m * n)]));
    const times = Object.fromEntries(Object.keys(kernels).map((name) => [name, []]));
    for (let r = 0; r < 19; r++) {
      for (const [name, [ex, fn]] of Object.entries(kernels)) {
        const { a, b } = bufs[ex === plain ? 'plain' : 'fma'];
        const t = performance.now();
        ex[fn](m, k, n, a, b, c[name]);
        if (r >= 4) times[name].push(performance.now() - t);
      }
    }
    const result = (name) => new Float32Array(kernels[name][0].memory.buffer, c[name], m * n);
    let diff = 0;
    for (const name of ['packed_per_call', 'prepacked', 'prepacked_fma']) {
      const [x, y] = [result(name), result('gemm')];
      for (let i = 0; i < m * n; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]));
    }
    const row = { shape: `${m} x ${k} x ${n}`, max_abs_diff: diff };
    for (const [name, t] of Object.entries(times)) {
      const ms = t.sort((x, y) => x - y)[7];
      row[`${name}_ms`] = +ms.toFixed(2);
      row[`${name}_gflops`] = +((2 * m * k * n) / ms / 1e6).toFixed(1);
    }
    out.push(row);
  }
  return out;
}, { wasm, wasmFma, shapes: SHAPES });
await browser.close();
const native = execFileSync(`${target}/release/wasm-matmul-bench`, [SHAPES.map((s) => s.join(',')).join(';')], { encoding: 'utf8' })
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
for (const [i, r] of rows.entries()) Object.assign(r, native[i]);
for (const r of rows) console.log(JSON.stringify(r));
console.log('\n| A x B | gemm (GFLOP/s) | packed per call | weights packed once | once / gemm | packed once, relaxed-SIMD FMA | native gemm, 1 thread | native / packed once |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.shape} | ${r.gemm_gflops} | ${r.packed_per_call_gflops} | ${r.prepacked_gflops} | ${(r.gemm_ms / r.prepacked_ms).toFixed(2)}x | ${r.prepacked_fma_gflops} | ${r.native_gemm_gflops} | ${(r.prepacked_ms / r.native_gemm_ms).toFixed(2)}x |`);
}
