//! `mul`: elementwise `a * b` of two tensors with the same number of elements (a gated MLP's
//! `silu(hook_pre) * hook_pre_linear`).
//!
//! a `[..]`, b `[..]` -> `[..]` (a's shape). Not: broadcasting (a bias add over rows is
//! `linear`'s job), not in place.

use crate::context::KernelId;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("mul.wgsl");

impl Recorder<'_> {
    /// a `[..]` * b `[..]` -> `[..]`. Panics if the element counts differ.
    pub fn mul(&mut self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        assert_eq!(
            a.len(),
            b.len(),
            "mul: shapes {:?} and {:?} differ in size",
            a.shape,
            b.shape
        );
        let out = self.output(&a.shape);
        let n = a.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(
            KernelId::Mul,
            &[n as u32],
            &[&a.buffer, &b.buffer],
            &[&out.buffer],
            grid,
        );
        out
    }
}

/// CPU reference.
pub fn mul_cpu(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).collect()
}
