// Boots the page's wasm module. trunk would inline this as a <script type="module"> in
// index.html, which a strict Content-Security-Policy (script-src 'self') refuses; Trunk.toml's
// `pattern_script` links this file instead, naming trunk's hashed module and wasm file in its
// query string (`boot.js?js=...&wasm=...`), so the page runs with no inline script at all.
const here = new URL(import.meta.url);
const glue = new URL(here.searchParams.get('js'), document.baseURI).href;
const wasm = new URL(here.searchParams.get('wasm'), document.baseURI).href;
const bindings = await import(glue);
await bindings.default({ module_or_path: wasm });
// As trunk's own boot script: the exports (test hooks, the in-page benchmark) on `window`.
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent('TrunkApplicationStarted', { detail: { wasm } }));
