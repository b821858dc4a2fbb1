//! A run: which tokens, which hooks to cache, which interventions to apply, and what comes
//! back. Hooks belong to one run, never to global state (ARCHITECTURE.md, invariant 2).
//!
//! Interventions are lowered, before the forward pass, to one elementwise affine map per hook
//! (`x * mul + add`, with `mul` and `add` of the hook's shape). Zero, scale, add-a-vector and
//! replace-with-a-tensor at any position x head x neuron selection are all such maps, and
//! several interventions on one hook compose into one. Both backends apply it the same way.
//!
//! A batch is a list of runs of equal token length, each with its own interventions and cache
//! spec (item i of a patching sweep patches its own position and layer). The forward pass runs
//! them at once, stacked along `pos`; each item's affine maps fill its own slice of the
//! batch's. One run is a batch of one: there is a single code path.
//!
//! These are internal values: they do not derive `Serialize`. What is shared, stored or sent
//! is an [`crate::Experiment`], which lowers to them.

use crate::config::Config;
use crate::hooks::{hook_points, HookKind, HookPoint};
use crate::tensor::HostTensor;
use crate::{Error, Result};

/// What a run caches.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum CacheSpec {
    /// Nothing but the logits.
    #[default]
    None,
    /// Every hook point.
    All,
    /// These hook points (TransformerLens names).
    Names(Vec<String>),
}

/// What an intervention does to the selected entries of a hook's activation.
#[derive(Clone, Debug, PartialEq)]
pub enum InterventionOp {
    /// Set to zero (ablation).
    Zero,
    /// Multiply by a factor.
    Scale(f32),
    /// Add a vector along the hook's last axis (length of that axis; length 1 when a single
    /// neuron is selected). For the residual stream this is a steering vector.
    Add(Vec<f32>),
    /// Replace with the values of a tensor of the hook's full shape (for example the same hook
    /// cached from another run: activation patching). Only the selected entries are copied.
    Replace(HostTensor),
}

/// One intervention at a hook x position x head x neuron.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervention {
    /// TransformerLens hook name, for example `blocks.0.attn.hook_z`.
    pub hook: String,
    /// Positions (query positions for attention patterns); `None` means every position.
    pub positions: Option<Vec<usize>>,
    /// One head, for hooks with a head axis; `None` means every head.
    pub head: Option<usize>,
    /// One index along the last axis (MLP neuron, residual dimension, d_head index, key
    /// position); `None` means all of them.
    pub neuron: Option<usize>,
    pub op: InterventionOp,
}

impl Intervention {
    pub fn new(hook: impl Into<String>, op: InterventionOp) -> Intervention {
        Intervention { hook: hook.into(), positions: None, head: None, neuron: None, op }
    }
    pub fn at_positions(mut self, positions: Vec<usize>) -> Intervention {
        self.positions = Some(positions);
        self
    }
    pub fn at_head(mut self, head: usize) -> Intervention {
        self.head = Some(head);
        self
    }
    pub fn at_neuron(mut self, neuron: usize) -> Intervention {
        self.neuron = Some(neuron);
        self
    }
}

/// A request for one forward pass (one item of a batch).
#[derive(Clone, Debug, PartialEq)]
pub struct RunRequest {
    pub tokens: Vec<u32>,
    pub cache: CacheSpec,
    pub interventions: Vec<Intervention>,
}

impl RunRequest {
    pub fn new(tokens: Vec<u32>) -> RunRequest {
        RunRequest { tokens, cache: CacheSpec::None, interventions: Vec::new() }
    }
    pub fn cache_all(mut self) -> RunRequest {
        self.cache = CacheSpec::All;
        self
    }
    pub fn cache(mut self, names: &[&str]) -> RunRequest {
        self.cache = CacheSpec::Names(names.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn intervene(mut self, i: Intervention) -> RunRequest {
        self.interventions.push(i);
        self
    }
    pub fn with_cache(mut self, cache: CacheSpec) -> RunRequest {
        self.cache = cache;
        self
    }
}

/// Runs of equal token length done in one forward pass; each item has its own interventions
/// and cache spec, and gets its own [`RunOutput`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BatchRequest {
    pub items: Vec<RunRequest>,
}

impl BatchRequest {
    pub fn new(items: Vec<RunRequest>) -> BatchRequest {
        BatchRequest { items }
    }

    /// `n_batch` sequences laid one after another in `tokens`, none with interventions, each
    /// caching `cache`.
    pub fn uniform(tokens: &[u32], n_batch: usize, cache: &CacheSpec) -> crate::Result<BatchRequest> {
        if n_batch == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(n_batch) {
            return Err(Error::Request(format!("{} tokens do not split into {n_batch} equal sequences", tokens.len())));
        }
        let n_pos = tokens.len() / n_batch;
        Ok(BatchRequest { items: tokens.chunks(n_pos).map(|t| RunRequest::new(t.to_vec()).with_cache(cache.clone())).collect() })
    }
}

/// What a run returns: the cached hooks in forward order, and the logits `[pos, d_vocab]`.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    pub cache: Vec<(String, HostTensor)>,
    pub logits: HostTensor,
}

impl Default for HostTensor {
    fn default() -> HostTensor {
        HostTensor { shape: vec![0], data: vec![] }
    }
}

impl RunOutput {
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.cache.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The `k` most likely next tokens at position `pos`, as (token id, probability).
    pub fn top_k(&self, pos: usize, k: usize) -> Vec<(u32, f32)> {
        top_k_probs(self.logits.row(pos), k)
    }
}

/// Softmax of `logits`, then the `k` largest entries, most likely first.
pub fn top_k_probs(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| exps[b].total_cmp(&exps[a]));
    idx.into_iter().take(k).map(|i| (i as u32, exps[i] / sum)).collect()
}

/// The affine map (`x * mul + add`) that a hook's interventions lower to.
#[derive(Clone, Debug)]
pub struct HookAffine {
    pub mul: HostTensor,
    pub add: HostTensor,
}

/// A batch checked against the model, with every item's interventions lowered to affine
/// maps and stacked into one per hook.
#[derive(Clone, Debug)]
pub(crate) struct PlannedRun {
    /// Every item's tokens, one sequence after another: `[n_batch * n_pos]`.
    pub tokens: Vec<u32>,
    pub n_batch: usize,
    pub n_pos: usize,
    /// One entry per hook point, in forward order: (point, cache it?, affine map). The affine
    /// map is `[n_batch, ...hook shape]`, identity for items that do not intervene there.
    pub hooks: Vec<(HookPoint, bool, Option<HookAffine>)>,
    /// Per item, per hook point: whether that item asked for the hook.
    pub wanted: Vec<Vec<bool>>,
}

impl PlannedRun {
    /// Plans one run.
    pub fn plan(cfg: &Config, req: &RunRequest) -> Result<PlannedRun> {
        Self::plan_batch(cfg, std::slice::from_ref(req))
    }

    /// Plans a batch of runs of equal length.
    pub fn plan_batch(cfg: &Config, items: &[RunRequest]) -> Result<PlannedRun> {
        let Some(first) = items.first() else {
            return Err(Error::Request("a batch needs at least one run".into()));
        };
        let n_pos = first.tokens.len();
        if n_pos == 0 {
            return Err(Error::Request("the prompt is empty: there are no tokens to run".into()));
        }
        if n_pos > cfg.n_ctx {
            return Err(Error::Request(format!("{n_pos} tokens is longer than the model's context of {}", cfg.n_ctx)));
        }
        if let Some(other) = items.iter().find(|r| r.tokens.len() != n_pos) {
            return Err(Error::Request(format!("the runs of a batch must have equal lengths: {n_pos} and {} tokens", other.tokens.len())));
        }
        let points = hook_points(cfg);
        let mut tokens = Vec::with_capacity(items.len() * n_pos);
        let mut wanted = Vec::with_capacity(items.len());
        let mut item_affines = Vec::with_capacity(items.len());
        for req in items {
            if let Some(&t) = req.tokens.iter().find(|&&t| t as usize >= cfg.d_vocab) {
                return Err(Error::Request(format!("token id {t} is outside the vocabulary of {}", cfg.d_vocab)));
            }
            tokens.extend_from_slice(&req.tokens);
            wanted.push(cache_wanted(&points, &req.cache)?);
            item_affines.push(lower_all(cfg, &points, n_pos, &req.interventions)?);
        }
        let n_batch = items.len();
        let hooks = points
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let cache = wanted.iter().any(|w| w[i]);
                let affine = stack_affines(&p.shape(cfg, n_pos), item_affines.iter().map(|a| a[i].as_ref()), n_batch);
                (p, cache, affine)
            })
            .collect();
        Ok(PlannedRun { tokens, n_batch, n_pos, hooks, wanted })
    }
}

/// Which hook points a cache spec asks for; unknown names are an error.
fn cache_wanted(points: &[HookPoint], cache: &CacheSpec) -> Result<Vec<bool>> {
    Ok(match cache {
        CacheSpec::None => vec![false; points.len()],
        CacheSpec::All => vec![true; points.len()],
        CacheSpec::Names(names) => {
            for n in names {
                if !points.iter().any(|p| &p.name == n) {
                    return Err(Error::Request(format!("unknown hook {n:?}")));
                }
            }
            points.iter().map(|p| names.contains(&p.name)).collect()
        }
    })
}

/// One run's interventions lowered to one affine map per hook point (composed in order).
fn lower_all(cfg: &Config, points: &[HookPoint], n_pos: usize, interventions: &[Intervention]) -> Result<Vec<Option<HookAffine>>> {
    let mut affines: Vec<Option<HookAffine>> = vec![None; points.len()];
    for iv in interventions {
        let i = points.iter().position(|p| p.name == iv.hook).ok_or_else(|| Error::Request(format!("unknown hook {:?} in an intervention", iv.hook)))?;
        let (mul, add) = lower(cfg, &points[i], n_pos, iv)?;
        affines[i] = Some(match affines[i].take() {
            None => HookAffine { mul, add },
            // (x*m1 + a1)*m2 + a2 = x*(m1*m2) + (a1*m2 + a2)
            Some(prev) => {
                let m: Vec<f32> = prev.mul.data.iter().zip(&mul.data).map(|(a, b)| a * b).collect();
                let a: Vec<f32> = prev.add.data.iter().zip(&mul.data).zip(&add.data).map(|((a1, m2), a2)| a1 * m2 + a2).collect();
                HookAffine { mul: HostTensor::new(mul.shape.clone(), m), add: HostTensor::new(add.shape.clone(), a) }
            }
        });
    }
    Ok(affines)
}

/// The batch's affine map at one hook: each item's map in its own slice (`[n_batch, ...shape]`,
/// which is the batched activation's memory order for every hook kind), the identity for
/// items without one; `None` when no item intervenes there. A batch of one keeps the hook's
/// own shape.
fn stack_affines<'a>(shape: &[usize], items: impl Iterator<Item = Option<&'a HookAffine>> + Clone, n_batch: usize) -> Option<HookAffine> {
    if items.clone().all(|a| a.is_none()) {
        return None;
    }
    if n_batch == 1 {
        return items.into_iter().next().flatten().cloned();
    }
    let numel: usize = shape.iter().product();
    let mut mul = Vec::with_capacity(n_batch * numel);
    let mut add = Vec::with_capacity(n_batch * numel);
    for a in items {
        match a {
            Some(a) => {
                mul.extend_from_slice(&a.mul.data);
                add.extend_from_slice(&a.add.data);
            }
            None => {
                mul.extend(std::iter::repeat_n(1.0, numel));
                add.extend(std::iter::repeat_n(0.0, numel));
            }
        }
    }
    let batched: Vec<usize> = std::iter::once(n_batch).chain(shape.iter().copied()).collect();
    Some(HookAffine { mul: HostTensor::new(batched.clone(), mul), add: HostTensor::new(batched, add) })
}

/// Lowers one intervention to `(mul, add)` of the hook's shape.
fn lower(cfg: &Config, point: &HookPoint, n_pos: usize, iv: &Intervention) -> Result<(HostTensor, HostTensor)> {
    let shape = point.shape(cfg, n_pos);
    let bad = |msg: String| Error::Request(format!("intervention on {}: {msg}", point.name));
    let last = *shape.last().unwrap();
    let n_heads = match point.kind {
        HookKind::PosHead { heads } => Some(heads),
        HookKind::HeadQueryKey => Some(cfg.n_heads),
        _ => None,
    };
    if let Some(ps) = &iv.positions {
        if let Some(&p) = ps.iter().find(|&&p| p >= n_pos) {
            return Err(bad(format!("position {p} is past the last position {}", n_pos - 1)));
        }
    }
    if let Some(h) = iv.head {
        let Some(n_heads) = n_heads else {
            return Err(bad("this hook has no head axis".into()));
        };
        if h >= n_heads {
            return Err(bad(format!("head {h} does not exist (this hook has {n_heads})")));
        }
    }
    if let Some(n) = iv.neuron {
        if n >= last {
            return Err(bad(format!("index {n} is past the last axis of size {last}")));
        }
    }
    let vec_len = if iv.neuron.is_some() { 1 } else { last };
    match &iv.op {
        InterventionOp::Add(v) if v.len() != vec_len => return Err(bad(format!("the added vector has {} values, expected {vec_len}", v.len()))),
        InterventionOp::Replace(t) if t.shape != shape => return Err(bad(format!("the replacement has shape {:?}, expected {shape:?}", t.shape))),
        _ => {}
    }
    let mut mul = HostTensor::full(shape.clone(), 1.0);
    let mut add = HostTensor::zeros(shape.clone());
    let (a1, a2) = (shape[1], shape.get(2).copied().unwrap_or(1));
    for flat in 0..mul.len() {
        let (i0, i1, i2) = (flat / (a1 * a2), (flat / a2) % a1, flat % a2);
        // Which position, head and neuron this entry belongs to.
        let (pos, head, neuron) = match point.kind {
            HookKind::PosWidth { .. } | HookKind::Scale => (i0, None, i1),
            HookKind::PosHead { .. } => (i0, Some(i1), i2),
            HookKind::HeadQueryKey => (i1, Some(i0), i2),
        };
        let selected =
            iv.positions.as_ref().is_none_or(|ps| ps.contains(&pos)) && iv.head.is_none_or(|h| head == Some(h)) && iv.neuron.is_none_or(|n| n == neuron);
        if !selected {
            continue;
        }
        match &iv.op {
            InterventionOp::Zero => mul.data[flat] = 0.0,
            InterventionOp::Scale(s) => mul.data[flat] = *s,
            InterventionOp::Add(v) => add.data[flat] = v[if iv.neuron.is_some() { 0 } else { neuron }],
            InterventionOp::Replace(t) => {
                mul.data[flat] = 0.0;
                add.data[flat] = t.data[flat];
            }
        }
    }
    Ok((mul, add))
}
