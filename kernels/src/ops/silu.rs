//! `silu`: SiLU, elementwise, y = x * sigmoid(x) = x / (1 + e^-x). The gate activation of
//! Llama-family gated MLPs (TransformerLens: hook_post = silu(hook_pre) * hook_pre_linear, the
//! product being `mul`).

use crate::context::KernelId;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("silu.wgsl");

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn silu(&mut self, x: &GpuTensor) -> GpuTensor {
        let y = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(KernelId::Silu, &[n as u32], &[&x.buffer], &[&y.buffer], grid);
        y
    }
}

/// CPU reference, elementwise over any shape.
pub fn silu_cpu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| v / (1.0 + (-v).exp())).collect()
}
