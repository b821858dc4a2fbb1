// softmax.wgsl: numerically stable softmax over the last axis.
//
//   x, y: [rows, cols]     y[r, c] = exp(x[r, c] - max_r) / sum_c' exp(x[r, c'] - max_r)
//
// Masked entries: any x <= MASKED (-1e38), in particular the -inf that attn_scores writes above
// the diagonal, is treated as exp(-inf) = 0 explicitly, with no exp() of an infinity and no
// inf - inf. This does not rely on the driver's inf handling (WGSL lets implementations assume
// no infinities at runtime). max_r is taken over the unmasked entries only; a row with no
// unmasked entry (never produced by a causal mask) gives all zeros instead of NaN.
//
// One workgroup (WG = 256 invocations) per row, three strided passes over the row
// (c = lid.x, lid.x + WG, ...; `c < cols` is the bounds check, any cols works): max, sum of
// exps, then write. Each pass ends in a tree reduction in workgroup memory (see `reduce`).
//
// Dispatch: `rows` workgroups, split into a 2D grid past 65535: row = wid.y * num_workgroups.x +
// wid.x; rows >= p.rows exit at once. That return depends only on workgroup_id / num_workgroups
// / uniforms, so it is uniform per workgroup and all barriers stay in uniform control flow.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;
// At or below: masked (-inf). Also the identity of the row max: every unmasked entry is larger.
// (Not -3.40282347e38: Tint rejects that literal, whose exact value lies just past f32's range.)
const MASKED: f32 = -1.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [rows, cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [rows, cols]

var<workgroup> red: array<f32, 256>;

// Tree reduction over the workgroup; is_max selects max or sum (a uniform argument).
// Barrier before the tree: all partials are stored. Barrier per step: step s reads what step
// 2s wrote. Barrier after reading red[0]: nobody overwrites red before everyone has read it.
fn reduce(v: f32, i: u32, is_max: bool) -> f32 {
    red[i] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (i < s) {
            if (is_max) {
                red[i] = max(red[i], red[i + s]);
            } else {
                red[i] = red[i] + red[i + s];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256, 1, 1)
fn softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) {
        return; // uniform per workgroup (see header)
    }
    let base = row * p.cols;
    let i = lid.x;

    var m = MASKED;
    for (var c = i; c < p.cols; c = c + WG) {
        let v = x[base + c];
        if (v > MASKED) {
            m = max(m, v);
        }
    }
    let row_max = reduce(m, i, true);

    var s = 0.0;
    for (var c = i; c < p.cols; c = c + WG) {
        let v = x[base + c];
        if (v > MASKED) {
            s = s + exp(v - row_max);
        }
    }
    let total = reduce(s, i, false);

    for (var c = i; c < p.cols; c = c + WG) {
        let v = x[base + c];
        var e = 0.0;
        if (v > MASKED) {
            e = exp(v - row_max) / total;
        }
        y[base + c] = e;
    }
}
