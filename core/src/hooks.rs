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
    /// `[pos, head, d_head]`: q, k, v, z. Neuron = index into `d_head`.
    PosHead,
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
            HookKind::PosHead => vec![n_pos, cfg.n_heads, cfg.d_head],
            HookKind::HeadQueryKey => vec![cfg.n_heads, n_pos, n_pos],
        }
    }
}

/// Every hook point of a model, in the order the forward pass visits them.
pub fn hook_points(cfg: &Config) -> Vec<HookPoint> {
    let mut out = Vec::new();
    let mut push = |name: String, kind: HookKind, layer: Option<usize>| out.push(HookPoint { name, kind, layer });
    let resid = HookKind::PosWidth { width: cfg.d_model };
    push("hook_embed".into(), resid, None);
    push("hook_pos_embed".into(), resid, None);
    for l in 0..cfg.n_layers {
        let b = |s: &str| format!("blocks.{l}.{s}");
        push(b("hook_resid_pre"), resid, Some(l));
        push(b("ln1.hook_scale"), HookKind::Scale, Some(l));
        push(b("ln1.hook_normalized"), resid, Some(l));
        push(b("attn.hook_q"), HookKind::PosHead, Some(l));
        push(b("attn.hook_k"), HookKind::PosHead, Some(l));
        push(b("attn.hook_v"), HookKind::PosHead, Some(l));
        push(b("attn.hook_attn_scores"), HookKind::HeadQueryKey, Some(l));
        push(b("attn.hook_pattern"), HookKind::HeadQueryKey, Some(l));
        push(b("attn.hook_z"), HookKind::PosHead, Some(l));
        push(b("hook_attn_out"), resid, Some(l));
        if let Some(d_mlp) = cfg.d_mlp {
            push(b("hook_resid_mid"), resid, Some(l));
            push(b("ln2.hook_scale"), HookKind::Scale, Some(l));
            push(b("ln2.hook_normalized"), resid, Some(l));
            push(b("mlp.hook_pre"), HookKind::PosWidth { width: d_mlp }, Some(l));
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
