// concat_cols.wgsl: two matrices side by side along the last axis (the pieces of an
// unembedding split to respect the device's storage-binding limit are put back together).
//
//   a [rows, n_a], b [rows, n_b] -> out [rows, n_a + n_b]
//   out[r, c] = a[r, c] (c < n_a), b[r, c - n_a] (otherwise)
//
// One invocation per output element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= rows * (n_a + n_b) exits.

struct Params {
    rows: u32,
    n_a: u32,
    n_b: u32,
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [rows, n_a]
@group(0) @binding(2) var<storage, read> b: array<f32>;          // [rows, n_b]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [rows, n_a + n_b]

@compute @workgroup_size(256, 1, 1)
fn concat_cols(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    let n = p.n_a + p.n_b;
    if (i >= p.rows * n) {
        return;
    }
    let r = i / n;
    let c = i % n;
    if (c < p.n_a) {
        out[i] = a[r * p.n_a + c];
    } else {
        out[i] = b[r * p.n_b + c - p.n_a];
    }
}
