//! `attn_z_cached`: the attention-weighted sum of every value so far for new queries, heads side
//! by side, for incremental decoding with a KV cache (one sequence).
//!
//! pattern `[n_heads, n_q, n_k]`, v `[n_k, n_kv_heads*d_head]` (the cached values followed by
//! the new ones) -> z `[n_q, n_heads*d_head]` with z[i, h*d_head + e] = sum_j pattern[h, i, j] *
//! v[j, g*d_head + e], g = h / (n_heads / n_kv_heads), summed over all keys. With `n_q == n_k`
//! it equals [`attn_z`](super::attn_z) on one sequence.
//!
//! Not: batches, the output projection.

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("attn_z_cached.wgsl");
pub(crate) const ATTN_Z_CACHED: KernelDef = KernelDef::new("attn_z_cached", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ATTN_Z_CACHED];

const TILE: u32 = 16;

impl Recorder<'_> {
    /// pattern `[n_heads, n_q, n_k]`, v `[n_k, n_kv_heads*d_head]` -> `[n_q, n_heads*d_head]`.
    pub fn attn_z_cached(&mut self, pattern: &GpuTensor, v: &GpuTensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> GpuTensor {
        let kv_width = n_kv_heads * d_head;
        assert!(kv_width > 0, "attn_z_cached: n_kv_heads * d_head must be > 0");
        assert!(n_heads.is_multiple_of(n_kv_heads), "attn_z_cached: {n_heads} heads do not share {n_kv_heads} value heads evenly");
        assert!(v.len().is_multiple_of(kv_width), "attn_z_cached: v {:?} is not [n_k, {kv_width}]", v.shape);
        let n_k = v.len() / kv_width;
        assert!(n_k > 0 && pattern.len().is_multiple_of(n_heads * n_k), "attn_z_cached: pattern {:?} is not [{n_heads}, n_q, {n_k}]", pattern.shape);
        assert!(n_heads <= 65535, "attn_z_cached: {n_heads} heads exceed 65535 workgroups");
        let n_q = pattern.len() / (n_heads * n_k);
        let z = self.output(&[n_q, n_heads * d_head]);
        self.dispatch(
            ATTN_Z_CACHED,
            &[n_q as u32, n_k as u32, n_heads as u32, d_head as u32, n_kv_heads as u32],
            &[&pattern.buffer, &v.buffer],
            &[&z.buffer],
            [super::groups_for(d_head, TILE), super::groups_for(n_q, TILE), n_heads as u32],
        );
        z
    }
}

/// CPU reference. pattern `[n_heads, n_q, n_k]`, v `[n_k, n_kv_heads*d_head]` -> `[n_q, n_heads*d_head]`.
pub fn attn_z_cached_cpu(pattern: &[f32], v: &[f32], n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let (width, kv_width) = (n_heads * d_head, n_kv_heads * d_head);
    let group = n_heads / n_kv_heads;
    let n_k = v.len() / kv_width;
    let n_q = pattern.len() / (n_heads * n_k);
    let mut z = vec![0.0; n_q * width];
    for h in 0..n_heads {
        for i in 0..n_q {
            for e in 0..d_head {
                let mut s = 0.0f32;
                for j in 0..n_k {
                    s += pattern[(h * n_q + i) * n_k + j] * v[j * kv_width + (h / group) * d_head + e];
                }
                z[i * width + h * d_head + e] = s;
            }
        }
    }
    z
}
