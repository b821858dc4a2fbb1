//! `attn_z`: the attention-weighted sum of values, per head, heads side by side.
//!
//! pattern `[n_heads, q_pos, k_pos]` (hook_pattern), v `[pos, n_heads*d_head]` (hook_v flattened
//! over heads) -> z `[pos, n_heads*d_head]` (hook_z flattened) with
//! z[i, h*d_head + e] = sum_j pattern[h, i, j] * v[j, h*d_head + e], summed over ALL keys j (so a
//! patched, non-causal pattern is honoured).
//!
//! Not: the output projection (that is `linear` with W_O reshaped to `[n_heads*d_head, d_model]`),
//! no batch axis, no per-head result (hook_result) output.

use crate::context::KernelId;
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("attn_z.wgsl");

const TILE: u32 = 16;

impl Recorder<'_> {
    /// pattern `[n_heads, pos, pos]`, v `[pos, n_heads*d_head]` -> `[pos, n_heads*d_head]`.
    pub fn attn_z(
        &mut self,
        pattern: &GpuTensor,
        v: &GpuTensor,
        n_heads: usize,
        d_head: usize,
    ) -> GpuTensor {
        let width = n_heads * d_head;
        assert!(width > 0, "attn_z: n_heads * d_head must be > 0");
        assert_eq!(
            v.len() % width,
            0,
            "attn_z: v {:?} is not [pos, {width}]",
            v.shape
        );
        let pos = v.len() / width;
        assert_eq!(
            pattern.len(),
            n_heads * pos * pos,
            "attn_z: pattern {:?} is not [{n_heads}, {pos}, {pos}]",
            pattern.shape
        );
        let mut shape = v.shape.clone();
        if shape.len() < 2 {
            shape = vec![pos, width];
        }
        let z = self.output(&shape);
        self.dispatch(
            KernelId::AttnZ,
            &[pos as u32, n_heads as u32, d_head as u32],
            &[&pattern.buffer, &v.buffer],
            &[&z.buffer],
            [
                super::groups_for(d_head, TILE),
                super::groups_for(pos, TILE),
                n_heads as u32,
            ],
        );
        z
    }
}

/// CPU reference. pattern `[n_heads, pos, pos]`, v `[pos, n_heads*d_head]` -> `[pos, n_heads*d_head]`.
pub fn attn_z_cpu(pattern: &[f32], v: &[f32], n_heads: usize, d_head: usize) -> Vec<f32> {
    let width = n_heads * d_head;
    let pos = v.len() / width;
    let mut z = vec![0.0; pos * width];
    for h in 0..n_heads {
        for i in 0..pos {
            for e in 0..d_head {
                let mut s = 0.0f32;
                for j in 0..pos {
                    s += pattern[(h * pos + i) * pos + j] * v[j * width + h * d_head + e];
                }
                z[i * width + h * d_head + e] = s;
            }
        }
    }
    z
}
