//! `attn_scores_cached`: causal, scaled dot-product scores of new queries against every key so
//! far, for incremental decoding with a KV cache (one sequence).
//!
//! q `[n_q, n_heads*d_head]` (the new positions `offset..offset + n_q`), k `[n_k,
//! n_kv_heads*d_head]` (positions `0..n_k`, the cached keys followed by the new ones; `offset =
//! n_k - n_q`) -> scores `[n_heads, n_q, n_k]` with scores[h, i, j] = (q[i, h*d_head..] . k[j,
//! g*d_head..]) / sqrt(d_head) for j <= offset + i and exactly -inf for j > offset + i. Query
//! head h reads key head g = h / (n_heads / n_kv_heads). With `n_q == n_k` it equals
//! [`attn_scores`](super::attn_scores) on one sequence.
//!
//! Not: batches (one sequence; a decoding step is one sequence), softmax, attention bias, a
//! custom attn_scale, sliding windows.

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("attn_scores_cached.wgsl");
pub(crate) const ATTN_SCORES_CACHED: KernelDef = KernelDef::new("attn_scores_cached", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ATTN_SCORES_CACHED];

const TILE: u32 = 16;

impl Recorder<'_> {
    /// q `[n_q, n_heads*d_head]`, k `[n_k, n_kv_heads*d_head]` (n_k >= n_q) -> `[n_heads, n_q, n_k]`.
    pub fn attn_scores_cached(&mut self, q: &GpuTensor, k: &GpuTensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> GpuTensor {
        let width = n_heads * d_head;
        let kwidth = n_kv_heads * d_head;
        assert!(width > 0 && kwidth > 0, "attn_scores_cached: heads * d_head must be > 0");
        assert!(n_heads.is_multiple_of(n_kv_heads), "attn_scores_cached: {n_heads} heads do not share {n_kv_heads} key heads evenly");
        assert!(q.len().is_multiple_of(width), "attn_scores_cached: q {:?} is not [n_q, {width}]", q.shape);
        assert!(k.len().is_multiple_of(kwidth), "attn_scores_cached: k {:?} is not [n_k, {kwidth}]", k.shape);
        let (n_q, n_k) = (q.len() / width, k.len() / kwidth);
        assert!(n_q <= n_k, "attn_scores_cached: {n_q} queries but only {n_k} keys");
        assert!(n_heads <= 65535, "attn_scores_cached: {n_heads} heads exceed 65535 workgroups");
        let out = self.output(&[n_heads, n_q, n_k]);
        self.dispatch(
            ATTN_SCORES_CACHED,
            &[
                n_q as u32,
                n_k as u32,
                n_heads as u32,
                d_head as u32,
                f32::NEG_INFINITY.to_bits(),
                (d_head as f32).sqrt().to_bits(),
                n_kv_heads as u32,
                (n_k - n_q) as u32,
            ],
            &[&q.buffer, &k.buffer],
            &[&out.buffer],
            [super::groups_for(n_k, TILE), super::groups_for(n_q, TILE), n_heads as u32],
        );
        out
    }
}

/// CPU reference. q `[n_q, n_heads*d_head]`, k `[n_k, n_kv_heads*d_head]` -> `[n_heads, n_q,
/// n_k]`, -inf where j > (n_k - n_q) + i.
pub fn attn_scores_cached_cpu(q: &[f32], k: &[f32], n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let (width, kwidth) = (n_heads * d_head, n_kv_heads * d_head);
    let group = n_heads / n_kv_heads;
    let (n_q, n_k) = (q.len() / width, k.len() / kwidth);
    let offset = n_k - n_q;
    let scale = (d_head as f32).sqrt();
    let mut out = vec![0.0; n_heads * n_q * n_k];
    for h in 0..n_heads {
        for i in 0..n_q {
            for j in 0..n_k {
                out[(h * n_q + i) * n_k + j] = if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    let mut s = 0.0f32;
                    for e in 0..d_head {
                        s += q[i * width + h * d_head + e] * k[j * kwidth + (h / group) * d_head + e];
                    }
                    s / scale
                };
            }
        }
    }
    out
}
