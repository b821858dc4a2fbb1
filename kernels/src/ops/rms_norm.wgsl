// rms_norm.wgsl: TransformerLens RMSNorm's normalisation over the last axis (Llama, Qwen2),
// both hooks written. The weight comes after hook_normalized, in scale_shift.wgsl (no bias).
//
//   x [rows, d], eps
//   scale[r]        = sqrt(sum_c x[r, c]^2 / d + eps)      -> scale      [rows, 1]
//   normalized[r,c] = x[r, c] / scale[r]                   -> normalized [rows, d]
//
// One workgroup (WG = 256 invocations) per row, as layer_norm.wgsl: each invocation strides over
// the row (the `c < d` loop condition is the bounds check), then a tree reduction in workgroup
// memory. Rows past 65535 spread over a 2D grid: row = wid.y * num_workgroups.x + wid.x; rows >=
// p.rows exit at once (uniform per workgroup, so every barrier is reached by all or none).

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;                // [rows, d]
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;      // [rows, 1]
@group(0) @binding(3) var<storage, read_write> normalized: array<f32>; // [rows, d]

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn rms_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) {
        return; // uniform per workgroup
    }
    let base = row * p.d;
    let i = lid.x;
    var q = 0.0;
    for (var c = i; c < p.d; c = c + WG) {
        let v = x[base + c];
        q = q + v * v;
    }
    red[i] = q;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (i < s) {
            red[i] = red[i] + red[i + s];
        }
        workgroupBarrier();
    }
    let sc = sqrt(red[0] / f32(p.d) + p.eps);
    if (i == 0u) {
        scale[row] = sc;
    }
    for (var c = i; c < p.d; c = c + WG) {
        normalized[base + c] = x[base + c] / sc;
    }
}
