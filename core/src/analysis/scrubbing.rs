//! Causal scrubbing (Chan et al. 2022, Redwood Research) and interchange interventions
//! (Geiger et al. 2021): tests of a mechanistic hypothesis by resampling activations.
//!
//! **A hypothesis** ([`Hypothesis`]) is a list of [`Claim`]s. A claim names a model node
//! ([`Site`]: a head's output `hook_z`, one input path q / k / v of a head, an MLP or attention
//! output, the residual stream; optionally at some positions only) and the [`Feature`] of the
//! input it is claimed to depend on ("the token at position p - 1", "the parentheses have equal
//! counts", ...). A claim may instead be **composite**: its node is claimed to be computed from
//! named inner nodes (`inputs`, each a leaf claim with its own feature), everything else that
//! flows into it being irrelevant.
//!
//! **Scrubbing** evaluates the model on every example `x` of a [`Dataset`] with each claimed
//! node's activation replaced, and measures the task loss against `x`'s own targets:
//! - a **leaf claim** (no `inputs`) takes the node's value on a resampled example `x'` that
//!   agrees with `x` on the claim's feature (drawn uniformly from the dataset's examples other
//!   than `x` that agree; `x` itself only when no other example does). A per-position feature
//!   ([`Feature::per_position`]) draws one `x'_p` per position `p` of the claim, and row `p`
//!   of the node comes from `x'_p`'s run;
//! - a **composite claim** (non-empty `inputs`) recomputes the node: the model runs on a
//!   sample `x_u` agreeing with `x` on the claim's own feature ([`Feature::Nothing`]: an
//!   unconditional sample, Redwood's "everything the hypothesis does not name is resampled from
//!   a random example"), with each inner claim's node replaced as a leaf claim relative to `x`,
//!   and the node's value in that run is patched into `x`'s run;
//! - **treeified**: every claim, every inner claim and (for per-position features) every
//!   position draws its own independent sample. Two claims never share a resampled example
//!   unless the draws happen to coincide.
//! - Nodes that no claim names keep `x`'s own values in the main run. (The hypothesis graph is
//!   what the claims name; a composite claim resamples the unnamed inputs of its node, and the
//!   nodes downstream of the claimed ones see the patched values.) Nesting stops at one level:
//!   inner claims are leaves.
//!
//! Reported ([`ScrubResult`]): `L_model` (the model's mean loss on the dataset), `L_hyp` (the
//! scrubbed loss), `L_uncond` (the same hypothesis claiming nothing, [`Hypothesis::claiming_nothing`]:
//! every claim and inner claim with [`Feature::Nothing`], so every claimed node's inputs come
//! from unconditional samples), and **loss recovered** `(L_hyp - L_uncond) / (L_model - L_uncond)`.
//! Each of `rounds` rounds redraws every sample (seeded); per-example losses are averaged over
//! the rounds and a 95% percentile bootstrap over the examples (`bootstrap` resamples, seeded)
//! gives the interval. Everything is deterministic under the seed ([`crate::tasks::Rng`]).
//!
//! **Interchange intervention accuracy** ([`interchange_accuracy`]): a base input run with one
//! node's activation taken from a source input; the accuracy is how often the model's output
//! equals the high-level causal model's prediction for the base with the source's value of the
//! variable the node is claimed to compute ([`CausalVariable`]).
//!
//! **How it runs.** Every dataset example is run once, caching the hooks the claims read (the
//! sources). Every scrubbed example is one item of a [`BatchRequest`] with its own `Replace`
//! interventions (the replacement assembled row by row from the cached sources), `chunk` items
//! per `run_batch`; composite claims first run their own batches and cache the node.
//!
//! The worked hypotheses for the shipped organisms are in [`hypotheses`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::log_softmax;
use crate::backend::Backend;
use crate::config::Config;
use crate::hooks::{hook_point, HookKind};
use crate::model::HookedTransformer;
use crate::run::{BatchRequest, CacheSpec, Intervention, InterventionOp, RunOutput, RunRequest};
use crate::tasks::{induction, parens, Rng};
use crate::tensor::HostTensor;
use crate::{Error, Result};

/// The organism a dataset is drawn for: its generator and its loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Balanced parentheses ([`parens`]): cross-entropy of the class at the last position.
    Parens,
    /// Induction ([`induction`]): mean next-token cross-entropy at the predictable positions.
    Induction,
}

/// Examples of one task, all of equal length, with the (position, target) pairs of each
/// example's loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub task: Task,
    pub tokens: Vec<Vec<u32>>,
    pub targets: Vec<Vec<(usize, u32)>>,
}

impl Dataset {
    /// `n` examples of `task` drawn with `seed` (the task's own generator).
    pub fn new(task: Task, seed: u64, n: usize) -> Dataset {
        let (mut tokens, mut targets) = (Vec::with_capacity(n), Vec::with_capacity(n));
        match task {
            Task::Parens => {
                for (s, _) in parens::dataset(seed, n) {
                    tokens.push(parens::tokens(&s));
                    targets.push(vec![(parens::N_POS - 1, u32::from(parens::is_balanced(&s)))]);
                }
            }
            Task::Induction => {
                let mut rng = Rng::new(seed);
                for _ in 0..n {
                    let ex = induction::example(&mut rng);
                    targets.push(ex.predictable.iter().map(|&p| (p, ex.tokens[p + 1])).collect());
                    tokens.push(ex.tokens);
                }
            }
        }
        Dataset { task, tokens, targets }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Example `i`'s mean cross-entropy on its targets, from its logits `[pos, d_vocab_out]`.
    pub fn loss(&self, i: usize, logits: &HostTensor) -> f64 {
        let t = &self.targets[i];
        t.iter().map(|&(p, y)| -(log_softmax(logits.row(p))[y as usize] as f64)).sum::<f64>() / t.len().max(1) as f64
    }
}

/// The string of a parentheses example (`(` is token 1, `)` token 2; BOS and padding dropped).
pub fn parens_string(tokens: &[u32]) -> String {
    tokens
        .iter()
        .filter_map(|&t| {
            if t == 1 {
                Some('(')
            } else if t == 2 {
                Some(')')
            } else {
                None
            }
        })
        .collect()
}

/// (equal counts of `(` and `)`, no prefix closes more than it opened).
pub fn parens_tests(tokens: &[u32]) -> (bool, bool) {
    let (mut depth, mut min) = (0i32, 0i32);
    for c in parens_string(tokens).chars() {
        depth += if c == '(' { 1 } else { -1 };
        min = min.min(depth);
    }
    (depth == 0, min >= 0)
}

/// The counts of `(` (token 1) and `)` (token 2) among `tokens[..=pos]`.
fn prefix_counts(tokens: &[u32], pos: usize) -> (u32, u32) {
    let pre = &tokens[..=pos.min(tokens.len() - 1)];
    (pre.iter().filter(|&&t| t == 1).count() as u32, pre.iter().filter(|&&t| t == 2).count() as u32)
}

/// An input of a head: its query, key or value (`attn.hook_q` / `hook_k` / `hook_v`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInput {
    Q,
    K,
    V,
}

/// A model node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Site {
    /// The token embedding (`hook_embed`).
    Embed,
    /// A head's output (`blocks.{layer}.attn.hook_z`, head `head`).
    HeadOut { layer: usize, head: usize },
    /// One input path of a head (`blocks.{layer}.attn.hook_q|k|v`, head `head`).
    HeadIn { layer: usize, head: usize, input: HeadInput },
    /// An attention layer's output (`blocks.{layer}.hook_attn_out`).
    AttnOut { layer: usize },
    /// An MLP's output (`blocks.{layer}.hook_mlp_out`).
    MlpOut { layer: usize },
    /// The residual stream entering block `layer` (`blocks.{layer}.hook_resid_pre`).
    ResidPre { layer: usize },
    /// The residual stream leaving block `layer` (`blocks.{layer}.hook_resid_post`).
    ResidPost { layer: usize },
}

impl Site {
    /// The TransformerLens hook name.
    pub fn hook(&self) -> String {
        match *self {
            Site::Embed => "hook_embed".into(),
            Site::HeadOut { layer, .. } => format!("blocks.{layer}.attn.hook_z"),
            Site::HeadIn { layer, input, .. } => format!("blocks.{layer}.attn.hook_{}", ["q", "k", "v"][input as usize]),
            Site::AttnOut { layer } => format!("blocks.{layer}.hook_attn_out"),
            Site::MlpOut { layer } => format!("blocks.{layer}.hook_mlp_out"),
            Site::ResidPre { layer } => format!("blocks.{layer}.hook_resid_pre"),
            Site::ResidPost { layer } => format!("blocks.{layer}.hook_resid_post"),
        }
    }

    /// The head, for head sites.
    pub fn head(&self) -> Option<usize> {
        match *self {
            Site::HeadOut { head, .. } | Site::HeadIn { head, .. } => Some(head),
            _ => None,
        }
    }

    /// A short name: `z 1.3`, `k 1.0`, `mlp_out 2`, `resid_pre 1`...
    pub fn label(&self) -> String {
        match *self {
            Site::Embed => "embed".into(),
            Site::HeadOut { layer, head } => format!("z {layer}.{head}"),
            Site::HeadIn { layer, head, input } => format!("{} {layer}.{head}", ["q", "k", "v"][input as usize]),
            Site::AttnOut { layer } => format!("attn_out {layer}"),
            Site::MlpOut { layer } => format!("mlp_out {layer}"),
            Site::ResidPre { layer } => format!("resid_pre {layer}"),
            Site::ResidPost { layer } => format!("resid_post {layer}"),
        }
    }

    /// An error when the model has no such node.
    fn check(&self, cfg: &Config) -> Result<()> {
        let p = hook_point(cfg, &self.hook()).ok_or_else(|| Error::Request(format!("this model has no {} (hook {})", self.label(), self.hook())))?;
        if let (Some(h), HookKind::PosHead { heads }) = (self.head(), p.kind) {
            if h >= heads {
                return Err(Error::Request(format!("{}: head {h} does not exist (the hook has {heads})", self.label())));
            }
        }
        match p.kind {
            HookKind::PosHead { .. } | HookKind::PosWidth { .. } => Ok(()),
            _ => Err(Error::Request(format!("{} cannot be scrubbed (not a position-major hook)", self.label()))),
        }
    }
}

/// A feature of an input example: two examples "agree" on it when their keys are equal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// Agrees only with identical inputs: the node keeps its own value ("claims everything").
    Everything,
    /// Agrees with every input: an unconditional sample ("claims nothing").
    Nothing,
    /// Per position `p`: the token at `p - back` (`back` 0: the current token, 1: the previous
    /// one); positions before the start agree with each other.
    Token { back: usize },
    /// Parentheses: balanced or not (the label).
    ParensBalanced,
    /// Parentheses: equal counts of `(` and `)` (the count test).
    ParensEqualCount,
    /// Parentheses: no prefix closes more than it opened (the horizon test).
    ParensNeverNegative,
    /// Parentheses, per position `p`: the counts of `(` and of `)` among the tokens up to `p`
    /// (what a head attending uniformly to the prefix can read; the order is irrelevant).
    ParensPrefixCounts,
    /// Parentheses, per position `p`: the elevation (opened minus closed) of the prefix up to `p`.
    ParensElevation,
    /// Parentheses, per position `p`: the sign of the prefix's elevation (-1, 0, 1).
    ParensElevationSign,
    /// Parentheses, per position `p`: no prefix up to `p` closes more than it opened.
    ParensPrefixNeverNegative,
    /// Agrees on every one of these.
    Joint { features: Vec<Feature> },
}

impl Feature {
    /// Whether the feature is a function of (input, position): one sample per position.
    pub fn per_position(&self) -> bool {
        match self {
            Feature::Token { .. }
            | Feature::ParensPrefixCounts
            | Feature::ParensElevation
            | Feature::ParensElevationSign
            | Feature::ParensPrefixNeverNegative => true,
            Feature::Joint { features } => features.iter().any(Feature::per_position),
            _ => false,
        }
    }

    /// The key at position `pos` (ignored by whole-input features).
    pub fn key(&self, tokens: &[u32], pos: usize) -> Vec<u32> {
        match self {
            Feature::Everything => tokens.to_vec(),
            Feature::Nothing => vec![],
            Feature::Token { back } => vec![if pos >= *back { tokens[pos - back] } else { u32::MAX }],
            Feature::ParensBalanced => {
                let (c, h) = parens_tests(tokens);
                vec![u32::from(c && h)]
            }
            Feature::ParensEqualCount => vec![u32::from(parens_tests(tokens).0)],
            Feature::ParensNeverNegative => vec![u32::from(parens_tests(tokens).1)],
            Feature::ParensPrefixCounts => {
                let (o, c) = prefix_counts(tokens, pos);
                vec![o, c]
            }
            Feature::ParensElevation => {
                let (o, c) = prefix_counts(tokens, pos);
                vec![(o as i64 - c as i64) as u32]
            }
            Feature::ParensElevationSign => {
                let (o, c) = prefix_counts(tokens, pos);
                vec![(o.cmp(&c) as i32 + 1) as u32]
            }
            Feature::ParensPrefixNeverNegative => vec![u32::from(parens_tests(&tokens[..=pos.min(tokens.len() - 1)]).1)],
            Feature::Joint { features } => {
                let mut k = Vec::new();
                for f in features {
                    let part = f.key(tokens, pos);
                    k.push(part.len() as u32);
                    k.extend(part);
                }
                k
            }
        }
    }

    /// A short name.
    pub fn label(&self) -> String {
        match self {
            Feature::Everything => "everything".into(),
            Feature::Nothing => "nothing".into(),
            Feature::Token { back: 0 } => "current token".into(),
            Feature::Token { back: 1 } => "previous token".into(),
            Feature::Token { back } => format!("token at p-{back}"),
            Feature::ParensBalanced => "balanced".into(),
            Feature::ParensEqualCount => "equal counts".into(),
            Feature::ParensNeverNegative => "never-negative prefix".into(),
            Feature::ParensPrefixCounts => "prefix counts".into(),
            Feature::ParensElevation => "prefix elevation".into(),
            Feature::ParensElevationSign => "sign of the prefix elevation".into(),
            Feature::ParensPrefixNeverNegative => "never-negative so far".into(),
            Feature::Joint { features } => features.iter().map(Feature::label).collect::<Vec<_>>().join(" & "),
        }
    }
}

/// One claim of a hypothesis (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub site: Site,
    /// The positions the claim covers (`None`: every position); the others keep `x`'s values.
    #[serde(default)]
    pub positions: Option<Vec<usize>>,
    /// What the node depends on (leaf claim), or what the node's unnamed inputs agree on
    /// (composite claim; [`Feature::Nothing`]: they are resampled unconditionally). A
    /// composite claim's feature must be a whole-input feature.
    pub feature: Feature,
    /// A composite claim's named inputs (leaf claims); empty for a leaf claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Claim>,
}

impl Claim {
    pub fn leaf(site: Site, feature: Feature) -> Claim {
        Claim { site, positions: None, feature, inputs: Vec::new() }
    }
    pub fn at(mut self, positions: Vec<usize>) -> Claim {
        self.positions = Some(positions);
        self
    }
    /// A composite claim: `site` computed from `inputs`, everything else resampled unconditionally.
    pub fn computed_from(site: Site, inputs: Vec<Claim>) -> Claim {
        Claim { site, positions: None, feature: Feature::Nothing, inputs }
    }
}

/// A named hypothesis about a task's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub name: String,
    pub description: String,
    pub task: Task,
    pub claims: Vec<Claim>,
}

impl Hypothesis {
    /// The same nodes with every feature (inner claims' too) set to `feature`.
    fn with_every_feature(&self, feature: Feature, suffix: &str) -> Hypothesis {
        fn set(c: &Claim, f: &Feature) -> Claim {
            Claim { site: c.site, positions: c.positions.clone(), feature: f.clone(), inputs: c.inputs.iter().map(|i| set(i, f)).collect() }
        }
        Hypothesis {
            name: format!("{}{suffix}", self.name),
            description: format!("{} ({suffix})", self.description),
            task: self.task,
            claims: self.claims.iter().map(|c| set(c, &feature)).collect(),
        }
    }

    /// The "claims nothing" hypothesis on the same nodes: every claimed node's inputs from
    /// unconditional samples. Its scrubbed loss is `L_uncond`.
    pub fn claiming_nothing(&self) -> Hypothesis {
        self.with_every_feature(Feature::Nothing, "-nothing")
    }

    /// The "claims everything" hypothesis on the same nodes: nothing is resampled, the scrubbed
    /// loss is the model's own.
    pub fn claiming_everything(&self) -> Hypothesis {
        self.with_every_feature(Feature::Everything, "-everything")
    }

    fn check(&self, cfg: &Config, n_pos: usize) -> Result<()> {
        if self.claims.is_empty() {
            return Err(Error::Request(format!("the hypothesis {:?} claims no node", self.name)));
        }
        for c in &self.claims {
            c.site.check(cfg)?;
            if let Some(&p) = c.positions.iter().flatten().find(|&&p| p >= n_pos) {
                return Err(Error::Request(format!("{}: position {p} is past the last position {}", c.site.label(), n_pos - 1)));
            }
            if !c.inputs.is_empty() && c.feature.per_position() {
                return Err(Error::Request(format!("{}: a composite claim needs a whole-input feature", c.site.label())));
            }
            for i in &c.inputs {
                i.site.check(cfg)?;
                if !i.inputs.is_empty() {
                    return Err(Error::Request(format!("{} inside {}: inner claims must be leaves (one level of nesting)", i.site.label(), c.site.label())));
                }
            }
        }
        Ok(())
    }

    /// Every hook a leaf (top-level or inner) claim reads from the sources' runs.
    fn leaf_hooks(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |h: String| {
            if !out.contains(&h) {
                out.push(h)
            }
        };
        for c in &self.claims {
            if c.inputs.is_empty() {
                add(c.site.hook());
            }
            for i in &c.inputs {
                add(i.site.hook());
            }
        }
        out
    }
}

/// Options of a scrubbing run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrubOptions {
    /// Seed of every draw (the samples of each round and the bootstrap).
    pub seed: u64,
    /// Rounds: each redraws every sample; per-example losses are averaged over them.
    pub rounds: usize,
    /// Bootstrap resamples of the examples for the interval.
    pub bootstrap: usize,
    /// Items per `run_batch`.
    pub chunk: usize,
}

impl Default for ScrubOptions {
    fn default() -> ScrubOptions {
        ScrubOptions { seed: 0, rounds: 2, bootstrap: 1000, chunk: 64 }
    }
}

/// What scrubbing a hypothesis measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrubResult {
    pub hypothesis: String,
    pub task: Task,
    /// Dataset size.
    pub n: usize,
    pub seed: u64,
    pub rounds: usize,
    /// Mean loss of the model, unscrubbed.
    pub loss_model: f64,
    /// Mean scrubbed loss (over examples and rounds).
    pub loss_scrubbed: f64,
    /// Mean loss of the same nodes claiming nothing.
    pub loss_uncond: f64,
    /// `(loss_scrubbed - loss_uncond) / (loss_model - loss_uncond)`.
    pub loss_recovered: f64,
    /// 95% percentile bootstrap interval of `loss_recovered` over the examples.
    pub ci95: (f64, f64),
    /// `loss_recovered` of each round alone (the spread over resamples).
    pub per_round: Vec<f64>,
    /// The share of the hypothesis's draws that fell back to the example itself because no
    /// other example of the dataset agreed on the feature (those nodes keep their own value;
    /// a large share means the dataset is too small for the feature).
    pub self_draws: f64,
    /// Forward passes and `run_batch` calls made.
    pub runs: usize,
    pub batches: usize,
}

/// `(hyp - uncond) / (model - uncond)`; NaN when model equals uncond.
pub fn recovered(model: f64, hyp: f64, uncond: f64) -> f64 {
    let d = model - uncond;
    if d == 0.0 {
        f64::NAN
    } else {
        (hyp - uncond) / d
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

/// A seed for one draw, from the run's seed and the draw's coordinates (SplitMix64 finalizer).
fn draw_seed(seed: u64, coords: &[u64]) -> u64 {
    let mut r = Rng::new(seed);
    let mut h = r.next_u64();
    for &c in coords {
        h = Rng::new(h ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64();
    }
    h
}

/// The examples grouped by a feature's key (at one position).
struct Pools {
    groups: HashMap<Vec<u32>, Vec<usize>>,
}

impl Pools {
    fn new(data: &Dataset, f: &Feature, pos: usize) -> Pools {
        let mut groups: HashMap<Vec<u32>, Vec<usize>> = HashMap::new();
        for (i, t) in data.tokens.iter().enumerate() {
            groups.entry(f.key(t, pos)).or_default().push(i);
        }
        Pools { groups }
    }

    /// A uniform draw among the examples other than `i` that agree with it (`i` when none).
    fn draw(&self, data: &Dataset, f: &Feature, pos: usize, i: usize, rng: &mut Rng) -> usize {
        let g = &self.groups[&f.key(&data.tokens[i], pos)];
        if g.len() <= 1 {
            return i;
        }
        let k = rng.range(0, g.len() - 1);
        let j = g[k];
        if j == i {
            g[g.len() - 1]
        } else {
            j
        }
    }
}

/// Feature pools, built once per (feature, position).
struct PoolCache<'a> {
    data: &'a Dataset,
    pools: HashMap<(String, usize), Pools>,
    /// Draws made, and how many of them fell back to the example itself (no other agreed).
    draws: usize,
    fallbacks: usize,
}

impl PoolCache<'_> {
    fn draw(&mut self, f: &Feature, pos: usize, i: usize, rng: &mut Rng) -> usize {
        let pos = if f.per_position() { pos } else { 0 };
        let key = (serde_json::to_string(f).expect("a feature serializes"), pos);
        let data = self.data;
        let j = self.pools.entry(key).or_insert_with(|| Pools::new(data, f, pos)).draw(data, f, pos, i, rng);
        self.draws += 1;
        self.fallbacks += usize::from(j == i);
        j
    }
}

/// The replacement for a leaf claim's node on example `i`: row by row from the sources' runs.
fn leaf_value(claim: &Claim, i: usize, n_pos: usize, sources: &[RunOutput], pools: &mut PoolCache, rng: &mut Rng) -> Result<HostTensor> {
    let hook = claim.site.hook();
    let shape = super::cached(&sources[i], &hook)?.shape.clone();
    let row = shape[1..].iter().product::<usize>();
    let mut out = super::cached(&sources[i], &hook)?.clone();
    let positions: Vec<usize> = claim.positions.clone().unwrap_or_else(|| (0..n_pos).collect());
    let whole = if claim.feature.per_position() { None } else { Some(pools.draw(&claim.feature, 0, i, rng)) };
    for p in positions {
        let j = match whole {
            Some(j) => j,
            None => pools.draw(&claim.feature, p, i, rng),
        };
        let src = super::cached(&sources[j], &hook)?;
        out.data[p * row..(p + 1) * row].copy_from_slice(&src.data[p * row..(p + 1) * row]);
    }
    Ok(out)
}

fn replace(claim: &Claim, value: HostTensor) -> Intervention {
    Intervention { hook: claim.site.hook(), positions: claim.positions.clone(), head: claim.site.head(), neuron: None, op: InterventionOp::Replace(value) }
}

/// Runs `items` in chunks; (outputs, batches).
async fn run_chunked<B: Backend>(model: &HookedTransformer<B>, backend: &B, items: Vec<RunRequest>, chunk: usize) -> Result<(Vec<RunOutput>, usize)> {
    let mut outs = Vec::with_capacity(items.len());
    let mut batches = 0;
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let part: Vec<RunRequest> = items.by_ref().take(chunk.max(1)).collect();
        outs.extend(model.run_batch(backend, &BatchRequest::new(part)).await?);
        batches += 1;
    }
    Ok((outs, batches))
}

/// The sources: every example run once, caching `hooks`. Also gives the model's own losses.
pub async fn source_runs<B: Backend>(model: &HookedTransformer<B>, backend: &B, data: &Dataset, hooks: &[String], chunk: usize) -> Result<Vec<RunOutput>> {
    let items = data.tokens.iter().map(|t| RunRequest::new(t.clone()).with_cache(CacheSpec::Names(hooks.to_vec()))).collect();
    Ok(run_chunked(model, backend, items, chunk).await?.0)
}

/// Per-example scrubbed losses of one round of `hyp`; (losses, runs, batches).
async fn scrub_round<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    data: &Dataset,
    sources: &[RunOutput],
    hyp: &Hypothesis,
    seed: u64,
    chunk: usize,
) -> Result<(Vec<f64>, usize, usize, f64)> {
    let n = data.len();
    let n_pos = data.tokens[0].len();
    let mut pools = PoolCache { data, pools: HashMap::new(), draws: 0, fallbacks: 0 };
    let (mut runs, mut batches) = (0, 0);
    // Composite claims first: each example's own run of each, with its inner claims patched.
    let mut computed: Vec<Vec<Option<HostTensor>>> = vec![vec![None; hyp.claims.len()]; n];
    for (ci, c) in hyp.claims.iter().enumerate().filter(|(_, c)| !c.inputs.is_empty()) {
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = Rng::new(draw_seed(seed, &[i as u64, ci as u64, u64::MAX]));
            let base = pools.draw(&c.feature, 0, i, &mut rng);
            let mut req = RunRequest::new(data.tokens[base].clone()).with_cache(CacheSpec::Names(vec![c.site.hook()]));
            for (k, inner) in c.inputs.iter().enumerate() {
                let mut rng = Rng::new(draw_seed(seed, &[i as u64, ci as u64, k as u64]));
                req.interventions.push(replace(inner, leaf_value(inner, i, n_pos, sources, &mut pools, &mut rng)?));
            }
            items.push(req);
        }
        let (outs, b) = run_chunked(model, backend, items, chunk).await?;
        runs += outs.len();
        batches += b;
        for (i, out) in outs.into_iter().enumerate() {
            computed[i][ci] = Some(super::cached(&out, &c.site.hook())?.clone());
        }
    }
    let mut items = Vec::with_capacity(n);
    for (i, values) in computed.into_iter().enumerate() {
        let mut req = RunRequest::new(data.tokens[i].clone());
        for ((ci, c), value) in hyp.claims.iter().enumerate().zip(values) {
            let v = match value {
                Some(v) => v,
                None => leaf_value(c, i, n_pos, sources, &mut pools, &mut Rng::new(draw_seed(seed, &[i as u64, ci as u64])))?,
            };
            req.interventions.push(replace(c, v));
        }
        items.push(req);
    }
    let (outs, b) = run_chunked(model, backend, items, chunk).await?;
    runs += outs.len();
    batches += b;
    let fallback = pools.fallbacks as f64 / pools.draws.max(1) as f64;
    Ok((outs.iter().enumerate().map(|(i, o)| data.loss(i, &o.logits)).collect(), runs, batches, fallback))
}

/// Per-example losses of `hyp`, averaged over `rounds` rounds; (losses, per-round means, runs, batches).
async fn scrub_losses<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    data: &Dataset,
    sources: &[RunOutput],
    hyp: &Hypothesis,
    opts: &ScrubOptions,
) -> Result<(Vec<f64>, Vec<Vec<f64>>, usize, usize, f64)> {
    let mut sum = vec![0f64; data.len()];
    let mut per_round = Vec::with_capacity(opts.rounds);
    let (mut runs, mut batches, mut fallback) = (0, 0, 0.0);
    for r in 0..opts.rounds.max(1) {
        let (losses, ru, b, f) = scrub_round(model, backend, data, sources, hyp, draw_seed(opts.seed, &[r as u64]), opts.chunk).await?;
        for (s, l) in sum.iter_mut().zip(&losses) {
            *s += l;
        }
        per_round.push(losses);
        runs += ru;
        batches += b;
        fallback += f;
    }
    let k = opts.rounds.max(1) as f64;
    Ok((sum.into_iter().map(|s| s / k).collect(), per_round, runs, batches, fallback / k))
}

/// Scrubs `hyp` on `data` (see the module docs): the model's loss, the scrubbed loss, the
/// unconditional loss (the same nodes claiming nothing), the loss recovered and its interval.
pub async fn scrub<B: Backend>(model: &HookedTransformer<B>, backend: &B, data: &Dataset, hyp: &Hypothesis, opts: &ScrubOptions) -> Result<ScrubResult> {
    if data.task != hyp.task {
        return Err(Error::Request(format!("the hypothesis {:?} is about {:?}, the dataset is {:?}", hyp.name, hyp.task, data.task)));
    }
    if data.len() < 2 {
        return Err(Error::Request("scrubbing needs a dataset of at least two examples".into()));
    }
    hyp.check(&model.cfg, data.tokens[0].len())?;
    let sources = source_runs(model, backend, data, &hyp.leaf_hooks(), opts.chunk).await?;
    let model_losses: Vec<f64> = sources.iter().enumerate().map(|(i, o)| data.loss(i, &o.logits)).collect();
    let (hyp_losses, hyp_rounds, r1, b1, fallback) = scrub_losses(model, backend, data, &sources, hyp, opts).await?;
    let (unc_losses, unc_rounds, r2, b2, _) = scrub_losses(model, backend, data, &sources, &hyp.claiming_nothing(), opts).await?;
    let (lm, lh, lu) = (mean(&model_losses), mean(&hyp_losses), mean(&unc_losses));
    let per_round = hyp_rounds.iter().zip(&unc_rounds).map(|(h, u)| recovered(lm, mean(h), mean(u))).collect();
    let ci95 = bootstrap(&model_losses, &hyp_losses, &unc_losses, opts.bootstrap, draw_seed(opts.seed, &[u64::MAX - 1]));
    let batches = sources.len().div_ceil(opts.chunk.max(1)) + b1 + b2;
    Ok(ScrubResult {
        hypothesis: hyp.name.clone(),
        task: hyp.task,
        n: data.len(),
        seed: opts.seed,
        rounds: opts.rounds.max(1),
        loss_model: lm,
        loss_scrubbed: lh,
        loss_uncond: lu,
        loss_recovered: recovered(lm, lh, lu),
        ci95,
        per_round,
        self_draws: fallback,
        runs: sources.len() + r1 + r2,
        batches,
    })
}

/// 95% percentile bootstrap interval of the loss recovered, resampling examples.
fn bootstrap(model: &[f64], hyp: &[f64], unc: &[f64], b: usize, seed: u64) -> (f64, f64) {
    if b == 0 {
        let r = recovered(mean(model), mean(hyp), mean(unc));
        return (r, r);
    }
    let n = model.len();
    let mut rng = Rng::new(seed);
    let mut stats: Vec<f64> = (0..b)
        .map(|_| {
            let (mut m, mut h, mut u) = (0.0, 0.0, 0.0);
            for _ in 0..n {
                let k = rng.range(0, n);
                m += model[k];
                h += hyp[k];
                u += unc[k];
            }
            recovered(m, h, u)
        })
        .filter(|r| r.is_finite())
        .collect();
    if stats.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    stats.sort_by(f64::total_cmp);
    let q = |p: f64| stats[((p * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    (q(0.025), q(0.975))
}

/// The high-level variable a node is claimed to compute, for interchange interventions: the
/// causal model's prediction for a base input whose variable takes the source's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CausalVariable {
    /// Parentheses: the count test; balanced = equal_count(source) && never_negative(base).
    ParensEqualCount,
    /// Parentheses: the horizon test; balanced = equal_count(base) && never_negative(source).
    ParensNeverNegative,
    /// Parentheses: the label itself; balanced = balanced(source).
    ParensBalanced,
}

impl CausalVariable {
    /// The class the causal model predicts (1: balanced).
    pub fn predict(self, base: &[u32], source: &[u32]) -> u32 {
        let (bc, bh) = parens_tests(base);
        let (sc, sh) = parens_tests(source);
        u32::from(match self {
            CausalVariable::ParensEqualCount => sc && bh,
            CausalVariable::ParensNeverNegative => bc && sh,
            CausalVariable::ParensBalanced => sc && sh,
        })
    }
}

/// Interchange intervention accuracy of one node swap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterchangeResult {
    pub site: Site,
    pub positions: Option<Vec<usize>>,
    pub variable: CausalVariable,
    /// (base, source) pairs.
    pub pairs: usize,
    /// How often the swapped run's output equals the causal model's prediction.
    pub accuracy: f64,
    /// The same over the pairs where the prediction differs from the base's own label (the
    /// swap should change the answer).
    pub changed_pairs: usize,
    pub changed_accuracy: f64,
}

/// Interchange intervention accuracy (Geiger et al.): `pairs` (base, source) pairs of `data`
/// drawn with `seed`; each base runs with `site` (at `positions`) taken from the source's run;
/// the answer (argmax at the base's last target position) is compared with `variable`'s
/// prediction. Parentheses only.
#[allow(clippy::too_many_arguments)]
pub async fn interchange_accuracy<B: Backend>(
    model: &HookedTransformer<B>,
    backend: &B,
    data: &Dataset,
    site: Site,
    positions: Option<Vec<usize>>,
    variable: CausalVariable,
    pairs: usize,
    seed: u64,
    chunk: usize,
) -> Result<InterchangeResult> {
    if data.task != Task::Parens {
        return Err(Error::Request("interchange interventions are defined for the parentheses task".into()));
    }
    if data.len() < 2 {
        return Err(Error::Request("interchange interventions need at least two examples".into()));
    }
    site.check(&model.cfg)?;
    let claim = Claim { site, positions: positions.clone(), feature: Feature::Everything, inputs: Vec::new() };
    let sources = source_runs(model, backend, data, &[site.hook()], chunk).await?;
    let mut rng = Rng::new(seed);
    let drawn: Vec<(usize, usize)> = (0..pairs)
        .map(|_| {
            let b = rng.range(0, data.len());
            let s = (b + rng.range(1, data.len())) % data.len();
            (b, s)
        })
        .collect();
    let items = drawn
        .iter()
        .map(|&(b, s)| Ok(RunRequest::new(data.tokens[b].clone()).intervene(replace(&claim, super::cached(&sources[s], &site.hook())?.clone()))))
        .collect::<Result<Vec<_>>>()?;
    let (outs, _) = run_chunked(model, backend, items, chunk).await?;
    let (mut right, mut changed, mut changed_right) = (0, 0, 0);
    for (&(b, s), out) in drawn.iter().zip(&outs) {
        let (p, label) = *data.targets[b].last().expect("a target");
        let row = out.logits.row(p);
        let answer = (0..row.len()).max_by(|&x, &y| row[x].total_cmp(&row[y])).unwrap_or(0) as u32;
        let want = variable.predict(&data.tokens[b], &data.tokens[s]);
        right += usize::from(answer == want);
        if want != label {
            changed += 1;
            changed_right += usize::from(answer == want);
        }
    }
    Ok(InterchangeResult {
        site,
        positions,
        variable,
        pairs,
        accuracy: right as f64 / pairs.max(1) as f64,
        changed_pairs: changed,
        changed_accuracy: changed_right as f64 / changed.max(1) as f64,
    })
}

/// The worked hypotheses for the shipped organisms, each with a correct and a wrong one.
pub mod hypotheses {
    use super::*;

    /// Every shipped hypothesis's name.
    pub const NAMES: [&str; 4] = ["parens-correct", "parens-wrong", "induction-correct", "induction-wrong"];

    /// A shipped hypothesis by name.
    pub fn by_name(name: &str) -> Option<Hypothesis> {
        match name {
            "parens-correct" => Some(parens_correct()),
            "parens-wrong" => Some(parens_wrong()),
            "induction-correct" => Some(induction_correct()),
            "induction-wrong" => Some(induction_wrong()),
            _ => None,
        }
    }

    /// The induction heads of the shipped model (its card's `mechanism`).
    pub const INDUCTION_HEADS: [usize; 2] = [0, 3];
    /// Its previous-token head (layer 0).
    pub const PREVIOUS_TOKEN_HEAD: usize = 0;

    fn induction_k_via(head0: usize, feature: Feature) -> Vec<Claim> {
        INDUCTION_HEADS
            .iter()
            .map(|&h| {
                Claim::computed_from(
                    Site::HeadIn { layer: 1, head: h, input: HeadInput::K },
                    vec![Claim::leaf(Site::Embed, Feature::Token { back: 0 }), Claim::leaf(Site::HeadOut { layer: 0, head: head0 }, feature.clone())],
                )
            })
            .collect()
    }

    /// The keys of induction heads 1.0 and 1.3 are computed from the current token's
    /// embedding and previous-token head 0.0's output, which at each position depends only on
    /// the token at p - 1. Scrubbed: each induction head's `hook_k` is recomputed on a random
    /// example with `hook_embed` at p from an example with the same token at p (the embedding
    /// is a function of the token, so this is the example's own embedding, and layer 0's other
    /// heads in that run read it: they are not resampled) and 0.0's `hook_z` at p from another
    /// example with the same token at p - 1 (one sample per head x position). Resampling heads
    /// 0.1-0.3 unconditionally as well recovers much less (about 0.4 on 200 examples): they
    /// also feed the keys, which the card's mechanism does not say.
    pub fn induction_correct() -> Hypothesis {
        Hypothesis {
            name: "induction-correct".into(),
            description: "the keys of induction heads 1.0 and 1.3 are computed from the current token's embedding and previous-token head 0.0, whose output at p depends only on the token at p-1"
                .into(),
            task: Task::Induction,
            claims: induction_k_via(PREVIOUS_TOKEN_HEAD, Feature::Token { back: 1 }),
        }
    }

    /// Wrong: the same graph, but 0.0's output is claimed to depend on the current token.
    pub fn induction_wrong() -> Hypothesis {
        Hypothesis {
            name: "induction-wrong".into(),
            description: "the keys of induction heads 1.0 and 1.3 are computed from the current token's embedding and head 0.0, whose output at p depends only on the token at p (wrong: it is the previous token)"
                .into(),
            task: Task::Induction,
            claims: induction_k_via(PREVIOUS_TOKEN_HEAD, Feature::Token { back: 0 }),
        }
    }

    /// The last position of a parentheses sequence, where the class is read.
    pub const PARENS_LAST: usize = parens::N_POS - 1;

    fn parens_resid1(heads: Feature) -> Vec<Claim> {
        let mut inputs = vec![Claim::leaf(Site::Embed, Feature::Token { back: 0 })];
        inputs.extend((0..4).map(|h| Claim::leaf(Site::HeadOut { layer: 0, head: h }, heads.clone())));
        vec![Claim::computed_from(Site::ResidPre { layer: 1 }, inputs)]
    }

    /// The residual stream entering layer 1, at every position p, is computed from the current
    /// token's embedding and the four layer-0 heads, each of which depends only on the counts of
    /// `(` and `)` in the prefix up to p (they attend without regard to order: the "count" half of
    /// Redwood's mechanism, proportions of open parentheses); layers 1-2 read nothing else.
    /// Scrubbed: `blocks.1.hook_resid_pre` recomputed on a random example (its positional
    /// embedding is the same; MLP 0 recomputes from the patched inputs) with `hook_embed` at p
    /// from an example with the same token at p and each head's `hook_z` at p from an example
    /// with the same prefix counts at p (independent samples per head x position).
    pub fn parens_correct() -> Hypothesis {
        Hypothesis {
            name: "parens-correct".into(),
            description: "resid_pre 1 at each position is computed from the current token's embedding and layer-0 heads that depend only on the prefix's counts of ( and )"
                .into(),
            task: Task::Parens,
            claims: parens_resid1(Feature::ParensPrefixCounts),
        }
    }

    /// Wrong: the same graph, but the layer-0 heads are claimed to depend only on the prefix's
    /// elevation (opened minus closed), not on both counts (the heads' uniform attention also
    /// weighs the BOS and the padding, so the proportion needs both counts).
    pub fn parens_wrong() -> Hypothesis {
        Hypothesis {
            name: "parens-wrong".into(),
            description: "resid_pre 1 at each position is computed from the current token's embedding and layer-0 heads that depend only on the prefix's elevation (opened minus closed)"
                .into(),
            task: Task::Parens,
            claims: parens_resid1(Feature::ParensElevation),
        }
    }
}
