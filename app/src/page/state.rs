//! The page's state: one [`Experiment`] signal (what the reader is looking at; every control
//! edits it and the URL mirrors it), plus what loading and running produce. Results carry the
//! model generation and the experiment they were computed for, and are shown only while both
//! still match, so a result can never appear under the wrong model or prompt.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use glassbox_core::{Experiment, InterventionSpec, Prompt, SteerSpec};
use leptos::prelude::*;

use crate::analysis::RunView;
use crate::causal::{default_steer, AblationSettings, AblationView, PatchSettings, PatchView, ScrubSettings, ScrubView, SteerView};
use crate::components::{HubLoad, LoadState, NeuronGrid, ScanInfo};
use crate::engine::{CpuReason, EngineClient, ModelSummary};
use crate::inspect::{Inspection, Query};
use crate::models::ModelEntry;

/// Files of the model in use, kept so that a crashed engine can be restarted with them.
pub struct ModelFiles {
    pub files: Vec<(String, Vec<u8>)>,
    pub quantize: Option<String>,
    pub shipped: Option<String>,
}

/// What makes a run's result belong to an experiment: the model generation and everything the
/// run reads (not the selection, which only picks what to show of it).
#[derive(Clone, Debug, PartialEq)]
pub struct RunKey {
    pub model_gen: u64,
    pub prompt: String,
    pub corrupted: Option<String>,
    pub interventions: Vec<InterventionSpec>,
    pub run_prompt: Prompt,
}

impl RunKey {
    pub fn of(e: &Experiment, model_gen: u64) -> RunKey {
        RunKey {
            model_gen,
            prompt: e.prompt.clone(),
            corrupted: e.reads_corrupted().then(|| e.corrupted.clone()).flatten(),
            interventions: e.interventions.clone(),
            run_prompt: e.run_prompt(),
        }
    }

    /// The key of an answer that belongs to the model alone (no prompt, no interventions).
    pub fn of_model(model_gen: u64) -> RunKey {
        RunKey { model_gen, prompt: String::new(), corrupted: None, interventions: Vec::new(), run_prompt: Prompt::Clean }
    }
}

/// A causal view's answer: the model generation it was computed on, and the view or why not.
pub type Outcome<T> = (u64, Result<Arc<T>, String>);

/// A finished run, with what it was computed for.
#[derive(Debug)]
pub struct RunResult {
    pub key: RunKey,
    pub view: Arc<RunView>,
}

/// Two results are the same when they are the same computation (not compared value by value).
impl PartialEq for RunResult {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && Arc::ptr_eq(&self.view, &other.view)
    }
}

/// One inspect view's answer (or why there is none), for the run and query it was asked for.
#[derive(Clone, Debug)]
pub struct Inspected {
    pub key: RunKey,
    pub query: Query,
    /// `None` while it is being computed.
    pub result: Option<Result<Arc<Inspection>, String>>,
}

thread_local! {
    /// The engine in use, for the JS test hook `lose_gpu_device` (bench.rs).
    pub static CURRENT_ENGINE: RefCell<Option<Rc<EngineClient>>> = const { RefCell::new(None) };
}

/// All the page's signals; `Copy`, so it moves into every closure.
#[derive(Clone, Copy)]
pub struct Page {
    /// The shipped model the URL names (the menu's choice).
    pub entry: &'static ModelEntry,
    /// What the reader is looking at.
    pub experiment: RwSignal<Experiment>,
    /// The text in the prompt box (committed into the experiment by Run).
    pub text: RwSignal<String>,
    /// The text in the patching panel's corrupted-prompt box (committed by its Run).
    pub corrupted_text: RwSignal<String>,

    pub load: RwSignal<LoadState>,
    pub model: RwSignal<Option<Arc<ModelSummary>>>,
    /// Counts model switches and engine restarts; results and sweeps carry the generation.
    pub model_gen: RwSignal<u64>,
    pub engine: StoredValue<Option<Rc<EngineClient>>, LocalStorage>,
    pub files: StoredValue<Option<Rc<ModelFiles>>, LocalStorage>,
    pub backend: RwSignal<Option<String>>,
    pub cpu_reason: RwSignal<Option<CpuReason>>,
    /// Why the engine was restarted, when it was.
    pub engine_notice: RwSignal<Option<String>>,
    /// Restarts so far (a model that crashes every time is not restarted forever).
    pub restarts: StoredValue<u32>,
    /// The next change of the experiment amends the URL's history entry instead of adding one:
    /// a run moving the selection to its new last token completes the change that started it
    /// ([`Page::amend_selection`]).
    pub url_amend: StoredValue<bool>,

    /// The last finished run (shown only while its key matches the experiment).
    pub result: RwSignal<Option<Arc<RunResult>>>,
    /// The run in flight: (model generation, request id).
    pub pending: RwSignal<Option<(u64, u64)>>,
    pub prompt_error: RwSignal<Option<String>>,
    pub cut_notice: RwSignal<Option<String>>,
    pub url_notices: RwSignal<Vec<String>>,
    /// The URL follows the experiment once the first run has settled the view (a link opened
    /// on a slow machine is not overwritten while it loads), and only for shipped models.
    pub url_live: RwSignal<bool>,

    /// Modular addition: the neurons' responses over all inputs, and the progress of that sweep.
    pub neuron_grid: RwSignal<Option<Arc<NeuronGrid>>>,
    pub neuron_progress: RwSignal<Option<usize>>,
    /// The corpus scans the worker holds (one per layer; their examples stay there), and the
    /// progress of the scan in flight: (windows done, windows in all).
    pub scans: RwSignal<Vec<ScanInfo>>,
    pub scan_progress: RwSignal<Option<(usize, usize)>>,
    pub scan_error: RwSignal<Option<String>>,
    /// Answers of the inspect views, most recent last (a few kept, so that switching back to a
    /// view is instant); each for a run key and a query.
    pub inspections: RwSignal<Vec<Inspected>>,
    /// The sweep in flight (its request id), for Cancel.
    pub sweep_id: StoredValue<Option<u64>>,

    /// The patching panel's choices, the last sweep's result (for the model generation it ran
    /// on) and the progress of the sweep in flight: (patched runs done, in all).
    pub patch_settings: RwSignal<PatchSettings>,
    pub patching: RwSignal<Option<Outcome<PatchView>>>,
    pub patch_progress: RwSignal<Option<(usize, usize)>>,
    /// The ablation panel's choices, its last result and whether one is running.
    pub ablation_settings: RwSignal<AblationSettings>,
    pub ablation: RwSignal<Option<Outcome<AblationView>>>,
    pub ablation_running: RwSignal<bool>,
    /// A link's experiment on an outside model, waiting for the reader to press Load.
    pub pending_link: RwSignal<Option<Experiment>>,
    /// The share link shown after Copy link, and whether the clipboard took it.
    pub share_link: RwSignal<Option<(String, bool)>>,
    /// The embed snippet shown after Embed.
    pub embed_snippet: RwSignal<Option<String>>,
    /// The scrubbing panel's choices, its last result and whether it runs.
    pub scrub_settings: RwSignal<ScrubSettings>,
    pub scrub: RwSignal<Option<Outcome<ScrubView>>>,
    pub scrub_running: RwSignal<bool>,
    /// The steering panel's choices, its last generations and whether they run.
    pub steer_settings: RwSignal<SteerSpec>,
    pub steer: RwSignal<Option<Outcome<SteerView>>>,
    pub steer_running: RwSignal<bool>,

    /// Loading a model from the hub, a URL or a file (the model in use stays until the new
    /// one runs).
    pub hub_load: RwSignal<HubLoad>,
    pub hub_base: RwSignal<String>,
    /// Whether the load panel's fields are shown (it starts collapsed behind its button).
    pub load_open: RwSignal<bool>,
    /// "name (family, format)" of the outside model in use; None while a shipped one is.
    pub loaded: RwSignal<Option<String>>,
    pub cached: RwSignal<Vec<(String, u64, String)>>,
    pub abort: StoredValue<Option<web_sys::AbortController>, LocalStorage>,
    /// How many files of the load in progress came from the browser's cache.
    pub from_cache: RwSignal<usize>,
    /// The URLs the load in progress has fetched (removed from the cache if they fail to load).
    pub fetched: StoredValue<Vec<String>, LocalStorage>,
}

impl Page {
    pub fn new(entry: &'static ModelEntry, experiment: Experiment, url_notices: Vec<String>, hub_base: String) -> Page {
        let patch_settings = PatchSettings::of(&experiment.analysis).unwrap_or_default();
        let ablation_settings = AblationSettings::of(&experiment.analysis).unwrap_or_default();
        let corrupted_text = experiment.corrupted.clone().unwrap_or_default();
        let scrub_settings = ScrubSettings::of(&experiment.analysis).unwrap_or_default();
        let steer_settings = match &experiment.analysis {
            glassbox_core::Analysis::Steer(s) => s.clone(),
            _ => default_steer(2),
        };
        Page {
            entry,
            text: RwSignal::new(experiment.prompt.clone()),
            corrupted_text: RwSignal::new(corrupted_text),
            experiment: RwSignal::new(experiment),
            load: RwSignal::new(LoadState::Loading(None)),
            model: RwSignal::new(None),
            model_gen: RwSignal::new(0),
            engine: StoredValue::new_local(None),
            files: StoredValue::new_local(None),
            backend: RwSignal::new(None),
            cpu_reason: RwSignal::new(None),
            engine_notice: RwSignal::new(None),
            restarts: StoredValue::new(0),
            url_amend: StoredValue::new(false),
            result: RwSignal::new(None),
            pending: RwSignal::new(None),
            prompt_error: RwSignal::new(None),
            cut_notice: RwSignal::new(None),
            url_notices: RwSignal::new(url_notices),
            url_live: RwSignal::new(false),
            neuron_grid: RwSignal::new(None),
            neuron_progress: RwSignal::new(None),
            scans: RwSignal::new(Vec::new()),
            scan_progress: RwSignal::new(None),
            scan_error: RwSignal::new(None),
            inspections: RwSignal::new(Vec::new()),
            sweep_id: StoredValue::new(None),
            patch_settings: RwSignal::new(patch_settings),
            patching: RwSignal::new(None),
            patch_progress: RwSignal::new(None),
            ablation_settings: RwSignal::new(ablation_settings),
            ablation: RwSignal::new(None),
            ablation_running: RwSignal::new(false),
            pending_link: RwSignal::new(None),
            share_link: RwSignal::new(None),
            embed_snippet: RwSignal::new(None),
            scrub_settings: RwSignal::new(scrub_settings),
            scrub: RwSignal::new(None),
            scrub_running: RwSignal::new(false),
            steer_settings: RwSignal::new(steer_settings),
            steer: RwSignal::new(None),
            steer_running: RwSignal::new(false),
            hub_load: RwSignal::new(HubLoad::Idle),
            hub_base: RwSignal::new(hub_base),
            load_open: RwSignal::new(false),
            loaded: RwSignal::new(None),
            cached: RwSignal::new(Vec::new()),
            abort: StoredValue::new_local(None),
            from_cache: RwSignal::new(0),
            fetched: StoredValue::new_local(Vec::new()),
        }
    }

    /// The result of the current experiment on the current model, if there is one.
    pub fn current_run(&self) -> Option<Arc<RunResult>> {
        let r = self.result.get()?;
        let key = self.experiment.with(|e| RunKey::of(e, self.model_gen.get()));
        (r.key == key).then_some(r)
    }

    /// The last result on the current model, current or not: what the page shows. While the
    /// experiment's own run computes, the previous one stays on screen, marked stale, and its
    /// views are updated in place when the answer comes (rebuilding every view after a blank
    /// was most of a run's cost on the main thread).
    pub fn shown_run(&self) -> Option<Arc<RunResult>> {
        self.result.get().filter(|r| r.key.model_gen == self.model_gen.get())
    }

    /// Whether a run is in flight.
    pub fn running(&self) -> bool {
        self.pending.get().is_some()
    }

    /// The selection, resolved against the model: (pos, layer, head).
    pub fn pos(&self) -> usize {
        self.experiment.with(|e| e.view.pos.unwrap_or(0))
    }
    pub fn layer(&self) -> usize {
        self.experiment.with(|e| e.view.layer.unwrap_or(0))
    }
    pub fn head(&self) -> usize {
        self.experiment.with(|e| e.view.head.unwrap_or(0))
    }
    pub fn neuron(&self) -> usize {
        self.experiment.with(|e| e.view.neuron.unwrap_or(0))
    }

    /// Edits the experiment's selection (a committed change: the URL follows).
    pub fn select(&self, f: impl FnOnce(&mut glassbox_core::Selection)) {
        self.experiment.update(|e| f(&mut e.view));
    }

    /// Edits the selection as part of the change before it (a run placing the position once its
    /// tokens are known): the URL's history entry is amended, not added to. Otherwise Back to an
    /// entry whose run moves the position would add an entry at once, and Back could never go
    /// further (nor Forward anywhere).
    pub fn amend_selection(&self, f: impl FnOnce(&mut glassbox_core::Selection)) {
        self.url_amend.set_value(true);
        self.select(f);
    }
}
