// attn_scores.wgsl: causal attention scores for every head.
//
//   q: [batch * pos, n_heads * d_head]  (row b*pos + p holds all heads: head h at columns h*d_head ..)
//   k: [batch * pos, n_kv_heads * d_head]; query head h reads key head g = h / (n_heads / n_kv_heads)
//      (grouped-query attention; g = h when n_kv_heads = n_heads)
//   scores: [batch, n_heads, pos, pos]     scores[b, h, i, j] = (q_bh[i] . k_bh[j]) / attn_scale   for j <= i
//                                                             = -inf                                for j >  i
//   The batch is implicit: workgroup z runs over batch * n_heads (b = z / n_heads, h = z % n_heads).
//   attn_scale = sqrt(d_head) (passed from the host; TransformerLens divides by it).
//
// Tiling: one workgroup of 16 x 16 invocations per 16 x 16 block of one head's score matrix:
// query rows i0 = wid.y * 16 .., key columns j0 = wid.x * 16 .., (batch, head) = wid.z.
// Invocation (tx, ty) computes scores[h, i0 + ty, j0 + tx]. The d_head axis is walked in steps of
// 16: each step stages qs = q_h[i0.., e0..] and ks = k_h[j0.., e0..] (16 x 16 each, loads outside
// pos or d_head store 0.0, so d_head and pos need not be multiples of 16), barrier, 16 products,
// barrier (before the next step overwrites the tiles). ks rows are padded to 17 floats so the
// column reads ks[tx * 17 + e] of neighbouring invocations hit different memory banks.
//
// Whole blocks above the diagonal (j0 > i0 + 15: every j > every i) only write -inf and
// return before any barrier; that test depends only on workgroup_id, so it is uniform and the
// barriers below stay in uniform control flow.
//
// -inf: WGSL forbids const-expressions that evaluate to infinity (Tint rejects
// bitcast<f32>(0xff800000u) with a literal argument), so the host passes the bit pattern
// 0xff800000 in the uniform and the kernel bitcasts that runtime value.
// Bounds on the store: i >= pos or j >= pos are skipped.

struct Params {
    pos: u32,
    n_heads: u32,
    d_head: u32,
    neg_inf_bits: u32, // 0xff800000u, the bits of -inf
    attn_scale: f32,   // sqrt(d_head)
    n_kv_heads: u32,   // key heads (grouped-query attention; = n_heads without grouping)
    _pad1: u32,
    _pad2: u32,
}

const T: u32 = 16u;   // tile edge
const KS_STRIDE: u32 = 17u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;            // [batch * pos, n_heads * d_head]
@group(0) @binding(2) var<storage, read> k: array<f32>;            // [batch * pos, n_kv_heads * d_head]
@group(0) @binding(3) var<storage, read_write> scores: array<f32>; // [batch, n_heads, pos, pos]

var<workgroup> qs: array<f32, 256>; // [16 query rows][16 e]
var<workgroup> ks: array<f32, 272>; // [16 key rows][17] (16 e + 1 pad)

@compute @workgroup_size(16, 16, 1)
fn attn_scores(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let h = wid.z % p.n_heads;
    let row0 = (wid.z / p.n_heads) * p.pos; // first row of this sequence in q and k
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let tx = lid.x;
    let ty = lid.y;
    let i = i0 + ty;        // query position of this invocation's output
    let j = j0 + tx;        // key position
    let stride = p.n_heads * p.d_head;
    let kstride = p.n_kv_heads * p.d_head;
    let g = h / (p.n_heads / p.n_kv_heads);
    let out_idx = (wid.z * p.pos + i) * p.pos + j;
    let neg_inf = bitcast<f32>(p.neg_inf_bits);

    if (j0 > i0 + T - 1u) {
        // Entire block is above the diagonal (uniform branch: depends on wid only).
        if (i < p.pos && j < p.pos) {
            scores[out_idx] = neg_inf;
        }
        return;
    }

    var acc = 0.0;
    let n_steps = (p.d_head + T - 1u) / T;
    for (var t = 0u; t < n_steps; t = t + 1u) {
        let e = t * T + tx; // the head-dim index this invocation stages
        // qs[ty][tx] = q[i0 + ty, h*d_head + e]
        var qv = 0.0;
        if (i < p.pos && e < p.d_head) {
            qv = q[(row0 + i) * stride + h * p.d_head + e];
        }
        qs[ty * T + tx] = qv;
        // ks[ty][tx] = k[j0 + ty, h*d_head + e]  (row ty of the key block)
        let jr = j0 + ty;
        var kv = 0.0;
        if (jr < p.pos && e < p.d_head) {
            kv = k[(row0 + jr) * kstride + g * p.d_head + e];
        }
        ks[ty * KS_STRIDE + tx] = kv;
        workgroupBarrier();
        for (var ee = 0u; ee < T; ee = ee + 1u) {
            acc = acc + qs[ty * T + ee] * ks[tx * KS_STRIDE + ee];
        }
        workgroupBarrier();
    }

    if (i < p.pos && j < p.pos) {
        var s = acc / p.attn_scale;
        if (j > i) {
            s = neg_inf;
        }
        scores[out_idx] = s;
    }
}
