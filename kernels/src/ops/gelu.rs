//! `gelu`: the exact (erf) GELU, elementwise: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))).
//! GPT-NeoX's (Pythia's) activation. Not GPT-2's tanh form (`gelu_new`).
//!
//! The kernel evaluates erfc with a Chebyshev fit (fractional error < 1.2e-7); the CPU reference
//! uses the same formula, and `tests` compare both against libm-quality erf values.

use crate::context::KernelId;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

pub(crate) const WGSL: &str = include_str!("gelu.wgsl");

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn gelu(&mut self, x: &GpuTensor) -> GpuTensor {
        let y = self.output(&x.shape);
        let n = x.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        self.dispatch(KernelId::Gelu, &[n as u32], &[&x.buffer], &[&y.buffer], grid);
        y
    }
}

/// erfc(z) for z >= 0 (Numerical Recipes' erfcc, as in gelu.wgsl).
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7 + t * (0.374_091_96 + t * (0.096_784_18 + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_203_9 + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * poly.exp()
}

/// CPU reference, elementwise over any shape.
pub fn gelu_cpu(x: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            let half_erfc = 0.5 * erfc_pos(v.abs() * std::f32::consts::FRAC_1_SQRT_2);
            v * if v < 0.0 { half_erfc } else { 1.0 - half_erfc }
        })
        .collect()
}
