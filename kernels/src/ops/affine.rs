//! `affine`: elementwise `x * mul + add`, all three with the same number of elements.
//!
//! x `[..]`, mul `[..]`, add `[..]` -> `[..]` (x's shape). This is how interventions are applied
//! at a hook: the host builds `mul` / `add` masks (zero: 0/0, replace by v: 0/v, add v: 1/v,
//! scale by s: s/0, per element, so a single position or head can be targeted).
//!
//! Where `mul == 0` the result is exactly `add`: 0 * inf is NaN, and zeroing or replacing a
//! masked -inf attention score must give a number. Not: broadcasting, not in place (the
//! hook's original tensor stays readable).

use crate::context::KernelId;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("affine.wgsl");

impl Recorder<'_> {
    /// x `[..]` * mul `[..]` + add `[..]` -> `[..]`. Panics if the element counts differ.
    pub fn affine(&mut self, x: &GpuTensor, mul: &GpuTensor, add: &GpuTensor) -> GpuTensor {
        assert_eq!(
            x.len(),
            mul.len(),
            "affine: x {:?} and mul {:?} differ in size",
            x.shape,
            mul.shape
        );
        assert_eq!(
            x.len(),
            add.len(),
            "affine: x {:?} and add {:?} differ in size",
            x.shape,
            add.shape
        );
        let out = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(
            KernelId::Affine,
            &[n as u32],
            &[&x.buffer, &mul.buffer, &add.buffer],
            &[&out.buffer],
            grid,
        );
        out
    }
}

/// CPU reference.
pub fn affine_cpu(x: &[f32], mul: &[f32], add: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), mul.len());
    assert_eq!(x.len(), add.len());
    (0..x.len())
        .map(|i| {
            if mul[i] == 0.0 {
                add[i]
            } else {
                x[i] * mul[i] + add[i]
            }
        })
        .collect()
}
