//! `affine`: elementwise `x * mul + add`, all three with the same number of elements.
//!
//! x `[..]`, mul `[..]`, add `[..]` -> `[..]` (x's shape). This is how interventions are applied
//! at a hook: the host builds `mul` / `add` masks (zero: 0/0, replace by v: 0/v, add v: 1/v,
//! scale by s: s/0, per element, so a single position or head can be targeted).
//!
//! Where `mul == 0` the result is exactly `add`: 0 * inf is NaN, and zeroing or replacing a
//! masked -inf attention score must give a number. Not: broadcasting, not in place (the
//! hook's original tensor stays readable).

use crate::ops::elementwise::{self, Elementwise};
use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

/// Where mul == 0 the result is exactly add (`select`, not arithmetic). The multiply and add
/// are written as two operations; a driver may still fuse them (FMA).
pub(crate) const OP: Elementwise = Elementwise {
    name: "affine",
    summary: "elementwise x * mul + add, all three the same shape (interventions at a hook; exactly add where mul == 0).",
    inputs: &["x", "mul", "add"],
    helpers: "",
    expr: "select(x * mul + add, add, mul == 0.0)",
};

pub(crate) const KERNELS: &[KernelDef] = &[elementwise::kernel(&OP)];

impl Recorder<'_> {
    /// x `[..]` * mul `[..]` + add `[..]` -> `[..]`. Panics if the element counts differ.
    pub fn affine(&mut self, x: &GpuTensor, mul: &GpuTensor, add: &GpuTensor) -> GpuTensor {
        self.elementwise(&OP, &[x, mul, add])
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
