//! The hook points of the forward pass: their names (TransformerLens's, public API), their
//! shapes and which axis is the position, the head and the neuron.
//!
//! This is the ONE list of hook names. The forward pass visits exactly these, in this order;
//! `tests/hooks.rs` checks that, and the parity fixtures check the order against TransformerLens.
//! Shapes leave out TransformerLens's batch axis: one run is one prompt.

use crate::config::Config;

/// The shape family of a hook, which says what "position", "head" and "neuron" index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// `[pos, width]`: residual stream, MLP neurons, logits. Neuron = index into `width`.
    PosWidth { width: usize },
    /// `[pos, 1]`: a LayerNorm scale.
    Scale,
    /// `[pos, head, d_head]`: q, k, v, z, rot_q, rot_k. Neuron = index into `d_head`. `heads`
    /// is `n_heads`, or `n_kv_heads` for the keys and values of grouped-query attention.
    PosHead { heads: usize },
    /// `[head, query_pos, key_pos]`: attention scores and pattern. Position = the query;
    /// neuron = the key position.
    HeadQueryKey,
}

/// Everything the forward pass needs to know about one hook point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPoint {
    pub name: String,
    pub kind: HookKind,
    /// The block the hook belongs to, if any.
    pub layer: Option<usize>,
}

impl HookPoint {
    /// The TransformerLens shape of this hook for a prompt of `n_pos` tokens.
    pub fn shape(&self, cfg: &Config, n_pos: usize) -> Vec<usize> {
        match self.kind {
            HookKind::PosWidth { width } => vec![n_pos, width],
            HookKind::Scale => vec![n_pos, 1],
            HookKind::PosHead { heads } => vec![n_pos, heads, cfg.d_head],
            HookKind::HeadQueryKey => vec![cfg.n_heads, n_pos, n_pos],
        }
    }
}

/// Every hook point of a model, in the order the forward pass visits them. The list depends on
/// the family, as TransformerLens's does: rotary models have no `hook_pos_embed` but have
/// `hook_rot_q` / `hook_rot_k`; gated MLPs add `mlp.hook_pre_linear`; parallel blocks (GPT-NeoX)
/// have no `hook_resid_mid`; attention-only models have no MLP hooks.
pub fn hook_points(cfg: &Config) -> Vec<HookPoint> {
    let mut out = Vec::new();
    let mut push = |name: String, kind: HookKind, layer: Option<usize>| out.push(HookPoint { name, kind, layer });
    let resid = HookKind::PosWidth { width: cfg.d_model };
    let q_heads = HookKind::PosHead { heads: cfg.n_heads };
    let kv_heads = HookKind::PosHead { heads: cfg.n_kv_heads };
    let rotary = cfg.rotary().is_some();
    push("hook_embed".into(), resid, None);
    if !rotary {
        push("hook_pos_embed".into(), resid, None);
    }
    for l in 0..cfg.n_layers {
        let b = |s: &str| format!("blocks.{l}.{s}");
        push(b("hook_resid_pre"), resid, Some(l));
        push(b("ln1.hook_scale"), HookKind::Scale, Some(l));
        push(b("ln1.hook_normalized"), resid, Some(l));
        push(b("attn.hook_q"), q_heads, Some(l));
        push(b("attn.hook_k"), kv_heads, Some(l));
        push(b("attn.hook_v"), kv_heads, Some(l));
        if rotary {
            push(b("attn.hook_rot_q"), q_heads, Some(l));
            push(b("attn.hook_rot_k"), kv_heads, Some(l));
        }
        push(b("attn.hook_attn_scores"), HookKind::HeadQueryKey, Some(l));
        push(b("attn.hook_pattern"), HookKind::HeadQueryKey, Some(l));
        push(b("attn.hook_z"), q_heads, Some(l));
        push(b("hook_attn_out"), resid, Some(l));
        if let Some(d_mlp) = cfg.d_mlp {
            if !cfg.parallel_attn_mlp {
                push(b("hook_resid_mid"), resid, Some(l));
            }
            push(b("ln2.hook_scale"), HookKind::Scale, Some(l));
            push(b("ln2.hook_normalized"), resid, Some(l));
            push(b("mlp.hook_pre"), HookKind::PosWidth { width: d_mlp }, Some(l));
            if cfg.gated_mlp {
                push(b("mlp.hook_pre_linear"), HookKind::PosWidth { width: d_mlp }, Some(l));
            }
            push(b("mlp.hook_post"), HookKind::PosWidth { width: d_mlp }, Some(l));
            push(b("hook_mlp_out"), resid, Some(l));
        }
        push(b("hook_resid_post"), resid, Some(l));
    }
    push("ln_final.hook_scale".into(), HookKind::Scale, None);
    push("ln_final.hook_normalized".into(), resid, None);
    push("unembed.hook_in".into(), resid, None);
    push("unembed.hook_out".into(), HookKind::PosWidth { width: cfg.d_vocab_out }, None);
    out
}

/// The names of [`hook_points`], in order.
pub fn hook_names(cfg: &Config) -> Vec<String> {
    hook_points(cfg).into_iter().map(|h| h.name).collect()
}

/// Looks one hook point up by name.
pub fn hook_point(cfg: &Config, name: &str) -> Option<HookPoint> {
    hook_points(cfg).into_iter().find(|h| h.name == name)
}
