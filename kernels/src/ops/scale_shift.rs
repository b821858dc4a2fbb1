//! `scale_shift`: LayerNorm's weight and bias, applied after `hook_normalized`.
//!
//! x `[rows, d]` (any leading shape), w `[d]`, b `[d]` -> out `[rows, d]` = x * w + b, with w and
//! b broadcast over the rows. Without b (RMSNorm has none): out = x * w. Not: a general broadcast (only over the last axis), not in place.

use crate::ops::KernelDef;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("scale_shift.wgsl");
pub(crate) const SCALE_SHIFT: KernelDef = KernelDef::new("scale_shift", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[SCALE_SHIFT];

impl Recorder<'_> {
    /// x `[.., d]` * w `[d]` + b `[d]` -> `[.., d]`.
    pub fn scale_shift(&mut self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>) -> GpuTensor {
        let d = x.last_dim();
        assert_eq!(
            w.len(),
            d,
            "scale_shift: w has {} values, x's last axis is {d}",
            w.len()
        );
        if let Some(b) = b {
            assert_eq!(b.len(), d, "scale_shift: b has {} values, x's last axis is {d}", b.len());
        }
        let out = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        let dummy = self.ctx.dummy.clone();
        self.dispatch(
            SCALE_SHIFT,
            &[n as u32, d as u32, u32::from(b.is_some())],
            &[&x.buffer, &w.buffer, b.map_or(&dummy, |b| &*b.buffer)],
            &[&out.buffer],
            grid,
        );
        out
    }
}

/// CPU reference. x `[rows, d]`, w `[d]`, b `[d]` (optional) -> `[rows, d]`.
pub fn scale_shift_cpu(x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let d = w.len();
    x.iter()
        .enumerate()
        .map(|(i, v)| match b {
            Some(b) => v * w[i % d] + b[i % d],
            None => v * w[i % d],
        })
        .collect()
}
