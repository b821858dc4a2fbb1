//! `silu`: SiLU, elementwise, y = x * sigmoid(x) = x / (1 + e^-x). The gate activation of
//! Llama-family gated MLPs (TransformerLens: hook_post = silu(hook_pre) * hook_pre_linear, the
//! product being `mul`).

use crate::ops::elementwise::{self, Elementwise};
use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

/// exp(-x) overflows to +inf for x < ~-88: then y = x / inf = -0.0, the right limit. For
/// x > ~88, exp(-x) = 0 and y = x.
pub(crate) const OP: Elementwise = Elementwise {
    name: "silu",
    summary: "SiLU (swish), elementwise: y = x / (1 + exp(-x)) = x * sigmoid(x) (Llama-family gated MLPs).",
    inputs: &["x"],
    helpers: "",
    expr: "x / (1.0 + exp(-x))",
};

pub(crate) const KERNELS: &[KernelDef] = &[elementwise::kernel(&OP)];

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn silu(&mut self, x: &GpuTensor) -> GpuTensor {
        self.elementwise(&OP, &[x])
    }
}

/// CPU reference, elementwise over any shape.
pub fn silu_cpu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| v / (1.0 + (-v).exp())).collect()
}
