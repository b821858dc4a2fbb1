//! The logit lens: read every layer's residual stream through the final norm and the
//! unembedding, as if the model stopped there (nostalgebraist 2020).
//!
//! TransformerLens: `cache.accumulated_resid(layer=None, incl_mid=..., apply_ln=True)` then
//! `@ W_U + b_U` on a model loaded with `fold_ln=True`, which is the same as applying
//! `ln_final` (its weight and bias included) to each residual and then `W_U`.
//!
//! Two normalisations, both offered ([`LensNorm`]):
//! - [`LensNorm::Fresh`] (the default): `ln_final` re-run on each residual with its own
//!   statistics: what TransformerLens 3 does (`apply_ln_to_stack(recompute_ln=True)`, the
//!   default since 2.18), and what the model would compute if it stopped at that layer.
//! - [`LensNorm::CachedScale`]: centre (LayerNorm only) and divide by the final residual's
//!   cached `ln_final.hook_scale` at that position (TransformerLens before 2.18): linear in the
//!   residual, so layers' contributions add up, but early layers read at the final scale.

use serde::{Deserialize, Serialize};

use super::{cached, log_softmax, top_k, FinalNorm};
use crate::backend::Backend;
use crate::config::Config;
use crate::model::HookedTransformer;
use crate::run::RunOutput;
use crate::tensor::HostTensor;
use crate::weights::ModelWeights;
use crate::{Error, Result};

/// How each residual is normalised before the unembedding (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LensNorm {
    #[default]
    Fresh,
    CachedScale,
}

/// What the lens reads and keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensOptions {
    pub norm: LensNorm,
    /// Also read `resid_mid` between each layer's attention and MLP.
    pub incl_mid: bool,
    /// Predictions kept per cell.
    pub top_k: usize,
    /// A token whose probability every cell reports.
    pub target: Option<u32>,
}

impl Default for LensOptions {
    fn default() -> Self {
        LensOptions { norm: LensNorm::Fresh, incl_mid: false, top_k: 5, target: None }
    }
}

/// The residual streams the lens reads, `[n, pos, d_model]`, and their TransformerLens labels
/// (`0_pre`, `0_mid`, `1_pre`, ..., `final_post`), as `accumulated_resid(layer=None)`.
pub fn accumulated_resid(cfg: &Config, out: &RunOutput, incl_mid: bool) -> Result<(Vec<String>, HostTensor)> {
    let mut labels = Vec::new();
    let mut data = Vec::new();
    let mut n_pos = 0;
    let mut push = |label: String, name: String| -> Result<()> {
        let t = cached(out, &name)?;
        n_pos = t.shape[0];
        data.extend_from_slice(&t.data);
        labels.push(label);
        Ok(())
    };
    for l in 0..cfg.n_layers {
        push(format!("{l}_pre"), format!("blocks.{l}.hook_resid_pre"))?;
        if incl_mid && cfg.d_mlp.is_some() && !cfg.parallel_attn_mlp {
            push(format!("{l}_mid"), format!("blocks.{l}.hook_resid_mid"))?;
        }
    }
    push("final_post".into(), format!("blocks.{}.hook_resid_post", cfg.n_layers - 1))?;
    let n = labels.len();
    Ok((labels, HostTensor::new(vec![n, n_pos, cfg.d_model], data)))
}

/// Each residual of [`accumulated_resid`] through `ln_final` (weight and bias included) as
/// `norm` says: the rows the unembedding reads, `[n * pos, d_model]`.
pub fn normalized_resid<M>(cfg: &Config, weights: &ModelWeights<HostTensor, M>, out: &RunOutput, opts: &LensOptions) -> Result<(Vec<String>, HostTensor)> {
    let (labels, stack) = accumulated_resid(cfg, out, opts.incl_mid)?;
    let ln = FinalNorm::new(cfg, weights);
    let scales = cached(out, "ln_final.hook_scale")?;
    let d = cfg.d_model;
    let n_pos = stack.shape[1];
    let mut rows = Vec::with_capacity(stack.len());
    for (i, x) in stack.data.chunks_exact(d).enumerate() {
        let scale = match opts.norm {
            LensNorm::Fresh => ln.fresh_scale(x),
            LensNorm::CachedScale => scales.data[i % n_pos],
        };
        rows.extend(ln.apply(x, scale));
    }
    let n = rows.len() / d;
    Ok((labels, HostTensor::new(vec![n, d], rows)))
}

/// A token's reading in one cell of the lens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetReading {
    pub prob: f32,
    pub log_prob: f32,
    pub logit: f32,
    /// 0 = the top prediction.
    pub rank: u32,
}

/// One residual at one position, read through the unembedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensCell {
    /// The most likely tokens and their probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
    pub target: Option<TargetReading>,
}

impl LensCell {
    /// Reduces one row of logits `[d_vocab]`.
    pub fn from_logits(logits: &[f32], top: usize, target: Option<u32>) -> LensCell {
        let lp = log_softmax(logits);
        let target = target.filter(|&t| (t as usize) < logits.len()).map(|t| {
            let x = lp[t as usize];
            TargetReading { prob: x.exp(), log_prob: x, logit: logits[t as usize], rank: lp.iter().filter(|&&y| y > x).count() as u32 }
        });
        LensCell { top: top_k(&lp, top).into_iter().map(|(i, x)| (i, x.exp())).collect(), target }
    }
}

/// The logit lens of one run: a `labels x positions` grid of [`LensCell`]s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogitLens {
    /// TransformerLens's labels of the residuals read, first to last.
    pub labels: Vec<String>,
    pub n_pos: usize,
    pub norm: LensNorm,
    pub target: Option<u32>,
    /// Row-major: `cells[layer * n_pos + pos]`.
    pub cells: Vec<LensCell>,
}

impl LogitLens {
    pub fn cell(&self, layer: usize, pos: usize) -> Option<&LensCell> {
        (pos < self.n_pos).then(|| self.cells.get(layer * self.n_pos + pos)).flatten()
    }
}

/// Rows unembedded per backend submission: bounds the logits held at once
/// (`LENS_CHUNK * d_vocab` floats, 13 MB for GPT-2's vocabulary).
pub const LENS_CHUNK: usize = 64;

/// The logit lens of `out` (a run that cached every `hook_resid_pre`, the last
/// `hook_resid_post`, `ln_final.hook_scale`, and `hook_resid_mid` for `incl_mid`). The norm
/// runs on the host; the unembedding on the model's backend, [`LENS_CHUNK`] rows at a time,
/// each chunk reduced to its cells before the next.
pub async fn logit_lens<B: Backend, M>(
    model: &HookedTransformer<B>,
    backend: &B,
    weights: &ModelWeights<HostTensor, M>,
    out: &RunOutput,
    opts: &LensOptions,
) -> Result<LogitLens> {
    let cfg = &model.cfg;
    if let Some(t) = opts.target {
        if t as usize >= cfg.d_vocab_out {
            return Err(Error::Request(format!("target token {t} is out of range (the model has {} outputs)", cfg.d_vocab_out)));
        }
    }
    let (labels, rows) = normalized_resid(cfg, weights, out, opts)?;
    let n_pos = out.logits.shape[0];
    let d = cfg.d_model;
    let mut cells = Vec::with_capacity(rows.shape[0]);
    for chunk in rows.data.chunks(LENS_CHUNK * d) {
        let logits = model.unembed(backend, &HostTensor::new(vec![chunk.len() / d, d], chunk.to_vec())).await?;
        cells.extend(logits.data.chunks_exact(cfg.d_vocab_out).map(|row| LensCell::from_logits(row, opts.top_k, opts.target)));
    }
    Ok(LogitLens { labels, n_pos, norm: opts.norm, target: opts.target, cells })
}
