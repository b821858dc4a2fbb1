// Compiles every kernel of kernels/src/ops (the .wgsl files and the rendered elementwise
// template, as `cargo run -p glassbox-kernels --example dump_wgsl -- DIR` writes them) with Tint
// (Chromium's WGSL compiler) on a real WebGPU adapter (SwiftShader in headless Chromium),
// creates a pipeline for every entry point,
// and runs a few numerical smoke checks where Tint and naga could differ (-inf from a uniform,
// softmax of -inf, the fused attention, gelu_new at large |x|, both linear kernels with odd sizes, the quantized
// linears on GGUF Q8_0 / Q4_0 blocks).
//
// The Rust tests (kernels/tests/ops.rs) cover correctness with naga; this covers Tint.
//
//   node kernels/scripts/tint_check.mjs            (needs e2e/node_modules: `cd e2e && npm ci`)
//   CHROMIUM=/usr/bin/chromium node kernels/scripts/tint_check.mjs
//   WGSL_DIR=/tmp/wgsl node kernels/scripts/tint_check.mjs   (sources already dumped there)
//
// Exit code 0 when everything compiles and the checks pass, 1 otherwise.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const require = createRequire(join(repo, 'e2e', 'package.json'));
const { chromium } = require('playwright-core');

// Every kernel's WGSL as the crate compiles it (templates rendered), dumped by the crate itself.
let opsDir = process.env.WGSL_DIR;
if (!opsDir) {
  opsDir = mkdtempSync(join(tmpdir(), 'glassbox-wgsl-'));
  execFileSync('cargo', ['run', '-q', '-p', 'glassbox-kernels', '--example', 'dump_wgsl', '--', opsDir], {
    cwd: repo,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}
const shaders = readdirSync(opsDir)
  .filter((f) => f.endsWith('.wgsl'))
  .sort()
  .map((f) => {
    const code = readFileSync(join(opsDir, f), 'utf8');
    const entries = [...code.matchAll(/@compute[^]*?fn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)].map((m) => m[1]);
    return { file: f, code, entries };
  });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--enable-unsafe-webgpu',
    '--no-sandbox',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = await browser.newPage();
// A secure context (http://127.0.0.1) without a server: the request is answered here.
await page.route('http://127.0.0.1:9/**', (route) =>
  route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>tint</title>' }),
);
await page.goto('http://127.0.0.1:9/');

const result = await page.evaluate(async (shaders) => {
  const out = { adapter: null, compile: [], checks: [] };
  if (!navigator.gpu) return { ...out, fatal: 'navigator.gpu is missing (WebGPU disabled?)' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { ...out, fatal: 'no WebGPU adapter' };
  const info = adapter.info ?? {};
  out.adapter = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''} fallback=${info.isFallbackAdapter}`;
  out.features = [...adapter.features];
  out.limits = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
  };
  const device = await adapter.requestDevice();
  const pipelines = {};

  for (const s of shaders) {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: s.file, code: s.code });
    const info = await module.getCompilationInfo();
    const msgs = info.messages.map((m) => `${m.type} ${s.file}:${m.lineNum}:${m.linePos} ${m.message}`);
    const modErr = await device.popErrorScope();
    const r = { file: s.file, messages: msgs, error: modErr ? modErr.message : null, entries: {} };
    for (const e of s.entries) {
      try {
        pipelines[e] = await device.createComputePipelineAsync({
          label: e,
          layout: 'auto',
          compute: { module, entryPoint: e },
        });
        r.entries[e] = 'ok';
      } catch (err) {
        r.entries[e] = `FAILED: ${err.message}`;
      }
    }
    out.compile.push(r);
  }

  // ---- helpers for the runtime checks -------------------------------------------------------
  const F = GPUBufferUsage;
  const storage = (data) => {
    const arr = data instanceof Uint32Array ? data : new Float32Array(data);
    const b = device.createBuffer({ size: Math.max(4, arr.byteLength), usage: F.STORAGE | F.COPY_SRC | F.COPY_DST });
    device.queue.writeBuffer(b, 0, arr);
    return b;
  };
  const empty = (n) => device.createBuffer({ size: Math.max(4, n * 4), usage: F.STORAGE | F.COPY_SRC });
  const uniform = (words) => {
    const arr = new Uint32Array(Math.ceil(words.length / 4) * 4);
    arr.set(words);
    const b = device.createBuffer({ size: arr.byteLength, usage: F.UNIFORM | F.COPY_DST });
    device.queue.writeBuffer(b, 0, arr);
    return b;
  };
  const f2u = (f) => new Uint32Array(new Float32Array([f]).buffer)[0];
  const run = async (entry, params, buffers, grid, outBuf, n) => {
    const p = pipelines[entry];
    const layout = p.getBindGroupLayout(0);
    const entries = [{ binding: 0, resource: { buffer: uniform(params) } }];
    buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b } }));
    device.pushErrorScope('validation');
    const bg = device.createBindGroup({ layout, entries });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(...grid);
    pass.end();
    const staging = device.createBuffer({ size: n * 4, usage: F.MAP_READ | F.COPY_DST });
    enc.copyBufferToBuffer(outBuf, 0, staging, 0, n * 4);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`${entry}: ${err.message}`);
    await staging.mapAsync(GPUMapMode.READ);
    const data = Array.from(new Float32Array(staging.getMappedRange()));
    staging.unmap();
    return data;
  };
  const check = (name, ok, detail) => out.checks.push({ name, ok: !!ok, detail });
  const close = (a, b, tol) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol * (1 + Math.abs(b[i])));
  const rand = (() => { let s = 12345; return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1; })();

  try {
    // attn_scores: pos 5, 2 heads, d_head 3 -> exact -inf above the diagonal.
    const pos = 5, nh = 2, dh = 3, width = nh * dh;
    const q = Array.from({ length: pos * width }, rand), k = Array.from({ length: pos * width }, rand);
    const scores = empty(nh * pos * pos);
    const s = await run('attn_scores', [pos, nh, dh, 0xff800000, f2u(Math.sqrt(dh)), nh],
      [storage(q), storage(k), scores], [1, 1, nh], scores, nh * pos * pos);
    let maskOk = true, valOk = true;
    for (let h = 0; h < nh; h++) for (let i = 0; i < pos; i++) for (let j = 0; j < pos; j++) {
      const v = s[(h * pos + i) * pos + j];
      if (j > i) { if (v !== -Infinity) maskOk = false; }
      else {
        let d = 0; for (let e = 0; e < dh; e++) d += q[i * width + h * dh + e] * k[j * width + h * dh + e];
        if (Math.abs(v - d / Math.sqrt(dh)) > 1e-5) valOk = false;
      }
    }
    check('attn_scores: -inf above the diagonal', maskOk, s.slice(0, pos).join(','));
    check('attn_scores: values', valOk);

    // softmax of those scores: masked entries exactly 0, rows sum to 1.
    const pat = empty(nh * pos * pos);
    const pv = await run('softmax', [nh * pos, pos], [scores, pat], [nh * pos, 1, 1], pat, nh * pos * pos);
    let zeroOk = true, sumOk = true;
    for (let r = 0; r < nh * pos; r++) {
      const i = r % pos; let sum = 0;
      for (let j = 0; j < pos; j++) { const v = pv[r * pos + j]; sum += v; if (j > i && v !== 0) zeroOk = false; }
      if (Math.abs(sum - 1) > 1e-5) sumOk = false;
    }
    check('softmax: masked entries exactly 0', zeroOk, pv.slice(0, pos).join(','));
    check('softmax: rows sum to 1', sumOk);

    // attention (fused): the scores and pattern above, and z, from one dispatch per query row
    // (-inf through the uniform; each invocation reads back its own storage writes).
    const v = Array.from({ length: pos * width }, rand);
    const fs = empty(nh * pos * pos), fp = empty(nh * pos * pos), fz = empty(pos * width);
    const aParams = [nh * pos, pos, nh, nh, dh, 0xff800000, f2u(Math.sqrt(dh)), pos, 0]; // n_k = n_q, offset 0
    const aBufs = [storage(q), storage(k), storage(v), fs, fp, fz];
    const as = await run('attention', aParams, aBufs, [nh * pos, 1, 1], fs, nh * pos * pos);
    const ap = await run('attention', aParams, aBufs, [nh * pos, 1, 1], fp, nh * pos * pos);
    const az = await run('attention', aParams, aBufs, [nh * pos, 1, 1], fz, pos * width);
    const zref = [];
    for (let i = 0; i < pos; i++) for (let h = 0; h < nh; h++) for (let e = 0; e < dh; e++) {
      let acc = 0; for (let j = 0; j < pos; j++) acc += pv[(h * pos + i) * pos + j] * v[j * width + h * dh + e];
      zref.push(acc);
    }
    check('attention: scores equal attn_scores', as.every((x, i) => x === s[i]), as.slice(0, pos).join(','));
    check('attention: pattern equals softmax', close(ap, pv, 1e-6), ap.slice(0, pos).join(','));
    check('attention: z', close(az, zref, 1e-5), az.slice(0, dh).join(','));

    // gelu_new at large |x|: finite, y = x or 0.
    const gx = [-1e4, -100, -20, -1, 0, 1, 20, 100, 1e4];
    const gy = empty(gx.length);
    const g = await run('gelu_new', [gx.length], [storage(gx), gy], [1, 1, 1], gy, gx.length);
    const gref = gx.map((x) => { const u = Math.max(-15, Math.min(15, Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))); return 0.5 * x * (1 + Math.tanh(u)); });
    check('gelu_new: large |x| finite and correct', close(g, gref, 1e-5), g.join(','));

    // linear, both kernels: m 3, k 17, n 70 with bias.
    const m = 3, kk = 17, n = 70;
    const x = Array.from({ length: m * kk }, rand), w = Array.from({ length: kk * n }, rand), b = Array.from({ length: n }, rand);
    const ref = [];
    for (let r = 0; r < m; r++) for (let c = 0; c < n; c++) { let acc = 0; for (let j = 0; j < kk; j++) acc += x[r * kk + j] * w[j * n + c]; ref.push(acc + b[c]); }
    for (const [entry, grid] of [['linear', [Math.ceil(n / 64), Math.ceil(m / 64), 1]], ['linear_rows', [Math.ceil(m / 8), Math.ceil(n / 256), 1]]]) {
      const y = empty(m * n);
      const got = await run(entry, [m, kk, n, 1], [storage(x), storage(w), storage(b), y], grid, y, m * n);
      check(`${entry}: 3x17x70 with bias`, close(got, ref, 1e-5));
    }

    // linear_q8_0 / linear_q4_0 (GGUF blocks of W_t [n, k], bytes packed into u32 words):
    // m 9 (two row groups, the second partial), k 96 (3 blocks per row: blocks alternate
    // between word-aligned and 2-byte offset starts), n 70, with bias. Scales are exact halves.
    {
      const qm = 9, qk = 96, qn = 70, nb = qk / 32;
      const halves = [[0x2400, 2 ** -6], [0x2000, 2 ** -7], [0xa800, -(2 ** -5)], [0x1c00, 2 ** -8], [0x3266, 1638 / 8192]];
      const qx = Array.from({ length: qm * qk }, rand), qb = Array.from({ length: qn }, rand);
      for (const [entry, blockBytes] of [['linear_q8_0', 34], ['linear_q4_0', 18]]) {
        const bytes = new Uint8Array(Math.ceil((qn * nb * blockBytes) / 4) * 4);
        const wt = new Float64Array(qn * qk); // W_t [n, k], dequantized
        for (let c = 0; c < qn; c++) for (let b = 0; b < nb; b++) {
          const off = (c * nb + b) * blockBytes;
          const [bits, d] = halves[Math.floor((rand() + 1) * 2.5) % halves.length];
          bytes[off] = bits & 0xff;
          bytes[off + 1] = bits >> 8;
          for (let t = 0; t < blockBytes - 2; t++) bytes[off + 2 + t] = Math.floor((rand() + 1) * 128) & 0xff;
          for (let j = 0; j < 32; j++) {
            let q;
            if (blockBytes === 34) q = (bytes[off + 2 + j] << 24) >> 24; // int8
            else q = (j < 16 ? bytes[off + 2 + j] & 15 : bytes[off + 2 + j - 16] >> 4) - 8;
            wt[c * qk + b * 32 + j] = d * q;
          }
        }
        const qref = [];
        for (let r = 0; r < qm; r++) for (let c = 0; c < qn; c++) {
          let acc = 0;
          for (let j = 0; j < qk; j++) acc += qx[r * qk + j] * wt[c * qk + j];
          qref.push(acc + qb[c]);
        }
        const y = empty(qm * qn);
        const got = await run(entry, [qm, qk, qn, 1],
          [storage(qx), storage(new Uint32Array(bytes.buffer)), storage(qb), y],
          [Math.ceil(qm / 8), 1, Math.ceil(qn / 256)], y, qm * qn);
        check(`${entry}: 9x96x70 with bias`, close(got, qref, 1e-4));
      }
    }
  } catch (e) {
    check('runtime checks', false, String(e && e.message ? e.message : e));
  }
  return out;
}, shaders);

await browser.close();

let failed = false;
if (result.fatal) {
  console.error(`FATAL: ${result.fatal}`);
  process.exit(1);
}
console.log(`adapter: ${result.adapter}`);
console.log(`features: ${result.features.join(', ') || '(none)'}`);
console.log(`limits: ${JSON.stringify(result.limits)}`);
for (const r of result.compile) {
  const bad = r.error || r.messages.some((m) => m.startsWith('error')) || Object.values(r.entries).some((v) => v !== 'ok');
  failed ||= bad;
  console.log(`${bad ? 'FAIL' : 'ok  '} ${r.file}: ${Object.entries(r.entries).map(([e, v]) => `${e}=${v}`).join(' ')}`);
  for (const m of r.messages) console.log(`     ${m}`);
  if (r.error) console.log(`     ${r.error}`);
}
for (const c of result.checks) {
  failed ||= !c.ok;
  console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.ok || !c.detail ? '' : ` (${c.detail})`}`);
}
process.exit(failed ? 1 : 0);
