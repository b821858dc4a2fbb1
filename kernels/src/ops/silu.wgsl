// silu.wgsl: SiLU (swish), elementwise: y = x / (1 + exp(-x)) = x * sigmoid(x)
// (the activation of Llama-family gated MLPs: hook_post = silu(hook_pre) * hook_pre_linear).
//
// exp(-x) overflows to +inf for x < ~-88: then y = x / inf = -0.0, the right limit. For x > ~88,
// exp(-x) = 0 and y = x. One invocation per element; 1D dispatch split into a 2D grid past 65535
// workgroups: i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits. No barriers.

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

@compute @workgroup_size(256, 1, 1)
fn silu(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    y[i] = v / (1.0 + exp(-v));
}
