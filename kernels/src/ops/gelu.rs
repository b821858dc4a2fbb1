//! `gelu`: the exact (erf) GELU, elementwise: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))).
//! GPT-NeoX's (Pythia's) activation. Not GPT-2's tanh form (`gelu_new`).
//!
//! The kernel evaluates erfc with a Chebyshev fit (fractional error < 1.2e-7); the CPU reference
//! uses the same formula (`OP.helpers`), and `tests` compare both against libm-quality erf values.

use crate::ops::elementwise::{self, Elementwise};
use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

/// WGSL has no erf. `erfc_pos` is Abramowitz & Stegun 7.1.26 refined: erf(z) = 1 - t * exp(-z^2 +
/// P(t)) with t = 1 / (1 + z/2), the Numerical Recipes "erfc" Chebyshev fit, fractional error
/// below 1.2e-7 everywhere, so |gelu - exact| < ~1e-7 * |x|. Odd symmetry for negative z.
pub(crate) const OP: Elementwise = Elementwise {
    name: "gelu",
    summary: "the exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), elementwise (GPT-NeoX / Pythia's \"gelu\").",
    inputs: &["x"],
    helpers: r#"// erfc(z) for z >= 0 (Numerical Recipes erfcc).
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(poly);
}

// v * Phi(v), Phi(v) = 1 - erfc(z) / 2 for v >= 0, erfc(z) / 2 for v < 0 (z = |v| / sqrt(2)).
fn gelu_of(v: f32) -> f32 {
    let half_erfc = 0.5 * erfc_pos(abs(v) * 0.7071067811865476);
    return v * select(1.0 - half_erfc, half_erfc, v < 0.0);
}
"#,
    expr: "gelu_of(x)",
};

pub(crate) const KERNELS: &[KernelDef] = &[elementwise::kernel(&OP)];

impl Recorder<'_> {
    /// x `[..]` -> `[..]`.
    pub fn gelu(&mut self, x: &GpuTensor) -> GpuTensor {
        self.elementwise(&OP, &[x])
    }
}

/// erfc(z) for z >= 0 (Numerical Recipes' erfcc, as in `OP.helpers`; the same literals).
#[allow(clippy::excessive_precision)]
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_9
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
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
