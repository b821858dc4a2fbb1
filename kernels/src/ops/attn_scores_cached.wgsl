// attn_scores_cached.wgsl: attention scores of new queries against cached keys (incremental
// decoding with a KV cache), every head, one sequence.
//
//   q: [n_q, n_heads * d_head]     the new positions offset .. offset + n_q (head h at columns h*d_head ..)
//   k: [n_k, n_kv_heads * d_head]  every key so far, positions 0 .. n_k (offset = n_k - n_q);
//      query head h reads key head g = h / (n_heads / n_kv_heads) (grouped-query attention)
//   scores: [n_heads, n_q, n_k]    scores[h, i, j] = (q_h[i] . k_g[j]) / attn_scale   for j <= offset + i
//                                                  = -inf                            for j >  offset + i
//   attn_scale = sqrt(d_head) (passed from the host; TransformerLens divides by it).
//   With offset = 0 and n_q = n_k this is attn_scores.wgsl for one sequence.
//
// Tiling as attn_scores.wgsl: one workgroup of 16 x 16 invocations per 16 x 16 block of one
// head's score matrix: query rows i0 = wid.y * 16 .., key columns j0 = wid.x * 16 .., head =
// wid.z. The d_head axis is walked in steps of 16, staging qs and ks (zeros outside n_q, n_k or
// d_head), with a barrier before and after the 16 products. ks rows are padded to 17 floats.
//
// Whole blocks above the shifted diagonal (j0 > i0 + 15 + offset: every j > offset + every i)
// only write -inf and return before any barrier; the test depends only on workgroup_id, so it is
// uniform and the barriers below stay in uniform control flow.
//
// -inf: the host passes the bit pattern 0xff800000 in the uniform (Tint rejects a constant
// infinity). Bounds on the store: i >= n_q or j >= n_k are skipped.

struct Params {
    n_q: u32,
    n_k: u32,
    n_heads: u32,
    d_head: u32,
    neg_inf_bits: u32, // 0xff800000u, the bits of -inf
    attn_scale: f32,   // sqrt(d_head)
    n_kv_heads: u32,   // key heads (grouped-query attention; = n_heads without grouping)
    offset: u32,       // n_k - n_q: the absolute position of query 0
}

const T: u32 = 16u;   // tile edge
const KS_STRIDE: u32 = 17u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;            // [n_q, n_heads * d_head]
@group(0) @binding(2) var<storage, read> k: array<f32>;            // [n_k, n_kv_heads * d_head]
@group(0) @binding(3) var<storage, read_write> scores: array<f32>; // [n_heads, n_q, n_k]

var<workgroup> qs: array<f32, 256>; // [16 query rows][16 e]
var<workgroup> ks: array<f32, 272>; // [16 key rows][17] (16 e + 1 pad)

@compute @workgroup_size(16, 16, 1)
fn attn_scores_cached(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let h = wid.z;
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let tx = lid.x;
    let ty = lid.y;
    let i = i0 + ty;        // query row of this invocation's output (position offset + i)
    let j = j0 + tx;        // key position
    let stride = p.n_heads * p.d_head;
    let kstride = p.n_kv_heads * p.d_head;
    let g = h / (p.n_heads / p.n_kv_heads);
    let out_idx = (h * p.n_q + i) * p.n_k + j;
    let neg_inf = bitcast<f32>(p.neg_inf_bits);

    if (j0 > i0 + T - 1u + p.offset) {
        // Entire block is above the shifted diagonal (uniform branch: depends on wid only).
        if (i < p.n_q && j < p.n_k) {
            scores[out_idx] = neg_inf;
        }
        return;
    }

    var acc = 0.0;
    let n_steps = (p.d_head + T - 1u) / T;
    for (var t = 0u; t < n_steps; t = t + 1u) {
        let e = t * T + tx; // the head-dim index this invocation stages
        var qv = 0.0;
        if (i < p.n_q && e < p.d_head) {
            qv = q[i * stride + h * p.d_head + e];
        }
        qs[ty * T + tx] = qv;
        let jr = j0 + ty;
        var kv = 0.0;
        if (jr < p.n_k && e < p.d_head) {
            kv = k[jr * kstride + g * p.d_head + e];
        }
        ks[ty * KS_STRIDE + tx] = kv;
        workgroupBarrier();
        for (var ee = 0u; ee < T; ee = ee + 1u) {
            acc = acc + qs[ty * T + ee] * ks[tx * KS_STRIDE + ee];
        }
        workgroupBarrier();
    }

    if (i < p.n_q && j < p.n_k) {
        var s = acc / p.attn_scale;
        if (j > p.offset + i) {
            s = neg_inf;
        }
        scores[out_idx] = s;
    }
}
