//! `add`: elementwise `a + b` of two tensors with the same number of elements
//! (residual-stream sums: embed + pos_embed, resid + attn_out, resid + mlp_out).
//!
//! a `[..]`, b `[..]` -> `[..]` (a's shape). Not: broadcasting (a bias add over rows is
//! `linear`'s job), not in place.

use crate::ops::elementwise::{self, Elementwise};
use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

pub(crate) const OP: Elementwise = Elementwise {
    name: "add",
    summary: "elementwise sum of two tensors of the same shape.",
    inputs: &["a", "b"],
    helpers: "",
    expr: "a + b",
};

pub(crate) const KERNELS: &[KernelDef] = &[elementwise::kernel(&OP)];

impl Recorder<'_> {
    /// a `[..]` + b `[..]` -> `[..]`. Panics if the element counts differ.
    pub fn add(&mut self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        self.elementwise(&OP, &[a, b])
    }
}

/// CPU reference.
pub fn add_cpu(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}
