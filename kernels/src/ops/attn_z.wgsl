// attn_z.wgsl: attention-weighted sum of values, all heads, heads laid out side by side.
//
//   pattern: [batch, n_heads, pos, pos]       (rows: query i, columns: key j)
//   v:       [batch * pos, n_kv_heads * d_head] (value head g at columns g*d_head ..; query head h
//            reads g = h / (n_heads / n_kv_heads), grouped-query attention)
//   z:       [batch * pos, n_heads * d_head]   z[b*pos + i, h*d_head + e] = sum_{j < pos} pattern[b, h, i, j] * v[b*pos + j, g*d_head + e]
//   The batch is implicit: workgroup z runs over batch * n_heads (b = z / n_heads, h = z % n_heads).
//
// The sum runs over ALL keys j, not just j <= i: a patched pattern may put weight above the
// diagonal, and the causal zeros add exactly 0. (TransformerLens sums over all keys as well.)
//
// Tiling: one workgroup of 16 x 16 invocations per 16 x 16 block of one head's z_h [pos, d_head]:
// query rows i0 = wid.y * 16 .., head-dim columns e0 = wid.x * 16 .., (batch, head) = wid.z.
// Invocation (tx, ty) computes z[i0 + ty, h*d_head + e0 + tx]. The key axis is walked in steps
// of 16: each step stages ps = pattern[h, i0.., j0..] and vs = v[j0.., h*d_head + e0..]
// (loads outside pos / d_head store 0.0), barrier, 16 products, barrier (before the next step
// overwrites the tiles). Loop trip counts depend only on uniforms: barriers in uniform control flow.
// Bounds on the store: i >= pos or e >= d_head skipped, so pos and d_head need not be multiples of 16.

struct Params {
    pos: u32,
    n_heads: u32,
    d_head: u32,
    n_kv_heads: u32, // value heads (grouped-query attention; = n_heads without grouping)
}

const T: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pattern: array<f32>;  // [batch, n_heads, pos, pos]
@group(0) @binding(2) var<storage, read> v: array<f32>;        // [batch * pos, n_kv_heads * d_head]
@group(0) @binding(3) var<storage, read_write> z: array<f32>;  // [batch * pos, n_heads * d_head]

var<workgroup> ps: array<f32, 256>; // [16 query rows][16 keys]
var<workgroup> vs: array<f32, 256>; // [16 keys][16 e]

@compute @workgroup_size(16, 16, 1)
fn attn_z(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let h = wid.z % p.n_heads;
    let row0 = (wid.z / p.n_heads) * p.pos; // first row of this sequence in v and z
    let i0 = wid.y * T;
    let e0 = wid.x * T;
    let tx = lid.x;
    let ty = lid.y;
    let i = i0 + ty;
    let e = e0 + tx;
    let stride = p.n_heads * p.d_head;
    let vstride = p.n_kv_heads * p.d_head;
    let g = h / (p.n_heads / p.n_kv_heads);

    var acc = 0.0;
    let n_steps = (p.pos + T - 1u) / T;
    for (var t = 0u; t < n_steps; t = t + 1u) {
        let j0 = t * T;
        // ps[ty][tx] = pattern[h, i0 + ty, j0 + tx]
        var pv = 0.0;
        if (i < p.pos && j0 + tx < p.pos) {
            pv = pattern[(wid.z * p.pos + i) * p.pos + j0 + tx];
        }
        ps[ty * T + tx] = pv;
        // vs[ty][tx] = v[j0 + ty, h*d_head + e0 + tx]
        var vv = 0.0;
        if (j0 + ty < p.pos && e < p.d_head) {
            vv = v[(row0 + j0 + ty) * vstride + g * p.d_head + e];
        }
        vs[ty * T + tx] = vv;
        workgroupBarrier();
        for (var jj = 0u; jj < T; jj = jj + 1u) {
            acc = acc + ps[ty * T + jj] * vs[jj * T + tx];
        }
        workgroupBarrier();
    }

    if (i < p.pos && e < p.d_head) {
        z[(row0 + i) * stride + h * p.d_head + e] = acc;
    }
}
