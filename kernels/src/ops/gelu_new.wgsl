// gelu_new.wgsl: GPT-2's tanh approximation of GELU, elementwise.
//
//   y[i] = 0.5 * x[i] * (1 + tanh(sqrt(2/pi) * (x[i] + 0.044715 * x[i]^3)))      x, y: [n]
//
// The tanh argument is clamped to [-15, 15] first: some drivers implement tanh(u) as
// (e^2u - 1) / (e^2u + 1), which is inf/inf = NaN once e^2u overflows (|u| > ~44). At |u| = 15,
// tanh(u) is already +-1 in f32 (1 - tanh(15) ~ 1.9e-13 < half an ulp of 1), so the clamp does
// not change any result. (The cube also overflows to +-inf for |x| > ~7e12; the clamp maps it
// to +-15 and y = x or 0 as it should, except x * 0 = NaN only for x = -inf.)
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits (bounds check for n not
// a multiple of WG and for the spare workgroups of the 2D grid). No workgroup memory, no barriers.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [n]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [n]

@compute @workgroup_size(256, 1, 1)
fn gelu_new(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    let u = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), -15.0, 15.0);
    y[i] = 0.5 * v * (1.0 + tanh(u));
}
