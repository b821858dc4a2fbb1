// scale_shift.wgsl: LayerNorm's weight and bias, after hook_normalized.
//
//   out[i] = x[i] * w[i % d] + b[i % d]        x, out: [rows, d]; w, b: [d]
//   (without a bias, has_bias == 0: out[i] = x[i] * w[i % d]; RMSNorm's weight)
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits (bounds check for n not
// a multiple of WG and for the spare workgroups of the 2D grid). No workgroup memory, no barriers.

struct Params {
    n: u32,
    d: u32,
    has_bias: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [rows, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;          // [d]
@group(0) @binding(3) var<storage, read> b: array<f32>;          // [d], or a placeholder when has_bias == 0
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [rows, d]

@compute @workgroup_size(256, 1, 1)
fn scale_shift(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    let c = i % p.d;
    var y = x[i] * w[c];
    if (p.has_bias != 0u) {
        y = y + b[c];
    }
    out[i] = y;
}
