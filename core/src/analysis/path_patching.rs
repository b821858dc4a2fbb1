//! Path patching (Wang et al. 2022, "Interpretability in the Wild", appendix; the public
//! implementation this follows is ARENA's IOI exercise, `get_path_patch_head_to_final_resid_post`
//! and `get_path_patch_head_to_heads`), as batched sweeps over senders.
//!
//! A **sender** is a head's output (`blocks.{l}.attn.hook_z`, head `h`) or, optionally, an MLP's
//! output (`blocks.{l}.hook_mlp_out`). The **receivers** are the logits, or a set of heads' query,
//! key or value inputs ([`HeadInput`]). Path patching measures the effect of the sender on the
//! receivers along the direct path and through the MLPs only (not through other heads):
//!
//! 1. The clean and the corrupted prompt run once, caching every `hook_z` (and `hook_mlp_out`).
//! 2. The clean prompt runs with **every head's output (`hook_z`, every layer, every head)
//!    frozen to its clean value**, except the sender's, which is the corrupted run's (an MLP
//!    sender: every `hook_z` frozen, the sender's `hook_mlp_out` from the corrupted run). MLPs,
//!    norms and the final norm are recomputed, as in the paper. Receiver = logits: the metric of
//!    this run's logits (ARENA unembeds its final `resid_post` through `ln_final`: the same
//!    thing) is the result. Receiver = heads: this run's `attn.hook_q` / `hook_k` / `hook_v` at
//!    the receivers' layers are kept.
//! 3. (Heads.) The clean prompt runs again with only the receiver heads' q / k / v replaced by
//!    step 2's (`patch_head_input`); the metric of its logits is the result. A head's q (k, v) is
//!    linear in its input, so patching `hook_q` at that head is patching its query input.
//!
//! Only senders in layers before the last receiver layer can reach a receiver head (ARENA loops
//! over those); the result keeps the full `[layer, head]` grid and holds NaN (`null` in JSON)
//! for the senders it did not run. The receivers of k and v of a grouped-query model index its
//! `n_kv_heads` key / value heads, as TransformerLens's hooks do.
//!
//! **Normalisation**, as [`super::patching`]: `(value - corrupted) / (clean - corrupted)`, so 1 is
//! the clean run (a sender that does not matter along the path) and 0 the corrupted run (the
//! path carries the whole corruption). ARENA's IOI metric (`ioi_metric_2`) is
//! `(value - clean) / (clean - corrupted)`, which is this minus 1 (0 = clean, -1 = corrupted).
//! The raw values are kept too.
//!
//! **How it runs.** Every sender is one item of a [`crate::BatchRequest`] carrying its own
//! interventions (the frozen `hook_z` of every layer from the sender's on, the sender's slice
//! from the corrupted run); senders are chunked by layer as in [`super::patching`], and a chunk
//! of layer `s` runs only the blocks from `s` on, starting from the clean run's cached
//! `blocks.{s}.hook_resid_pre` (before the sender every head is frozen to its clean value, so
//! the run equals the clean run there). Step 2 for head receivers stops after the last receiver
//! layer; step 3 starts at the first receiver layer. Only the metric's rows go through `W_U`.
//! Progress is reported after every chunk (in senders), and a cancel flag is checked before
//! each; a cancelled sweep returns `Ok(None)`.

use serde::{Deserialize, Serialize};

use super::patching::{check_pair, eval_items, normalize, shifted, suffix, suffix_input, Axis, Component, Metric, MetricEval};
use crate::backend::Backend;
use crate::config::Config;
use crate::model::HookedTransformer;
use crate::run::{BatchRequest, CacheSpec, Intervention, InterventionOp, RunRequest};
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole};
use crate::{Error, Result};

/// Which input of the receiver heads is patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInput {
    Q,
    K,
    V,
}

impl HeadInput {
    pub const ALL: [HeadInput; 3] = [HeadInput::Q, HeadInput::K, HeadInput::V];

    /// `q`, `k` or `v`.
    pub fn name(self) -> &'static str {
        match self {
            HeadInput::Q => "q",
            HeadInput::K => "k",
            HeadInput::V => "v",
        }
    }

    fn component(self) -> Component {
        match self {
            HeadInput::Q => Component::Q,
            HeadInput::K => Component::K,
            HeadInput::V => Component::V,
        }
    }

    /// The hook of block `layer` (`blocks.{layer}.attn.hook_q`...).
    pub fn hook(self, layer: usize) -> String {
        self.component().hook(layer)
    }
}

impl std::str::FromStr for HeadInput {
    type Err = Error;
    fn from_str(s: &str) -> Result<HeadInput> {
        HeadInput::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| Error::Request(format!("unknown head input {s:?} (one of q, k, v)")))
    }
}

/// Where the paths end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Receivers {
    /// The final residual stream, i.e. the logits (`get_path_patch_head_to_final_resid_post`).
    Logits,
    /// The `input` (q, k or v) of these heads, as (layer, head) (`get_path_patch_head_to_heads`).
    Heads { heads: Vec<(usize, usize)>, input: HeadInput },
}

impl Receivers {
    /// The receiver heads, checked against the model, sorted and without repeats.
    fn checked_heads(&self, cfg: &Config) -> Result<Option<ReceiverHeads>> {
        let Receivers::Heads { heads, input } = self else {
            return Ok(None);
        };
        if heads.is_empty() {
            return Err(Error::Request("no receiver heads".into()));
        }
        let n = input.component().heads(cfg).expect("q, k and v are head components");
        for &(l, h) in heads {
            if l >= cfg.n_layers {
                return Err(Error::Request(format!("receiver layer {l} is out of range (the model has {} layers)", cfg.n_layers)));
            }
            if h >= n {
                let what = if n == cfg.n_heads { "heads per layer" } else { "key/value heads per layer" };
                return Err(Error::Request(format!("receiver head {h} is out of range (the model's {} has {n} {what})", input.hook(l))));
            }
        }
        let mut heads = heads.clone();
        heads.sort();
        heads.dedup();
        Ok(Some((heads, *input)))
    }
}

/// Receiver heads (layer, head), and their input.
type ReceiverHeads = (Vec<(usize, usize)>, HeadInput);

/// A path-patching sweep: the receivers, the metric, and whether MLPs are senders too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathPatchSpec {
    pub receivers: Receivers,
    pub metric: Metric,
    /// The position the metric reads (default: the last).
    #[serde(default)]
    pub pos: Option<usize>,
    /// Also sweep every MLP layer as a sender (`mlp_values`).
    #[serde(default)]
    pub mlp_senders: bool,
}

/// A path-patching sweep's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathPatchResult {
    pub spec: PathPatchSpec,
    /// The metric's position.
    pub pos: usize,
    /// `layer` x `head`: the senders.
    pub axes: Vec<Axis>,
    /// The raw metric with each head as the sender, row-major over `axes` (NaN, `null` in JSON,
    /// for senders that cannot reach the receivers and were not run).
    pub values: Vec<f32>,
    /// `(value - corrupted) / (clean - corrupted)`: 1 = the clean run (no effect along the path),
    /// 0 = the corrupted run.
    pub normalized: Vec<f32>,
    /// The same with each layer's MLP as the sender (`[layer]`; empty unless `mlp_senders`).
    #[serde(default)]
    pub mlp_values: Vec<f32>,
    #[serde(default)]
    pub mlp_normalized: Vec<f32>,
    /// The metric on the clean and on the corrupted run, unpatched.
    pub clean: f32,
    pub corrupted: f32,
    /// Senders run, forward passes for them (two per sender for head receivers) and
    /// `run_batch` calls made for them.
    pub senders: usize,
    pub runs: usize,
    pub batches: usize,
}

impl PathPatchResult {
    /// The raw value with head `head` of layer `layer` as the sender.
    pub fn get(&self, layer: usize, head: usize) -> f32 {
        self.values[layer * self.axes[1].size + head]
    }
}

/// A sender: a head's output, or an MLP's (`head: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sender {
    layer: usize,
    head: Option<usize>,
}

/// The senders that can reach the receivers, layer by layer (heads, then the MLP), in chunks of
/// at most `chunk` of one layer each: (layer, senders).
fn sender_chunks(cfg: &Config, layers: usize, mlp: bool, chunk: usize) -> Vec<(usize, Vec<Sender>)> {
    let chunk = chunk.max(1);
    let mut out: Vec<(usize, Vec<Sender>)> = Vec::new();
    for layer in 0..layers {
        let senders = (0..cfg.n_heads).map(|h| Sender { layer, head: Some(h) }).chain(mlp.then_some(Sender { layer, head: None }));
        for s in senders {
            match out.last_mut() {
                Some((l, v)) if *l == layer && v.len() < chunk => v.push(s),
                _ => out.push((layer, vec![s])),
            }
        }
    }
    out
}

/// The receivers a sender of layer `layer` can reach: those of later layers (the q / k / v of
/// the sender's own layer and of earlier ones are computed before it: their patched value is
/// the clean one, and patching it would change nothing).
fn reached(heads: &[(usize, usize)], layer: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    heads.iter().copied().filter(move |&(l, _)| l > layer)
}

/// `clean` (`[pos, n_heads, d_head]`) with head `head`'s slice taken from `corrupted`.
fn with_head(clean: &HostTensor, corrupted: &HostTensor, head: usize) -> HostTensor {
    let (n_heads, d_head) = (clean.shape[1], clean.shape[2]);
    let mut out = clean.clone();
    for p in 0..clean.shape[0] {
        let at = (p * n_heads + head) * d_head;
        out.data[at..at + d_head].copy_from_slice(&corrupted.data[at..at + d_head]);
    }
    out
}

/// A path-patching sweep (see the module docs): every sender's path to `spec.receivers`, `chunk`
/// senders per `run_batch` (each chunk holds the senders of one layer). `progress(done, total)`
/// is awaited after each chunk (in senders); `cancel` is checked before each chunk, and a
/// cancelled sweep returns `Ok(None)`.
///
/// TransformerLens (ARENA's IOI exercise): `get_path_patch_head_to_final_resid_post(model,
/// metric, new_dataset=corrupted, orig_dataset=clean)` for [`Receivers::Logits`] and
/// `get_path_patch_head_to_heads(receiver_heads, receiver_input, model, metric, corrupted,
/// clean)` for [`Receivers::Heads`], with the metric raw here (normalised in `normalized`).
#[allow(clippy::too_many_arguments)]
pub async fn path_patch<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    clean: &[u32],
    corrupted: &[u32],
    spec: &PathPatchSpec,
    chunk: usize,
    mut progress: impl AsyncFnMut(usize, usize),
    cancel: impl Fn() -> bool,
) -> Result<Option<PathPatchResult>> {
    let cfg = &model.cfg;
    check_pair(cfg, clean, corrupted)?;
    if spec.mlp_senders && cfg.d_mlp.is_none() {
        return Err(Error::Request("this model is attention-only: it has no MLP to use as a sender".into()));
    }
    let receivers = spec.receivers.checked_heads(cfg)?;
    let mut eval = MetricEval::new(cfg, &spec.metric, spec.pos, clean)?;
    let (n_layers, n_heads) = (cfg.n_layers, cfg.n_heads);

    // Step 1: the clean run caches its residual at every layer a chunk starts from and every
    // head's output; the corrupted run every head's (and MLP's) output.
    let resid: Vec<String> = (0..n_layers).map(|l| Component::ResidPre.hook(l)).collect();
    let z: Vec<String> = (0..n_layers).map(|l| Component::Z.hook(l)).collect();
    let mlp: Vec<String> = (0..n_layers).map(|l| Component::MlpOut.hook(l)).collect();
    let mut corrupted_hooks = z.clone();
    if spec.mlp_senders {
        corrupted_hooks.extend(mlp.iter().cloned());
    }
    let runs = model
        .run_batch(
            backend,
            &BatchRequest::new(vec![
                RunRequest::new(clean.to_vec()).with_cache(CacheSpec::Names(resid.iter().chain(&z).cloned().collect())),
                RunRequest::new(corrupted.to_vec()).with_cache(CacheSpec::Names(corrupted_hooks)),
            ]),
        )
        .await?;
    let (clean_out, corrupted_out) = (&runs[0], &runs[1]);
    eval.set_reference(&clean_out.logits);
    let clean_value = eval.eval_full(&clean_out.logits);
    let corrupted_value = eval.eval_full(&corrupted_out.logits);

    // Senders that can reach the receivers: every layer for the logits, the layers before the
    // last receiver layer for heads.
    let (sender_layers, step2_last) = match &receivers {
        None => (n_layers, n_layers - 1),
        Some((heads, _)) => {
            let top = heads.iter().map(|&(l, _)| l).max().expect("receivers were checked non-empty");
            (top, top)
        }
    };
    let groups = sender_chunks(cfg, sender_layers, spec.mlp_senders, chunk);
    let total: usize = groups.iter().map(|(_, s)| s.len()).sum();

    let zero_unembed = backend.upload_matrix(&HostMatrix::Dense(HostTensor::zeros(vec![cfg.d_model, 1])), MatrixRole::Linear)?;
    // Step 2 for head receivers needs only the blocks up to the last receiver layer.
    let upto = match &receivers {
        Some(_) if step2_last + 1 < n_layers => Some(model.truncated(backend, step2_last)?),
        _ => None,
    };
    let step2_model = upto.as_ref().unwrap_or(model);
    // Step 3 starts at the first receiver layer, from the clean residual.
    let step3 = receivers.as_ref().map(|(heads, input)| {
        let first = heads.iter().map(|&(l, _)| l).min().expect("receivers were checked non-empty");
        (first, *input, heads.clone(), suffix(model, first, &zero_unembed))
    });

    let mut values = vec![f32::NAN; n_layers * n_heads];
    let mut mlp_values = if spec.mlp_senders { vec![f32::NAN; n_layers] } else { Vec::new() };
    let (mut done, mut n_runs, mut n_batches) = (0, 0, 0);
    for (start, senders) in &groups {
        if cancel() {
            return Ok(None);
        }
        let start = *start;
        // Step 2: the clean prompt from the sender's layer on, every head frozen to its clean
        // output except the sender.
        let part = suffix(step2_model, start, &zero_unembed);
        let input = suffix_input(cfg, super::cached(clean_out, &resid[start])?);
        let cache: Vec<String> = match &step3 {
            None => vec!["unembed.hook_in".into()],
            Some((_, input, heads, _)) => {
                let mut names: Vec<String> = reached(heads, start).map(|(l, _)| shifted(&input.hook(l), start)).collect();
                names.dedup();
                names
            }
        };
        let mut items = Vec::with_capacity(senders.len());
        for s in senders {
            let mut ivs = input.clone();
            for (l, zl) in z.iter().enumerate().take(step2_last + 1).skip(start) {
                let frozen = super::cached(clean_out, zl)?;
                let value = match s.head {
                    Some(h) if l == s.layer => with_head(frozen, super::cached(corrupted_out, zl)?, h),
                    _ => frozen.clone(),
                };
                ivs.push(Intervention::new(shifted(zl, start), InterventionOp::Replace(value)));
            }
            if s.head.is_none() {
                let value = super::cached(corrupted_out, &mlp[s.layer])?.clone();
                ivs.push(Intervention::new(shifted(&mlp[s.layer], start), InterventionOp::Replace(value)));
            }
            let mut req = RunRequest::new(clean.to_vec()).with_cache(CacheSpec::Names(cache.clone()));
            req.interventions = ivs;
            items.push(req);
        }
        let got = match &step3 {
            // Receiver = logits: the metric of step 2's run.
            None => {
                n_runs += items.len();
                n_batches += 1;
                eval_items(model, &part, backend, items, &eval).await?
            }
            // Step 3: the clean prompt with only the receivers' inputs from step 2.
            Some((first, input, heads, part3)) => {
                let outs = part.run_batch(backend, &BatchRequest::new(items)).await?;
                let resid_first = suffix_input(cfg, super::cached(clean_out, &resid[*first])?);
                let mut items3 = Vec::with_capacity(outs.len());
                for out in &outs {
                    let mut req = RunRequest::new(clean.to_vec()).cache(&["unembed.hook_in"]);
                    req.interventions = resid_first.clone();
                    for (l, h) in reached(heads, start) {
                        let patched = super::cached(out, &shifted(&input.hook(l), start))?.clone();
                        req.interventions.push(Intervention::new(shifted(&input.hook(l), *first), InterventionOp::Replace(patched)).at_head(h));
                    }
                    items3.push(req);
                }
                n_runs += 2 * outs.len();
                n_batches += 2;
                eval_items(model, part3, backend, items3, &eval).await?
            }
        };
        for (s, v) in senders.iter().zip(got) {
            match s.head {
                Some(h) => values[s.layer * n_heads + h] = v,
                None => mlp_values[s.layer] = v,
            }
        }
        done += senders.len();
        progress(done, total).await;
    }
    let norm = |v: &[f32]| v.iter().map(|&x| normalize(x, clean_value, corrupted_value)).collect::<Vec<f32>>();
    Ok(Some(PathPatchResult {
        spec: spec.clone(),
        pos: eval.pos,
        axes: vec![Axis { name: "layer".into(), size: n_layers }, Axis { name: "head".into(), size: n_heads }],
        normalized: norm(&values),
        values,
        mlp_normalized: norm(&mlp_values),
        mlp_values,
        clean: clean_value,
        corrupted: corrupted_value,
        senders: total,
        runs: n_runs,
        batches: n_batches,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_head_replaces_one_slice() {
        let clean = HostTensor::new(vec![2, 3, 2], (0..12).map(|x| x as f32).collect());
        let corrupted = HostTensor::new(vec![2, 3, 2], vec![-1.0; 12]);
        let out = with_head(&clean, &corrupted, 1);
        assert_eq!(out.data, vec![0.0, 1.0, -1.0, -1.0, 4.0, 5.0, 6.0, 7.0, -1.0, -1.0, 10.0, 11.0]);
    }

    #[test]
    fn head_input_names() {
        assert_eq!(HeadInput::K.hook(3), "blocks.3.attn.hook_k");
        assert_eq!("v".parse::<HeadInput>().unwrap(), HeadInput::V);
        assert!("z".parse::<HeadInput>().is_err());
    }
}
