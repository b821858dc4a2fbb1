//! glassbox's browser front end: a leptos (client-side rendered) explorer that loads a
//! shipped model, runs it on WebGPU or the CPU, and shows predictions and attention.

mod analysis;
mod app;
mod bench;
mod components;
mod engine;
mod fourier;
mod hub;
mod loader;
mod models;
mod prompt;
mod scan;
mod url_state;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
