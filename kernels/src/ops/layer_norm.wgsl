// layer_norm.wgsl: TransformerLens LayerNorm's normalisation over the last axis, both hooks
// written. The weight and bias come after hook_normalized, in scale_shift.wgsl.
//
//   x [rows, d], eps
//   mean[r]        = sum_c x[r, c] / d
//   scale[r]       = sqrt(sum_c (x[r, c] - mean[r])^2 / d + eps)          -> scale      [rows, 1]
//   normalized[r,c]= (x[r, c] - mean[r]) / scale[r]                        -> normalized [rows, d]
//
// One workgroup (WG = 256 invocations) per row. Each invocation strides over the row
// (c = lid.x, lid.x + WG, ...; the `c < d` loop condition is the bounds check, so any d works,
// including d < WG where some invocations hold only the identity 0.0), then a tree reduction
// in workgroup memory combines the partial sums. Two passes over the row (mean, then centred
// sum of squares) for accuracy, like the CPU reference.
//
// Dispatch: `rows` workgroups, split into a 2D grid past 65535: row = wid.y * num_workgroups.x
// + wid.x. Rows >= p.rows (spare workgroups of the 2D grid) exit at once. That early return
// depends only on workgroup_id / num_workgroups / uniforms, so it is uniform across the
// workgroup and every workgroupBarrier() below is reached by all invocations or by none.

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [rows, d]
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;     // [rows, 1]
@group(0) @binding(3) var<storage, read_write> normalized: array<f32>; // [rows, d]

var<workgroup> red: array<f32, 256>; // one partial sum per invocation

// Sums `v` over the workgroup. Must be called by every invocation (uniform control flow).
// Barrier before: all partials are stored. Barrier inside each step: step s reads what step
// 2s wrote. Barrier after reading red[0]: nobody overwrites red before all have read it.
fn workgroup_sum(v: f32, i: u32) -> f32 {
    red[i] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (i < s) {
            red[i] = red[i] + red[i + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256, 1, 1)
fn layer_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) {
        return; // uniform per workgroup (see header)
    }
    let base = row * p.d;
    let i = lid.x;
    let d_f = f32(p.d);

    // Pass 1: mean.
    var s = 0.0;
    for (var c = i; c < p.d; c = c + WG) {
        s = s + x[base + c];
    }
    let mean = workgroup_sum(s, i) / d_f;

    // Pass 2: variance of the centred values.
    var q = 0.0;
    for (var c = i; c < p.d; c = c + WG) {
        let xc = x[base + c] - mean;
        q = q + xc * xc;
    }
    let sc = sqrt(workgroup_sum(q, i) / d_f + p.eps);

    if (i == 0u) {
        scale[row] = sc;
    }
    // Pass 3: normalize.
    for (var c = i; c < p.d; c = c + WG) {
        normalized[base + c] = (x[base + c] - mean) / sc;
    }
}
