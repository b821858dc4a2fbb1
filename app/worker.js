// The engine's dedicated worker. The page sends the URLs of its own wasm-bindgen module and
// wasm file (and its compiled WebAssembly.Module) first; this imports the same module and hands over to Rust (`worker_main` in
// app/src/engine/worker.rs), which installs its own message handler and says "Started".
self.addEventListener('message', async (event) => {
  const { glue, wasm, module } = event.data;
  const bindings = await import(glue);
  // The page's own compiled module when it sent one (no second download or compile).
  const exports = await bindings.default({ module_or_path: module instanceof WebAssembly.Module ? module : wasm });
  // The engine's wasm memory, in bytes (e2e tests read it to check memory under repetition).
  self.glassboxWasmBytes = () => exports.memory.buffer.byteLength;
  // Bytes of GPU storage buffers the engine holds (weights and live tensors).
  self.glassboxGpuBytes = () => bindings.gpu_buffer_bytes();
  bindings.worker_main();
}, { once: true });

// A trap inside an async task surfaces as an unhandled rejection, which a worker does not
// report to the page: rethrow it as an error, which the page sees as the worker's `error`.
self.addEventListener('unhandledrejection', (event) => {
  setTimeout(() => { throw event.reason; });
});
