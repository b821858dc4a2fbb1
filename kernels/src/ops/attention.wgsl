// attention.wgsl: causal attention of one query row in one dispatch: attn_scores.wgsl,
// softmax.wgsl and attn_z.wgsl fused (or, with a KV cache, attn_scores_cached.wgsl, softmax.wgsl
// and attn_z_cached.wgsl), all three results written.
//
//   q: [batch * n_q, n_heads * d_head], k, v: [batch * n_k, n_kv_heads * d_head]
//      (query head h reads key / value head g = h / (n_heads / n_kv_heads), grouped-query)
//      Query i sits at absolute position offset + i, offset = n_k - n_q (0 without a cache,
//      where n_q = n_k = pos; one sequence with a cache).
//   scores:  [batch, n_heads, n_q, n_k]  scores[b, h, i, j] = (q_bh[i] . k_bg[j]) / attn_scale  for j <= offset + i
//                                                          = -inf                              for j >  offset + i
//   pattern: [batch, n_heads, n_q, n_k]  softmax of each scores row (-inf -> exactly 0)
//   z:       [batch * n_q, n_heads * d_head]  z[b*n_q + i, h*d_head + e] = sum_j pattern[b, h, i, j] * v[b*n_k + j, g*d_head + e]
//
// Every value equals the unfused kernels' (the model uses this only when no intervention sits
// on hook_attn_scores or hook_pattern):
// * a score is the dot product summed over e in order, then divided by attn_scale, as in
//   attn_scores.wgsl;
// * the softmax takes the max over unmasked entries (order-free), then the sum of exps exactly
//   as softmax.wgsl's 256-wide workgroup does: 256 partial sums, partial l over the columns
//   c = l, l + 256, ... in order, combined by the same tree. Here a workgroup has 64
//   invocations: invocation i keeps the partials of lanes i, i+64, i+128, i+192 and adds them as
//   the tree's first two steps would ((l_i + l_i+128) + (l_i+64 + l_i+192)), then the tree goes on
//   in workgroup memory from step 32;
// * z sums over the keys j = 0, 1, 2, ... in order, as attn_z.wgsl (which also adds the exact
//   zeros past the diagonal: adding 0 changes nothing).
//
// One workgroup (WG = 64 invocations) per (batch, head, query) row, rows = batch * n_heads * n_q:
// row r = wid.y * num_workgroups.x + wid.x (a 2D grid past 65535 workgroups); bh = r / n_q,
// query i = r % n_q. Invocation t owns the columns c = t, t + 64, ... of the row: it writes
// their scores and pattern and reads back only what it wrote itself (one invocation's own
// writes, so no barrier is needed for them). Then z: for each block of 64 keys the owners stage
// their pattern values in workgroup memory (barrier), each invocation adds the block's terms for
// its head-dim index e = t, t + 64, ... (barrier before the next block overwrites the stage).
// Any pos and d_head work (keys and head-dim indices are strided loops with bounds checks);
// the score row is not held in workgroup memory, so there is no context-length limit.
//
// Uniformity: the early return and every loop that contains a barrier depend only on
// workgroup_id / num_workgroups / uniforms (r, i, last), so all barriers are in uniform control flow.
// -inf comes in as bits through the uniform (Tint rejects an infinite const-expression).

struct Params {
    rows: u32,         // batch * n_heads * n_q
    n_q: u32,          // queries per sequence
    n_heads: u32,
    n_kv_heads: u32,
    d_head: u32,
    neg_inf_bits: u32, // 0xff800000u
    attn_scale: f32,   // sqrt(d_head)
    n_k: u32,          // keys per sequence (n_q without a KV cache)
    offset: u32,       // n_k - n_q: the absolute position of query 0
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 64u;
// As softmax.wgsl: at or below is masked; the identity of the row max.
const MASKED: f32 = -1.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;              // [batch * n_q, n_heads * d_head]
@group(0) @binding(2) var<storage, read> k: array<f32>;              // [batch * n_k, n_kv_heads * d_head]
@group(0) @binding(3) var<storage, read> v: array<f32>;              // [batch * n_k, n_kv_heads * d_head]
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;   // [batch, n_heads, n_q, n_k]
@group(0) @binding(5) var<storage, read_write> pattern: array<f32>;  // [batch, n_heads, n_q, n_k]
@group(0) @binding(6) var<storage, read_write> z: array<f32>;        // [batch * n_q, n_heads * d_head]

var<workgroup> red: array<f32, 64>;   // tree reduction
var<workgroup> stage: array<f32, 64>; // one block of pattern values (z)

// Tree reduction over the workgroup from step 32 (the 256-wide tree's steps 128 and 64 are done
// in registers); is_max selects max or sum. Called by every invocation (uniform control flow).
fn reduce(val: f32, t: u32, is_max: bool) -> f32 {
    red[t] = val;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            if (is_max) {
                red[t] = max(red[t], red[t + s]);
            } else {
                red[t] = red[t] + red[t + s];
            }
        }
        workgroupBarrier();
    }
    let out = red[0];
    workgroupBarrier();
    return out;
}

@compute @workgroup_size(64, 1, 1)
fn attention(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let r = wid.y * nwg.x + wid.x;
    if (r >= p.rows) {
        return; // uniform per workgroup (see header)
    }
    let t = lid.x;
    let bh = r / p.n_q;
    let i = r % p.n_q;                   // the query
    let last = p.offset + i;             // its absolute position: the last key it sees
    let h = bh % p.n_heads;
    let seq = bh / p.n_heads;
    let qrow0 = seq * p.n_q;             // this sequence's first row in q and z
    let krow0 = seq * p.n_k;             // and in k and v
    let g = h / (p.n_heads / p.n_kv_heads);
    let qstride = p.n_heads * p.d_head;
    let kstride = p.n_kv_heads * p.d_head;
    let qbase = (qrow0 + i) * qstride + h * p.d_head;
    let base = r * p.n_k;                // this row in scores and pattern
    let neg_inf = bitcast<f32>(p.neg_inf_bits);

    // Scores of this invocation's columns, and their max.
    var m = MASKED;
    for (var c = t; c < p.n_k; c = c + WG) {
        var s = neg_inf;
        if (c <= last) {
            let kbase = (krow0 + c) * kstride + g * p.d_head;
            var acc = 0.0;
            for (var e = 0u; e < p.d_head; e = e + 1u) {
                acc = acc + q[qbase + e] * k[kbase + e];
            }
            s = acc / p.attn_scale;
            if (s > MASKED) {
                m = max(m, s);
            }
        }
        scores[base + c] = s;
    }
    let row_max = reduce(m, t, true);

    // Sum of exps: lane (c % 256) / 64 of this invocation's four 256-wide lanes.
    var part = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var c = t; c <= last; c = c + WG) {
        let s = scores[base + c];
        if (s > MASKED) {
            let lane = (c / WG) % 4u;
            part[lane] = part[lane] + exp(s - row_max);
        }
    }
    let total = reduce((part[0] + part[2]) + (part[1] + part[3]), t, false);

    for (var c = t; c < p.n_k; c = c + WG) {
        let s = scores[base + c];
        var e = 0.0;
        if (s > MASKED) {
            e = exp(s - row_max) / total;
        }
        pattern[base + c] = e;
    }

    // z: keys 0..=last in blocks of WG (past the diagonal the pattern is exactly 0).
    let n_blocks = last / WG + 1u;
    for (var e0 = 0u; e0 < p.d_head; e0 = e0 + WG) {
        let e = e0 + t;
        var acc = 0.0;
        for (var blk = 0u; blk < n_blocks; blk = blk + 1u) {
            let j0 = blk * WG;
            var pv = 0.0;
            if (j0 + t <= last) {
                pv = pattern[base + j0 + t]; // written by this invocation above
            }
            stage[t] = pv;
            workgroupBarrier();
            if (e < p.d_head) {
                let n = min(WG, last + 1u - j0);
                for (var jj = 0u; jj < n; jj = jj + 1u) {
                    acc = acc + stage[jj] * v[(krow0 + j0 + jj) * kstride + g * p.d_head + e];
                }
            }
            workgroupBarrier();
        }
        if (e < p.d_head) {
            z[(qrow0 + i) * qstride + h * p.d_head + e] = acc;
        }
    }
}
