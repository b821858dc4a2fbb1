//! Direct logit attribution: how much each component writes the answer straight into the
//! logits, through the final norm (at its cached scale) and the unembedding.
//!
//! TransformerLens: `cache.decompose_resid(layer=None, mode="all", incl_embeds=True,
//! pos_slice=pos)` (embed, pos_embed, each layer's attn_out and mlp_out) and
//! `cache.stack_head_results(layer=-1, pos_slice=pos)` (each head's `z · W_O`, labels
//! `L{l}H{h}`), through `cache.apply_ln_to_stack` (centre for LayerNorm, divide by the cached
//! `ln_final.hook_scale`) and `cache.logit_attrs(stack, tokens=target, incorrect_tokens=distractor)`
//! on a model loaded with `fold_ln=True`.
//!
//! Folding the norm: `ln_final(x) · W_U[:, t] = ((x - mean x) / scale) · (w ⊙ W_U[:, t]) + b · W_U[:, t]`,
//! so with the cached scale the logit is exactly a sum over the residual's parts. The parts
//! TransformerLens leaves out of `stack_head_results` (each attention layer's bias `b_O`) and of
//! both stacks (`ln_final`'s bias, TransformerLens's folded `b_U`) are listed as their own terms,
//! so that [`Attribution::sum`] equals [`Attribution::actual`], the logit (difference) the model
//! produced. Without folding (`fold_ln = false`: TransformerLens on an unprocessed model) the
//! direction is the raw `W_U[:, t]` and the sum does not add up; the view says so.

use serde::{Deserialize, Serialize};

use super::{cached, dot, FinalNorm, Linear};
use crate::config::Config;
use crate::run::RunOutput;
use crate::tensor::HostTensor;
use crate::weights::{MatrixRole, MatrixSource, ModelWeights};
use crate::{Error, Result};

/// What to attribute, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionOptions {
    /// The position whose prediction is explained.
    pub pos: usize,
    pub target: u32,
    /// Attribute the logit difference `target - distractor` instead of the target's logit.
    pub distractor: Option<u32>,
    /// Fold `ln_final`'s weight into the direction and its bias into a term (TransformerLens's
    /// `fold_ln=True`): the attributions then add up to the logit.
    pub fold_ln: bool,
    /// Subtract the mean unembedding direction (TransformerLens's `center_unembed=True`): a
    /// single token's attribution then explains its logit minus the mean logit. No effect on
    /// a logit difference.
    pub center_unembed: bool,
}

impl AttributionOptions {
    pub fn new(pos: usize, target: u32, distractor: Option<u32>) -> AttributionOptions {
        AttributionOptions { pos, target, distractor, fold_ln: true, center_unembed: false }
    }
}

/// Which part of the residual stream a term is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Embed,
    PosEmbed,
    /// One head's `z · W_O` (without the layer's `b_O`).
    Head {
        layer: usize,
        head: usize,
    },
    /// A whole attention layer's output (`hook_attn_out`, heads and `b_O`).
    Attn {
        layer: usize,
    },
    /// An attention layer's output bias `b_O`.
    AttnBias {
        layer: usize,
    },
    /// An MLP layer's output (`hook_mlp_out`, its bias included).
    Mlp {
        layer: usize,
    },
    /// `ln_final`'s bias (folded into the unembedding's bias by TransformerLens).
    NormBias,
}

/// One term of an attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// TransformerLens's label (`embed`, `L0H3`, `0_attn_out`, `1_mlp_out`) or ours for the
    /// bias terms (`0_b_O`, `ln_final.b`).
    pub label: String,
    pub part: Part,
    pub value: f32,
}

/// The direct logit attribution at one position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub opts: AttributionOptions,
    /// The exact decomposition, finest grain: embed, pos_embed, then per layer its heads, its
    /// `b_O` and its MLP, then `ln_final`'s bias. Sums to [`Attribution::sum`].
    pub terms: Vec<Term>,
    /// TransformerLens's `decompose_resid` order: embed, pos_embed, `{l}_attn_out`, `{l}_mlp_out`.
    pub layers: Vec<Term>,
    /// The sum of `terms`.
    pub sum: f32,
    /// What the model produced at `pos`: the target's logit, or the difference to the
    /// distractor's (minus the mean logit with `center_unembed`).
    pub actual: f32,
}

impl Attribution {
    /// The heads' terms, `L{l}H{h}` in order (TransformerLens's `stack_head_results` order).
    pub fn heads(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| matches!(t.part, Part::Head { .. }))
    }
}

/// The unembedding direction the attribution projects on, before the norm's weight: `W_U[:, t]`,
/// minus the distractor's or the mean column.
fn direction<M: MatrixSource>(w_u: &M, d_vocab_out: usize, opts: &AttributionOptions) -> Result<Vec<f32>> {
    let in_range = |t: u32, what: &str| {
        if (t as usize) < d_vocab_out {
            Ok(())
        } else {
            Err(Error::Request(format!("the {what} token {t} is out of range (the model has {d_vocab_out} outputs)")))
        }
    };
    in_range(opts.target, "target")?;
    let w_u = Linear::new(w_u);
    let mut dir = w_u.column(opts.target as usize)?;
    if let Some(d) = opts.distractor {
        in_range(d, "distractor")?;
        for (x, y) in dir.iter_mut().zip(w_u.column(d as usize)?) {
            *x -= y;
        }
    } else if opts.center_unembed {
        for (x, m) in dir.iter_mut().zip(w_u.mean_column()?) {
            *x -= m;
        }
    }
    Ok(dir)
}

/// Direct logit attribution of `out` at `opts.pos` (a run that cached `hook_embed`,
/// `hook_pos_embed`, every `attn.hook_z`, `hook_attn_out`, `hook_mlp_out` and
/// `ln_final.hook_scale`).
pub fn attribute<M: MatrixSource>(cfg: &Config, weights: &ModelWeights<HostTensor, M>, out: &RunOutput, opts: &AttributionOptions) -> Result<Attribution> {
    let n_pos = out.logits.shape[0];
    if opts.pos >= n_pos {
        return Err(Error::Request(format!("position {} is out of range (the prompt has {n_pos} tokens)", opts.pos)));
    }
    let (d, pos) = (cfg.d_model, opts.pos);
    let dir = direction(&weights.W_U, cfg.d_vocab_out, opts)?;
    let ln = FinalNorm::new(cfg, weights);
    let u: Vec<f32> = if opts.fold_ln { dir.iter().zip(ln.w).map(|(x, w)| x * w).collect() } else { dir.clone() };
    let scale = cached(out, "ln_final.hook_scale")?.data[pos];
    let attr = |x: &[f32]| dot(&ln.centre_and_scale(x, scale), &u);
    let row = |name: &str| -> Result<Vec<f32>> { Ok(cached(out, name)?.data[pos * d..(pos + 1) * d].to_vec()) };
    let term = |label: String, part: Part, x: &[f32]| Term { label, part, value: attr(x) };

    let mut terms = Vec::new();
    let mut layers = Vec::new();
    let embed = term("embed".into(), Part::Embed, &row("hook_embed")?);
    terms.push(embed.clone());
    layers.push(embed);
    if cfg.rotary().is_none() {
        let pos_embed = term("pos_embed".into(), Part::PosEmbed, &row("hook_pos_embed")?);
        terms.push(pos_embed.clone());
        layers.push(pos_embed);
    }
    let (n_heads, d_head) = (cfg.n_heads, cfg.d_head);
    for (l, block) in weights.blocks.iter().enumerate() {
        // Each head's result z[pos, h] @ W_O[h * d_head .. (h + 1) * d_head, :].
        let w_o = block.W_O.to_matrix().dense(MatrixRole::Linear)?; // [n_heads * d_head, d_model]
        let z = cached(out, &format!("blocks.{l}.attn.hook_z"))?; // [pos, head, d_head]
        let z = &z.data[pos * n_heads * d_head..(pos + 1) * n_heads * d_head];
        for h in 0..n_heads {
            let mut result = vec![0f32; d];
            for k in 0..d_head {
                let zk = z[h * d_head + k];
                for (r, w) in result.iter_mut().zip(w_o.row(h * d_head + k)) {
                    *r += zk * w;
                }
            }
            terms.push(term(format!("L{l}H{h}"), Part::Head { layer: l, head: h }, &result));
        }
        if let Some(b_o) = &block.b_O {
            terms.push(term(format!("{l}_b_O"), Part::AttnBias { layer: l }, &b_o.data));
        }
        layers.push(term(format!("{l}_attn_out"), Part::Attn { layer: l }, &row(&format!("blocks.{l}.hook_attn_out"))?));
        if block.mlp.is_some() {
            let mlp = term(format!("{l}_mlp_out"), Part::Mlp { layer: l }, &row(&format!("blocks.{l}.hook_mlp_out"))?);
            terms.push(mlp.clone());
            layers.push(mlp);
        }
    }
    if let (true, Some(b)) = (opts.fold_ln, ln.b) {
        terms.push(Term { label: "ln_final.b".into(), part: Part::NormBias, value: dot(b, &dir) });
    }
    let sum = terms.iter().map(|t| t.value as f64).sum::<f64>() as f32;
    let logits = out.logits.row(pos);
    let actual = match opts.distractor {
        Some(dt) => logits[opts.target as usize] - logits[dt as usize],
        None if opts.center_unembed => logits[opts.target as usize] - logits.iter().map(|&x| x as f64).sum::<f64>() as f32 / logits.len() as f32,
        None => logits[opts.target as usize],
    };
    Ok(Attribution { opts: opts.clone(), terms, layers, sum, actual })
}
