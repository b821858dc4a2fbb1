//! `attn_z`: the attention-weighted sum of values, per head, heads side by side.
//!
//! pattern `[batch, n_heads, q_pos, k_pos]` (hook_pattern), v `[batch*pos, n_kv_heads*d_head]`
//! (hook_v flattened over heads, sequences stacked) -> z `[batch*pos, n_heads*d_head]` (hook_z
//! flattened) with z[b*pos + i, h*d_head + e] = sum_j pattern[b, h, i, j] * v[b*pos + j, h*d_head + e],
//! summed over ALL keys j (so a patched, non-causal pattern is honoured). With grouped-query
//! attention query head h reads value head h / (n_heads / n_kv_heads).
//!
//! Not: the output projection (that is `linear` with W_O reshaped to `[n_heads*d_head, d_model]`),
//! no per-head result (hook_result) output.

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("attn_z.wgsl");
pub(crate) const ATTN_Z: KernelDef = KernelDef::new("attn_z", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ATTN_Z];

const TILE: u32 = 16;

impl Recorder<'_> {
    /// pattern `[batch, n_heads, pos, pos]`, v `[batch*pos, n_kv_heads*d_head]` ->
    /// `[batch*pos, n_heads*d_head]`. Query head h reads value head h / (n_heads / n_kv_heads).
    #[allow(clippy::too_many_arguments)]
    pub fn attn_z(
        &mut self,
        pattern: &GpuTensor,
        v: &GpuTensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> GpuTensor {
        let kv_width = n_kv_heads * d_head;
        assert!(kv_width > 0, "attn_z: n_kv_heads * d_head must be > 0");
        assert!(n_heads.is_multiple_of(n_kv_heads), "attn_z: {n_heads} heads do not share {n_kv_heads} value heads evenly");
        assert_eq!(v.len() % kv_width, 0, "attn_z: v {:?} is not [pos, {kv_width}]", v.shape);
        let rows = v.len() / kv_width;
        assert!(n_batch > 0 && rows.is_multiple_of(n_batch), "attn_z: {rows} rows do not split into {n_batch} sequences");
        assert!(n_batch * n_heads <= 65535, "attn_z: batch x heads = {} exceeds 65535 workgroups", n_batch * n_heads);
        let pos = rows / n_batch;
        assert_eq!(
            pattern.len(),
            n_batch * n_heads * pos * pos,
            "attn_z: pattern {:?} is not [{n_batch}, {n_heads}, {pos}, {pos}]",
            pattern.shape
        );
        let z = self.output(&[rows, n_heads * d_head]);
        self.dispatch(
            ATTN_Z,
            &[pos as u32, n_heads as u32, d_head as u32, n_kv_heads as u32],
            &[&pattern.buffer, &v.buffer],
            &[&z.buffer],
            [
                super::groups_for(d_head, TILE),
                super::groups_for(pos, TILE),
                (n_batch * n_heads) as u32,
            ],
        );
        z
    }
}

/// CPU reference. pattern `[batch, n_heads, pos, pos]`, v `[batch*pos, n_kv_heads*d_head]` ->
/// `[batch*pos, n_heads*d_head]`.
pub fn attn_z_cpu(pattern: &[f32], v: &[f32], n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let kv_width = n_kv_heads * d_head;
    let pos = v.len() / kv_width / n_batch;
    let (pat, seq) = (n_heads * pos * pos, pos * kv_width);
    (0..n_batch).flat_map(|b| attn_z_one(&pattern[b * pat..(b + 1) * pat], &v[b * seq..(b + 1) * seq], n_heads, n_kv_heads, d_head)).collect()
}

fn attn_z_one(pattern: &[f32], v: &[f32], n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let width = n_heads * d_head;
    let kv_width = n_kv_heads * d_head;
    let group = n_heads / n_kv_heads;
    let pos = v.len() / kv_width;
    let mut z = vec![0.0; pos * width];
    for h in 0..n_heads {
        for i in 0..pos {
            for e in 0..d_head {
                let mut s = 0.0f32;
                for j in 0..pos {
                    s += pattern[(h * pos + i) * pos + j] * v[j * kv_width + (h / group) * d_head + e];
                }
                z[i * width + h * d_head + e] = s;
            }
        }
    }
    z
}
