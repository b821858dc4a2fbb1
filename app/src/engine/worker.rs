//! The engine's side of the worker: a dedicated Web Worker runs this same wasm module
//! (`worker.js` imports it and calls [`worker_main`]), holds one model on WebGPU or the CPU,
//! and answers the page's [`Request`]s. All model work happens here, so the page's thread only
//! renders: typing and clicking stay responsive while a model computes.
//!
//! Requests are queued and taken one at a time. A `Run` that has a newer `Run` behind it in the
//! queue is answered `Cancelled` without running (the latest request always runs); `Cancel`
//! and `LoseGpu` act at once, and a sweep looks for its cancellation between batches, where it
//! also yields so that such messages get in. A panic here kills only this worker: the page
//! sees its `error` event, says so and starts another.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use glassbox_core::analysis::attribution::{attribute, AttributionOptions};
use glassbox_core::analysis::heads::{detector_input, head_scores};
use glassbox_core::analysis::hooks_needed;
use glassbox_core::analysis::lens::LensOptions;
use glassbox_core::analysis::neurons::{activations, check_neuron, direct_effect, top_neurons};
use glassbox_core::analysis::scan::TopActivations;
use glassbox_core::experiment::{corpus_windows, task_inputs};
use glassbox_core::weights::MatrixRole;
use glassbox_core::{Analysis, BackendChoice, CacheSpec, Experiment, InterventionSpec, ModelBundle, Prompt, RunOutput, RunRequest};
use gloo_events::EventListener;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::causal;
use super::local::{lose_gpu_device, Engine};
use super::protocol::{ExportFile, ModelSummary, Reply, Request, RunFailure, RunReply, SweepResult};
use crate::analysis::{pattern_hook, RunView};
use crate::fourier::embedding_frequency_norms;
use crate::inspect::{activation_label, resolve_token, AttributionView, HeadsView, Inspection, LayerScan, LensView, NeuronView, NeuronsView, Query};
use crate::models::{find_model, ModelEntry, MODULAR};
use crate::prompt::{self, PromptError};

/// Task inputs per batch of a task sweep (16 values of a for modular addition).
const TASK_CHUNK: usize = 16 * 113;
/// Corpus windows per batch of a corpus scan.
const SCAN_CHUNK: usize = 8;
/// Tokens per corpus window (BOS included; the model's context if shorter): short windows keep
/// a scan's attention cheap, and an example needs only its neighbourhood.
const SCAN_WINDOW: usize = 128;
/// Context kept around each top-activating example: tokens before and after the max.
const EXAMPLE_BEFORE: usize = 12;
const EXAMPLE_AFTER: usize = 4;

/// The model this worker holds.
struct Loaded {
    engine: Rc<Engine>,
    /// The CPU engine sweeps use on a software WebGPU adapter (made once, see `sweep_engine`).
    sweep_cpu: Option<Rc<Engine>>,
    /// The parsed files, kept so that a lost GPU can be replaced by the CPU.
    bundle: Rc<ModelBundle>,
    shipped: Option<&'static ModelEntry>,
}

/// What a run read: its result answers a view only for the same prompt and interventions.
#[derive(Clone, PartialEq)]
struct RunKey {
    prompt: String,
    corrupted: Option<String>,
    interventions: Vec<InterventionSpec>,
    run_prompt: Prompt,
}

impl RunKey {
    fn of(e: &Experiment) -> RunKey {
        RunKey {
            prompt: e.prompt.clone(),
            corrupted: e.reads_corrupted().then(|| e.corrupted.clone()).flatten(),
            interventions: e.interventions.clone(),
            run_prompt: e.run_prompt(),
        }
    }
}

/// The last run, with every hook the inspect views read cached (`analysis::hooks_needed`).
struct LastRun {
    key: RunKey,
    ids: Vec<u32>,
    out: Rc<RunOutput>,
}

#[derive(Default)]
struct State {
    model: Option<Loaded>,
    last: Option<LastRun>,
    /// Finished corpus scans, one per layer, kept while the model is.
    scans: Vec<Rc<LayerScan>>,
    queue: VecDeque<(Request, Vec<Vec<u8>>)>,
    busy: bool,
    cancelled: HashSet<u64>,
}

type Shared = Rc<RefCell<State>>;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub(super) fn post(reply: &Reply) {
    match serde_wasm_bindgen::to_value(reply) {
        Ok(v) => {
            let _ = scope().post_message(&v);
        }
        Err(e) => web_sys::console::error_1(&format!("glassbox worker: reply not sent: {e}").into()),
    }
}

/// Whether this code runs in a dedicated worker (not in the page).
pub fn in_worker() -> bool {
    js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>().is_ok()
}

/// The worker's entry point, called by `worker.js` once the module is initialized.
#[wasm_bindgen]
pub fn worker_main() {
    // A panic is logged, then reported to the page before the trap ends this worker.
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(&Reply::Panicked(info.to_string()));
    }));
    let state: Shared = Rc::new(RefCell::new(State::default()));
    let listener = EventListener::new(&scope(), "message", move |ev| {
        let ev: &MessageEvent = ev.unchecked_ref();
        let data = ev.data();
        let req = js_sys::Reflect::get(&data, &"req".into()).ok().and_then(|r| serde_wasm_bindgen::from_value::<Request>(r).ok());
        let Some(req) = req else {
            web_sys::console::error_1(&"glassbox worker: a message that is not a request".into());
            return;
        };
        let files: Vec<Vec<u8>> = js_sys::Reflect::get(&data, &"files".into())
            .ok()
            .filter(|f| f.is_array())
            .map(|f| js_sys::Array::from(&f).iter().map(|b| js_sys::Uint8Array::new(&b).to_vec()).collect())
            .unwrap_or_default();
        match req {
            Request::Cancel { id } => {
                state.borrow_mut().cancelled.insert(id);
            }
            Request::LoseGpu => {
                lose_gpu_device();
            }
            Request::Crash => panic!("the page asked the engine to crash (a test)"),
            req => {
                state.borrow_mut().queue.push_back((req, files));
                if !state.borrow().busy {
                    wasm_bindgen_futures::spawn_local(work(state.clone()));
                }
            }
        }
    });
    listener.forget(); // the worker lives as long as its listener
    post(&Reply::Started);
}

/// Takes requests off the queue until it is empty.
async fn work(state: Shared) {
    state.borrow_mut().busy = true;
    loop {
        let next = {
            let mut s = state.borrow_mut();
            let next = s.queue.pop_front();
            // A run with a newer run queued behind it is superseded: answer it, skip it.
            if let Some((Request::Run { id, .. }, _)) = &next {
                if s.queue.iter().any(|(r, _)| matches!(r, Request::Run { .. })) {
                    let id = *id;
                    drop(s);
                    post(&Reply::Ran { id, result: Err(RunFailure::Cancelled) });
                    continue;
                }
            }
            next
        };
        let Some((req, files)) = next else { break };
        match req {
            Request::Load { id, names, quantize, backend, shipped } => {
                // The model this worker held (if any) goes first: one device at a time.
                {
                    let mut s = state.borrow_mut();
                    s.model = None;
                    s.last = None;
                    s.scans.clear();
                }
                let result = load(names.into_iter().zip(files).collect(), quantize, backend, shipped).await;
                let reply = match result {
                    Ok((loaded, summary)) => {
                        state.borrow_mut().model = Some(loaded);
                        Ok(summary)
                    }
                    Err(e) => Err(e),
                };
                post(&Reply::Loaded { id, result: reply });
            }
            Request::Run { id, experiment } => {
                let result = if state.borrow_mut().cancelled.remove(&id) { Err(RunFailure::Cancelled) } else { run(&state, &experiment).await };
                post(&Reply::Ran { id, result });
            }
            Request::Sweep { id, experiment, corpus } => {
                let result = sweep(&state, id, &experiment, corpus).await;
                state.borrow_mut().cancelled.remove(&id);
                post(&Reply::Swept { id, result });
            }
            Request::Inspect { id, experiment, query } => {
                let result = inspect(&state, &experiment, query).await;
                post(&Reply::Inspected { id, result });
            }
            Request::Export { id, experiment, hook } => {
                let result = export(&state, &experiment, hook).await;
                post(&Reply::Exported { id, result });
            }
            Request::Cancel { .. } | Request::LoseGpu | Request::Crash => {}
        }
    }
    state.borrow_mut().busy = false;
}

/// Parses the files into a model and starts it.
async fn load(
    files: Vec<(String, Vec<u8>)>,
    quantize: Option<String>,
    backend: BackendChoice,
    shipped: Option<String>,
) -> Result<(Loaded, ModelSummary), String> {
    let quantize = match quantize.as_deref() {
        None | Some("" | "none") => None,
        Some(q) => Some(q.parse::<glassbox_core::QuantizeOnLoad>().map_err(|e| format!("{e}."))?),
    };
    let bundle = ModelBundle::from_files(&files, quantize).map_err(|e| format!("Could not read the model (the files are damaged or do not match): {e}."))?;
    drop(files);
    let (engine, cpu_reason) = Engine::start(&bundle, backend).await.map_err(|e| format!("Could not start the model: {e}."))?;
    let shipped = shipped.as_deref().and_then(find_model);
    let cfg = bundle.cfg.clone();
    let embedding_norms = match shipped {
        Some(m) if m.id == MODULAR => {
            embedding_frequency_norms(&bundle.weights.W_E.dense(MatrixRole::Table).map(|t| t.data).unwrap_or_default(), cfg.d_vocab_out, cfg.d_model)
        }
        _ => Vec::new(),
    };
    let vocabulary_help = match bundle.tokenizer.help() {
        Some(h) => h.to_string(),
        None => format!("Type a prompt. The model knows {}.", bundle.card.get("vocabulary").and_then(|v| v.as_str()).unwrap_or("its vocabulary")),
    };
    let summary = ModelSummary {
        cfg,
        card: bundle.card.clone(),
        vocabulary_help,
        has_readout: bundle.tokenizer.outputs().is_some(),
        pad: bundle.tokenizer.pad_id(),
        backend: engine.backend_label(),
        cpu_reason,
        embedding_norms,
    };
    Ok((Loaded { engine: Rc::new(engine), sweep_cpu: None, bundle: Rc::new(bundle), shipped }, summary))
}

pub(super) fn engine_failure(e: impl std::fmt::Display) -> RunFailure {
    RunFailure::Engine(format!("The run failed: {e}"))
}

/// The inspect run of an experiment: its prompt with its interventions (after the runs its
/// patches copy from), caching every layer's attention pattern.
async fn run(state: &Shared, exp: &Experiment) -> Result<RunReply, RunFailure> {
    let Some((engine, bundle, shipped)) = state.borrow().model.as_ref().map(|m| (m.engine.clone(), m.bundle.clone(), m.shipped)) else {
        return Err(RunFailure::Engine("No model is loaded.".into()));
    };
    // Every hook the inspect views read (the attention patterns among them), so that switching
    // views does not run the model again.
    let cache = CacheSpec::Names(hooks_needed(&bundle.cfg));
    let ran = match run_on(&engine, &bundle, shipped, exp, cache.clone()).await {
        Err(RunFailure::Engine(e)) if engine.is_gpu() => {
            // The GPU failed mid-session (device lost, driver reset, out of memory): move to the
            // CPU with the weights already in memory, say so, and run again.
            let (cpu, _) = Engine::start(&bundle, BackendChoice::Cpu)
                .await
                .map_err(|e2| RunFailure::Engine(format!("The run failed on the GPU ({e}) and the CPU could not start ({e2})")))?;
            let cpu = Rc::new(cpu);
            post(&Reply::BackendChanged { label: cpu.backend_label(), reason: format!("the GPU stopped working during a run ({e})") });
            if let Some(m) = state.borrow_mut().model.as_mut() {
                m.engine = cpu.clone();
                m.sweep_cpu = None;
            }
            run_on(&cpu, &bundle, shipped, exp, cache).await
        }
        other => other,
    };
    let (reply, ids, out) = ran?;
    state.borrow_mut().last = Some(LastRun { key: RunKey::of(exp), ids, out: Rc::new(out) });
    Ok(reply)
}

/// The experiment's run (its prompt with its interventions, as the inspect run) made again with
/// every hook cached (or only `hook`), as numpy files: `core::export` (batch axis included).
async fn export(state: &Shared, exp: &Experiment, hook: Option<String>) -> Result<ExportFile, RunFailure> {
    let Some((engine, bundle, shipped)) = state.borrow().model.as_ref().map(|m| (m.engine.clone(), m.bundle.clone(), m.shipped)) else {
        return Err(RunFailure::Engine("No model is loaded.".into()));
    };
    let cache = match &hook {
        Some(h) if glassbox_core::hook_point(&bundle.cfg, h).is_none() => {
            return Err(RunFailure::Prompt(format!("This model has no hook named \u{201c}{h}\u{201d}.")));
        }
        Some(h) => CacheSpec::Names(vec![h.clone()]),
        None => CacheSpec::All,
    };
    let (_, _, out) = run_on(&engine, &bundle, shipped, exp, cache).await?;
    let failed = |e: glassbox_core::Error| RunFailure::Engine(format!("The export failed: {e}"));
    match hook {
        Some(h) => Ok(ExportFile { bytes: glassbox_core::export::hook_npy(&out, &h).map_err(failed)?, name: glassbox_core::export::npy_name(&h), arrays: 1 }),
        None => {
            Ok(ExportFile { bytes: glassbox_core::export::cache_npz(&out).map_err(failed)?, name: "glassbox-activations.npz".into(), arrays: out.cache.len() })
        }
    }
}

/// Tokenizes a prompt for `bundle`'s model (cut to its context), checking a shipped model's
/// prompt form (e.g. "a + b =", which binds only that model).
pub(super) fn prepare_text(bundle: &ModelBundle, shipped: Option<&'static ModelEntry>, text: &str) -> Result<prompt::Prepared, RunFailure> {
    let prepared = prompt::prepare(text, &bundle.tokenizer, bundle.cfg.n_ctx).map_err(|e| RunFailure::Prompt(e.to_string()))?;
    if let Some(entry) = shipped {
        (entry.check_form)(&prepared.ids).map_err(|m| RunFailure::Prompt(PromptError::Form(m).to_string()))?;
    }
    Ok(prepared)
}

async fn run_on(
    engine: &Engine,
    bundle: &ModelBundle,
    shipped: Option<&'static ModelEntry>,
    exp: &Experiment,
    cache: CacheSpec,
) -> Result<(RunReply, Vec<u32>, RunOutput), RunFailure> {
    let cfg = &bundle.cfg;
    let text_of = |p: Prompt| match p {
        Prompt::Clean => exp.prompt.clone(),
        Prompt::Corrupted => exp.corrupted.clone().unwrap_or_default(),
    };
    let prepare = |text: &str| prepare_text(bundle, shipped, text);
    let text = text_of(exp.run_prompt());
    let prepared = prepare(&text)?;
    let mut sources: Vec<(Prompt, RunOutput)> = Vec::new();
    for (p, hooks) in exp.patch_sources() {
        let src = prepare(&text_of(p))?;
        let out = engine.run(&RunRequest::new(src.ids).with_cache(CacheSpec::Names(hooks))).await.map_err(engine_failure)?;
        sources.push((p, out));
    }
    let batch = exp
        .lower_run(prepared.ids.clone(), cache, |p, _| sources.iter().find(|(q, _)| *q == p).map(|(_, o)| o))
        .map_err(|e| RunFailure::Prompt(e.to_string()))?;
    let t0 = js_sys::Date::now();
    let out = engine.run_batch(&batch).await.map_err(engine_failure)?.remove(0);
    let elapsed = js_sys::Date::now() - t0;
    let view = RunView::from_output(&text, prepared.ids.clone(), &out, cfg.n_layers, &bundle.tokenizer, elapsed);
    Ok((RunReply { view, cut_notice: prepared.cut.map(|c| c.message(cfg.n_ctx)) }, prepared.ids, out))
}

/// The engine for a large batched sweep: the model's own, except on a software WebGPU adapter,
/// which runs such sweeps about 100 times slower than the wasm CPU path (headless Chromium on
/// SwiftShader: minutes against 3 seconds). There a CPU engine is made once from the weights
/// already in memory and kept for later sweeps.
async fn sweep_engine(state: &Shared) -> Option<(Rc<Engine>, Rc<ModelBundle>)> {
    let (engine, bundle, cpu) = state.borrow().model.as_ref().map(|m| (m.engine.clone(), m.bundle.clone(), m.sweep_cpu.clone()))?;
    if !engine.is_software_gpu() {
        return Some((engine, bundle));
    }
    if let Some(cpu) = cpu {
        return Some((cpu, bundle));
    }
    match Engine::start(&bundle, BackendChoice::Cpu).await {
        Ok((cpu, _)) => {
            let cpu = Rc::new(cpu);
            if let Some(m) = state.borrow_mut().model.as_mut() {
                m.sweep_cpu = Some(cpu.clone());
            }
            Some((cpu, bundle))
        }
        Err(_) => Some((engine, bundle)),
    }
}

/// Lets the worker take messages (a cancel) before the next batch.
pub(super) async fn yield_now() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Runs an experiment's sweep batch by batch, with progress, stopping when cancelled.
async fn sweep(state: &Shared, id: u64, exp: &Experiment, corpus: Option<(String, String)>) -> Result<SweepResult, RunFailure> {
    let (engine, bundle) = sweep_engine(state).await.ok_or_else(|| RunFailure::Engine("No model is loaded.".into()))?;
    let shipped = state.borrow().model.as_ref().and_then(|m| m.shipped);
    match &exp.analysis {
        Analysis::Patch { .. } => {
            let cancelled = || state.borrow().cancelled.contains(&id);
            return causal::patch_sweep(&engine, &bundle, shipped, exp, id, cancelled).await.map(|v| SweepResult::Patch(Box::new(v)));
        }
        Analysis::Ablate { .. } => return causal::ablation(&engine, &bundle, shipped, exp).await.map(|v| SweepResult::Ablation(Box::new(v))),
        Analysis::PathPatch { .. } => {
            let cancelled = || state.borrow().cancelled.contains(&id);
            return causal::path_patch_sweep(&engine, &bundle, shipped, exp, id, cancelled).await.map(|v| SweepResult::Patch(Box::new(v)));
        }
        Analysis::Scrub { .. } => return causal::scrub_run(&engine, &bundle, shipped, exp).await.map(|v| SweepResult::Scrub(Box::new(v))),
        Analysis::Steer(_) => return causal::steer_run(&engine, &bundle, shipped, exp).await.map(|v| SweepResult::Steer(Box::new(v))),
        _ => {}
    }
    let cfg = &bundle.cfg;
    let fail = |e: glassbox_core::Error| RunFailure::Engine(e.to_string());
    let scan = match &exp.analysis {
        Analysis::Inspect | Analysis::Patch { .. } | Analysis::Ablate { .. } | Analysis::PathPatch { .. } | Analysis::Scrub { .. } | Analysis::Steer(_) => {
            return Err(RunFailure::Engine("not a sweep".into()))
        }
        Analysis::TaskSweep { .. } => None,
        Analysis::CorpusScan { layer } => {
            check_neuron(cfg, *layer, 0).map_err(|e| RunFailure::Prompt(e.to_string()))?;
            let (what, text) = corpus.ok_or_else(|| RunFailure::Engine("A corpus scan needs the corpus text.".into()))?;
            let ids = bundle.tokenizer.encode(&text).map_err(|e| RunFailure::Prompt(format!("The corpus cannot be read by this model: {e}")))?;
            let ids = &ids[usize::from(bundle.tokenizer.bos().is_some())..];
            if ids.is_empty() {
                return Err(RunFailure::Prompt("The corpus is empty: there is nothing to scan.".into()));
            }
            // Windows of equal length (one batch shape); a text shorter than one window is one
            // window of its own length.
            let window = cfg.n_ctx.min(SCAN_WINDOW).min(ids.len() + 1);
            Some((*layer, what, corpus_windows(ids, bundle.tokenizer.bos().unwrap_or(0), window)))
        }
    };
    let (inputs, chunk) = match &scan {
        Some((_, _, windows)) => (windows.clone(), SCAN_CHUNK),
        None => (task_inputs(cfg), TASK_CHUNK),
    };
    let d_mlp = cfg.d_mlp.ok_or_else(|| RunFailure::Engine("This model has no MLP neurons.".into()))?;
    // A scan reads one layer: run only the blocks up to it.
    let engine = match &scan {
        Some((layer, _, _)) => Rc::new(engine.truncated(*layer).map_err(fail)?),
        None => engine,
    };
    let batches = exp.sweep_batches(cfg, &inputs, chunk).map_err(fail)?;
    let total = inputs.len();
    let mut done = 0;
    let mut acts = Vec::new();
    let mut top = TopActivations::new(d_mlp, 10, EXAMPLE_BEFORE, EXAMPLE_AFTER);
    let mut width = d_mlp;
    for batch in &batches {
        post(&Reply::Progress { id, done, total });
        yield_now().await;
        if state.borrow_mut().cancelled.remove(&id) {
            return Err(RunFailure::Cancelled);
        }
        let outs = engine.run_batch(batch).await.map_err(fail)?;
        for (i, out) in outs.iter().enumerate() {
            let t = out.cache.first().map(|(_, t)| t).ok_or_else(|| RunFailure::Engine("the sweep's hook was not cached".into()))?; // [pos, width]
            width = t.shape[1];
            match &scan {
                // Position 0 is the BOS (or, for a model without one, token 0) each window starts with.
                Some(_) => top.add((done + i) as u32, &t.data, |p| p > 0),
                None => acts.extend_from_slice(t.row(t.shape[0] - 1)),
            }
        }
        done += batch.items.len();
    }
    Ok(match scan {
        Some((layer, what, windows)) => {
            let tokens_scanned = top.tokens_scanned;
            let n = windows.len();
            let mut s = state.borrow_mut();
            s.scans.retain(|x| x.layer != layer);
            s.scans.push(Rc::new(LayerScan { layer, what: what.clone(), windows, top }));
            SweepResult::Scan { layer, what, tokens_scanned, windows: n }
        }
        None => SweepResult::Grid { p: cfg.d_vocab_out, d_mlp: width, acts },
    })
}

/// The last run of `exp`'s prompt, running it first when the worker has not.
async fn last_run(state: &Shared, exp: &Experiment) -> Result<(Vec<u32>, Rc<RunOutput>), RunFailure> {
    let key = RunKey::of(exp);
    let have = |state: &Shared| state.borrow().last.as_ref().filter(|l| l.key == key).map(|l| (l.ids.clone(), l.out.clone()));
    if let Some(x) = have(state) {
        return Ok(x);
    }
    run(state, exp).await?;
    have(state).ok_or_else(|| RunFailure::Engine("the run was not kept".into()))
}

/// What one inspect view shows (see `crate::inspect`). A request the reader got wrong (a token
/// the vocabulary lacks, an index out of range) fails with a `Prompt` message for the view.
async fn inspect(state: &Shared, exp: &Experiment, query: Query) -> Result<Inspection, RunFailure> {
    let (ids, out) = last_run(state, exp).await?;
    let (engine, bundle) =
        state.borrow().model.as_ref().map(|m| (m.engine.clone(), m.bundle.clone())).ok_or_else(|| RunFailure::Engine("No model is loaded.".into()))?;
    let cfg = &bundle.cfg;
    let tok = &bundle.tokenizer;
    let reader = |e: glassbox_core::Error| RunFailure::Prompt(e.to_string());
    let token = |t: &str| resolve_token(tok, cfg.d_vocab_out, t.trim_end_matches('\n')).map_err(RunFailure::Prompt);
    let n = ids.len();
    let top_at = |pos: usize| out.top_k(pos, 1).first().map_or(0, |x| x.0);
    Ok(match query {
        Query::Lens { norm, incl_mid, target } => {
            let target = match target.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => token(t)?,
                None => top_at(n - 1),
            };
            let opts = LensOptions { norm, incl_mid, top_k: 5, target: Some(target) };
            let lens = engine.logit_lens(&bundle, &out, &opts).await.map_err(engine_failure)?;
            Inspection::Lens(LensView::new(lens, tok))
        }
        Query::Attribute { pos, target, distractor, fold_ln, center_unembed } => {
            if pos >= n {
                return Err(RunFailure::Prompt(format!("Position {pos} is out of range: the prompt has {n} tokens.")));
            }
            let target = match target.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => token(t)?,
                None => top_at(pos),
            };
            let distractor = distractor.as_deref().filter(|t| !t.is_empty()).map(token).transpose()?;
            if distractor == Some(target) {
                return Err(RunFailure::Prompt("The target and the distractor are the same token.".into()));
            }
            let opts = AttributionOptions { pos, target, distractor, fold_ln, center_unembed };
            Inspection::Attribute(AttributionView::new(attribute(cfg, &bundle.weights, &out, &opts).map_err(reader)?, tok))
        }
        Query::Heads { repeated: false } => Inspection::Heads(HeadsView::new(head_scores(cfg, &out, &ids).map_err(reader)?, tok, false)),
        Query::Heads { repeated: true } => {
            let tokens = detector_input(cfg, tok.bos());
            let patterns: Vec<String> = (0..cfg.n_layers).map(pattern_hook).collect();
            let names: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let run = engine.run(&RunRequest::new(tokens.clone()).cache(&names)).await.map_err(engine_failure)?;
            Inspection::Heads(HeadsView::new(head_scores(cfg, &run, &tokens).map_err(reader)?, tok, true))
        }
        Query::Neurons { layer, k } => {
            let d_mlp = check_neuron(cfg, layer, 0).map_err(reader)?;
            let neurons: Vec<u32> = top_neurons(cfg, &out, layer, k.min(d_mlp)).map_err(reader)?.into_iter().map(|(i, _)| i).collect();
            let mut acts = Vec::with_capacity(neurons.len() * n);
            for &i in &neurons {
                acts.extend(activations(cfg, &out, layer, i as usize).map_err(reader)?);
            }
            Inspection::Neurons(NeuronsView { layer, neurons, n_pos: n, acts, activation: activation_label(layer, cfg.gated_mlp) })
        }
        Query::Neuron { layer, neuron, pos } => {
            let d_mlp = check_neuron(cfg, layer, neuron).map_err(reader)?;
            let pos = pos.min(n - 1);
            let effect = direct_effect(cfg, &bundle.weights, &out, layer, neuron, pos, 10).map_err(reader)?;
            let (promoted, suppressed) = NeuronView::effect(effect, tok);
            let scan = state.borrow().scans.iter().find(|s| s.layer == layer).cloned();
            Inspection::Neuron(NeuronView {
                layer,
                neuron,
                d_mlp,
                acts: activations(cfg, &out, layer, neuron).map_err(reader)?,
                activation: activation_label(layer, cfg.gated_mlp),
                pos,
                promoted,
                suppressed,
                examples: scan.as_ref().map(|s| s.examples(neuron, tok)),
                scanned: scan.map(|s| s.what.clone()),
            })
        }
    })
}
