//! Sweeps the page asks the engine for: every input of modular addition (the Fourier view's
//! neurons) and a scan of the English model's corpus slice (top-activating examples). Each is
//! the experiment with its `analysis` set, lowered and run batch by batch in the worker
//! (`Experiment::sweep_batches`), with progress; a result is kept only if the model it was
//! computed on is still the one in use.

use std::sync::Arc;

use glassbox_core::Analysis;
use leptos::prelude::*;

use super::state::Page;
use crate::components::{CorpusScan, NeuronGrid};
use crate::engine::{RunFailure, SweepResult};

/// Characters of the corpus slice a scan reads (about 2 seconds on the wasm CPU path for the
/// English model).
pub const SCAN_CHARS: usize = 16_000;

/// Runs the modular-addition model on every input `a b =` and keeps each MLP neuron's
/// activation at `=` (the last layer's `mlp.hook_post`), for the Fourier panel.
pub async fn compute_neurons(page: Page) {
    if page.neuron_progress.get_untracked().is_some() || page.neuron_grid.with_untracked(Option::is_some) {
        return;
    }
    let (Some(engine), Some(model)) = (page.engine.get_value(), page.model.get_untracked()) else { return };
    let gen = page.model_gen.get_untracked();
    let p = model.cfg.d_vocab_out;
    let hook = format!("blocks.{}.mlp.hook_post", model.cfg.n_layers - 1);
    page.experiment.update(|e| e.analysis = Analysis::TaskSweep { hook });
    let exp = page.experiment.get_untracked();
    page.neuron_progress.set(Some(0));
    let id = engine.next_id();
    page.sweep_id.set_value(Some(id));
    let result = engine.sweep(id, &exp, None, move |done, _| page.neuron_progress.set(Some(done / p.max(1)))).await;
    page.neuron_progress.set(None);
    if page.model_gen.get_untracked() != gen {
        return;
    }
    match result {
        Ok(SweepResult::Grid { p, d_mlp, acts }) => page.neuron_grid.set(Some(Arc::new(NeuronGrid { p, d_mlp, acts }))),
        Ok(_) | Err(RunFailure::Cancelled) => {}
        Err(e) => page.prompt_error.set(Some(format!("Running all inputs failed: {e}"))),
    }
}

/// Scans the model's corpus slice with layer `layer`'s MLP neurons and keeps each neuron's ten
/// strongest activations (`mlp.hook_post`), for the top-activating-examples panel.
pub async fn scan_corpus(page: Page, layer: usize) {
    if page.scan_progress.get_untracked().is_some() {
        return;
    }
    let Some((path, _)) = page.entry.corpus else { return };
    let Some(engine) = page.engine.get_value() else { return };
    let gen = page.model_gen.get_untracked();
    page.scan_progress.set(Some((0, SCAN_CHARS)));
    let text = match crate::loader::fetch_bytes(&crate::loader::resolve(path), |_, _| {}).await.map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return scan_failed(page, format!("{path} is not UTF-8 text")),
        Err(e) => return scan_failed(page, e),
    };
    let chars: Vec<char> = text.chars().take(SCAN_CHARS).collect();
    let slice: String = chars.iter().collect();
    page.experiment.update(|e| e.analysis = Analysis::CorpusScan { layer });
    let exp = page.experiment.get_untracked();
    let body = page.model.get_untracked().map_or(1, |m| m.cfg.n_ctx - 1);
    let id = engine.next_id();
    page.sweep_id.set_value(Some(id));
    let result = engine.sweep(id, &exp, Some(slice), move |done, total| page.scan_progress.set(Some((done * body, total * body)))).await;
    page.scan_progress.set(None);
    if page.model_gen.get_untracked() != gen {
        return;
    }
    match result {
        Ok(SweepResult::Scan { layer, top, .. }) => page.scan.set(Some(Arc::new(CorpusScan { layer, chars, top }))),
        Ok(_) | Err(RunFailure::Cancelled) => {}
        Err(e) => scan_failed(page, e.to_string()),
    }
}

/// Stops the sweep in flight: the worker drops it before its next batch.
pub fn cancel_sweep(page: Page) {
    if let (Some(id), Some(engine)) = (page.sweep_id.get_value(), page.engine.get_value()) {
        engine.cancel(id);
    }
}

fn scan_failed(page: Page, why: String) {
    page.scan_progress.set(None);
    page.prompt_error.set(Some(format!("The scan failed: {why}")));
}
