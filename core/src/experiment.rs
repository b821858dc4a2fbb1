//! An experiment: the one value that says what the reader is looking at. The model (and the
//! hashes of its files), the prompt (and a corrupted prompt, for patching), the interventions,
//! the analysis or sweep requested, and the view's selection. The page's state is derived from
//! it, a share link encodes it, and the engine runs it.
//!
//! It is a versioned serde format (`v`): fields are added with `#[serde(default)]`, never
//! renamed, so that old links keep opening. Internal run types (`RunRequest`, `Intervention`,
//! `BatchRequest`) are not formats; an experiment **lowers** to them:
//!
//! ```text
//! Experiment --tokenize prompts--> tokens
//!            --patch_sources()---> runs whose activations a PatchFrom copies (cached first)
//!            --lower_run()-------> BatchRequest of one item   (Analysis::Inspect)
//!            --sweep_batches()---> BatchRequests, chunked       (TaskSweep, CorpusScan)
//! ```
//!
//! Every item of every batch carries the experiment's interventions, so an ablation applies to
//! a sweep exactly as it applies to a single run.

use serde::{Deserialize, Serialize};

use crate::analysis::patching::{AblationKind, AblationTarget, Component, Direction, Granularity, MetricKind};
use crate::analysis::path_patching::Receivers;
use crate::config::Config;
use crate::run::{BatchRequest, CacheSpec, Intervention, InterventionOp, RunOutput, RunRequest};
use crate::{Error, Result};

/// The format version this code writes and reads.
pub const EXPERIMENT_VERSION: u32 = 1;

/// What the reader is looking at; see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Format version ([`EXPERIMENT_VERSION`]).
    pub v: u32,
    pub model: ModelRef,
    /// The prompt as typed (the clean prompt, when there are two).
    pub prompt: String,
    /// The corrupted prompt of a patching experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupted: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interventions: Vec<InterventionSpec>,
    #[serde(default)]
    pub analysis: Analysis,
    #[serde(default)]
    pub view: Selection,
    #[serde(default, skip_serializing_if = "BackendChoice::is_auto")]
    pub backend: BackendChoice,
}

/// Which model, and the SHA-256 of its files as loaded (empty until loaded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub source: ModelSource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sha256: Vec<String>,
}

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// One of the site's own models, by id (`induction-2l`).
    Shipped { id: String },
    /// A Hugging Face repository: one GGUF file, or its safetensors (`file: None`), optionally
    /// quantized on load (`"q8_0"`, `"q4_0"`).
    Hub {
        repo: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        #[serde(default = "main_revision")]
        revision: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantize: Option<String>,
    },
    /// A GGUF file at a URL.
    Url { url: String },
    /// A file from the reader's computer (a link to it can only be reopened by the same file).
    Local { name: String },
}

fn main_revision() -> String {
    "main".into()
}

impl ModelRef {
    pub fn shipped(id: &str) -> ModelRef {
        ModelRef { source: ModelSource::Shipped { id: id.into() }, sha256: Vec::new() }
    }

    /// The shipped model's id, when this is one.
    pub fn shipped_id(&self) -> Option<&str> {
        match &self.source {
            ModelSource::Shipped { id } => Some(id),
            _ => None,
        }
    }
}

/// The view's selection: what is highlighted. `None` means "the view's default" (the last
/// position, the last layer, the strongest induction head...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neuron: Option<usize>,
    /// The inspect view on screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<View>,
    /// The token the logit lens and the attribution explain (a token string, or `#id`);
    /// `None`: the model's top prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The attribution's distractor: explain `target - distractor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distractor: Option<String>,
    /// Logit lens: divide by the cached final scale instead of fresh statistics.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lens_cached_scale: bool,
    /// Logit lens: also read `resid_mid`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lens_mid: bool,
    /// Attribution without folding `ln_final`'s weight (TransformerLens's unprocessed model).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unfold_ln: bool,
    /// Attribution with the mean unembedding direction subtracted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub center_unembed: bool,
    /// Head scores on the prompt instead of the detector's repeated random sequence.
    #[serde(default, skip_serializing_if = "is_false")]
    pub heads_on_prompt: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The inspect views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Every head of a layer, one head large, the head scores.
    #[default]
    Attention,
    /// The MLP neurons of a layer on the prompt, and one neuron's page.
    Neurons,
    /// The logit lens.
    Lens,
    /// Direct logit attribution.
    Attribution,
    /// Activation patching sweeps between the prompt and the corrupted prompt.
    Patching,
    /// Ablations of heads, an MLP layer or neurons.
    Ablation,
    /// Causal scrubbing of the organisms' hypotheses.
    Scrubbing,
    /// Generation with and without a steering vector.
    Steering,
}

/// The analysis or sweep requested.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Analysis {
    /// One run of the prompt: predictions at every position, attention patterns, head scores.
    #[default]
    Inspect,
    /// Every input of the model's task (modular addition: all `a b =`), caching `hook` at every
    /// position (the Fourier view reads the last).
    TaskSweep { hook: String },
    /// Windows of the model's corpus slice, caching layer `layer`'s `mlp.hook_post`
    /// (top-activating examples).
    CorpusScan { layer: usize },
    /// An activation patching sweep between `prompt` and `corrupted`
    /// ([`crate::analysis::patching::patch`]); the metric's tokens are the view's `target` and
    /// `distractor`, its position `pos` (default: the last).
    Patch {
        component: Component,
        #[serde(default)]
        by: Granularity,
        #[serde(default)]
        direction: Direction,
        #[serde(default)]
        metric: MetricKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos: Option<usize>,
    },
    /// An ablation of the prompt's run ([`crate::analysis::patching::ablate`]). Mean and
    /// resample ablations read `dataset` (prompts of the prompt's token length), or, when it is
    /// empty, the shipped model's task generator.
    Ablate {
        target: AblationTarget,
        /// Zero, mean or resample (named `ablation`: `kind` is the variant's tag).
        ablation: AblationKind,
        #[serde(default)]
        metric: MetricKind,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dataset: Vec<String>,
    },
    /// A path-patching sweep between `prompt` (clean) and `corrupted`
    /// ([`crate::analysis::path_patching::path_patch`]): every head (and, with `mlp_senders`,
    /// every MLP) as the sender, to `receivers`; the metric's tokens are the view's `target` and
    /// `distractor`, its position `pos` (default: the last).
    PathPatch {
        receivers: Receivers,
        #[serde(default)]
        metric: MetricKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos: Option<usize>,
        #[serde(default, skip_serializing_if = "is_false")]
        mlp_senders: bool,
    },
    /// Causal scrubbing of shipped hypotheses ([`crate::analysis::scrubbing::hypotheses`], by
    /// name) on `n` examples of the model's task drawn with `seed`, `rounds` resamples each.
    Scrub { hypotheses: Vec<String>, n: usize, seed: u64, rounds: usize },
    /// Generation from the prompt with and without a steering vector.
    Steer(SteerSpec),
}

/// A steering experiment: the vector, its coefficient, and the sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteerSpec {
    pub vector: SteerVector,
    pub coeff: f32,
    /// Whether the vector is added; off, the steered column is the unsteered generation.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub on: bool,
    pub max_new_tokens: usize,
    /// 0: greedy.
    #[serde(default)]
    pub temperature: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub seed: u64,
    /// Tokens (as text) that end the generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// Where a steering vector comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SteerVector {
    /// ActAdd: `blocks.{layer}.hook_resid_pre` of `plus` minus that of `minus`, aligned at the
    /// prompt's first positions ([`crate::generate::actadd`]).
    ActAdd { plus: String, minus: String, layer: usize },
    /// An MLP neuron's output direction, added to `blocks.{layer}.hook_mlp_out` at every
    /// position ([`crate::generate::neuron_steering`]).
    Neuron { layer: usize, neuron: usize },
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The backend the reader asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// WebGPU on a hardware adapter; the CPU where WebGPU fails or where the adapter is a
    /// software one (slower than our CPU path).
    #[default]
    Auto,
    /// The CPU path, always.
    Cpu,
    /// WebGPU even on a software adapter (where `Auto` picks the faster CPU path).
    #[serde(rename = "webgpu")]
    WebGpu,
}

impl BackendChoice {
    fn is_auto(&self) -> bool {
        *self == BackendChoice::Auto
    }
}

/// One intervention as an experiment states it: like [`Intervention`], but what a patch copies
/// is named (the other prompt's activation), not carried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterventionSpec {
    /// TransformerLens hook name.
    pub hook: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neuron: Option<usize>,
    pub op: SpecOp,
}

/// What an [`InterventionSpec`] does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecOp {
    Zero,
    Scale(f32),
    /// Add a vector along the hook's last axis (steering).
    Add(Vec<f32>),
    /// Copy the selected entries from the same hook of the other prompt's run (activation
    /// patching): `Clean` into a run of the corrupted prompt, or `Corrupted` into the clean one.
    PatchFrom(Prompt),
}

/// One of the experiment's two prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Clean,
    Corrupted,
}

impl Experiment {
    /// An inspect experiment of `prompt` on a shipped model.
    pub fn new(model: ModelRef, prompt: impl Into<String>) -> Experiment {
        Experiment {
            v: EXPERIMENT_VERSION,
            model,
            prompt: prompt.into(),
            corrupted: None,
            interventions: Vec::new(),
            analysis: Analysis::Inspect,
            view: Selection::default(),
            backend: BackendChoice::Auto,
        }
    }

    /// Reads an experiment from JSON, refusing versions this code does not know.
    pub fn from_json(text: &str) -> Result<Experiment> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let v = serde_json::from_str::<Version>(text).map_err(|e| Error::Request(format!("not an experiment: {e}")))?.v;
        if v != EXPERIMENT_VERSION {
            return Err(Error::Request(format!("experiment format version {v} is not supported (this page reads version {EXPERIMENT_VERSION})")));
        }
        serde_json::from_str(text).map_err(|e| Error::Request(format!("not an experiment: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an experiment serializes")
    }

    /// Which prompt the view's run reads: the corrupted one when an intervention patches clean
    /// activations in (denoising), else the clean one.
    pub fn run_prompt(&self) -> Prompt {
        let patches_clean_in = self.interventions.iter().any(|i| i.op == SpecOp::PatchFrom(Prompt::Clean));
        if patches_clean_in && self.corrupted.is_some() {
            Prompt::Corrupted
        } else {
            Prompt::Clean
        }
    }

    /// Whether the inspect run reads the corrupted prompt (an intervention patches from or into
    /// it); a patching sweep's corrupted prompt alone does not change that run.
    pub fn reads_corrupted(&self) -> bool {
        self.corrupted.is_some() && self.interventions.iter().any(|i| matches!(i.op, SpecOp::PatchFrom(_)))
    }

    /// The runs that must be done before the experiment's own: for each prompt a
    /// `PatchFrom` copies from, the hooks to cache there.
    pub fn patch_sources(&self) -> Vec<(Prompt, Vec<String>)> {
        let mut out: Vec<(Prompt, Vec<String>)> = Vec::new();
        for iv in &self.interventions {
            if let SpecOp::PatchFrom(p) = iv.op {
                match out.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, hooks)) if !hooks.contains(&iv.hook) => hooks.push(iv.hook.clone()),
                    Some(_) => {}
                    None => out.push((p, vec![iv.hook.clone()])),
                }
            }
        }
        out
    }

    /// The experiment's interventions as the forward pass takes them, for a run of `n_pos`
    /// tokens. `source(prompt, hook)` gives a cached activation for each `PatchFrom` (from the
    /// runs [`Experiment::patch_sources`] names); it must have the run's length.
    pub fn lower_interventions<'a>(&self, n_pos: usize, source: impl Fn(Prompt, &str) -> Option<&'a RunOutput>) -> Result<Vec<Intervention>> {
        self.interventions
            .iter()
            .map(|spec| {
                let op = match &spec.op {
                    SpecOp::Zero => InterventionOp::Zero,
                    SpecOp::Scale(s) => InterventionOp::Scale(*s),
                    SpecOp::Add(v) => InterventionOp::Add(v.clone()),
                    SpecOp::PatchFrom(p) => {
                        let t = source(*p, &spec.hook)
                            .and_then(|o| o.get(&spec.hook))
                            .ok_or_else(|| Error::Request(format!("patching {} needs the {p:?} prompt's run, which was not made", spec.hook)))?;
                        if t.shape.first() != Some(&n_pos) && !spec.hook.contains("attn_scores") && !spec.hook.contains("hook_pattern") {
                            return Err(Error::Request(format!(
                                "patching {} needs prompts of equal length: the source has {:?} tokens, the run {n_pos}",
                                spec.hook,
                                t.shape.first()
                            )));
                        }
                        InterventionOp::Replace(t.clone())
                    }
                };
                Ok(Intervention { hook: spec.hook.clone(), positions: spec.positions.clone(), head: spec.head, neuron: spec.neuron, op })
            })
            .collect()
    }

    /// The one run the inspect view shows: `tokens` (of [`Experiment::run_prompt`]) with the
    /// experiment's interventions, caching `cache`.
    pub fn lower_run<'a>(&self, tokens: Vec<u32>, cache: CacheSpec, source: impl Fn(Prompt, &str) -> Option<&'a RunOutput>) -> Result<BatchRequest> {
        let interventions = self.lower_interventions(tokens.len(), source)?;
        Ok(BatchRequest::new(vec![RunRequest { tokens, cache, interventions }]))
    }

    /// The batches of a sweep ([`Analysis::TaskSweep`], [`Analysis::CorpusScan`]), at most
    /// `chunk` sequences each, every item with the experiment's interventions. `inputs` are
    /// the sweep's sequences (all of one length): [`task_inputs`] or [`corpus_windows`].
    pub fn sweep_batches(&self, cfg: &Config, inputs: &[Vec<u32>], chunk: usize) -> Result<Vec<BatchRequest>> {
        let hook = match &self.analysis {
            Analysis::Inspect => return Err(Error::Request("an inspect experiment is one run, not a sweep".into())),
            Analysis::Patch { .. } | Analysis::Ablate { .. } | Analysis::PathPatch { .. } | Analysis::Scrub { .. } | Analysis::Steer(_) => {
                return Err(Error::Request("causal analyses and generation run through analysis:: and generate, not as a batch sweep".into()))
            }
            Analysis::TaskSweep { hook } => hook.clone(),
            Analysis::CorpusScan { layer } => {
                if *layer >= cfg.n_layers {
                    return Err(Error::Request(format!("layer {layer} does not exist (the model has {})", cfg.n_layers)));
                }
                format!("blocks.{layer}.mlp.hook_post")
            }
        };
        if !self.patch_sources().is_empty() {
            return Err(Error::Request("a sweep cannot patch from another prompt's run".into()));
        }
        let Some(n_pos) = inputs.first().map(Vec::len) else {
            return Ok(Vec::new());
        };
        let interventions = self.lower_interventions(n_pos, |_, _| None)?;
        let cache = CacheSpec::Names(vec![hook]);
        Ok(inputs
            .chunks(chunk.max(1))
            .map(|c| {
                BatchRequest::new(c.iter().map(|t| RunRequest { tokens: t.clone(), cache: cache.clone(), interventions: interventions.clone() }).collect())
            })
            .collect())
    }
}

/// Every input of a shipped model's task, for [`Analysis::TaskSweep`]: modular addition's
/// `a b =` for all `a, b < p` (a-major), where `p` is the model's output count and `=` the
/// token after the numbers.
pub fn task_inputs(cfg: &Config) -> Vec<Vec<u32>> {
    let p = cfg.d_vocab_out as u32;
    (0..p).flat_map(|a| (0..p).map(move |b| vec![a, b, p])).collect()
}

/// Whole windows of `<bos>` + `n_ctx - 1` corpus tokens, for [`Analysis::CorpusScan`]
/// (`ids` without BOS). Window `w` reads corpus tokens `w * (n_ctx - 1)..`.
pub fn corpus_windows(ids: &[u32], bos: u32, n_ctx: usize) -> Vec<Vec<u32>> {
    let body = n_ctx.saturating_sub(1).max(1);
    ids.chunks_exact(body).map(|w| std::iter::once(bos).chain(w.iter().copied()).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp() -> Experiment {
        let mut e = Experiment::new(ModelRef::shipped("induction-2l"), "a b c a b");
        e.corrupted = Some("a b c d b".into());
        e.interventions.push(InterventionSpec {
            hook: "blocks.0.hook_resid_pre".into(),
            positions: Some(vec![3]),
            head: None,
            neuron: None,
            op: SpecOp::PatchFrom(Prompt::Clean),
        });
        e.interventions.push(InterventionSpec { hook: "blocks.1.attn.hook_z".into(), positions: None, head: Some(1), neuron: None, op: SpecOp::Zero });
        e.view.layer = Some(1);
        e
    }

    #[test]
    fn round_trips_through_json_and_refuses_other_versions() {
        let e = exp();
        let json = e.to_json();
        assert_eq!(Experiment::from_json(&json).unwrap(), e);
        let future = json.replace("\"v\":1", "\"v\":2");
        assert!(Experiment::from_json(&future).unwrap_err().to_string().contains("version 2"));
        assert!(Experiment::from_json("{}").is_err());
        // Fields added later default: a minimal v1 experiment opens.
        let min = r#"{"v":1,"model":{"source":{"kind":"shipped","id":"induction-2l"}},"prompt":"x"}"#;
        let m = Experiment::from_json(min).unwrap();
        assert_eq!((m.analysis, m.backend, m.view), (Analysis::Inspect, BackendChoice::Auto, Selection::default()));
    }

    #[test]
    fn patching_clean_in_runs_the_corrupted_prompt_and_names_its_source() {
        let e = exp();
        assert_eq!(e.run_prompt(), Prompt::Corrupted);
        assert_eq!(e.patch_sources(), vec![(Prompt::Clean, vec!["blocks.0.hook_resid_pre".to_string()])]);
        let src = RunOutput { cache: vec![("blocks.0.hook_resid_pre".into(), crate::HostTensor::zeros(vec![5, 4]))], logits: Default::default() };
        let ivs = e.lower_interventions(5, |p, _| (p == Prompt::Clean).then_some(&src)).unwrap();
        assert!(matches!(&ivs[0].op, InterventionOp::Replace(t) if t.shape == vec![5, 4]));
        assert_eq!((ivs[1].head, &ivs[1].op), (Some(1), &InterventionOp::Zero));
        // Without the source run, or with prompts of different lengths, it says why.
        assert!(e.lower_interventions(5, |_, _| None).unwrap_err().to_string().contains("Clean"));
        assert!(e.lower_interventions(6, |_, _| Some(&src)).unwrap_err().to_string().contains("equal length"));
    }
}
