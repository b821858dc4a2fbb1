//! `gelu_new`: GPT-2's activation, the tanh approximation of GELU, elementwise.
//!
//! x `[..]` -> y `[..]` (same shape): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
//!
//! Not: the exact erf GELU (`gelu`), not `gelu_fast` (same formula, different constant folding),
//! not SiLU. The tanh argument is clamped to [-15, 15] (no effect in f32, avoids driver NaNs).

use crate::ops::elementwise::{self, Elementwise};
use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

pub(crate) const OP: Elementwise = Elementwise {
    name: "gelu_new",
    summary: "GPT-2's tanh approximation of GELU, elementwise.",
    inputs: &["x"],
    helpers: r#"const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

// 0.5 * v * (1 + tanh(sqrt(2/pi) * (v + 0.044715 * v^3))).
// The tanh argument is clamped to [-15, 15] first: some drivers implement tanh(u) as
// (e^2u - 1) / (e^2u + 1), which is inf/inf = NaN once e^2u overflows (|u| > ~44). At |u| = 15,
// tanh(u) is already +-1 in f32 (1 - tanh(15) ~ 1.9e-13 < half an ulp of 1), so the clamp does
// not change any result. (The cube also overflows to +-inf for |v| > ~7e12; the clamp maps it
// to +-15 and y = v or 0 as it should, except v * 0 = NaN only for v = -inf.)
fn gelu_new_of(v: f32) -> f32 {
    let u = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), -15.0, 15.0);
    return 0.5 * v * (1.0 + tanh(u));
}
"#,
    expr: "gelu_new_of(x)",
};

pub(crate) const KERNELS: &[KernelDef] = &[elementwise::kernel(&OP)];

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn gelu_new(&mut self, x: &GpuTensor) -> GpuTensor {
        self.elementwise(&OP, &[x])
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
