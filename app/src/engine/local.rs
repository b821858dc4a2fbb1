//! The model on whichever backend this thread can run it: WebGPU when there is an adapter,
//! the CPU (wasm) otherwise, behind one async `run_batch`. It lives in the engine's worker
//! (`worker.rs`); the page never holds one (the in-page benchmark in `bench.rs` does, to time
//! the forward pass alone). wgpu values are not `Send` on wasm32, so an `Engine` lives in
//! local (single-threaded) storage.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use glassbox_core::analysis::lens::{logit_lens, LensOptions, LogitLens};
use glassbox_core::analysis::patching::{self, AblationKind, AblationResult, AblationTarget, Metric, PatchResult, PatchSpec};
use glassbox_core::analysis::path_patching::{path_patch, PathPatchResult, PathPatchSpec};
use glassbox_core::analysis::scrubbing::{self, CausalVariable, Dataset, Hypothesis, InterchangeResult, ScrubOptions, ScrubResult, Site};
use glassbox_core::generate::{self, GenerateOptions, Generation, Steering};
use glassbox_core::tasks::induction_heldout_accuracy_with;
use glassbox_core::Intervention;
use glassbox_core::{Backend, BackendChoice, BatchRequest, CpuBackend, GpuAdapter, GpuBackend, HookedTransformer, ModelBundle, Result, RunOutput, RunRequest};

pub use super::protocol::CpuReason;

thread_local! {
    /// The GPU backend in use, for [`lose_gpu_device`] (tests of the lost-device fallback);
    /// weak, so that it never keeps a replaced model's device alive.
    static ACTIVE_GPU: RefCell<Weak<GpuBackend>> = const { RefCell::new(Weak::new()) };
}

/// Destroys the WebGPU device in use, as a lost GPU would; false when none is in use.
pub fn lose_gpu_device() -> bool {
    ACTIVE_GPU.with(|g| g.borrow().upgrade().map(|b| b.destroy_device()).is_some())
}

/// A model uploaded to a backend.
pub enum Engine {
    Cpu { backend: CpuBackend, model: HookedTransformer<CpuBackend> },
    Gpu { backend: Rc<GpuBackend>, model: HookedTransformer<GpuBackend> },
}

impl Engine {
    /// Uploads the model to the backend `choice` asks for: the CPU when forced; WebGPU when
    /// forced (the CPU only if WebGPU fails); by default WebGPU on a hardware adapter and the
    /// CPU where WebGPU fails or the adapter is a software one (SwiftShader: a forward pass of
    /// the English model took 6-12 s there against 30-90 ms on our CPU path). Returns the
    /// engine, and why it is on the CPU when it is.
    pub async fn start(bundle: &ModelBundle, choice: BackendChoice) -> Result<(Engine, Option<CpuReason>)> {
        let reason = if choice == BackendChoice::Cpu {
            CpuReason::Forced
        } else {
            match GpuAdapter::request().await {
                // A software adapter (SwiftShader) is judged before any device or pipeline is
                // made on it: compiling the pipelines alone took seconds of the cold load.
                Ok(adapter) if choice == BackendChoice::Auto && adapter.is_software() => {
                    CpuReason::SoftwareGpu(tidy_adapter_name(&format!("WebGPU ({})", adapter.name())))
                }
                Ok(adapter) => match Self::start_gpu(bundle, adapter).await {
                    Ok(engine) => return Ok((engine, None)),
                    Err(e) => CpuReason::GpuFailed(e.to_string()),
                },
                Err(e) => CpuReason::GpuFailed(e.to_string()),
            }
        };
        let backend = CpuBackend::new();
        let model = HookedTransformer::new(&backend, bundle.cfg.clone(), &bundle.weights)?;
        Ok((Engine::Cpu { backend, model }, Some(reason)))
    }

    async fn start_gpu(bundle: &ModelBundle, adapter: GpuAdapter) -> Result<Engine> {
        let backend = Rc::new(GpuBackend::with_adapter(adapter).await?);
        let model = HookedTransformer::new(&*backend, bundle.cfg.clone(), &bundle.weights)?;
        // One tiny run builds the pipelines and proves the device computes, so that a GPU that
        // fails here falls back to the CPU instead of failing the user's first prompt.
        let first = bundle.tokenizer.bos().unwrap_or(0);
        model.run(&*backend, &RunRequest::new(vec![first])).await?;
        ACTIVE_GPU.with(|g| *g.borrow_mut() = Rc::downgrade(&backend));
        Ok(Engine::Gpu { backend, model })
    }

    /// Runs one request on this engine's backend.
    pub async fn run(&self, req: &RunRequest) -> Result<RunOutput> {
        match self {
            Engine::Cpu { backend, model } => model.run(backend, req).await,
            Engine::Gpu { backend, model } => model.run(&**backend, req).await,
        }
    }

    /// Runs a batch whose items carry their own interventions and cache specs.
    pub async fn run_batch(&self, batch: &BatchRequest) -> Result<Vec<RunOutput>> {
        match self {
            Engine::Cpu { backend, model } => model.run_batch(backend, batch).await,
            Engine::Gpu { backend, model } => model.run_batch(&**backend, batch).await,
        }
    }

    /// The logit lens of `out` (see `glassbox_core::analysis::lens`): the norm on the host,
    /// the unembedding on this engine's backend.
    pub async fn logit_lens(&self, bundle: &ModelBundle, out: &RunOutput, opts: &LensOptions) -> Result<LogitLens> {
        match self {
            Engine::Cpu { backend, model } => logit_lens(model, backend, &bundle.weights, out, opts).await,
            Engine::Gpu { backend, model } => logit_lens(model, &**backend, &bundle.weights, out, opts).await,
        }
    }

    /// An activation patching sweep (`glassbox_core::analysis::patching::patch`) on this
    /// engine; `progress` is awaited after every chunk, `cancel` read before each.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        clean: &[u32],
        corrupted: &[u32],
        spec: &PatchSpec,
        chunk: usize,
        progress: impl AsyncFnMut(usize, usize),
        cancel: impl Fn() -> bool,
    ) -> Result<Option<PatchResult>> {
        match self {
            Engine::Cpu { backend, model } => patching::patch(model, backend, clean, corrupted, spec, chunk, progress, cancel).await,
            Engine::Gpu { backend, model } => patching::patch(model, &**backend, clean, corrupted, spec, chunk, progress, cancel).await,
        }
    }

    /// An ablation (`glassbox_core::analysis::patching::ablate`) on this engine.
    #[allow(clippy::too_many_arguments)]
    pub async fn ablate(
        &self,
        prompt: &[u32],
        target: &AblationTarget,
        kind: AblationKind,
        dataset: &[Vec<u32>],
        metric: &Metric,
        pos: Option<usize>,
        chunk: usize,
    ) -> Result<AblationResult> {
        match self {
            Engine::Cpu { backend, model } => patching::ablate(model, backend, prompt, target, kind, dataset, metric, pos, chunk).await,
            Engine::Gpu { backend, model } => patching::ablate(model, &**backend, prompt, target, kind, dataset, metric, pos, chunk).await,
        }
    }

    /// A path-patching sweep (`glassbox_core::analysis::path_patching::path_patch`) on this
    /// engine; `progress` is awaited after every chunk of senders, `cancel` read before each.
    #[allow(clippy::too_many_arguments)]
    pub async fn path_patch(
        &self,
        clean: &[u32],
        corrupted: &[u32],
        spec: &PathPatchSpec,
        chunk: usize,
        progress: impl AsyncFnMut(usize, usize),
        cancel: impl Fn() -> bool,
    ) -> Result<Option<PathPatchResult>> {
        match self {
            Engine::Cpu { backend, model } => path_patch(model, backend, clean, corrupted, spec, chunk, progress, cancel).await,
            Engine::Gpu { backend, model } => path_patch(model, &**backend, clean, corrupted, spec, chunk, progress, cancel).await,
        }
    }

    /// Causal scrubbing of one hypothesis (`glassbox_core::analysis::scrubbing::scrub`).
    pub async fn scrub(&self, data: &Dataset, hypothesis: &Hypothesis, opts: &ScrubOptions) -> Result<ScrubResult> {
        match self {
            Engine::Cpu { backend, model } => scrubbing::scrub(model, backend, data, hypothesis, opts).await,
            Engine::Gpu { backend, model } => scrubbing::scrub(model, &**backend, data, hypothesis, opts).await,
        }
    }

    /// Interchange intervention accuracy of one node swap
    /// (`glassbox_core::analysis::scrubbing::interchange_accuracy`).
    #[allow(clippy::too_many_arguments)]
    pub async fn interchange(
        &self,
        data: &Dataset,
        site: Site,
        positions: Option<Vec<usize>>,
        variable: CausalVariable,
        pairs: usize,
        seed: u64,
        chunk: usize,
    ) -> Result<InterchangeResult> {
        match self {
            Engine::Cpu { backend, model } => scrubbing::interchange_accuracy(model, backend, data, site, positions, variable, pairs, seed, chunk).await,
            Engine::Gpu { backend, model } => scrubbing::interchange_accuracy(model, &**backend, data, site, positions, variable, pairs, seed, chunk).await,
        }
    }

    /// Generation after `prompt` with the KV cache, steered or not (`glassbox_core::generate`).
    pub async fn generate(&self, prompt: &[u32], opts: &GenerateOptions, steering: Option<&Steering>) -> Result<Generation> {
        match self {
            Engine::Cpu { backend, model } => generate::generate(model, backend, prompt, opts, steering).await,
            Engine::Gpu { backend, model } => generate::generate(model, &**backend, prompt, opts, steering).await,
        }
    }

    /// ActAdd's steering vector from a prompt pair (`glassbox_core::generate::actadd`).
    pub async fn actadd(&self, plus: &[u32], minus: &[u32], pad: u32, layer: usize, coeff: f32) -> Result<Steering> {
        match self {
            Engine::Cpu { backend, model } => generate::actadd(model, backend, plus, minus, pad, layer, coeff).await,
            Engine::Gpu { backend, model } => generate::actadd(model, &**backend, plus, minus, pad, layer, coeff).await,
        }
    }

    /// The induction model's held-out accuracy with `interventions` on every sequence
    /// (`glassbox_core::tasks::induction_heldout_accuracy_with`).
    pub async fn induction_accuracy(&self, seed: u64, n: usize, interventions: &[Intervention]) -> Result<f32> {
        match self {
            Engine::Cpu { backend, model } => induction_heldout_accuracy_with(model, backend, seed, n, interventions).await,
            Engine::Gpu { backend, model } => induction_heldout_accuracy_with(model, &**backend, seed, n, interventions).await,
        }
    }

    /// This engine's model cut after block `layer` (`HookedTransformer::truncated`), on the same
    /// backend and weights: a scan of one layer runs only the blocks up to it.
    pub fn truncated(&self, layer: usize) -> Result<Engine> {
        Ok(match self {
            Engine::Cpu { backend, model } => Engine::Cpu { backend: backend.clone(), model: model.truncated(backend, layer)? },
            Engine::Gpu { backend, model } => Engine::Gpu { backend: backend.clone(), model: model.truncated(&**backend, layer)? },
        })
    }

    /// Whether this is WebGPU on a software adapter (SwiftShader and the like, which report a
    /// CPU device type): there our wasm CPU path is much faster for large batches.
    pub fn is_software_gpu(&self) -> bool {
        matches!(self, Engine::Gpu { backend, .. } if backend.name().contains("(Cpu)"))
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Engine::Gpu { .. })
    }

    /// The backend's name for the badge: "WebGPU (...)" or "CPU".
    pub fn backend_label(&self) -> String {
        match self {
            Engine::Cpu { backend, .. } => backend.name(),
            Engine::Gpu { backend, .. } => tidy_adapter_name(&backend.name()),
        }
    }
}

/// Browsers hide the adapter's description (Chromium reports an empty one), so wgpu's name
/// falls back to its backend and device type, e.g. "BrowserWebGpu adapter (Cpu)". Say that
/// in words: a CPU device type is the browser's software adapter (SwiftShader in Chromium).
fn tidy_adapter_name(name: &str) -> String {
    name.replace("BrowserWebGpu adapter (Cpu)", "software adapter").replace("BrowserWebGpu adapter (Other)", "GPU adapter")
}
