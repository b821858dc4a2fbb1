//! MLP neurons: what a neuron reads on the prompt and what it writes into the logits.
//!
//! A neuron's activation is `blocks.{l}.mlp.hook_post[:, n]`, TransformerLens's choice and
//! ours for every family: for a gated MLP (SwiGLU) that is `act(x W_gate)[n] * (x W_in)[n]`,
//! the product the output matrix reads, not the gate alone (`hook_pre`).
//!
//! Its direct effect on the logits is its output direction `W_out[n]` through the final norm
//! at the cached scale and the unembedding: TransformerLens's
//! `cache.apply_ln_to_stack(W_out[l, n], layer=-1, pos_slice=pos) @ W_U` on a model loaded with
//! `fold_ln=True`; per unit of activation, and leaving out what the neuron does through later
//! layers.

use serde::{Deserialize, Serialize};

use super::{bottom_k, cached, top_k, FinalNorm, Linear};
use crate::config::Config;
use crate::run::RunOutput;
use crate::tensor::HostTensor;
use crate::weights::{MatrixSource, ModelWeights};
use crate::{Error, Result};

/// Checks that layer `l` has an MLP with a neuron `n`, and returns `d_mlp`.
pub fn check_neuron(cfg: &Config, layer: usize, neuron: usize) -> Result<usize> {
    let d_mlp = cfg.d_mlp.ok_or_else(|| Error::Request("this model has no MLP neurons (it is attention-only)".into()))?;
    if layer >= cfg.n_layers {
        return Err(Error::Request(format!("layer {layer} is out of range (the model has {} layers)", cfg.n_layers)));
    }
    if neuron >= d_mlp {
        return Err(Error::Request(format!("neuron {neuron} is out of range (layer {layer} has {d_mlp} neurons, 0 to {})", d_mlp - 1)));
    }
    Ok(d_mlp)
}

/// `blocks.{layer}.mlp.hook_post[:, neuron]`: the neuron's activation at every position.
pub fn activations(cfg: &Config, out: &RunOutput, layer: usize, neuron: usize) -> Result<Vec<f32>> {
    let d_mlp = check_neuron(cfg, layer, neuron)?;
    let post = cached(out, &format!("blocks.{layer}.mlp.hook_post"))?; // [pos, d_mlp]
    Ok(post.data.chunks_exact(d_mlp).map(|row| row[neuron]).collect())
}

/// The `k` neurons of `layer` with the largest activation anywhere on the prompt, with it.
pub fn top_neurons(cfg: &Config, out: &RunOutput, layer: usize, k: usize) -> Result<Vec<(u32, f32)>> {
    let d_mlp = check_neuron(cfg, layer, 0)?;
    let post = cached(out, &format!("blocks.{layer}.mlp.hook_post"))?;
    let mut max = vec![f32::NEG_INFINITY; d_mlp];
    for row in post.data.chunks_exact(d_mlp) {
        for (m, &v) in max.iter_mut().zip(row) {
            *m = m.max(v);
        }
    }
    Ok(top_k(&max, k))
}

/// A neuron's direct effect on the logits, read at one position's final-norm scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectEffect {
    pub layer: usize,
    pub neuron: usize,
    pub pos: usize,
    /// The tokens it raises most, `(token, logit change per unit of activation)`, largest first.
    pub promoted: Vec<(u32, f32)>,
    /// The tokens it lowers most, most negative first.
    pub suppressed: Vec<(u32, f32)>,
}

/// The direct effect of every output token, `[d_vocab_out]` (see the module docs).
pub fn direct_effect_logits<M: MatrixSource>(
    cfg: &Config,
    weights: &ModelWeights<HostTensor, M>,
    out: &RunOutput,
    layer: usize,
    neuron: usize,
    pos: usize,
) -> Result<Vec<f32>> {
    check_neuron(cfg, layer, neuron)?;
    let n_pos = out.logits.shape[0];
    if pos >= n_pos {
        return Err(Error::Request(format!("position {pos} is out of range (the prompt has {n_pos} tokens)")));
    }
    let mlp = weights.blocks[layer].mlp.as_ref().ok_or_else(|| Error::Request(format!("layer {layer} has no MLP")))?;
    let w_out = Linear::new(&mlp.W_out).row(neuron)?; // [d_model]
    let ln = FinalNorm::new(cfg, weights);
    let scale = cached(out, "ln_final.hook_scale")?.data[pos];
    let x: Vec<f32> = ln.centre_and_scale(&w_out, scale).iter().zip(ln.w).map(|(x, w)| x * w).collect();
    Linear::new(&weights.W_U).vec_mat(&x)
}

/// [`direct_effect_logits`], reduced to the `k` most promoted and suppressed tokens.
pub fn direct_effect<M: MatrixSource>(
    cfg: &Config,
    weights: &ModelWeights<HostTensor, M>,
    out: &RunOutput,
    layer: usize,
    neuron: usize,
    pos: usize,
    k: usize,
) -> Result<DirectEffect> {
    let logits = direct_effect_logits(cfg, weights, out, layer, neuron, pos)?;
    Ok(DirectEffect { layer, neuron, pos, promoted: top_k(&logits, k), suppressed: bottom_k(&logits, k) })
}
