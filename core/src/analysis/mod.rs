//! Analyses over one run's cache and the model's weights: the inspection half of
//! TransformerLens's vocabulary, as plain functions shared by the app (in the engine's worker),
//! the command line and the tests. Each function names its TransformerLens counterpart; the
//! fixtures made by `python/make_analysis_fixtures.py` hold TransformerLens's numbers on the
//! same weights, and `core/tests/analysis.rs` compares.
//!
//! - [`lens`]: the logit lens (`accumulated_resid(apply_ln=True)` through the unembedding).
//! - [`attribution`]: direct logit attribution (`decompose_resid`, `stack_head_results`,
//!   `apply_ln_to_stack`, `logit_attrs`), with the bias terms that make the sum exact.
//! - [`heads`]: previous-token, duplicate-token and induction scores (`head_detector.detect_head`).
//! - [`neurons`]: a neuron's activations and its direct effect on the logits.
//! - [`scan`]: top-activating examples over a corpus, per neuron, with their context.
//! - [`patching`]: activation patching sweeps (`patching.get_act_patch_*`) and ablations.
//!
//! The weights are the host copy (`ModelWeights<HostTensor, HostMatrix>`, what a
//! [`crate::ModelBundle`] holds); the only heavy product, the logit lens's full-vocabulary
//! logits, runs on the backend through [`crate::HookedTransformer::unembed`].

pub mod attribution;
pub mod heads;
pub mod lens;
pub mod neurons;
pub mod patching;
pub mod path_patching;
pub mod scan;
pub mod scrubbing;

use crate::config::{Config, Normalization};
use crate::run::RunOutput;
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixSource};
use crate::{Error, Result};

/// A cached hook of `out`, or an error naming it (the run did not cache it).
pub(crate) fn cached<'a>(out: &'a RunOutput, name: &str) -> Result<&'a HostTensor> {
    out.get(name).ok_or_else(|| Error::Request(format!("the run did not cache {name}, which this analysis reads")))
}

/// The hooks every analysis in this module reads; a run that caches these can feed all of them.
pub fn hooks_needed(cfg: &Config) -> Vec<String> {
    let mut names = vec!["hook_embed".to_string()];
    if cfg.rotary().is_none() {
        names.push("hook_pos_embed".into());
    }
    for l in 0..cfg.n_layers {
        let b = |s: &str| format!("blocks.{l}.{s}");
        names.extend([b("hook_resid_pre"), b("attn.hook_pattern"), b("attn.hook_z"), b("hook_attn_out")]);
        if cfg.d_mlp.is_some() {
            if !cfg.parallel_attn_mlp {
                names.push(b("hook_resid_mid"));
            }
            names.extend([b("mlp.hook_post"), b("hook_mlp_out")]);
        }
        names.push(b("hook_resid_post"));
    }
    names.push("ln_final.hook_scale".into());
    names
}

/// The final norm's weight and bias on the host.
pub(crate) struct FinalNorm<'a> {
    pub normalization: Normalization,
    pub eps: f32,
    pub w: &'a [f32],
    pub b: Option<&'a [f32]>,
}

impl<'a> FinalNorm<'a> {
    pub fn new<M>(cfg: &Config, weights: &'a crate::ModelWeights<HostTensor, M>) -> FinalNorm<'a> {
        FinalNorm { normalization: cfg.normalization, eps: cfg.eps, w: &weights.ln_final_w.data, b: weights.ln_final_b.as_ref().map(|b| b.data.as_slice()) }
    }

    /// TransformerLens's `apply_ln_to_stack` on one vector: centred (LayerNorm only) and divided
    /// by `scale`, without the norm's weight and bias.
    pub fn centre_and_scale(&self, x: &[f32], scale: f32) -> Vec<f32> {
        let mean = match self.normalization {
            Normalization::LayerNorm => x.iter().sum::<f32>() / x.len() as f32,
            Normalization::RmsNorm => 0.0,
        };
        x.iter().map(|v| (v - mean) / scale).collect()
    }

    /// The scale the norm computes for `x` itself (fresh statistics).
    pub fn fresh_scale(&self, x: &[f32]) -> f32 {
        let n = x.len() as f32;
        let var = match self.normalization {
            Normalization::LayerNorm => {
                let mean = x.iter().sum::<f32>() / n;
                x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n
            }
            Normalization::RmsNorm => x.iter().map(|v| v * v).sum::<f32>() / n,
        };
        (var + self.eps).sqrt()
    }

    /// The full norm on `x` with the given scale: `w * centre_and_scale(x) + b`.
    pub fn apply(&self, x: &[f32], scale: f32) -> Vec<f32> {
        let mut y = self.centre_and_scale(x, scale);
        for (i, v) in y.iter_mut().enumerate() {
            *v = *v * self.w[i] + self.b.map_or(0.0, |b| b[i]);
        }
        y
    }
}

/// Read access to a linear layer's weight `W` `[in, out]` on the host, whichever way it is
/// stored (dense `[in, out]`, or GGUF blocks `[out, in]`), without densifying a large matrix.
pub(crate) struct Linear<'a>(std::borrow::Cow<'a, HostMatrix>);

impl<'a> Linear<'a> {
    pub fn new<M: MatrixSource>(m: &'a M) -> Linear<'a> {
        Linear(m.to_matrix())
    }

    /// `(in, out)`.
    pub fn shape(&self) -> (usize, usize) {
        match &*self.0 {
            HostMatrix::Dense(t) => (t.shape[0], t.shape[1]),
            HostMatrix::Quant(q) => (q.cols, q.rows),
        }
    }

    /// Column `j` of `W`: `W[:, j]`, `[in]` (for `W_U`: the unembedding direction of token `j`).
    pub fn column(&self, j: usize) -> Result<Vec<f32>> {
        let (n_in, n_out) = self.shape();
        if j >= n_out {
            return Err(Error::Request(format!("output {j} is out of range (the layer has {n_out})")));
        }
        match &*self.0 {
            HostMatrix::Dense(t) => Ok((0..n_in).map(|i| t.data[i * n_out + j]).collect()),
            HostMatrix::Quant(q) => {
                let row_bytes = q.bytes.len() / q.rows;
                let mut out = vec![0f32; q.cols];
                crate::gguf::dequantize(q.ggml_type, &q.bytes[j * row_bytes..(j + 1) * row_bytes], &mut out)?;
                Ok(out)
            }
        }
    }

    /// Row `i` of `W`: `W[i, :]`, `[out]` (for `W_out`: neuron `i`'s output direction).
    pub fn row(&self, i: usize) -> Result<Vec<f32>> {
        let (n_in, n_out) = self.shape();
        if i >= n_in {
            return Err(Error::Request(format!("input {i} is out of range (the layer has {n_in})")));
        }
        match &*self.0 {
            HostMatrix::Dense(t) => Ok(t.data[i * n_out..(i + 1) * n_out].to_vec()),
            HostMatrix::Quant(q) => {
                let row_bytes = q.bytes.len() / q.rows;
                let mut buf = vec![0f32; q.cols];
                let mut out = Vec::with_capacity(n_out);
                for j in 0..q.rows {
                    crate::gguf::dequantize(q.ggml_type, &q.bytes[j * row_bytes..(j + 1) * row_bytes], &mut buf)?;
                    out.push(buf[i]);
                }
                Ok(out)
            }
        }
    }

    /// The mean of `W`'s columns, `[in]` (for `W_U`: the mean unembedding direction, which
    /// TransformerLens's `center_unembed` subtracts).
    pub fn mean_column(&self) -> Result<Vec<f32>> {
        let (n_in, n_out) = self.shape();
        let mut sum = vec![0f64; n_in];
        match &*self.0 {
            HostMatrix::Dense(t) => {
                for (i, s) in sum.iter_mut().enumerate() {
                    *s = t.data[i * n_out..(i + 1) * n_out].iter().map(|&x| x as f64).sum();
                }
            }
            HostMatrix::Quant(q) => {
                let row_bytes = q.bytes.len() / q.rows;
                let mut buf = vec![0f32; q.cols];
                for j in 0..q.rows {
                    crate::gguf::dequantize(q.ggml_type, &q.bytes[j * row_bytes..(j + 1) * row_bytes], &mut buf)?;
                    for (s, &x) in sum.iter_mut().zip(&buf) {
                        *s += x as f64;
                    }
                }
            }
        }
        Ok(sum.into_iter().map(|s| (s / n_out as f64) as f32).collect())
    }

    /// `x @ W`: `[in] -> [out]`, streaming over the stored rows (no dense copy of `W`).
    pub fn vec_mat(&self, x: &[f32]) -> Result<Vec<f32>> {
        let (n_in, n_out) = self.shape();
        if x.len() != n_in {
            return Err(Error::Request(format!("a vector of {} values against a layer of {n_in} inputs", x.len())));
        }
        match &*self.0 {
            HostMatrix::Dense(t) => {
                let mut out = vec![0f32; n_out];
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        for (o, w) in out.iter_mut().zip(&t.data[i * n_out..(i + 1) * n_out]) {
                            *o += xi * w;
                        }
                    }
                }
                Ok(out)
            }
            HostMatrix::Quant(q) => {
                let row_bytes = q.bytes.len() / q.rows;
                let mut buf = vec![0f32; q.cols];
                let mut out = Vec::with_capacity(n_out);
                for j in 0..q.rows {
                    crate::gguf::dequantize(q.ggml_type, &q.bytes[j * row_bytes..(j + 1) * row_bytes], &mut buf)?;
                    out.push(dot(&buf, x));
                }
                Ok(out)
            }
        }
    }
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` largest `(index, value)` pairs of `v`, largest first (NaN last).
pub fn top_k(v: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..v.len() as u32).collect();
    let k = k.min(v.len());
    if k == 0 {
        return Vec::new();
    }
    let key = |i: &u32| {
        let x = v[*i as usize];
        if x.is_nan() {
            f32::NEG_INFINITY
        } else {
            x
        }
    };
    idx.select_nth_unstable_by(k - 1, |a, b| key(b).total_cmp(&key(a)));
    idx.truncate(k);
    idx.sort_by(|a, b| key(b).total_cmp(&key(a)));
    idx.into_iter().map(|i| (i, v[i as usize])).collect()
}

/// The `k` smallest `(index, value)` pairs of `v`, smallest first.
pub fn bottom_k(v: &[f32], k: usize) -> Vec<(u32, f32)> {
    let neg: Vec<f32> = v.iter().map(|x| -x).collect();
    top_k(&neg, k).into_iter().map(|(i, x)| (i, -x)).collect()
}

/// `log_softmax` of one row of logits, computed stably.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    logits.iter().map(|x| x - lse).collect()
}
