// A tiny static file server for the built site (../dist), serving it twice: at the root `/`
// and under the sub-path `/explorer/`, to prove the site works wherever a host puts it.
// It also mimics the Hugging Face hub's layout for the tests that load real models:
// `/hub/<org>/<repo>/resolve/main/<file>` serves `e2e/hub/<org>/<repo>/<file>` (with Range
// requests, as the hub does), `/hub/glassbox-test/broken/resolve/main/truncated.gguf` is the
// first half of a real GGUF file, `/hub/glassbox-test/tiny-llama-sharded/` is tiny-llama split
// into two shards with an index, `/hub/glassbox-test/gpt2-small-random/` is a GPT-2-small-shaped
// model with random weights made here in memory (see `gpt2SmallRandom`), and anything else
// under /hub is a 404.
// `/hub/glassbox-test/huge/resolve/main/model.gguf` announces a Content-Length of 3 GB (and sends
// a few bytes, then holds the connection), and `/hub/glassbox-test/hostile-tokenizer/` is
// tiny-llama with one of fixtures/robustness/'s tokenizer.json files.
//
// Every response carries a strict Content-Security-Policy (no inline script or style, wasm
// allowed, connections to this origin and to the no-CORS hub only; `CSP` below), with a
// `report-uri` to this server: violations are logged and listed at `/csp-reports` (JSON), and
// playwright.config.mjs's global teardown fails the run if any page reported one.
// No dependencies; used by playwright.config.mjs (webServer) and by hand: `node server.mjs`.
import { createServer } from 'node:http';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(process.env.DIST_DIR ?? join(here, '..', 'dist'));
const port = Number(process.env.PORT ?? 4173);
const SUB = '/explorer';
const NOCORS_PORT = port + 1;

// The policy the whole e2e suite runs under (issue 15): the site boots with no inline script
// (app/boot.js), styles only through style/main.css and the CSSOM, and fetches only from here
// (and the no-CORS hub on the next port, whose refusal the tests check).
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  `connect-src 'self' http://127.0.0.1:${NOCORS_PORT}`,
  "object-src 'none'",
  "base-uri 'self'",
  'report-uri /csp-report',
].join('; ');
const cspOn = process.env.CSP !== 'off';
/** Every violation a page reported (`report-uri`), in order. */
const violations = [];

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

function statOrNull(path) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...(cspOn ? { 'content-security-policy': CSP } : {}), ...headers });
  res.end(body);
}

const hubRoot = resolve(join(here, 'hub'));

/** Splits a safetensors file's tensors (in name order) into `n` shards: [[name, bytes]]. */
function splitSafetensors(buf, n, stem) {
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
  const data = buf.subarray(8 + len);
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  const per = Math.ceil(names.length / n);
  const shards = [];
  const weightMap = {};
  for (let i = 0; i < n; i++) {
    const file = `${stem}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const h = {};
    const parts = [];
    let at = 0;
    for (const name of names.slice(i * per, (i + 1) * per)) {
      const { dtype, shape, data_offsets: [s, e] } = header[name];
      h[name] = { dtype, shape, data_offsets: [at, at + e - s] };
      parts.push(data.subarray(s, e));
      at += e - s;
      weightMap[name] = file;
    }
    let json = JSON.stringify(h);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    shards.push([file, Buffer.concat([head, Buffer.from(json), ...parts])]);
  }
  const index = { metadata: { total_size: data.length }, weight_map: weightMap };
  return [[`${stem}.safetensors.index.json`, Buffer.from(JSON.stringify(index, null, 2))], ...shards];
}

// `glassbox-test/tiny-llama-sharded`: tiny-llama as a sharded checkpoint (no model.safetensors;
// model.safetensors.index.json and two shards), made from tiny-llama's files when first asked.
let shardedFiles;
function sharded() {
  if (!shardedFiles) {
    const src = join(hubRoot, 'glassbox-test', 'tiny-llama');
    shardedFiles = new Map([
      ['config.json', readFileSync(join(src, 'config.json'))],
      ['tokenizer.json', readFileSync(join(src, 'tokenizer.json'))],
      ...splitSafetensors(readFileSync(join(src, 'model.safetensors')), 2, 'model'),
    ]);
  }
  return shardedFiles;
}

// `glassbox-test/gpt2-small-random`: a model of GPT-2 small's shape (12 layers, d_model 768,
// 12 heads, d_mlp 3072, n_ctx 1024) with random weights, for the main-thread benchmarks
// (bench/longtask.mjs) and the worker tests. Nothing is downloaded: the weights come from a
// seeded generator (deterministic: the same bytes on every machine), made on the first request
// and kept in memory (about 0.35 GB). The vocabulary is the byte-level BPE fixture of
// fixtures/tokenizers/gpt2-bpe (1000 tokens), so the embedding has 1000 rows instead of GPT-2's
// 50257: the 85M weights of the blocks are GPT-2 small's, the tables are smaller.
const GPT2_SMALL = { n_layer: 12, n_embd: 768, n_head: 12, n_inner: 3072, n_positions: 1024 };
let gpt2SmallFiles;
function gpt2SmallRandom() {
  if (gpt2SmallFiles) return gpt2SmallFiles;
  const tokenizer = readFileSync(join(here, '..', 'fixtures', 'tokenizers', 'gpt2-bpe', 'tokenizer.json'));
  const tok = JSON.parse(tokenizer.toString('utf8'));
  const ids = [...Object.values(tok.model.vocab), ...(tok.added_tokens ?? []).map((t) => t.id)];
  const vocab = Math.max(...ids) + 1;
  const { n_layer: L, n_embd: d, n_inner: m, n_positions: ctx } = GPT2_SMALL;
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    ...GPT2_SMALL,
    vocab_size: vocab,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
    tie_word_embeddings: true,
  };
  // [name, shape, fill]: fill is 'normal' (N(0, 0.02)), 'ones' or 'zeros'.
  const specs = [['transformer.wte.weight', [vocab, d], 'normal'], ['transformer.wpe.weight', [ctx, d], 'normal']];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    specs.push(
      [`${p}ln_1.weight`, [d], 'ones'], [`${p}ln_1.bias`, [d], 'zeros'],
      [`${p}attn.c_attn.weight`, [d, 3 * d], 'normal'], [`${p}attn.c_attn.bias`, [3 * d], 'zeros'],
      [`${p}attn.c_proj.weight`, [d, d], 'normal'], [`${p}attn.c_proj.bias`, [d], 'zeros'],
      [`${p}ln_2.weight`, [d], 'ones'], [`${p}ln_2.bias`, [d], 'zeros'],
      [`${p}mlp.c_fc.weight`, [d, m], 'normal'], [`${p}mlp.c_fc.bias`, [m], 'zeros'],
      [`${p}mlp.c_proj.weight`, [m, d], 'normal'], [`${p}mlp.c_proj.bias`, [d], 'zeros'],
    );
  }
  specs.push(['transformer.ln_f.weight', [d], 'ones'], ['transformer.ln_f.bias', [d], 'zeros']);
  const header = {};
  let at = 0;
  for (const [name, shape] of specs) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const file = Buffer.allocUnsafe(8 + json.length + at);
  file.writeBigUInt64LE(BigInt(json.length), 0);
  file.write(json, 8, 'utf8');
  const data = new Float32Array(file.buffer, file.byteOffset + 8 + json.length, at / 4);
  // Normal deviates N(0, 0.02): a table of 2^16 of them (Box-Muller), indexed by xorshift32
  // (seed fixed), so that 86M weights take about a second.
  let s = 0x9e3779b9 >>> 0;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  const table = new Float32Array(1 << 16);
  for (let i = 0; i < table.length; i += 2) {
    const r = 0.02 * Math.sqrt(-2 * Math.log((next() + 1) / 4294967297));
    const t = (2 * Math.PI * next()) / 4294967296;
    table[i] = r * Math.cos(t);
    table[i + 1] = r * Math.sin(t);
  }
  for (const [name, , fill] of specs) {
    const [a, b] = header[name].data_offsets.map((o) => o / 4);
    if (fill === 'ones') data.fill(1, a, b);
    else if (fill === 'zeros') data.fill(0, a, b);
    else if (fill === 'normal') {
      let x = s; // a local copy: the loop runs several times faster than on the closure's
      for (let i = a; i < b; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        data[i] = table[x >>> 16];
      }
      s = x >>> 0;
    }
  }
  gpt2SmallFiles = new Map([
    ['config.json', Buffer.from(JSON.stringify(config, null, 2))],
    ['tokenizer.json', tokenizer],
    ['model.safetensors', file],
  ]);
  return gpt2SmallFiles;
}

function hub(req, res, path) {
  const m = path.match(/^\/hub\/([^/]+)\/([^/]+)\/resolve\/main\/(.+)$/);
  if (!m) return send(res, 404, 'not found');
  const [, org, repo, file] = m;
  let body;
  if (org === 'glassbox-test' && repo === 'broken' && file === 'truncated.gguf') {
    const whole = readFileSync(join(hubRoot, 'glassbox-test', 'tiny-gpt2-gguf', 'model-q8_0.gguf'));
    body = whole.subarray(0, whole.length >> 1);
  } else if (org === 'glassbox-test' && repo === 'tiny-llama-sharded' && sharded().has(file)) {
    body = sharded().get(file);
  } else if (org === 'glassbox-test' && repo === 'hostile-tokenizer' && file === 'tokenizer.json') {
    // A tokenizer.json the tokenizers crate panics on (a template naming an undefined token).
    body = readFileSync(join(here, '..', 'fixtures', 'robustness', 'tokenizer-7-1838-3', 'tokenizer.json'));
  } else if (org === 'glassbox-test' && repo === 'hostile-tokenizer') {
    body = readFileSync(join(hubRoot, 'glassbox-test', 'tiny-llama', file));
  } else if (org === 'glassbox-test' && repo === 'huge') {
    // A 3 GB file, by its header: the first 64 kB of a real GGUF file, then nothing (the
    // connection stays open until the client gives up).
    const head = readFileSync(join(hubRoot, 'glassbox-test', 'tiny-gpt2-gguf', 'model-q8_0.gguf')).subarray(0, 65536);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'content-length': '3000000000' });
    if (req.method === 'HEAD') return res.end();
    res.write(head);
    const timer = setTimeout(() => res.destroy(), 120_000);
    res.on('close', () => clearTimeout(timer));
    return;
  } else if (org === 'glassbox-test' && repo === 'flaky-early') {
    // Any file name: the tiny GGUF (see below).
    body = readFileSync(join(hubRoot, 'glassbox-test', 'tiny-gpt2-gguf', 'model-q8_0.gguf'));
  } else if (org === 'glassbox-test' && repo === 'gpt2-small-random' && gpt2SmallRandom().has(file)) {
    body = gpt2SmallRandom().get(file);
  } else {
    const f = normalize(join(hubRoot, org, repo, file));
    if (!f.startsWith(hubRoot)) return send(res, 403, 'forbidden');
    try {
      body = readFileSync(f);
    } catch {
      return send(res, 404, 'Entry not found');
    }
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  // `glassbox-test/slow`: 2 kB every 100 ms (about 10 s for the tiny GGUF), so that a test
  // can press Cancel mid-download.
  if (org === 'glassbox-test' && repo === 'slow') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'content-length': body.length });
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= body.length) { clearInterval(timer); if (!res.destroyed) res.end(); return; }
      res.write(body.subarray(at, at + 2048));
      at += 2048;
    }, 100);
    res.on('close', () => clearInterval(timer));
    return;
  }
  // `glassbox-test/flaky-early`: the first request for each file name drops right after the
  // headers, before any byte of the body; later ones are answered.
  if (org === 'glassbox-test' && repo === 'flaky-early' && !range && req.method !== 'HEAD' && !droppedEarly.has(file)) {
    droppedEarly.add(file);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'accept-ranges': 'bytes', 'content-length': body.length });
    res.flushHeaders();
    setTimeout(() => res.destroy(), 50);
    return;
  }
  // `glassbox-test/flaky`: the connection drops halfway through every full download (a Range
  // request for the rest is answered), as a flaky network would.
  if (org === 'glassbox-test' && repo === 'flaky' && !range) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'accept-ranges': 'bytes', 'content-length': body.length });
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
    return;
  }
  const headers = { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'accept-ranges': 'bytes' };
  if (range) {
    const start = Math.min(Number(range[1]), body.length);
    res.writeHead(206, { ...headers, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    return res.end(body.subarray(start));
  }
  res.writeHead(200, { ...headers, 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

const droppedEarly = new Set();

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  let path = decodeURIComponent(url.pathname);
  if (path === '/csp-report' && req.method === 'POST') {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      let report;
      try {
        report = JSON.parse(Buffer.concat(parts).toString('utf8'))['csp-report'] ?? {};
      } catch {
        report = { raw: Buffer.concat(parts).toString('utf8').slice(0, 500) };
      }
      violations.push(report);
      console.error(`CSP violation: ${report['violated-directive'] ?? report['effective-directive']} blocked ${report['blocked-uri']} on ${report['document-uri']}`);
      send(res, 204, '');
    });
    return;
  }
  if (path === '/csp-reports') return send(res, 200, JSON.stringify(violations), { 'content-type': 'application/json' });
  if (path.startsWith('/hub/')) return hub(req, res, path);
  if (path === SUB) return send(res, 301, '', { location: `${SUB}/${url.search}` });
  if (path.startsWith(`${SUB}/`)) path = path.slice(SUB.length);
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(root, path));
  if (!file.startsWith(root)) return send(res, 403, 'forbidden');
  let st;
  try {
    st = statSync(file);
  } catch {
    return send(res, 404, `not found: ${path}`);
  }
  if (st.isDirectory()) return send(res, 301, '', { location: `${url.pathname}/${url.search}` });
  // A precompressed copy (scripts/precompress.mjs) when the browser accepts it, as a static
  // host with precompressed files would serve it.
  const accepts = String(req.headers['accept-encoding'] ?? '');
  const suffix = { br: '.br', gzip: '.gz' };
  const encoding = Object.keys(suffix).find((e) => accepts.includes(e) && statOrNull(file + suffix[e]));
  const sent = encoding ? file + suffix[encoding] : file;
  res.writeHead(200, {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'content-length': statSync(sent).size,
    'cache-control': 'no-cache',
    ...(encoding ? { 'content-encoding': encoding, vary: 'accept-encoding' } : {}),
    ...(cspOn ? { 'content-security-policy': CSP } : {}),
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(sent).pipe(res);
});

// The same hub on a second port, answering without CORS headers: a cross-origin server that
// refuses to be read from the page (the browser blocks the response).
// It also plays an outside site for the embed tests: `/page?html=<base64url>` answers that HTML
// (a blog post on another origin that embeds the explorer).
createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const path = decodeURIComponent(url.pathname);
  if (path === '/page') {
    // The outside site's own page: no CSP of ours.
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(Buffer.from(url.searchParams.get('html') ?? '', 'base64url'));
  }
  if (!path.startsWith('/hub/')) return send(res, 404, 'not found');
  const orig = res.writeHead.bind(res);
  res.writeHead = (status, headers = {}) => {
    const { ['access-control-allow-origin']: _drop, ...rest } = headers;
    return orig(status, rest);
  };
  hub(req, res, path);
}).listen(NOCORS_PORT, '127.0.0.1');

server.listen(port, '127.0.0.1', () => {
  console.log(`serving ${root} at http://127.0.0.1:${port}/ and http://127.0.0.1:${port}${SUB}/`);
});
