//! `layer_norm`: TransformerLens's LayerNorm (GPT-2's ln1 / ln2 / ln_final) over the last axis.
//!
//! x `[rows, d]` (any leading shape, flattened to rows), eps ->
//! * scale `[rows, 1]` (leading shape kept, last axis 1) = sqrt(mean((x - mean)^2) + eps)  (hook_scale)
//! * normalized `[rows, d]` = (x - mean) / scale                                          (hook_normalized)
//!
//! Both outputs are written because both are hooks. The weight and bias are NOT applied here:
//! TransformerLens 3 takes `hook_normalized` before them, so they are a separate op
//! (`scale_shift`) after the hook. Not: RMSNorm, no patching of `scale` (a patched scale would
//! need a kernel that takes scale as an input).

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("layer_norm.wgsl");
pub(crate) const LAYER_NORM: KernelDef = KernelDef::new("layer_norm", WGSL, 1, 2);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LAYER_NORM];

impl Recorder<'_> {
    /// x `[.., d]` -> (scale `[.., 1]`, normalized `[.., d]`).
    pub fn layer_norm(&mut self, x: &GpuTensor, eps: f32) -> (GpuTensor, GpuTensor) {
        let d = x.last_dim();
        let rows = x.len().checked_div(d).unwrap_or(0);
        let mut scale_shape = x.shape.clone();
        if let Some(last) = scale_shape.last_mut() {
            *last = 1;
        } else {
            scale_shape.push(1);
        }
        let scale = self.output(&scale_shape);
        let normalized = self.output(&x.shape);
        let grid = if d == 0 {
            [0, 1, 1]
        } else {
            self.ctx.grid_1d(rows as u32)
        };
        self.dispatch(
            LAYER_NORM,
            &[rows as u32, d as u32, eps.to_bits()],
            &[&x.buffer],
            &[&scale.buffer, &normalized.buffer],
            grid,
        );
        (scale, normalized)
    }
}

/// CPU reference. x `[rows, d]` -> (scale `[rows]`, normalized `[rows, d]`).
pub fn layer_norm_cpu(x: &[f32], d: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len().checked_div(d).unwrap_or(0);
    let mut scale = vec![0.0; rows];
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let mut s = 0.0f32;
        for &v in row {
            s += v;
        }
        let mean = s / d as f32;
        let mut q = 0.0f32;
        for &v in row {
            q += (v - mean) * (v - mean);
        }
        let sc = (q / d as f32 + eps).sqrt();
        scale[r] = sc;
        for c in 0..d {
            out[r * d + c] = (row[c] - mean) / sc;
        }
    }
    (scale, out)
}
