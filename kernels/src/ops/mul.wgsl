// mul.wgsl: elementwise product of two tensors of the same shape (a gated MLP's
// silu(gate) * up, TransformerLens hook_post).
//
//   out[i] = a[i] * b[i]        a, b, out: [n]
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

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [n]
@group(0) @binding(2) var<storage, read> b: array<f32>;          // [n]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [n]

@compute @workgroup_size(256, 1, 1)
fn mul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    out[i] = a[i] * b[i];
}
