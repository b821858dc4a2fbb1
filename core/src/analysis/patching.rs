//! Activation patching and ablations: TransformerLens's `transformer_lens/patching.py`
//! catalogue, as sweeps of batched runs.
//!
//! A sweep patches one cell at a time (a layer x position, a layer x position x head, a
//! layer x head...) of one activation from a **source** run into a **base** run and measures a
//! metric on the output. TransformerLens's `get_act_patch_*(model, corrupted_tokens,
//! clean_cache, metric)` is **denoising** ([`Direction::Denoising`]: base = corrupted, source =
//! clean); **noising** swaps the roles (`get_act_patch_*(model, clean_tokens, corrupted_cache,
//! metric)`). The catalogue ([`Component`] x [`Granularity`]):
//!
//! | component | by position ([`Granularity::ByPos`]) | all positions ([`Granularity::AllPos`]) |
//! |---|---|---|
//! | `resid_pre`, `resid_mid`, `attn_out`, `mlp_out` | `[layer, pos]`: `get_act_patch_resid_pre` ... | `[layer]` (not in TL: the whole activation of a layer) |
//! | `z` (head output), `q`, `k`, `v` | `[layer, pos, head]`: `get_act_patch_attn_head_out_by_pos`, `..._q_by_pos` ... | `[layer, head]`: `get_act_patch_attn_head_out_all_pos`, `..._q_all_pos` ... |
//! | `pattern` | `[layer, head_index, dest_pos]`: `get_act_patch_attn_head_pattern_by_pos` | `[layer, head_index]`: `get_act_patch_attn_head_pattern_all_pos` |
//!
//! (`k` and `v` of grouped-query models have `n_kv_heads` heads, as TransformerLens.)
//!
//! **How it runs.** TransformerLens runs one forward pass per cell. Here every cell is one item
//! of a [`crate::BatchRequest`] whose [`crate::Intervention`] replaces that cell's entries with the
//! source run's values, and a sweep is one `run_batch` per chunk of cells. Two things are saved:
//! - **The shared prefix.** Every run of a cell at layer `l` equals the base run up to
//!   `blocks.{l}.hook_resid_pre`. Cells are grouped by layer; a chunk whose cells start at layer
//!   `s` runs a copy of the model holding only blocks `s..` (sharing the backend's weights),
//!   whose embedding is replaced by the base run's cached `blocks.{s}.hook_resid_pre` (an affine
//!   map `x * 0 + resid`, exact) and whose positional embedding is zeroed: the layers before the
//!   earliest patched one are computed once, by the base run, instead of once per cell.
//! - **The unembedding.** The chunk's copy has a one-column zero unembedding; each item caches
//!   `unembed.hook_in` (after `ln_final`) and only the rows the metric reads (one position, or
//!   every position for the loss) go through `W_U`, in one [`HookedTransformer::unembed`] per
//!   chunk.
//!
//! Metrics ([`Metric`]): logit difference, probability and log-probability of a target at a
//! position (the last by default), mean next-token loss over the prompt, KL divergence from the
//! clean output. Results keep the raw values and the normalised ones, `(patched - corrupted) /
//! (clean - corrupted)` (TransformerLens's demos' convention: corrupted = 0, clean = 1).
//!
//! Ablations ([`ablate`]) use the same runs: zero, mean (over a dataset of equal-length
//! sequences, per position) and resample ablation (the activation from each dataset sequence in
//! turn, metric averaged) of heads (`hook_z`), an MLP layer (`hook_mlp_out`) or neurons
//! (`mlp.hook_post` entries).
//!
//! Sweeps report progress after every chunk and check a cancel flag between chunks (the app
//! runs them in its worker); a cancelled sweep returns `Ok(None)`.

use serde::{Deserialize, Serialize};

use super::log_softmax;
use crate::backend::Backend;
use crate::config::Config;
use crate::model::HookedTransformer;
use crate::run::{BatchRequest, CacheSpec, Intervention, InterventionOp, RunOutput, RunRequest};
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole, ModelWeights};
use crate::{Error, Result};

/// Which activation a sweep patches (TransformerLens's `activation_name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    ResidPre,
    ResidMid,
    AttnOut,
    MlpOut,
    /// A head's output (`attn.hook_z`).
    Z,
    Q,
    K,
    V,
    /// The attention pattern (`attn.hook_pattern`).
    Pattern,
}

impl Component {
    pub const ALL: [Component; 9] = [
        Component::ResidPre,
        Component::ResidMid,
        Component::AttnOut,
        Component::MlpOut,
        Component::Z,
        Component::Q,
        Component::K,
        Component::V,
        Component::Pattern,
    ];

    /// TransformerLens's short name (`utils.get_act_name`'s input).
    pub fn name(self) -> &'static str {
        match self {
            Component::ResidPre => "resid_pre",
            Component::ResidMid => "resid_mid",
            Component::AttnOut => "attn_out",
            Component::MlpOut => "mlp_out",
            Component::Z => "z",
            Component::Q => "q",
            Component::K => "k",
            Component::V => "v",
            Component::Pattern => "pattern",
        }
    }

    /// The hook of block `layer` (`blocks.{layer}.attn.hook_z`...).
    pub fn hook(self, layer: usize) -> String {
        let s = match self {
            Component::ResidPre => "hook_resid_pre",
            Component::ResidMid => "hook_resid_mid",
            Component::AttnOut => "hook_attn_out",
            Component::MlpOut => "hook_mlp_out",
            Component::Z => "attn.hook_z",
            Component::Q => "attn.hook_q",
            Component::K => "attn.hook_k",
            Component::V => "attn.hook_v",
            Component::Pattern => "attn.hook_pattern",
        };
        format!("blocks.{layer}.{s}")
    }

    /// The number of heads of a head component (`n_kv_heads` for k and v), `None` otherwise.
    pub fn heads(self, cfg: &Config) -> Option<usize> {
        match self {
            Component::Z | Component::Q | Component::Pattern => Some(cfg.n_heads),
            Component::K | Component::V => Some(cfg.n_kv_heads),
            _ => None,
        }
    }

    /// An error when the model has no such activation.
    fn check(self, cfg: &Config) -> Result<()> {
        let missing = match self {
            Component::ResidMid if cfg.d_mlp.is_none() => Some("it is attention-only"),
            Component::ResidMid if cfg.parallel_attn_mlp => Some("its attention and MLP run in parallel"),
            Component::MlpOut if cfg.d_mlp.is_none() => Some("it is attention-only"),
            _ => None,
        };
        match missing {
            Some(why) => Err(Error::Request(format!("this model has no {} to patch: {why}", self.name()))),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for Component {
    type Err = Error;
    fn from_str(s: &str) -> Result<Component> {
        Component::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Component::ALL.iter().map(|c| c.name()).collect();
            Error::Request(format!("unknown activation {s:?} (one of {})", names.join(", ")))
        })
    }
}

/// Cells by position, or one cell per layer (x head) covering every position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    ByPos,
    AllPos,
}

/// Which run the patches go into (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Clean activations patched into the corrupted run (TransformerLens's `get_act_patch_*`).
    #[default]
    Denoising,
    /// Corrupted activations patched into the clean run.
    Noising,
}

/// What is measured on a run's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metric {
    /// `logits[pos, target] - logits[pos, distractor]`.
    LogitDiff { target: u32, distractor: u32 },
    /// `softmax(logits[pos])[target]`.
    Prob { target: u32 },
    /// `log_softmax(logits[pos])[target]`.
    LogProb { target: u32 },
    /// Mean next-token cross-entropy over the prompt (`lm_cross_entropy_loss`), with the clean
    /// prompt's tokens as targets (in an ablation: the prompt's own).
    Loss,
    /// `KL(clean || run)` of the next-token distributions at `pos` (in an ablation: from the
    /// unablated run).
    Kl,
}

impl Metric {
    fn tokens(&self) -> Vec<u32> {
        match self {
            Metric::LogitDiff { target, distractor } => vec![*target, *distractor],
            Metric::Prob { target } | Metric::LogProb { target } => vec![*target],
            Metric::Loss | Metric::Kl => vec![],
        }
    }
}

/// Which metric, without its tokens: what an experiment stores (its target and distractor are
/// the view's tokens, resolved by the tokenizer when the sweep runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    #[default]
    LogitDiff,
    Prob,
    LogProb,
    Loss,
    Kl,
}

impl MetricKind {
    pub const ALL: [MetricKind; 5] = [MetricKind::LogitDiff, MetricKind::Prob, MetricKind::LogProb, MetricKind::Loss, MetricKind::Kl];

    /// The short name (`logit_diff`, `prob`, `log_prob`, `loss`, `kl`).
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::LogitDiff => "logit_diff",
            MetricKind::Prob => "prob",
            MetricKind::LogProb => "log_prob",
            MetricKind::Loss => "loss",
            MetricKind::Kl => "kl",
        }
    }

    /// Whether the metric reads a target token (and, for the logit difference, a distractor).
    pub fn needs_target(self) -> bool {
        matches!(self, MetricKind::LogitDiff | MetricKind::Prob | MetricKind::LogProb)
    }

    /// The metric with its tokens; an error says which one is missing.
    pub fn with_tokens(self, target: Option<u32>, distractor: Option<u32>) -> Result<Metric> {
        let target_of = |what: &str| target.ok_or_else(|| Error::Request(format!("the {what} needs a target token")));
        Ok(match self {
            MetricKind::LogitDiff => {
                let target = target_of("logit difference")?;
                let distractor = distractor.ok_or_else(|| Error::Request("the logit difference needs a distractor token".into()))?;
                if target == distractor {
                    return Err(Error::Request("the target and the distractor are the same token".into()));
                }
                Metric::LogitDiff { target, distractor }
            }
            MetricKind::Prob => Metric::Prob { target: target_of("probability")? },
            MetricKind::LogProb => Metric::LogProb { target: target_of("log-probability")? },
            MetricKind::Loss => Metric::Loss,
            MetricKind::Kl => Metric::Kl,
        })
    }
}

impl std::str::FromStr for MetricKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<MetricKind> {
        MetricKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::Request(format!("unknown metric {s:?} (one of logit_diff, prob, log_prob, loss, kl)")))
    }
}

/// A sweep: which activation, which cells, which direction, what is measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchSpec {
    pub component: Component,
    #[serde(default)]
    pub by: Granularity,
    #[serde(default)]
    pub direction: Direction,
    pub metric: Metric,
    /// The position the metric reads (default: the last).
    #[serde(default)]
    pub pos: Option<usize>,
}

/// One axis of a result: TransformerLens's name (`layer`, `pos`, `head`, `head_index`,
/// `dest_pos`) and its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub name: String,
    pub size: usize,
}

/// A sweep's result: one value per cell, row-major over `axes` (TransformerLens's output
/// shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchResult {
    pub spec: PatchSpec,
    /// The metric's position.
    pub pos: usize,
    /// The hook of layer 0 (`blocks.0.hook_resid_pre`); layer `l` is the same with `l`.
    pub hook: String,
    pub axes: Vec<Axis>,
    /// The raw metric of each patched run.
    pub values: Vec<f32>,
    /// `(value - corrupted) / (clean - corrupted)`: 0 = the corrupted run, 1 = the clean run
    /// (NaN, serialized as `null`, when the two are equal).
    pub normalized: Vec<f32>,
    /// The metric on the clean and on the corrupted run, unpatched.
    pub clean: f32,
    pub corrupted: f32,
    /// Forward passes run for the cells (one per cell) and `run_batch` calls made.
    pub runs: usize,
    pub batches: usize,
}

impl PatchResult {
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.size).collect()
    }

    /// The raw value at a cell (indices in the order of `axes`).
    pub fn get(&self, index: &[usize]) -> f32 {
        self.values[self.flat(index)]
    }

    fn flat(&self, index: &[usize]) -> usize {
        assert_eq!(index.len(), self.axes.len(), "an index of {} axes into a result of {}", index.len(), self.axes.len());
        index.iter().zip(&self.axes).fold(0, |f, (i, a)| f * a.size + i)
    }
}

/// One cell: its layer and the intervention's position and head selection.
#[derive(Clone, Debug, PartialEq)]
struct Cell {
    layer: usize,
    positions: Option<Vec<usize>>,
    head: Option<usize>,
}

/// The axes and the cells of a sweep, in TransformerLens's order (row-major over the axes).
fn cells(cfg: &Config, component: Component, by: Granularity, n_pos: usize) -> (Vec<Axis>, Vec<Cell>) {
    let ax = |name: &str, size: usize| Axis { name: name.into(), size };
    let layers = cfg.n_layers;
    let mut out = Vec::new();
    let axes = match (component.heads(cfg), component, by) {
        (None, _, Granularity::ByPos) => {
            for layer in 0..layers {
                out.extend((0..n_pos).map(|p| Cell { layer, positions: Some(vec![p]), head: None }));
            }
            vec![ax("layer", layers), ax("pos", n_pos)]
        }
        (None, _, Granularity::AllPos) => {
            out.extend((0..layers).map(|layer| Cell { layer, positions: None, head: None }));
            vec![ax("layer", layers)]
        }
        (Some(h), Component::Pattern, Granularity::ByPos) => {
            for layer in 0..layers {
                for head in 0..h {
                    out.extend((0..n_pos).map(|p| Cell { layer, positions: Some(vec![p]), head: Some(head) }));
                }
            }
            vec![ax("layer", layers), ax("head_index", h), ax("dest_pos", n_pos)]
        }
        (Some(h), Component::Pattern, Granularity::AllPos) => {
            for layer in 0..layers {
                out.extend((0..h).map(|head| Cell { layer, positions: None, head: Some(head) }));
            }
            vec![ax("layer", layers), ax("head_index", h)]
        }
        (Some(h), _, Granularity::ByPos) => {
            for layer in 0..layers {
                for p in 0..n_pos {
                    out.extend((0..h).map(|head| Cell { layer, positions: Some(vec![p]), head: Some(head) }));
                }
            }
            vec![ax("layer", layers), ax("pos", n_pos), ax("head", h)]
        }
        (Some(h), _, Granularity::AllPos) => {
            for layer in 0..layers {
                out.extend((0..h).map(|head| Cell { layer, positions: None, head: Some(head) }));
            }
            vec![ax("layer", layers), ax("head", h)]
        }
    };
    (axes, out)
}

/// Evaluates a metric on rows of logits.
pub(crate) struct MetricEval<'a> {
    metric: &'a Metric,
    pub(crate) pos: usize,
    n_pos: usize,
    /// Targets of the loss: token `p + 1` for position `p`.
    targets: Vec<u32>,
    /// `log_softmax` of the reference run at `pos` (KL).
    reference: Vec<f32>,
}

impl<'a> MetricEval<'a> {
    pub(crate) fn new(cfg: &Config, metric: &'a Metric, pos: Option<usize>, targets: &[u32]) -> Result<MetricEval<'a>> {
        let n_pos = targets.len();
        let pos = pos.unwrap_or(n_pos - 1);
        if pos >= n_pos {
            return Err(Error::Request(format!("the metric's position {pos} is past the last position {}", n_pos - 1)));
        }
        if let Some(&t) = metric.tokens().iter().find(|&&t| t as usize >= cfg.d_vocab_out) {
            return Err(Error::Request(format!("token {t} is not one of the model's {} outputs", cfg.d_vocab_out)));
        }
        if *metric == Metric::Loss && n_pos < 2 {
            return Err(Error::Request("the loss needs at least two tokens".into()));
        }
        Ok(MetricEval { metric, pos, n_pos, targets: targets.to_vec(), reference: Vec::new() })
    }

    /// The positions whose logits the metric reads.
    pub(crate) fn positions(&self) -> Vec<usize> {
        match self.metric {
            Metric::Loss => (0..self.n_pos - 1).collect(),
            _ => vec![self.pos],
        }
    }

    /// Sets the KL reference from a full run's logits `[pos, vocab]`.
    pub(crate) fn set_reference(&mut self, logits: &HostTensor) {
        self.reference = log_softmax(logits.row(self.pos));
    }

    /// The metric on the rows of [`MetricEval::positions`], `rows[i]` being position `i`'s logits.
    pub(crate) fn eval(&self, rows: &[&[f32]]) -> f32 {
        match self.metric {
            Metric::LogitDiff { target, distractor } => rows[0][*target as usize] - rows[0][*distractor as usize],
            Metric::Prob { target } => log_softmax(rows[0])[*target as usize].exp(),
            Metric::LogProb { target } => log_softmax(rows[0])[*target as usize],
            Metric::Loss => {
                let total: f64 = rows.iter().enumerate().map(|(p, r)| -(log_softmax(r)[self.targets[p + 1] as usize] as f64)).sum();
                (total / rows.len() as f64) as f32
            }
            Metric::Kl => {
                let lp = log_softmax(rows[0]);
                self.reference.iter().zip(&lp).map(|(&r, &q)| if r == f32::NEG_INFINITY { 0.0 } else { r.exp() * (r - q) }).sum()
            }
        }
    }

    /// The metric on a full run's logits `[pos, vocab]`.
    pub(crate) fn eval_full(&self, logits: &HostTensor) -> f32 {
        let rows: Vec<&[f32]> = self.positions().into_iter().map(|p| logits.row(p)).collect();
        self.eval(&rows)
    }
}

/// A copy of `model` holding only blocks `start..`, whose input is set by [`suffix_input`], with
/// a one-column zero unembedding. Shares the backend's weights.
pub(crate) fn suffix<B: Backend>(model: &HookedTransformer<B>, start: usize, zero_unembed: &B::Matrix) -> HookedTransformer<B> {
    let mut cfg = model.cfg.clone();
    cfg.n_layers -= start;
    cfg.d_vocab_out = 1;
    cfg.tied_embeddings = false;
    let w = &model.weights;
    let weights = ModelWeights {
        W_E: w.W_E.clone(),
        W_pos: w.W_pos.clone(),
        blocks: w.blocks[start..].to_vec(),
        ln_final_w: w.ln_final_w.clone(),
        ln_final_b: w.ln_final_b.clone(),
        W_U: zero_unembed.clone(),
    };
    HookedTransformer { cfg, weights }
}

/// The interventions that make a [`suffix`] model start from `resid` (`[pos, d_model]`): the
/// embedding replaced by it, the positional embedding zeroed.
pub(crate) fn suffix_input(cfg: &Config, resid: &HostTensor) -> Vec<Intervention> {
    let mut out = vec![Intervention::new("hook_embed", InterventionOp::Replace(resid.clone()))];
    if cfg.rotary().is_none() {
        out.push(Intervention::new("hook_pos_embed", InterventionOp::Zero));
    }
    out
}

/// A hook name of the full model (`blocks.{l}.…`) renamed for a suffix model starting at `start`.
pub(crate) fn shifted(hook: &str, start: usize) -> String {
    match hook.strip_prefix("blocks.").and_then(|rest| rest.split_once('.')) {
        Some((l, rest)) => format!("blocks.{}.{rest}", l.parse::<usize>().expect("a block index") - start),
        None => hook.to_string(),
    }
}

/// Checks the two prompts of a sweep.
pub(crate) fn check_pair(cfg: &Config, clean: &[u32], corrupted: &[u32]) -> Result<()> {
    if clean.is_empty() || corrupted.is_empty() {
        return Err(Error::Request("the clean and the corrupted prompts must both have tokens".into()));
    }
    if clean.len() != corrupted.len() {
        return Err(Error::Request(format!(
            "the clean and corrupted prompts must have the same number of tokens to patch position by position: {} and {}",
            clean.len(),
            corrupted.len()
        )));
    }
    if clean.len() > cfg.n_ctx {
        return Err(Error::Request(format!("{} tokens is longer than the model's context of {}", clean.len(), cfg.n_ctx)));
    }
    Ok(())
}

/// Groups cells (already in layer-major order) into chunks of at most `chunk` cells of one
/// layer each: (layer, cell indices).
fn chunks(cells: &[Cell], chunk: usize) -> Vec<(usize, Vec<usize>)> {
    let chunk = chunk.max(1);
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        match out.last_mut() {
            Some((l, idx)) if *l == c.layer && idx.len() < chunk => idx.push(i),
            _ => out.push((c.layer, vec![i])),
        }
    }
    out
}

/// Runs `items` (all on a suffix model) and evaluates the metric on each from its cached
/// `unembed.hook_in`, unembedding only the rows the metric reads.
pub(crate) async fn eval_items<B: Backend>(
    model: &HookedTransformer<B>,
    part: &HookedTransformer<B>,
    backend: &B,
    items: Vec<RunRequest>,
    eval: &MetricEval<'_>,
) -> Result<Vec<f32>> {
    let outs = part.run_batch(backend, &BatchRequest::new(items)).await?;
    let positions = eval.positions();
    let d_model = model.cfg.d_model;
    let mut rows = Vec::with_capacity(outs.len() * positions.len() * d_model);
    for out in &outs {
        let x = super::cached(out, "unembed.hook_in")?;
        for &p in &positions {
            rows.extend_from_slice(x.row(p));
        }
    }
    let logits = model.unembed(backend, &HostTensor::new(vec![outs.len() * positions.len(), d_model], rows)).await?;
    Ok((0..outs.len())
        .map(|i| {
            let r: Vec<&[f32]> = (0..positions.len()).map(|j| logits.row(i * positions.len() + j)).collect();
            eval.eval(&r)
        })
        .collect())
}

/// An activation patching sweep (see the module docs): every cell of `spec.component` patched
/// from the source run into the base run, `chunk` cells per `run_batch` (each chunk holds the
/// cells of one layer). `progress(done, total)` is awaited after each chunk (in cells: a worker
/// posts it and yields there, so that a cancel message gets in); `cancel` is checked before
/// each chunk, and a cancelled sweep returns `Ok(None)`.
///
/// TransformerLens: `patching.get_act_patch_<component>[_by_pos|_all_pos](model,
/// corrupted_tokens, clean_cache, metric)` (denoising).
#[allow(clippy::too_many_arguments)]
pub async fn patch<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    clean: &[u32],
    corrupted: &[u32],
    spec: &PatchSpec,
    chunk: usize,
    mut progress: impl AsyncFnMut(usize, usize),
    cancel: impl Fn() -> bool,
) -> Result<Option<PatchResult>> {
    let cfg = &model.cfg;
    check_pair(cfg, clean, corrupted)?;
    spec.component.check(cfg)?;
    let n_pos = clean.len();
    let mut eval = MetricEval::new(cfg, &spec.metric, spec.pos, clean)?;
    let (base, source) = match spec.direction {
        Direction::Denoising => (corrupted, clean),
        Direction::Noising => (clean, corrupted),
    };
    let (axes, cells) = cells(cfg, spec.component, spec.by, n_pos);
    let groups = chunks(&cells, chunk);

    // The base run caches its residual at every layer a chunk starts from; the source run the
    // patched activation at every layer.
    let starts: Vec<String> = (0..cfg.n_layers).map(|l| Component::ResidPre.hook(l)).collect();
    let patched: Vec<String> = (0..cfg.n_layers).map(|l| spec.component.hook(l)).collect();
    let runs = model
        .run_batch(
            backend,
            &BatchRequest::new(vec![
                RunRequest::new(base.to_vec()).with_cache(CacheSpec::Names(starts.clone())),
                RunRequest::new(source.to_vec()).with_cache(CacheSpec::Names(patched.clone())),
            ]),
        )
        .await?;
    let (base_out, source_out) = (&runs[0], &runs[1]);
    let (clean_out, corrupted_out) = match spec.direction {
        Direction::Denoising => (source_out, base_out),
        Direction::Noising => (base_out, source_out),
    };
    eval.set_reference(&clean_out.logits);
    let clean_value = eval.eval_full(&clean_out.logits);
    let corrupted_value = eval.eval_full(&corrupted_out.logits);

    let zero_unembed = backend.upload_matrix(&HostMatrix::Dense(HostTensor::zeros(vec![cfg.d_model, 1])), MatrixRole::Linear)?;
    let mut values = vec![f32::NAN; cells.len()];
    let total = cells.len();
    let mut done = 0;
    for (start, idx) in &groups {
        if cancel() {
            return Ok(None);
        }
        let part = suffix(model, *start, &zero_unembed);
        let input = suffix_input(cfg, super::cached(base_out, &starts[*start])?);
        let source_act = super::cached(source_out, &patched[*start])?;
        let hook = shifted(&patched[*start], *start);
        let items: Vec<RunRequest> = idx
            .iter()
            .map(|&i| {
                let c = &cells[i];
                let iv = Intervention {
                    hook: hook.clone(),
                    positions: c.positions.clone(),
                    head: c.head,
                    neuron: None,
                    op: InterventionOp::Replace(source_act.clone()),
                };
                let mut req = RunRequest::new(base.to_vec()).cache(&["unembed.hook_in"]);
                req.interventions = input.clone();
                req.interventions.push(iv);
                req
            })
            .collect();
        for (&i, v) in idx.iter().zip(eval_items(model, &part, backend, items, &eval).await?) {
            values[i] = v;
        }
        done += idx.len();
        progress(done, total).await;
    }
    let normalized = values.iter().map(|v| normalize(*v, clean_value, corrupted_value)).collect();
    Ok(Some(PatchResult {
        spec: spec.clone(),
        pos: eval.pos,
        hook: spec.component.hook(0),
        axes,
        values,
        normalized,
        clean: clean_value,
        corrupted: corrupted_value,
        runs: total,
        batches: groups.len(),
    }))
}

/// `(value - corrupted) / (clean - corrupted)`; NaN when clean equals corrupted.
pub fn normalize(value: f32, clean: f32, corrupted: f32) -> f32 {
    let d = clean - corrupted;
    if d == 0.0 {
        f32::NAN
    } else {
        (value - corrupted) / d
    }
}

/// What an ablation removes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AblationTarget {
    /// Heads' outputs (`blocks.{l}.attn.hook_z` of head `h`), as (layer, head).
    Heads { heads: Vec<(usize, usize)> },
    /// An MLP layer's output (`blocks.{l}.hook_mlp_out`).
    Mlp { layer: usize },
    /// Neurons of one layer (`blocks.{l}.mlp.hook_post` entries).
    Neurons { layer: usize, neurons: Vec<usize> },
}

impl AblationTarget {
    /// (hook, head, neuron) of each selection.
    fn parts(&self, cfg: &Config) -> Result<Vec<Selected>> {
        let layer_ok = |l: usize| {
            if l >= cfg.n_layers {
                Err(Error::Request(format!("layer {l} is out of range (the model has {} layers)", cfg.n_layers)))
            } else {
                Ok(())
            }
        };
        let mlp = |l: usize| {
            layer_ok(l).and_then(|_| if cfg.d_mlp.is_none() { Err(Error::Request("this model is attention-only: it has no MLP".into())) } else { Ok(()) })
        };
        Ok(match self {
            AblationTarget::Heads { heads } => {
                if heads.is_empty() {
                    return Err(Error::Request("no heads to ablate".into()));
                }
                let mut out = Vec::new();
                for &(l, h) in heads {
                    layer_ok(l)?;
                    if h >= cfg.n_heads {
                        return Err(Error::Request(format!("head {h} is out of range (the model has {} heads per layer)", cfg.n_heads)));
                    }
                    out.push((Component::Z.hook(l), Some(h), None));
                }
                out
            }
            AblationTarget::Mlp { layer } => {
                mlp(*layer)?;
                vec![(Component::MlpOut.hook(*layer), None, None)]
            }
            AblationTarget::Neurons { layer, neurons } => {
                mlp(*layer)?;
                if neurons.is_empty() {
                    return Err(Error::Request("no neurons to ablate".into()));
                }
                let d_mlp = cfg.d_mlp.unwrap_or(0);
                if let Some(n) = neurons.iter().find(|&&n| n >= d_mlp) {
                    return Err(Error::Request(format!("neuron {n} is out of range (layer {layer} has {d_mlp})")));
                }
                neurons.iter().map(|&n| (format!("blocks.{layer}.mlp.hook_post"), None, Some(n))).collect()
            }
        })
    }

    /// The hooks it touches, each once.
    fn hooks(&self, cfg: &Config) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (h, _, _) in self.parts(cfg)? {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        Ok(out)
    }
}

/// One selection of an ablation: (hook, head, neuron).
type Selected = (String, Option<usize>, Option<usize>);

/// How an ablation replaces the activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AblationKind {
    /// Set to zero.
    Zero,
    /// The mean over a dataset of sequences of the prompt's length, per position.
    Mean,
    /// The value on each dataset sequence in turn; the metric is averaged.
    Resample,
}

/// An ablation's effect on the metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationResult {
    pub target: AblationTarget,
    pub kind: AblationKind,
    pub metric: Metric,
    /// The metric's position.
    pub pos: usize,
    /// The metric on the unablated prompt.
    pub base: f32,
    /// The metric with the ablation (for resampling, the mean over the dataset).
    pub ablated: f32,
    /// `ablated - base`.
    pub change: f32,
    /// Resampling: the metric with each dataset sequence's activation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f32>,
    /// The next-token distribution at the metric's position without and with the ablation
    /// (for resampling, the mean over the dataset's runs): each a top 5 of (token, probability).
    #[serde(default)]
    pub base_top: Vec<(u32, f32)>,
    #[serde(default)]
    pub ablated_top: Vec<(u32, f32)>,
}

/// The zero ablation of `target` as interventions, for any run of the model (a task's
/// sweep, for example).
pub fn zero_ablation(cfg: &Config, target: &AblationTarget) -> Result<Vec<Intervention>> {
    Ok(target.parts(cfg)?.into_iter().map(|(hook, head, neuron)| Intervention { hook, positions: None, head, neuron, op: InterventionOp::Zero }).collect())
}

/// `target` replaced by values of the hook's full shape (`values` by hook name).
fn replace_ablation(cfg: &Config, target: &AblationTarget, values: &[(String, HostTensor)]) -> Result<Vec<Intervention>> {
    target
        .parts(cfg)?
        .into_iter()
        .map(|(hook, head, neuron)| {
            let t = values.iter().find(|(n, _)| *n == hook).map(|(_, t)| t.clone()).ok_or_else(|| Error::Request(format!("no values for {hook}")))?;
            Ok(Intervention { hook, positions: None, head, neuron, op: InterventionOp::Replace(t) })
        })
        .collect()
}

/// Runs `dataset` in chunks caching `hooks`; every sequence must have `n_pos` tokens.
async fn run_dataset<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    dataset: &[Vec<u32>],
    n_pos: usize,
    hooks: &[String],
    chunk: usize,
) -> Result<Vec<RunOutput>> {
    if dataset.is_empty() {
        return Err(Error::Request("mean and resample ablations need a dataset of sequences".into()));
    }
    if let Some((i, s)) = dataset.iter().enumerate().find(|(_, s)| s.len() != n_pos) {
        return Err(Error::Request(format!("dataset sequence {i} has {} tokens; the prompt has {n_pos} (they must be equal)", s.len())));
    }
    let mut outs = Vec::with_capacity(dataset.len());
    for part in dataset.chunks(chunk.max(1)) {
        let items = part.iter().map(|s| RunRequest::new(s.clone()).with_cache(CacheSpec::Names(hooks.to_vec()))).collect();
        outs.extend(model.run_batch(backend, &BatchRequest::new(items)).await?);
    }
    Ok(outs)
}

/// An ablation of `target` on `prompt`: the metric without and with it. `dataset` (sequences
/// of the prompt's length) is read by mean and resample ablations. Runs in batches of `chunk`.
///
/// TransformerLens: `model.run_with_hooks(tokens, fwd_hooks=[(hook, fn)])` with `fn` setting the
/// head's `z[:, :, h]` (or the MLP output, or the neurons' `hook_post` entries) to zero, to its
/// mean over the dataset, or to its value on a dataset sequence.
#[allow(clippy::too_many_arguments)]
pub async fn ablate<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    prompt: &[u32],
    target: &AblationTarget,
    kind: AblationKind,
    dataset: &[Vec<u32>],
    metric: &Metric,
    pos: Option<usize>,
    chunk: usize,
) -> Result<AblationResult> {
    let cfg = &model.cfg;
    if prompt.is_empty() {
        return Err(Error::Request("the prompt has no tokens".into()));
    }
    let mut eval = MetricEval::new(cfg, metric, pos, prompt)?;
    let hooks = target.hooks(cfg)?;
    let base_out = model.run(backend, &RunRequest::new(prompt.to_vec())).await?;
    eval.set_reference(&base_out.logits);
    let base = eval.eval_full(&base_out.logits);
    let base_top = crate::run::top_k_probs(base_out.logits.row(eval.pos), 5);
    // The ablated runs' next-token probabilities at the metric's position, summed.
    let mut probs = vec![0f64; cfg.d_vocab_out];
    let mut add_probs = |logits: &HostTensor| {
        for (s, l) in probs.iter_mut().zip(super::log_softmax(logits.row(eval.pos))) {
            *s += l.exp() as f64;
        }
    };
    let run_with = |ivs: Vec<Intervention>| {
        let mut r = RunRequest::new(prompt.to_vec());
        r.interventions = ivs;
        r
    };
    let (ablated, samples) = match kind {
        AblationKind::Zero => {
            let out = model.run(backend, &run_with(zero_ablation(cfg, target)?)).await?;
            add_probs(&out.logits);
            (eval.eval_full(&out.logits), Vec::new())
        }
        AblationKind::Mean => {
            let outs = run_dataset(model, backend, dataset, prompt.len(), &hooks, chunk).await?;
            let means: Vec<(String, HostTensor)> = hooks
                .iter()
                .map(|h| {
                    let first = outs[0].get(h).expect("the dataset run cached the hook");
                    let mut sum = vec![0f64; first.len()];
                    for o in &outs {
                        for (s, &x) in sum.iter_mut().zip(&o.get(h).expect("cached").data) {
                            *s += x as f64;
                        }
                    }
                    let n = outs.len() as f64;
                    (h.clone(), HostTensor::new(first.shape.clone(), sum.into_iter().map(|s| (s / n) as f32).collect()))
                })
                .collect();
            let out = model.run(backend, &run_with(replace_ablation(cfg, target, &means)?)).await?;
            add_probs(&out.logits);
            (eval.eval_full(&out.logits), Vec::new())
        }
        AblationKind::Resample => {
            let outs = run_dataset(model, backend, dataset, prompt.len(), &hooks, chunk).await?;
            let mut samples = Vec::with_capacity(outs.len());
            for part in outs.chunks(chunk.max(1)) {
                let items = part.iter().map(|o| Ok(run_with(replace_ablation(cfg, target, &o.cache)?))).collect::<Result<Vec<_>>>()?;
                for out in model.run_batch(backend, &BatchRequest::new(items)).await? {
                    add_probs(&out.logits);
                    samples.push(eval.eval_full(&out.logits));
                }
            }
            let mean = (samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64) as f32;
            (mean, samples)
        }
    };
    let runs = samples.len().max(1) as f64;
    let mean_probs: Vec<f32> = probs.iter().map(|&p| (p / runs) as f32).collect();
    let mut ablated_top: Vec<(u32, f32)> = mean_probs.iter().enumerate().map(|(i, &p)| (i as u32, p)).collect();
    ablated_top.sort_by(|a, b| b.1.total_cmp(&a.1));
    ablated_top.truncate(5);
    Ok(AblationResult {
        target: target.clone(),
        kind,
        metric: metric.clone(),
        pos: eval.pos,
        base,
        ablated,
        change: ablated - base,
        samples,
        base_top,
        ablated_top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_names() {
        assert_eq!(shifted("blocks.5.attn.hook_z", 3), "blocks.2.attn.hook_z");
        assert_eq!(shifted("blocks.11.hook_resid_pre", 11), "blocks.0.hook_resid_pre");
        assert_eq!(shifted("hook_embed", 2), "hook_embed");
    }

    #[test]
    fn chunks_split_at_layers() {
        let c = |layer| Cell { layer, positions: None, head: None };
        let cells = vec![c(0), c(0), c(0), c(1), c(2), c(2)];
        assert_eq!(chunks(&cells, 2), vec![(0, vec![0, 1]), (0, vec![2]), (1, vec![3]), (2, vec![4, 5])]);
        assert_eq!(chunks(&cells, 100), vec![(0, vec![0, 1, 2]), (1, vec![3]), (2, vec![4, 5])]);
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize(2.0, 2.0, 1.0), 1.0);
        assert_eq!(normalize(1.0, 2.0, 1.0), 0.0);
        assert!(normalize(1.0, 1.0, 1.0).is_nan());
    }
}
