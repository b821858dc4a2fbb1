//! `attn_scores`: causal, scaled dot-product attention scores for all heads at once.
//!
//! q `[pos, n_heads*d_head]`, k `[pos, n_heads*d_head]` (the hook_q / hook_k tensors flattened
//! over heads) -> scores `[n_heads, q_pos, k_pos]` (hook_attn_scores) with
//! scores[h, i, j] = (q[i, h*d_head..] . k[j, h*d_head..]) / sqrt(d_head) for j <= i, and exactly
//! -inf for j > i (TransformerLens stores -inf there).
//!
//! Not: softmax (separate op), no batch axis, no KV cache / query offset (query i is key i), no
//! grouped-query or rotary attention, no attention bias, no custom attn_scale.

use crate::context::KernelId;
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("attn_scores.wgsl");

const TILE: u32 = 16;

impl Recorder<'_> {
    /// q `[pos, n_heads*d_head]`, k same -> `[n_heads, pos, pos]`.
    pub fn attn_scores(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        n_heads: usize,
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
        assert_eq!(
            q.len(),
            k.len(),
            "attn_scores: q {:?} and k {:?} differ",
            q.shape,
            k.shape
        );
        let pos = q.len() / width;
        let out = self.output(&[n_heads, pos, pos]);
        let g = super::groups_for(pos, TILE);
        self.dispatch(
            KernelId::AttnScores,
            &[
                pos as u32,
                n_heads as u32,
                d_head as u32,
                f32::NEG_INFINITY.to_bits(),
                (d_head as f32).sqrt().to_bits(),
            ],
            &[&q.buffer, &k.buffer],
            &[&out.buffer],
            [g, g, n_heads as u32],
        );
        out
    }
}

/// CPU reference. q, k `[pos, n_heads*d_head]` -> `[n_heads, pos, pos]`, -inf above the diagonal.
pub fn attn_scores_cpu(q: &[f32], k: &[f32], n_heads: usize, d_head: usize) -> Vec<f32> {
    let width = n_heads * d_head;
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
                        s += q[i * width + h * d_head + e] * k[j * width + h * d_head + e];
                    }
                    s / scale
                };
                out[(h * pos + i) * pos + j] = v;
            }
        }
    }
    out
}
