//! glassbox's browser front end: a leptos (client-side rendered) explorer that loads a
//! model, runs it on WebGPU or the CPU in a Web Worker (`engine/`), and shows predictions and
//! attention (`page/`, `components/`).

mod analysis;
mod article;
mod bench;
mod causal;
mod components;
mod engine;
mod export;
mod figures;
mod fourier;
mod hub;
mod inspect;
mod loader;
mod models;
mod page;
mod prompt;
mod url_state;

fn main() {
    // The same module runs the engine's worker (`worker.js` calls `engine::worker::worker_main`);
    // there is no page to mount there.
    if engine::worker::in_worker() {
        return;
    }
    console_error_panic_hook::set_once();
    if article::is_article() {
        article::mount();
    } else {
        leptos::mount::mount_to_body(page::App);
    }
}
