//! `embed` and `pos_embed`: the two embedding lookups at the bottom of the model.
//!
//! * `embed`: gathers token rows, `out[p, :] = W_E[tokens[p], :]`.
//!   tokens `[n_pos]` (u32), W_E `[d_vocab, d_model]` -> `[n_pos, d_model]` (hook_embed).
//! * `pos_embed`: copies rows `0..n_pos` of `W_pos` `[n_ctx, d_model]` once per sequence ->
//!   `[n_batch * n_pos, d_model]` (hook_pos_embed). A separate output from `embed` because both
//!   are hooks.
//!
//! Not: the sum of the two (use `add`), not a one-hot matmul, no position offset
//! (positions always start at 0). Out-of-range token ids give zero rows (no panic: the ids are
//! on the GPU); callers should validate ids against the vocabulary on the host.

use crate::ops::KernelDef;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuBuffer, GpuTensor, Recorder};

const WGSL: &str = include_str!("embed.wgsl");
pub(crate) const EMBED: KernelDef = KernelDef::new("embed", WGSL, 2, 1);
pub(crate) const POS_EMBED: KernelDef = KernelDef::new("pos_embed", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[EMBED, POS_EMBED];

impl Recorder<'_> {
    /// tokens `[>= n_pos]` (u32), w_e `[d_vocab, d_model]` -> `[n_pos, d_model]`.
    pub fn embed(&mut self, tokens: &GpuBuffer, n_pos: usize, w_e: &GpuTensor) -> GpuTensor {
        assert_eq!(
            w_e.shape.len(),
            2,
            "embed: W_E must be [d_vocab, d_model], got {:?}",
            w_e.shape
        );
        assert!(
            tokens.len >= n_pos,
            "embed: {n_pos} positions but only {} tokens",
            tokens.len
        );
        let (d_vocab, d_model) = (w_e.shape[0], w_e.shape[1]);
        let out = self.output(&[n_pos, d_model]);
        let grid = self
            .ctx
            .grid_1d(groups_for(n_pos * d_model, ELEMENTWISE_WG));
        self.dispatch(
            EMBED,
            &[n_pos as u32, d_model as u32, d_vocab as u32],
            &[&tokens.buffer, &w_e.buffer],
            &[&out.buffer],
            grid,
        );
        out
    }

    /// w_pos `[n_ctx, d_model]` -> rows `0..n_pos` once per sequence, `[n_batch * n_pos, d_model]`.
    /// Panics if n_pos > n_ctx.
    pub fn pos_embed(&mut self, n_batch: usize, n_pos: usize, w_pos: &GpuTensor) -> GpuTensor {
        assert_eq!(
            w_pos.shape.len(),
            2,
            "pos_embed: W_pos must be [n_ctx, d_model], got {:?}",
            w_pos.shape
        );
        let (n_ctx, d_model) = (w_pos.shape[0], w_pos.shape[1]);
        assert!(
            n_pos <= n_ctx,
            "pos_embed: {n_pos} positions exceed n_ctx = {n_ctx}"
        );
        let out = self.output(&[n_batch * n_pos, d_model]);
        let grid = self
            .ctx
            .grid_1d(groups_for(n_batch * n_pos * d_model, ELEMENTWISE_WG));
        let dummy = self.ctx.dummy.clone();
        self.dispatch(
            POS_EMBED,
            &[n_pos as u32, d_model as u32, n_ctx as u32, n_batch as u32],
            &[&dummy, &w_pos.buffer],
            &[&out.buffer],
            grid,
        );
        out
    }
}

/// CPU reference of `embed`. tokens `[n_pos]`, w_e `[d_vocab, d_model]` -> `[n_pos, d_model]`.
/// Out-of-range ids give zero rows, like the kernel.
pub fn embed_cpu(tokens: &[u32], w_e: &[f32], d_vocab: usize, d_model: usize) -> Vec<f32> {
    let mut out = vec![0.0; tokens.len() * d_model];
    for (p, &t) in tokens.iter().enumerate() {
        let t = t as usize;
        if t < d_vocab {
            out[p * d_model..(p + 1) * d_model]
                .copy_from_slice(&w_e[t * d_model..(t + 1) * d_model]);
        }
    }
    out
}

/// CPU reference of `pos_embed`. w_pos `[n_ctx, d_model]` -> `[n_batch * n_pos, d_model]`.
pub fn pos_embed_cpu(n_batch: usize, n_pos: usize, w_pos: &[f32], d_model: usize) -> Vec<f32> {
    w_pos[..n_pos * d_model].repeat(n_batch)
}
