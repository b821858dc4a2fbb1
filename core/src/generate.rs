//! Generation with a KV cache, and steering (ActAdd, Turner et al. 2023).
//!
//! * [`KvCache`]: per layer, the keys and values of the positions decoded so far, on the
//!   backend, after rotary (`[pos, n_kv_heads * d_head]`, the layout of `hook_k` / `hook_rot_k`).
//! * [`HookedTransformer::forward_step`]: the forward pass over new tokens at positions
//!   `cache.len()..`: the same code path as the full pass (`model.rs`, `forward_kv`), with the
//!   learned positions and the rotary angles offset, the new keys and values appended to the
//!   cache and the new queries attending to every cached key (causal inside the new block:
//!   the `attn_scores_cached` / `attn_z_cached` ops). Interventions apply at their absolute
//!   positions, so a step computes exactly the rows the full pass computes for those positions.
//! * [`generate`]: prefill the prompt, then one token per step; seeded sampling through
//!   candle-transformers' `LogitsProcessor` (temperature, top-p; greedy at temperature 0), stop
//!   tokens, a maximum of new tokens, and the context's end.
//! * [`Steering`]: a vector added at a hook while generating: ActAdd's per-position difference
//!   of two prompts' activations ([`actadd`]; added at the prompt's first positions, as ActAdd
//!   does), or an MLP neuron's output direction ([`neuron_steering`]; added at every position).
//!
//! One sequence at a time (a batch of one): steered and unsteered generations are two calls.

use candle_transformers::generation::LogitsProcessor;

use crate::backend::Backend;
use crate::config::Config;
use crate::hooks::{hook_points, HookKind};
use crate::model::HookedTransformer;
use crate::run::{top_k_probs, BatchRequest, CacheSpec, Intervention, InterventionOp, PlannedRun, RunRequest};
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, ModelWeights};
use crate::{Error, Result};

/// The keys and values of the positions decoded so far, per layer, on the backend.
pub struct KvCache<B: Backend> {
    /// Per layer: (k, v), each `[len, n_kv_heads * d_head]`; k after rotary. `None` before the
    /// first step.
    layers: Vec<Option<(B::Tensor, B::Tensor)>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model of `n_layers` blocks.
    pub fn new(n_layers: usize) -> KvCache<B> {
        KvCache { layers: vec![None; n_layers], len: 0 }
    }

    /// Positions cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Layer `l`'s slot, for the forward pass.
    pub(crate) fn layer(&mut self, l: usize) -> &mut Option<(B::Tensor, B::Tensor)> {
        &mut self.layers[l]
    }

    /// Counts `n` new positions once every layer has appended them.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}

/// Appends the new keys and values `[n_new, ..]` to a layer's slot; returns all of them.
pub(crate) fn append_kv<B: Backend>(backend: &B, slot: &mut Option<(B::Tensor, B::Tensor)>, k: &B::Tensor, v: &B::Tensor) -> Result<(B::Tensor, B::Tensor)> {
    let all = match slot.take() {
        None => (k.clone(), v.clone()),
        Some((ck, cv)) => (backend.concat_rows(&ck, k)?, backend.concat_rows(&cv, v)?),
    };
    *slot = Some(all.clone());
    Ok(all)
}

impl<B: Backend> HookedTransformer<B> {
    /// The forward pass over `tokens` at positions `cache.len()..`, attending to the cached
    /// positions, which it extends: logits `[tokens, d_vocab_out]`, still on the backend.
    /// `interventions` name absolute positions (`None`: every position, the new ones included);
    /// those outside this step are left out. Interventions on attention scores or patterns
    /// (whose key axis a step does not have in full) and replacements are refused. After an
    /// error the cache is in an unknown state: start a new one.
    pub fn forward_step(&self, backend: &B, cache: &mut KvCache<B>, tokens: &[u32], interventions: &[Intervention]) -> Result<B::Tensor> {
        if cache.layers.len() != self.cfg.n_layers {
            return Err(Error::Request(format!("the KV cache has {} layers, the model {}", cache.layers.len(), self.cfg.n_layers)));
        }
        let offset = cache.len();
        if offset + tokens.len() > self.cfg.n_ctx {
            return Err(Error::Request(format!("{} tokens is longer than the model's context of {}", offset + tokens.len(), self.cfg.n_ctx)));
        }
        let req =
            RunRequest { tokens: tokens.to_vec(), cache: CacheSpec::None, interventions: step_interventions(&self.cfg, interventions, offset, tokens.len())? };
        let plan = PlannedRun::plan(&self.cfg, &req)?;
        Ok(self.forward_kv(backend, &plan, Some(cache))?.0)
    }
}

/// The interventions of a step over positions `offset..offset + n`, with positions made
/// relative to the step.
fn step_interventions(cfg: &Config, interventions: &[Intervention], offset: usize, n: usize) -> Result<Vec<Intervention>> {
    let points = hook_points(cfg);
    let mut out = Vec::with_capacity(interventions.len());
    for iv in interventions {
        let point = points.iter().find(|p| p.name == iv.hook).ok_or_else(|| Error::Request(format!("unknown hook {:?} in an intervention", iv.hook)))?;
        if matches!(point.kind, HookKind::HeadQueryKey) {
            return Err(Error::Request(format!("{}: interventions on attention scores or patterns are not supported while generating", iv.hook)));
        }
        if matches!(iv.op, InterventionOp::Replace(_)) {
            return Err(Error::Request(format!("{}: replacing a whole activation is not supported while generating", iv.hook)));
        }
        let mut iv = iv.clone();
        if let Some(ps) = &iv.positions {
            let here: Vec<usize> = ps.iter().filter(|&&p| p >= offset && p < offset + n).map(|&p| p - offset).collect();
            if here.is_empty() {
                continue;
            }
            iv.positions = Some(here);
        }
        out.push(iv);
    }
    Ok(out)
}

/// How to pick each new token, and when to stop.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 (or below 1e-7) is greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling: sample among the most likely tokens whose probabilities sum to `top_p`.
    pub top_p: Option<f64>,
    /// The sampler's seed: the same seed, prompt and model give the same tokens.
    pub seed: u64,
    /// Tokens that end the generation (included in the output).
    pub stop: Vec<u32>,
    /// Report the `top_k` most likely tokens (and their probabilities) at each step; 0: none.
    pub top_k: usize,
    /// Keep each step's full logits row (the row the token was sampled from).
    pub keep_logits: bool,
    /// Decode with the KV cache (true), or rerun the whole sequence at every step (false: the
    /// reference, and the benchmark's baseline).
    pub use_cache: bool,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions { max_new_tokens: 32, temperature: 0.0, top_p: None, seed: 0, stop: Vec::new(), top_k: 0, keep_logits: false, use_cache: true }
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    MaxTokens,
    StopToken,
    /// The next token would not fit in the model's context.
    ContextFull,
}

/// What [`generate`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The new tokens (the prompt is not repeated).
    pub tokens: Vec<u32>,
    /// Per new token: the `top_k` most likely tokens at that step, (id, probability), before
    /// temperature. Empty when `top_k` is 0.
    pub top: Vec<Vec<(u32, f32)>>,
    /// Per new token: the logits row it was sampled from, when `keep_logits`.
    pub logits: Vec<Vec<f32>>,
    pub stop: StopReason,
}

/// Where a steering vector is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteerAt {
    /// Row `p` at position `p` of the prompt, for the rows that fit in the prompt (ActAdd: the
    /// difference of two prompts, aligned with the first positions of the user's prompt). The
    /// generated positions see it through attention only, as in ActAdd.
    Prefix,
    /// The one row at every position, the generated ones included.
    Every,
}

/// A steering vector: `coeff * rows` added at `hook` (a hook of shape `[pos, width]`, such as
/// `blocks.{l}.hook_resid_pre`), while generating.
#[derive(Clone, Debug, PartialEq)]
pub struct Steering {
    pub hook: String,
    /// One row per prompt position ([`SteerAt::Prefix`]) or one row ([`SteerAt::Every`]).
    pub rows: Vec<Vec<f32>>,
    pub coeff: f32,
    pub at: SteerAt,
}

impl Steering {
    /// The interventions that add this vector to a sequence whose prompt has `prompt_len` tokens
    /// (absolute positions).
    pub fn interventions(&self, prompt_len: usize) -> Vec<Intervention> {
        let scaled = |row: &[f32]| row.iter().map(|x| x * self.coeff).collect::<Vec<f32>>();
        match self.at {
            SteerAt::Every => self.rows.first().map(|r| Intervention::new(self.hook.clone(), InterventionOp::Add(scaled(r)))).into_iter().collect(),
            SteerAt::Prefix => self
                .rows
                .iter()
                .take(prompt_len)
                .enumerate()
                .map(|(p, r)| Intervention::new(self.hook.clone(), InterventionOp::Add(scaled(r))).at_positions(vec![p]))
                .collect(),
        }
    }

    /// The vector's norm per row (what the CLI reports).
    pub fn row_norms(&self) -> Vec<f32> {
        self.rows.iter().map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt() * self.coeff.abs()).collect()
    }
}

/// ActAdd's steering rows: the activations at `hook` of `plus` minus those of `minus`, position
/// by position, the shorter prompt padded at its end with `pad` (ActAdd pads with a space).
/// Both prompts as tokenized (with the BOS the user's prompt also starts with, so that row 0 is
/// the BOS position and is zero).
pub async fn actadd_rows<B: Backend>(model: &HookedTransformer<B>, backend: &B, plus: &[u32], minus: &[u32], pad: u32, hook: &str) -> Result<Vec<Vec<f32>>> {
    let n = plus.len().max(minus.len());
    let padded = |t: &[u32]| {
        let mut t = t.to_vec();
        t.resize(n, pad);
        t
    };
    let point = hook_points(&model.cfg).into_iter().find(|p| p.name == hook).ok_or_else(|| Error::Request(format!("unknown hook {hook:?}")))?;
    if !matches!(point.kind, HookKind::PosWidth { .. }) {
        return Err(Error::Request(format!("{hook}: a steering vector needs a hook of shape [pos, width] (the residual stream, an attention or MLP output)")));
    }
    let reqs = vec![RunRequest::new(padded(plus)).cache(&[hook]), RunRequest::new(padded(minus)).cache(&[hook])];
    let outs = model.run_batch(backend, &BatchRequest::new(reqs)).await?;
    let get = |i: usize| outs[i].get(hook).cloned().ok_or_else(|| Error::Request(format!("{hook} was not cached")));
    let (a, b): (HostTensor, HostTensor) = (get(0)?, get(1)?);
    Ok((0..n).map(|p| a.row(p).iter().zip(b.row(p)).map(|(x, y)| x - y).collect()).collect())
}

/// ActAdd (Turner et al. 2023): `coeff * (act(plus) - act(minus))` at `blocks.{layer}.hook_resid_pre`,
/// added at the first positions of the prompt.
pub async fn actadd<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    plus: &[u32],
    minus: &[u32],
    pad: u32,
    layer: usize,
    coeff: f32,
) -> Result<Steering> {
    if layer >= model.cfg.n_layers {
        return Err(Error::Request(format!("layer {layer} is out of range (the model has {} layers)", model.cfg.n_layers)));
    }
    let hook = format!("blocks.{layer}.hook_resid_pre");
    let rows = actadd_rows(model, backend, plus, minus, pad, &hook).await?;
    Ok(Steering { hook, rows, coeff, at: SteerAt::Prefix })
}

/// MLP neuron `neuron` of block `layer`: its output direction (row `neuron` of `W_out`, what the
/// neuron writes into the residual stream per unit of activation) times `coeff`, added to
/// `blocks.{layer}.hook_mlp_out` at every position: as if the neuron fired `coeff` more.
pub fn neuron_steering<T>(cfg: &Config, weights: &ModelWeights<T, HostMatrix>, layer: usize, neuron: usize, coeff: f32) -> Result<Steering> {
    let block = weights.blocks.get(layer).ok_or_else(|| Error::Request(format!("layer {layer} is out of range (the model has {} layers)", cfg.n_layers)))?;
    let mlp = block.mlp.as_ref().ok_or_else(|| Error::Request(format!("block {layer} has no MLP (attention-only model)")))?;
    let row = crate::analysis::Linear::new(&mlp.W_out).row(neuron)?;
    Ok(Steering { hook: format!("blocks.{layer}.hook_mlp_out"), rows: vec![row], coeff, at: SteerAt::Every })
}

/// The sampler: candle-transformers' `LogitsProcessor` (seeded; argmax at temperature 0).
struct Sampler(LogitsProcessor);

impl Sampler {
    fn new(opts: &GenerateOptions) -> Sampler {
        Sampler(LogitsProcessor::new(opts.seed, Some(opts.temperature), opts.top_p))
    }

    fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        let t = candle_core::Tensor::from_slice(logits, logits.len(), &candle_core::Device::Cpu)?;
        Ok(self.0.sample(&t)?)
    }
}

/// Generates up to `opts.max_new_tokens` tokens after `prompt` (which should start with the
/// model's BOS, as the tokenizer gives it), with `steering` added while it runs. With the KV
/// cache each step runs one position; `use_cache: false` reruns the whole sequence instead,
/// with the same logits (within float error) and so the same tokens.
pub async fn generate<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    prompt: &[u32],
    opts: &GenerateOptions,
    steering: Option<&Steering>,
) -> Result<Generation> {
    if prompt.is_empty() {
        return Err(Error::Request("the prompt is empty: there are no tokens to continue".into()));
    }
    let n_ctx = model.cfg.n_ctx;
    if prompt.len() > n_ctx {
        return Err(Error::Request(format!("{} tokens is longer than the model's context of {n_ctx}", prompt.len())));
    }
    let interventions = steering.map(|s| s.interventions(prompt.len())).unwrap_or_default();
    let mut sampler = Sampler::new(opts);
    let mut out = Generation { tokens: Vec::new(), top: Vec::new(), logits: Vec::new(), stop: StopReason::MaxTokens };
    if opts.max_new_tokens == 0 {
        return Ok(out);
    }
    let mut seq = prompt.to_vec();
    let mut cache = KvCache::<B>::new(model.cfg.n_layers);
    let n_out = model.cfg.d_vocab_out;
    loop {
        let last: Vec<f32> = if opts.use_cache {
            let fresh = &seq[cache.len()..];
            let logits = model.forward_step(backend, &mut cache, fresh, &interventions)?;
            let data = backend.read(&[&logits]).await?.remove(0);
            data[data.len() - n_out..].to_vec()
        } else {
            let req = RunRequest { tokens: seq.clone(), cache: CacheSpec::None, interventions: interventions.clone() };
            let run = model.run(backend, &req).await?;
            run.logits.row(seq.len() - 1).to_vec()
        };
        let token = sampler.sample(&last)?;
        if opts.top_k > 0 {
            out.top.push(top_k_probs(&last, opts.top_k));
        }
        if opts.keep_logits {
            out.logits.push(last);
        }
        out.tokens.push(token);
        seq.push(token);
        if opts.stop.contains(&token) {
            out.stop = StopReason::StopToken;
            break;
        }
        if out.tokens.len() >= opts.max_new_tokens {
            out.stop = StopReason::MaxTokens;
            break;
        }
        if seq.len() > n_ctx {
            out.stop = StopReason::ContextFull;
            break;
        }
    }
    Ok(out)
}
