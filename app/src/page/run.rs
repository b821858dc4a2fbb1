//! Starting models in the engine's worker and running the experiment there.
//!
//! A model is started in a new worker; only once it has loaded does the page switch to it
//! (the model generation goes up, the old worker is terminated with everything it held). Runs
//! are never dropped: the latest one always runs, an older one still waiting is superseded,
//! and a reply is shown only if it is still the latest request on the current model.

use std::rc::Rc;
use std::sync::Arc;

use glassbox_core::{BackendChoice, Experiment};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{ModelFiles, Page, RunKey, RunResult, CURRENT_ENGINE};
use crate::components::LoadState;
use crate::engine::{EngineClient, EngineEvent, ModelSummary, RunFailure};
use crate::loader::fetch_shipped;
use crate::url_state;

/// Restarts after a crash before the page gives up on the model.
const MAX_RESTARTS: u32 = 3;

/// Starts `files` in a new worker and, once loaded, makes it the page's model. On failure the
/// model in use (if any) stays and the error is returned.
pub async fn start_model(page: Page, files: Rc<ModelFiles>) -> Result<Arc<ModelSummary>, String> {
    let client = EngineClient::spawn().await.map_err(|e| format!("Could not start the engine: {e}."))?;
    start_model_in(page, client, files).await
}

/// [`start_model`] in a worker already started (the first model's worker boots while its
/// files download).
async fn start_model_in(page: Page, client: EngineClient, files: Rc<ModelFiles>) -> Result<Arc<ModelSummary>, String> {
    let backend = page.experiment.with_untracked(|e| e.backend);
    let summary = Arc::new(client.load(&files.files, files.quantize.clone(), backend, files.shipped.clone()).await?);
    let client = Rc::new(client);
    client.on_event(move |ev| on_engine_event(page, ev));
    // Switch over at once: the old engine (and its worker, and its GPU device) goes now.
    page.model_gen.update(|g| *g += 1);
    CURRENT_ENGINE.with(|c| *c.borrow_mut() = Some(client.clone()));
    page.engine.set_value(Some(client));
    page.files.set_value(Some(files));
    page.pending.set(None);
    // The new worker holds no scans and no answers yet.
    page.scans.set(Vec::new());
    page.inspections.set(Vec::new());
    page.backend.set(Some(summary.backend.clone()));
    page.cpu_reason.set(summary.cpu_reason.clone());
    page.model.set(Some(summary.clone()));
    Ok(summary)
}

fn on_engine_event(page: Page, ev: EngineEvent) {
    match ev {
        EngineEvent::BackendChanged { label, reason } => {
            page.backend.set(Some(label));
            page.cpu_reason.set(Some(crate::engine::CpuReason::GpuFailed(reason)));
        }
        EngineEvent::Died(why) => spawn_local(restart(page, why)),
    }
}

/// The engine died (a panic or trap in the model code): say so, start a new worker with the
/// same files, and run the experiment again. The experiment is kept as it was.
async fn restart(page: Page, why: String) {
    let n = page.restarts.get_value() + 1;
    page.restarts.set_value(n);
    page.pending.set(None);
    let Some(files) = page.files.get_value() else { return };
    if n > MAX_RESTARTS {
        page.engine_notice.set(Some(format!(
            "The engine stopped ({why}) and was restarted {MAX_RESTARTS} times; it is not restarted again. Reload the page to try once more."
        )));
        return;
    }
    page.engine_notice.set(Some(format!("The engine stopped ({why}); it was restarted with the same model and your experiment was run again.")));
    match start_model(page, files).await {
        Ok(_) => run_experiment(page).await,
        Err(e) => page.engine_notice.set(Some(format!("The engine stopped ({why}) and could not be restarted: {e}"))),
    }
}

/// Moves the model to the other backend (the badge's switch): the experiment records the
/// reader's choice (so a shared link keeps it), a new engine starts on it with the same files,
/// and the experiment runs again there. The engine in use stays until the new one is ready.
pub async fn switch_backend(page: Page, gpu: bool) {
    let Some(files) = page.files.get_value() else { return };
    page.experiment.update(|e| e.backend = if gpu { BackendChoice::WebGpu } else { BackendChoice::Cpu });
    page.backend.set(None);
    // Same model, same prompt: the chosen position stays (a new model's first run would
    // otherwise move it to the last token).
    let pos = page.experiment.with_untracked(|e| e.view.pos);
    match start_model(page, files).await {
        Ok(_) => {
            run_experiment(page).await;
            let n = page.result.with_untracked(|r| r.as_ref().map_or(0, |r| r.view.n_tokens()));
            if let Some(p) = pos.filter(|&p| p < n) {
                page.select(|s| s.pos = Some(p));
            }
        }
        Err(e) => page.engine_notice.set(Some(format!("Could not move the model to {}: {e}", if gpu { "WebGPU" } else { "the CPU" }))),
    }
}

/// A User Timing mark (`performance.mark`): the cold-load breakdown in BENCHMARKS.md reads
/// them (`e2e/bench/browser_bench.mjs`). Marks cost nothing a reader sees.
fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

/// Loads the URL's shipped model, starts it and runs the first prompt. Marks the cold load's
/// phases: `glassbox:start` (the page's wasm is running), `glassbox:model-fetched`,
/// `glassbox:worker-ready` (the engine's worker has compiled its wasm), `glassbox:engine-ready`
/// (weights on the backend, pipelines compiled), `glassbox:first-run` (the first result set).
pub async fn start_shipped(page: Page) {
    mark("glassbox:start");
    let t0 = js_sys::Date::now();
    let entry = page.entry;
    // The engine's worker boots while the files download.
    let fetch = async move {
        let r = fetch_shipped(entry, move |p| page.load.set(LoadState::Loading(Some(p)))).await;
        mark("glassbox:model-fetched");
        r
    };
    let spawn = async {
        let r = EngineClient::spawn().await;
        mark("glassbox:worker-ready");
        r
    };
    let (fetched, client) = futures_util::future::join(fetch, spawn).await;
    let (files, bytes) = match fetched {
        Ok(f) => f,
        Err(e) => return page.load.set(LoadState::Failed(format!("Could not load the model \u{201c}{}\u{201d}: {e}", entry.id))),
    };
    page.load.set(LoadState::Starting);
    let files = Rc::new(ModelFiles { files, quantize: None, shipped: Some(entry.id.to_string()) });
    let started = match client {
        Ok(client) => start_model_in(page, client, files).await,
        Err(e) => Err(format!("Could not start the engine: {e}.")),
    };
    let summary = match started {
        Ok(s) => s,
        Err(e) => return page.load.set(LoadState::Failed(format!("Could not start the model \u{201c}{}\u{201d}: {e}", entry.id))),
    };
    mark("glassbox:engine-ready");
    // The URL's layer and head are checked against the model; the default layer is the last
    // (in the shipped induction model, where the induction heads are).
    let cfg = &summary.cfg;
    let (layer, head) = page.experiment.with_untracked(|e| (e.view.layer, e.view.head));
    let (layer, layer_notice) = url_state::check_index("layer", layer, cfg.n_layers);
    let (head, head_notice) = url_state::check_index("head", head, cfg.n_heads);
    page.url_notices.update(|v| v.extend(layer_notice.into_iter().chain(head_notice)));
    page.select(|s| {
        s.layer = Some(layer.unwrap_or(cfg.n_layers - 1));
        s.head = head;
    });
    page.load.set(LoadState::Ready { bytes, seconds: (js_sys::Date::now() - t0) / 1000.0 });
    run_experiment(page).await;
    mark("glassbox:first-run");
    page.url_live.set(true);
    // A link to a causal view recomputes it.
    super::share::run_analysis(page);
}

/// Commits the prompt box into the experiment and runs it.
pub fn submit(page: Page) {
    let text = page.text.get_untracked();
    page.experiment.update(|e| e.prompt = text);
    spawn_local(run_experiment(page));
}

/// Runs the current experiment on the current model. A newer call supersedes this one: its
/// reply is then ignored (and the worker skips it if it had not started).
pub async fn run_experiment(page: Page) {
    let Some(engine) = page.engine.get_value() else {
        return; // no model yet: the model's start runs the experiment once it is ready
    };
    let exp: Experiment = page.experiment.get_untracked();
    let gen = page.model_gen.get_untracked();
    let id = engine.next_id();
    page.pending.set(Some((gen, id)));
    let result = engine.run(id, &exp).await;
    if page.pending.get_untracked() != Some((gen, id)) || page.model_gen.get_untracked() != gen {
        return; // superseded by a newer run or another model
    }
    page.pending.set(None);
    let previous_prompt = page.result.with_untracked(|r| r.as_ref().filter(|r| r.key.model_gen == gen).map(|r| r.view.prompt.clone()));
    match result {
        Ok(reply) => {
            page.prompt_error.set(None);
            page.cut_notice.set(reply.cut_notice);
            let n = reply.view.n_tokens();
            let same_prompt = previous_prompt.as_deref() == Some(reply.view.prompt.as_str());
            let first = previous_prompt.is_none() && !page.url_live.get_untracked();
            let best_head = reply.view.strongest_induction_head(page.layer());
            page.amend_selection(|s| {
                // The URL's position is checked once the tokens are known; later runs keep the
                // position when the prompt is unchanged and move to the last token when it
                // changed. The default head is the strongest induction head of the layer.
                s.pos = Some(match (first, s.pos) {
                    (true, p) => {
                        let (pos, notice) = url_state::check_pos(p, n);
                        page.url_notices.update(|v| v.extend(notice));
                        pos
                    }
                    (false, Some(p)) if same_prompt && p < n => p,
                    _ => n - 1,
                });
                if s.head.is_none() {
                    s.head = Some(best_head.unwrap_or(0));
                }
            });
            let key = RunKey::of(&exp, gen);
            page.result.set(Some(Arc::new(RunResult { key, view: Arc::new(reply.view) })));
        }
        Err(RunFailure::Cancelled) => {}
        Err(RunFailure::Prompt(msg)) | Err(RunFailure::Engine(msg)) => {
            page.prompt_error.set(Some(msg));
            page.cut_notice.set(None);
            page.result.set(None);
        }
    }
}
