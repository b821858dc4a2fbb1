//! Sweeps the page asks the engine for: every input of modular addition (the Fourier view's
//! neurons) and a scan of the English model's corpus slice (top-activating examples). Each is
//! the experiment with its `analysis` set, lowered and run batch by batch in the worker
//! (`Experiment::sweep_batches`), with progress; a result is kept only if the model it was
//! computed on is still the one in use.

use std::sync::Arc;

use glassbox_core::Analysis;
use leptos::prelude::*;

use super::state::Page;
use crate::components::{check_corpus, Corpus, NeuronGrid, ScanInfo};
use crate::engine::{RunFailure, SweepResult};
use crate::inspect::Query;

/// Characters of the shipped corpus slice a scan reads (about 2 seconds on the wasm CPU path
/// for the English model).
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

/// Scans `corpus` with layer `layer`'s MLP neurons (`mlp.hook_post`); the worker keeps each
/// neuron's top examples for the neuron pages of that layer.
pub async fn scan_corpus(page: Page, layer: usize, corpus: Corpus) {
    if page.scan_progress.get_untracked().is_some() {
        return;
    }
    let Some(engine) = page.engine.get_value() else { return };
    let gen = page.model_gen.get_untracked();
    page.scan_error.set(None);
    page.scan_progress.set(Some((0, 0)));
    let (what, text) = match corpus {
        Corpus::Text(what, text) => (what, text),
        Corpus::Shipped => {
            let path = "corpus/moby-dick-heldout.txt";
            match crate::loader::fetch_bytes(&crate::loader::resolve(path), |_, _| {}).await.map(String::from_utf8) {
                Ok(Ok(t)) => ("the first 16,000 characters of a held-out slice of Moby-Dick".to_string(), t.chars().take(SCAN_CHARS).collect()),
                Ok(Err(_)) => return scan_failed(page, format!("{path} is not UTF-8 text")),
                Err(e) => return scan_failed(page, e),
            }
        }
    };
    if let Err(e) = check_corpus(&what, text.chars().count()) {
        return scan_failed(page, e);
    }
    page.experiment.update(|e| e.analysis = Analysis::CorpusScan { layer });
    let exp = page.experiment.get_untracked();
    let id = engine.next_id();
    page.sweep_id.set_value(Some(id));
    let result = engine.sweep(id, &exp, Some((what, text)), move |done, total| page.scan_progress.set(Some((done, total)))).await;
    page.scan_progress.set(None);
    page.experiment.update(|e| e.analysis = Analysis::Inspect);
    if page.model_gen.get_untracked() != gen {
        return;
    }
    match result {
        Ok(SweepResult::Scan { layer, what, tokens_scanned, windows }) => {
            page.scans.update(|v| {
                v.retain(|s| s.layer != layer);
                v.push(ScanInfo { layer, what, tokens_scanned, windows });
            });
            // The neuron pages of this layer now have examples: ask again.
            page.inspections.update(|v| v.retain(|i| !matches!(i.query, Query::Neuron { layer: l, .. } if l == layer)));
        }
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
    page.scan_error.set(Some(format!("The scan failed: {why}")));
}
