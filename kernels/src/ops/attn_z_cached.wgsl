// attn_z_cached.wgsl: the attention-weighted sum of cached values for new queries (incremental
// decoding with a KV cache), every head, heads side by side, one sequence.
//
//   pattern: [n_heads, n_q, n_k]         (rows: the new queries, columns: every key so far)
//   v:       [n_k, n_kv_heads * d_head]  (value head g at columns g*d_head ..; query head h reads
//            g = h / (n_heads / n_kv_heads), grouped-query attention)
//   z:       [n_q, n_heads * d_head]     z[i, h*d_head + e] = sum_{j < n_k} pattern[h, i, j] * v[j, g*d_head + e]
//   With n_q = n_k this is attn_z.wgsl for one sequence. The sum runs over ALL keys (the masked
//   entries of the pattern are exactly 0).
//
// Tiling as attn_z.wgsl: one workgroup of 16 x 16 invocations per 16 x 16 block of one head's
// z_h [n_q, d_head]: query rows i0 = wid.y * 16 .., head-dim columns e0 = wid.x * 16 .., head =
// wid.z. The key axis is walked in steps of 16, staging ps and vs (zeros outside n_q, n_k or
// d_head), barrier, 16 products, barrier. Trip counts depend only on uniforms.

struct Params {
    n_q: u32,
    n_k: u32,
    n_heads: u32,
    d_head: u32,
    n_kv_heads: u32, // value heads (grouped-query attention; = n_heads without grouping)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const T: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pattern: array<f32>;  // [n_heads, n_q, n_k]
@group(0) @binding(2) var<storage, read> v: array<f32>;        // [n_k, n_kv_heads * d_head]
@group(0) @binding(3) var<storage, read_write> z: array<f32>;  // [n_q, n_heads * d_head]

var<workgroup> ps: array<f32, 256>; // [16 query rows][16 keys]
var<workgroup> vs: array<f32, 256>; // [16 keys][16 e]

@compute @workgroup_size(16, 16, 1)
fn attn_z_cached(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let h = wid.z;
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
    let n_steps = (p.n_k + T - 1u) / T;
    for (var t = 0u; t < n_steps; t = t + 1u) {
        let j0 = t * T;
        var pv = 0.0;
        if (i < p.n_q && j0 + tx < p.n_k) {
            pv = pattern[(h * p.n_q + i) * p.n_k + j0 + tx];
        }
        ps[ty * T + tx] = pv;
        var vv = 0.0;
        if (j0 + ty < p.n_k && e < p.d_head) {
            vv = v[(j0 + ty) * vstride + g * p.d_head + e];
        }
        vs[ty * T + tx] = vv;
        workgroupBarrier();
        for (var jj = 0u; jj < T; jj = jj + 1u) {
            acc = acc + ps[ty * T + jj] * vs[jj * T + tx];
        }
        workgroupBarrier();
    }

    if (i < p.n_q && e < p.d_head) {
        z[i * stride + h * p.d_head + e] = acc;
    }
}
