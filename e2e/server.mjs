// A tiny static file server for the built site (../dist), serving it twice: at the root `/`
// and under the sub-path `/explorer/`, to prove the site works wherever a host puts it.
// No dependencies; used by playwright.config.mjs (webServer) and by hand: `node server.mjs`.
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(process.env.DIST_DIR ?? join(here, '..', 'dist'));
const port = Number(process.env.PORT ?? 4173);
const SUB = '/explorer';

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

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  let path = decodeURIComponent(url.pathname);
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
  res.writeHead(200, {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'content-length': st.size,
    'cache-control': 'no-cache',
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).pipe(res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`serving ${root} at http://127.0.0.1:${port}/ and http://127.0.0.1:${port}${SUB}/`);
});
