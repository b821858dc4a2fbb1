//! `norm_scale_shift`: LayerNorm or RMSNorm and its weight (and bias) in one dispatch:
//! `layer_norm` / `rms_norm` followed by `scale_shift`, fused.
//!
//! x `[rows, d]` (any leading shape), w `[d]`, b `[d]` (optional; RMSNorm has none), eps ->
//! * scale `[rows, 1]`      (hook_scale)
//! * normalized `[rows, d]` (hook_normalized, before the weight)
//! * out `[rows, d]` = normalized * w + b (what the next layer reads)
//!
//! The same arithmetic in the same order as the two unfused kernels, so the outputs equal
//! theirs. Not: an intervention on `normalized` (it would have to land before the weight: the
//! model then runs the two unfused ops, with the hook between them).

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("norm_scale_shift.wgsl");
pub(crate) const LAYER_NORM_SCALE_SHIFT: KernelDef = KernelDef::new("layer_norm_scale_shift", WGSL, 3, 3);
pub(crate) const RMS_NORM_SCALE_SHIFT: KernelDef = KernelDef::new("rms_norm_scale_shift", WGSL, 3, 3);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LAYER_NORM_SCALE_SHIFT, RMS_NORM_SCALE_SHIFT];

/// Which normalisation [`Recorder::norm_scale_shift`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// Centred: (x - mean) / sqrt(var + eps) (GPT-2, GPT-NeoX).
    LayerNorm,
    /// Uncentred: x / sqrt(mean(x^2) + eps) (Llama family).
    RmsNorm,
}

impl Recorder<'_> {
    /// x `[.., d]`, w `[d]`, b `[d]` or None -> (scale `[.., 1]`, normalized `[.., d]`, out `[.., d]`).
    pub fn norm_scale_shift(&mut self, kind: NormKind, x: &GpuTensor, eps: f32, w: &GpuTensor, b: Option<&GpuTensor>) -> (GpuTensor, GpuTensor, GpuTensor) {
        let d = x.last_dim();
        assert_eq!(w.len(), d, "norm_scale_shift: w has {} values, x's last axis is {d}", w.len());
        if let Some(b) = b {
            assert_eq!(b.len(), d, "norm_scale_shift: b has {} values, x's last axis is {d}", b.len());
        }
        let rows = x.len().checked_div(d).unwrap_or(0);
        let mut scale_shape = x.shape.clone();
        match scale_shape.last_mut() {
            Some(last) => *last = 1,
            None => scale_shape.push(1),
        }
        let scale = self.output(&scale_shape);
        let normalized = self.output(&x.shape);
        let out = self.output(&x.shape);
        let grid = if d == 0 { [0, 1, 1] } else { self.ctx.grid_1d(rows as u32) };
        let kernel = match kind {
            NormKind::LayerNorm => LAYER_NORM_SCALE_SHIFT,
            NormKind::RmsNorm => RMS_NORM_SCALE_SHIFT,
        };
        let dummy = self.ctx.dummy.clone();
        self.dispatch(
            kernel,
            &[rows as u32, d as u32, eps.to_bits(), u32::from(b.is_some())],
            &[&x.buffer, &w.buffer, b.map_or(&dummy, |b| &*b.buffer)],
            &[&scale.buffer, &normalized.buffer, &out.buffer],
            grid,
        );
        (scale, normalized, out)
    }
}

/// CPU reference. x `[rows, d]`, w `[d]`, b `[d]` (optional) -> (scale `[rows]`, normalized
/// `[rows, d]`, out `[rows, d]`): the unfused references composed.
pub fn norm_scale_shift_cpu(kind: NormKind, x: &[f32], eps: f32, w: &[f32], b: Option<&[f32]>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = w.len();
    let (scale, normalized) = match kind {
        NormKind::LayerNorm => super::layer_norm::layer_norm_cpu(x, d, eps),
        NormKind::RmsNorm => super::rms_norm::rms_norm_cpu(x, d, eps),
    };
    let out = super::scale_shift::scale_shift_cpu(&normalized, w, b);
    (scale, normalized, out)
}
