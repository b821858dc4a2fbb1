//! `rotary`: rotary position embeddings on q or k (hook_rot_q / hook_rot_k), rotate-half form
//! as Hugging Face Llama, Qwen2 and GPT-NeoX apply them, partial rotary included.
//!
//! x `[batch * pos, n_heads * d_head]`, cos / sin `[pos, rot_dim / 2]` (from [`rotary_tables`])
//! -> y (same shape): within each head, the first `rot_dim` features are rotated in pairs
//! (e, e + rot_dim/2) by angle `p * base^(-2e / rot_dim)`, the rest are copied. The angle
//! tables are computed once on the host in f32, the way transformers computes them, so both
//! backends use bit-identical angles (a GPU `cos` of a large argument is not accurate enough).
//!
//! Not: the interleaved (GPT-J / llama.cpp "normal") pairing; GGUF Llama weights are un-permuted
//! at load instead. Not: RoPE scaling variants (linear, dynamic, YaRN, Llama 3).

use crate::ops::KernelDef;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("rotary.wgsl");
pub(crate) const ROTARY: KernelDef = KernelDef::new("rotary", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ROTARY];

/// The cos and sin tables `[n_pos, rot_dim / 2]` for positions `0..n_pos`: inverse frequencies
/// `1 / base^(2i / rot_dim)` in f32, angle = position * inverse frequency in f32 (as
/// transformers' default rotary embedding does), then cos and sin.
pub fn rotary_tables(n_pos: usize, rot_dim: usize, base: f32) -> (Vec<f32>, Vec<f32>) {
    let half = rot_dim / 2;
    let inv_freq: Vec<f32> = (0..half).map(|i| 1.0 / base.powf((2 * i) as f32 / rot_dim as f32)).collect();
    let mut cos = Vec::with_capacity(n_pos * half);
    let mut sin = Vec::with_capacity(n_pos * half);
    for p in 0..n_pos {
        for &f in &inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}

impl Recorder<'_> {
    /// x `[batch * pos, n_heads * d_head]` rotated with tables `[pos, rot_dim / 2]` -> same shape.
    #[track_caller]
    pub fn rotary(&mut self, x: &GpuTensor, cos: &GpuTensor, sin: &GpuTensor, n_heads: usize, d_head: usize, rot_dim: usize) -> GpuTensor {
        let width = n_heads * d_head;
        assert!(width > 0 && x.len().is_multiple_of(width), "rotary: x {:?} is not [rows, {width}]", x.shape);
        assert!(rot_dim.is_multiple_of(2) && rot_dim <= d_head, "rotary: rot_dim {rot_dim} must be even and <= d_head {d_head}");
        let half = rot_dim / 2;
        assert!(half > 0 && cos.len().is_multiple_of(half) && cos.len() == sin.len(), "rotary: tables {:?} / {:?} are not [pos, {half}]", cos.shape, sin.shape);
        let pos = cos.len() / half;
        assert!(pos > 0 && (x.len() / width).is_multiple_of(pos), "rotary: {} rows do not split into sequences of {pos}", x.len() / width);
        let y = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(
            ROTARY,
            &[n as u32, width as u32, pos as u32, d_head as u32, rot_dim as u32],
            &[&x.buffer, &cos.buffer, &sin.buffer],
            &[&y.buffer],
            grid,
        );
        y
    }
}

/// CPU reference. x `[rows, n_heads * d_head]` (rows = batch * pos), tables `[pos, rot_dim/2]`.
pub fn rotary_cpu(x: &[f32], cos: &[f32], sin: &[f32], n_heads: usize, d_head: usize, rot_dim: usize) -> Vec<f32> {
    let width = n_heads * d_head;
    let half = rot_dim / 2;
    let pos = cos.len() / half.max(1);
    let mut y = x.to_vec();
    for (r, row) in x.chunks_exact(width).enumerate() {
        let t = (r % pos) * half;
        for h in 0..n_heads {
            let o = r * width + h * d_head;
            let xh = &row[h * d_head..(h + 1) * d_head];
            for e in 0..half {
                y[o + e] = xh[e] * cos[t + e] - xh[e + half] * sin[t + e];
                y[o + e + half] = xh[e + half] * cos[t + e] + xh[e] * sin[t + e];
            }
        }
    }
    y
}
