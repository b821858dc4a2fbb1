// Times the f32 matmul (linear.wgsl's row-block kernel, the one the app uses on software
// adapters and for few rows) against linear_q8_0 / linear_q4_0 (GGUF blocks dequantized inside
// the matmul) in headless Chromium's WebGPU (SwiftShader here; a real GPU where Chromium has
// one), at GPT-2's MLP shape k = 768, n = 3072, for m = 1 and 16 rows. The WGSL is the
// kernels' own files. Per kernel: 3 warm-up submissions, then 3 submissions of 10 dispatches
// each, awaiting onSubmittedWorkDone; the median per dispatch is printed with the ratio f32 /
// quantized (above 1: the quantized kernel is faster).
//
//   node kernels/scripts/quant_bench.mjs        (needs e2e/node_modules: `cd e2e && npm ci`)

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const require = createRequire(join(repo, 'e2e', 'package.json'));
const { chromium } = require('playwright-core');
const { WEBGPU_ARGS, CHROMIUM } = await import(join(repo, 'e2e', 'tests', 'browser.mjs'));

const linear = readFileSync(join(here, '..', 'src', 'ops', 'linear.wgsl'), 'utf8');
const quant = readFileSync(join(here, '..', 'src', 'ops', 'linear_quant.wgsl'), 'utf8');

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_ARGS });
const page = await browser.newPage();
await page.route('http://127.0.0.1:9/**', (r) => r.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>bench</title>' }));
await page.goto('http://127.0.0.1:9/');

const rows = await page.evaluate(async ({ linear, quant }) => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize } });
  const info = adapter.info ?? {};
  const F = GPUBufferUsage;
  const buf = (bytes) => {
    const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes.byteLength / 4) * 4), usage: F.STORAGE | F.COPY_DST });
    device.queue.writeBuffer(b, 0, bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4) * 4);
    return b;
  };
  const uni = (w) => {
    const b = device.createBuffer({ size: 16, usage: F.UNIFORM | F.COPY_DST });
    device.queue.writeBuffer(b, 0, new Uint32Array(w));
    return b;
  };
  const k = 768, n = 3072;
  const lm = device.createShaderModule({ code: linear });
  const qm = device.createShaderModule({ code: quant });
  const pipe = (module, entryPoint) => device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
  const w32 = new Float32Array(k * n).map((_, i) => ((i * 7919) % 1000) / 5000 - 0.1);
  const blocks = (bytesPerBlock) => {
    const b = new Uint8Array(n * (k / 32) * bytesPerBlock).map((_, i) => (i * 131) & 0xff);
    for (let o = 0; o < b.length; o += bytesPerBlock) { b[o] = 0x1f; b[o + 1] = 0x21; } // f16 scale 0.01
    return b;
  };
  const kernels = [
    { name: 'f32 linear_rows', p: pipe(lm, 'linear_rows'), w: buf(w32), grid: (m) => [Math.ceil(m / 8), Math.ceil(n / 256), 1], bytes: 4 * k * n },
    { name: 'q8_0', p: pipe(qm, 'linear_q8_0'), w: buf(blocks(34)), grid: (m) => [Math.ceil(m / 8), 1, Math.ceil(n / 256)], bytes: n * (k / 32) * 34 },
    { name: 'q4_0', p: pipe(qm, 'linear_q4_0'), w: buf(blocks(18)), grid: (m) => [Math.ceil(m / 8), 1, Math.ceil(n / 256)], bytes: n * (k / 32) * 18 },
  ];
  const out = [];
  for (const m of [1, 16]) {
    const x = buf(new Float32Array(m * k).map((_, i) => ((i * 31) % 100) / 100 - 0.5));
    const bias = buf(new Float32Array(n));
    const y = device.createBuffer({ size: m * n * 4, usage: F.STORAGE });
    const u = uni([m, k, n, 1]);
    for (const kr of kernels) {
      const bg = device.createBindGroup({ layout: kr.p.getBindGroupLayout(0), entries: [u, x, kr.w, bias, y].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
      const submit = async (reps) => {
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(kr.p);
        pass.setBindGroup(0, bg);
        for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(...kr.grid(m));
        pass.end();
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
      };
      for (let i = 0; i < 3; i++) await submit(1);
      const times = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await submit(10);
        times.push((performance.now() - t) / 10);
      }
      times.sort((a, b) => a - b);
      out.push({ m, kernel: kr.name, ms: times[1], weight_bytes: kr.bytes });
    }
  }
  return { adapter: `${info.vendor ?? ''} ${info.architecture ?? ''}`.trim(), out };
}, { linear, quant });
await browser.close();

console.log(`adapter: ${rows.adapter}`);
console.log('| m | kernel | ms per matmul | weight MB | f32 / this |');
console.log('|---|---|---|---|---|');
for (const r of rows.out) {
  const f32 = rows.out.find((o) => o.m === r.m && o.kernel.startsWith('f32')).ms;
  console.log(`| ${r.m} | ${r.kernel} | ${r.ms.toFixed(2)} | ${(r.weight_bytes / 1e6).toFixed(2)} | ${(f32 / r.ms).toFixed(2)}x |`);
}
