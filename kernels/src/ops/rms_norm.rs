//! `rms_norm`: TransformerLens's RMSNorm (Llama-family ln1 / ln2 / ln_final) over the last axis.
//!
//! x `[rows, d]` (any leading shape), eps ->
//! * scale `[rows, 1]` = sqrt(mean(x^2) + eps)  (hook_scale)
//! * normalized `[rows, d]` = x / scale         (hook_normalized)
//!
//! The weight is applied after the hook by `scale_shift` without a bias. Not: a centred
//! variance (that is `layer_norm`).

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("rms_norm.wgsl");
pub(crate) const RMS_NORM: KernelDef = KernelDef::new("rms_norm", WGSL, 1, 2);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[RMS_NORM];

impl Recorder<'_> {
    /// x `[.., d]` -> (scale `[.., 1]`, normalized `[.., d]`).
    pub fn rms_norm(&mut self, x: &GpuTensor, eps: f32) -> (GpuTensor, GpuTensor) {
        let d = x.last_dim();
        let rows = x.len().checked_div(d).unwrap_or(0);
        let mut scale_shape = x.shape.clone();
        match scale_shape.last_mut() {
            Some(last) => *last = 1,
            None => scale_shape.push(1),
        }
        let scale = self.output(&scale_shape);
        let normalized = self.output(&x.shape);
        let grid = if d == 0 { [0, 1, 1] } else { self.ctx.grid_1d(rows as u32) };
        self.dispatch(RMS_NORM, &[rows as u32, d as u32, eps.to_bits()], &[&x.buffer], &[&scale.buffer, &normalized.buffer], grid);
        (scale, normalized)
    }
}

/// CPU reference. x `[rows, d]` -> (scale `[rows]`, normalized `[rows, d]`).
pub fn rms_norm_cpu(x: &[f32], d: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len().checked_div(d).unwrap_or(0);
    let mut scale = vec![0.0; rows];
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let q: f32 = row.iter().map(|v| v * v).sum();
        let sc = (q / d as f32 + eps).sqrt();
        scale[r] = sc;
        for c in 0..d {
            out[r * d + c] = row[c] / sc;
        }
    }
    (scale, out)
}
