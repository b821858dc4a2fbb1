//! `attn_scores`: causal, scaled dot-product attention scores for all heads at once.
//!
//! q `[batch*pos, n_heads*d_head]`, k `[batch*pos, n_kv_heads*d_head]` (the hook_q / hook_k
//! tensors, or hook_rot_q / hook_rot_k, flattened over heads, sequences stacked) -> scores
//! `[batch, n_heads, q_pos, k_pos]` (hook_attn_scores) with scores[b, h, i, j] =
//! (q[b*pos + i, h*d_head..] . k[b*pos + j, g*d_head..]) / sqrt(d_head) for j <= i, and exactly
//! -inf for j > i (TransformerLens stores -inf there). Grouped-query attention: query head h
//! reads key head g = h / (n_heads / n_kv_heads) (n_kv_heads = n_heads without grouping).
//!
//! Not: softmax (separate op), no KV cache / query offset (query i is key i), no attention
//! bias, no custom attn_scale, no padding mask (every sequence of a batch has the same length).

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("attn_scores.wgsl");
pub(crate) const ATTN_SCORES: KernelDef = KernelDef::new("attn_scores", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ATTN_SCORES];

const TILE: u32 = 16;

impl Recorder<'_> {
    /// q `[batch*pos, n_heads*d_head]`, k `[batch*pos, n_kv_heads*d_head]` -> `[batch, n_heads,
    /// pos, pos]` (`[n_heads, pos, pos]` when `n_batch` is 1).
    #[allow(clippy::too_many_arguments)]
    pub fn attn_scores(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> GpuTensor {
        let width = n_heads * d_head;
        assert!(width > 0, "attn_scores: n_heads * d_head must be > 0");
        assert_eq!(
            q.len() % width,
            0,
            "attn_scores: q {:?} is not [pos, {width}]",
            q.shape
        );
        assert!(n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads), "attn_scores: {n_heads} heads do not share {n_kv_heads} key heads evenly");
        let rows = q.len() / width;
        assert_eq!(
            k.len(),
            rows * n_kv_heads * d_head,
            "attn_scores: q {:?} and k {:?} differ in positions",
            q.shape,
            k.shape
        );
        assert!(n_batch > 0 && rows.is_multiple_of(n_batch), "attn_scores: {rows} rows do not split into {n_batch} sequences");
        assert!(n_batch * n_heads <= 65535, "attn_scores: batch x heads = {} exceeds 65535 workgroups", n_batch * n_heads);
        let pos = rows / n_batch;
        let shape = if n_batch == 1 { vec![n_heads, pos, pos] } else { vec![n_batch, n_heads, pos, pos] };
        let out = self.output(&shape);
        let g = super::groups_for(pos, TILE);
        self.dispatch(
            ATTN_SCORES,
            &[
                pos as u32,
                n_heads as u32,
                d_head as u32,
                f32::NEG_INFINITY.to_bits(),
                (d_head as f32).sqrt().to_bits(),
                n_kv_heads as u32,
            ],
            &[&q.buffer, &k.buffer],
            &[&out.buffer],
            [g, g, (n_batch * n_heads) as u32],
        );
        out
    }
}

/// CPU reference. q `[batch*pos, n_heads*d_head]`, k `[batch*pos, n_kv_heads*d_head]` ->
/// `[batch, n_heads, pos, pos]`, -inf above the diagonal.
pub fn attn_scores_cpu(q: &[f32], k: &[f32], n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let width = n_heads * d_head;
    let pos = q.len() / width / n_batch;
    let (seq, kseq) = (pos * width, pos * n_kv_heads * d_head);
    (0..n_batch).flat_map(|b| attn_scores_one(&q[b * seq..(b + 1) * seq], &k[b * kseq..(b + 1) * kseq], n_heads, n_kv_heads, d_head)).collect()
}

fn attn_scores_one(q: &[f32], k: &[f32], n_heads: usize, n_kv_heads: usize, d_head: usize) -> Vec<f32> {
    let width = n_heads * d_head;
    let kwidth = n_kv_heads * d_head;
    let group = n_heads / n_kv_heads;
    let pos = q.len() / width;
    let scale = (d_head as f32).sqrt();
    let mut out = vec![0.0; n_heads * pos * pos];
    for h in 0..n_heads {
        for i in 0..pos {
            for j in 0..pos {
                let v = if j > i {
                    f32::NEG_INFINITY
                } else {
                    let mut s = 0.0f32;
                    for e in 0..d_head {
                        s += q[i * width + h * d_head + e] * k[j * kwidth + (h / group) * d_head + e];
                    }
                    s / scale
                };
                out[(h * pos + i) * pos + j] = v;
            }
        }
    }
    out
}
