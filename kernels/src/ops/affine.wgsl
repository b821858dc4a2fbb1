// affine.wgsl: elementwise x * mul + add, all three the same shape.
//
//   out[i] = x[i] * mul[i] + add[i]        x, mul, add, out: [n]
//
// Used for interventions at a hook, with masks built on the host: zero (mul 0, add 0),
// replace by v (mul 0, add v), add v (mul 1, add v), scale by s (mul s, add 0), and any mix of
// those per element. Where mul == 0 the result is exactly add (select, not arithmetic): 0 * inf
// is NaN, and zeroing or replacing a masked -inf attention score must give a number.
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits (bounds check for n not
// a multiple of WG and for the spare workgroups of the 2D grid). No workgroup memory, no barriers.
// The multiply and add are written as two operations; a driver may still fuse them (FMA).

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [n]
@group(0) @binding(2) var<storage, read> mul: array<f32>;        // [n]
@group(0) @binding(3) var<storage, read> add_: array<f32>;       // [n]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [n]

@compute @workgroup_size(256, 1, 1)
fn affine(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    out[i] = select(x[i] * mul[i] + add_[i], add_[i], mul[i] == 0.0);
}
