// gelu.wgsl: the exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), elementwise
// (GPT-NeoX / Pythia's "gelu"; PyTorch's default nn.GELU).
//
// WGSL has no erf. erf_approx is Abramowitz & Stegun 7.1.26 refined: erf(z) = 1 - t * exp(-z^2 +
// P(t)) with t = 1 / (1 + z/2), the Numerical Recipes "erfc" Chebyshev fit, fractional error
// below 1.2e-7 everywhere, so |gelu - exact| < ~1e-7 * |x|. Odd symmetry for negative z.
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits. No barriers.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [n]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [n]

// erfc(z) for z >= 0 (Numerical Recipes erfcc).
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(poly);
}

@compute @workgroup_size(256, 1, 1)
fn gelu(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    let z = abs(v) * 0.7071067811865476;
    // Phi(v) = 1 - erfc(z) / 2 for v >= 0, erfc(z) / 2 for v < 0.
    let half_erfc = 0.5 * erfc_pos(z);
    let phi = select(1.0 - half_erfc, half_erfc, v < 0.0);
    y[i] = v * phi;
}
