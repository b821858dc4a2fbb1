//! The causal views' requests: an activation patching sweep and an ablation. Each sets the
//! experiment's `analysis` (so that the experiment names what was computed), asks the worker,
//! and keeps the answer with the model generation it was computed on. A patching cell opens its
//! patched run: the experiment gets that one patch as an intervention and runs, so every view
//! of the page shows the patched run until the reader removes it.

use std::sync::Arc;

use glassbox_core::analysis::patching::{zero_ablation, AblationKind, Direction};
use glassbox_core::{InterventionSpec, Prompt, SpecOp};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::run::run_experiment;
use super::state::{Outcome, Page};
use crate::causal::{PatchCell, PatchView};
use crate::engine::{RunFailure, SweepResult};

/// Runs the patching panel's sweep: the prompt (clean) against the corrupted prompt typed in
/// the panel.
pub async fn run_patch(page: Page) {
    if page.patch_progress.get_untracked().is_some() {
        return;
    }
    let Some(engine) = page.engine.get_value() else { return };
    let gen = page.model_gen.get_untracked();
    let corrupted = page.corrupted_text.get_untracked();
    let settings = page.patch_settings.get_untracked();
    let pos = page.pos();
    let analysis = match settings.analysis(pos) {
        Ok(a) => a,
        Err(e) => {
            page.patching.set(Some((gen, Err(e))));
            return;
        }
    };
    page.experiment.update(|e| {
        e.corrupted = Some(corrupted);
        e.analysis = analysis;
    });
    let exp = page.experiment.get_untracked();
    page.patch_progress.set(Some((0, 0)));
    let id = engine.next_id();
    page.sweep_id.set_value(Some(id));
    let result = engine.sweep(id, &exp, None, move |done, total| page.patch_progress.set(Some((done, total)))).await;
    page.patch_progress.set(None);
    if page.model_gen.get_untracked() != gen {
        return;
    }
    let result = match result {
        Ok(SweepResult::Patch(v)) => Ok(Arc::new(*v)),
        Ok(_) => Err("the engine answered with another sweep".to_string()),
        Err(RunFailure::Cancelled) => Err("Cancelled: the sweep stopped before it finished.".to_string()),
        Err(e) => Err(e.to_string()),
    };
    page.patching.set(Some((gen, result)));
}

/// Runs the ablation panel's ablation of the prompt.
pub async fn run_ablation(page: Page) {
    let analysis = page.ablation_settings.get_untracked().analysis();
    run_analysis(page, analysis, page.ablation_running, page.ablation, |r| match r {
        SweepResult::Ablation(v) => Some(*v),
        _ => None,
    })
    .await
}

/// Sets the experiment's `analysis` (or shows why the panel's settings make none), asks the
/// worker for it with `running` set meanwhile, and keeps the view `pick` takes from the answer in
/// `outcome`, for the model generation it ran on. One at a time per panel.
async fn run_analysis<T: Send + Sync + 'static>(
    page: Page,
    analysis: Result<glassbox_core::Analysis, String>,
    running: RwSignal<bool>,
    outcome: RwSignal<Option<Outcome<T>>>,
    pick: fn(SweepResult) -> Option<T>,
) {
    if running.get_untracked() {
        return;
    }
    let Some(engine) = page.engine.get_value() else { return };
    let gen = page.model_gen.get_untracked();
    let analysis = match analysis {
        Ok(a) => a,
        Err(e) => {
            outcome.set(Some((gen, Err(e))));
            return;
        }
    };
    page.experiment.update(|e| e.analysis = analysis);
    let exp = page.experiment.get_untracked();
    running.set(true);
    let id = engine.next_id();
    page.sweep_id.set_value(Some(id));
    let result = engine.sweep(id, &exp, None, |_, _| {}).await;
    running.set(false);
    if page.model_gen.get_untracked() != gen {
        return;
    }
    let result = match result {
        Ok(r) => pick(r).map(Arc::new).ok_or_else(|| "the engine answered with another sweep".to_string()),
        Err(e) => Err(e.to_string()),
    };
    outcome.set(Some((gen, result)));
}

/// Opens one cell of a sweep: the experiment runs with that single patch (from the prompt the
/// sweep copied from), at the metric's position, with the cell's layer and head selected.
pub fn open_cell(page: Page, view: &PatchView, cell: PatchCell) {
    let spec = &view.result.spec;
    let from = match spec.direction {
        Direction::Denoising => Prompt::Clean,
        Direction::Noising => Prompt::Corrupted,
    };
    let iv = InterventionSpec {
        hook: spec.component.hook(cell.layer),
        positions: cell.pos.map(|p| vec![p]),
        head: cell.head,
        neuron: None,
        op: SpecOp::PatchFrom(from),
    };
    let pos = view.result.pos;
    page.experiment.update(|e| {
        e.interventions = vec![iv];
        e.view.pos = Some(pos);
        e.view.layer = Some(cell.layer);
        if let Some(h) = cell.head {
            e.view.head = Some(h);
        }
    });
    spawn_local(run_experiment(page));
}

/// Applies a zero ablation to the page's run (every view then shows the ablated model).
pub fn apply_zero_ablation(page: Page) {
    let Some(model) = page.model.get_untracked() else { return };
    let settings = page.ablation_settings.get_untracked();
    let Ok(glassbox_core::Analysis::Ablate { target, .. }) = settings.analysis() else { return };
    if settings.kind != AblationKind::Zero {
        return;
    }
    let Ok(ivs) = zero_ablation(&model.cfg, &target) else { return };
    page.experiment.update(|e| {
        e.interventions =
            ivs.into_iter().map(|i| InterventionSpec { hook: i.hook, positions: i.positions, head: i.head, neuron: i.neuron, op: SpecOp::Zero }).collect()
    });
    spawn_local(run_experiment(page));
}

/// Removes the run's interventions (the patched or ablated run goes back to the plain one).
pub fn clear_interventions(page: Page) {
    page.experiment.update(|e| e.interventions.clear());
    spawn_local(run_experiment(page));
}

/// Runs the scrubbing panel's hypotheses.
pub async fn run_scrub(page: Page) {
    let analysis = page.scrub_settings.get_untracked().analysis();
    run_analysis(page, analysis, page.scrub_running, page.scrub, |r| match r {
        SweepResult::Scrub(v) => Some(*v),
        _ => None,
    })
    .await
}

/// Generates from the prompt with and without the steering panel's vector.
pub async fn run_steer(page: Page) {
    let analysis = Ok(glassbox_core::Analysis::Steer(page.steer_settings.get_untracked()));
    run_analysis(page, analysis, page.steer_running, page.steer, |r| match r {
        SweepResult::Steer(v) => Some(*v),
        _ => None,
    })
    .await
}
