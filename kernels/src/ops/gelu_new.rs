//! `gelu_new`: GPT-2's activation, the tanh approximation of GELU, elementwise.
//!
//! x `[..]` -> y `[..]` (same shape): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
//!
//! Not: the exact erf GELU (`gelu`), not `gelu_fast` (same formula, different constant folding),
//! not SiLU. The tanh argument is clamped to [-15, 15] (no effect in f32, avoids driver NaNs).

use crate::context::KernelId;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("gelu_new.wgsl");

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn gelu_new(&mut self, x: &GpuTensor) -> GpuTensor {
        let y = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(
            KernelId::GeluNew,
            &[n as u32],
            &[&x.buffer],
            &[&y.buffer],
            grid,
        );
        y
    }
}

/// CPU reference, elementwise over any shape.
pub fn gelu_new_cpu(x: &[f32]) -> Vec<f32> {
    let c = (2.0f32 / std::f32::consts::PI).sqrt();
    x.iter()
        .map(|&v| {
            let u = (c * (v + 0.044715 * v * v * v)).clamp(-15.0, 15.0);
            0.5 * v * (1.0 + u.tanh())
        })
        .collect()
}
