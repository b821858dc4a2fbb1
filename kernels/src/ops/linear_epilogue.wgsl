// linear_epilogue.wgsl: linear.wgsl's two matmul kernels with an epilogue on the stored value:
// y = x @ w + bias as linear.wgsl computes it, and beside it y2 = epilogue(y), in one dispatch.
//
//   x [m, k], w [k, n], bias [n] (optional), resid [m, n] (epilogue 0 only; else a placeholder)
//   y  [m, n]: y[r, c] = sum_{j < k} x[r, j] * w[j, c]  (+ bias[c])          (the hook: mlp.hook_pre, hook_attn_out, hook_mlp_out)
//   y2 [m, n]: epilogue 0: resid[r, c] + y[r, c]   (the residual stream: resid_mid, resid_post)
//              epilogue 1: gelu_new(y[r, c])        (mlp.hook_post)
//              epilogue 2: gelu(y[r, c])            (exact erf GELU, GPT-NeoX)
//              epilogue 3: silu(y[r, c])
//
// The matmul loops, tiles, bounds checks and the order of every sum are linear.wgsl's, verbatim
// (see its header for the layout and the barriers); only the stores differ (store_row /
// store_col4 write both y and y2). The activations are the elementwise ops' own WGSL helpers
// (gelu_new.rs, gelu.rs, prepended when this module is rendered) and silu.rs's expression, and
// the residual sum is add.rs's `a + b`, so y2 equals the unfused op applied to y.
// `epilogue` is a uniform: the switch is uniform control flow.
//
// Bindings: uniform, x, w, bias, resid, then the outputs y, y2 (6 storage buffers).

struct Params {
    m: u32,
    k: u32,
    n: u32,
    has_bias: u32,
    epilogue: u32, // 0: resid + y, 1: gelu_new, 2: gelu, 3: silu
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u; // 16 x 16

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [m, k]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [k, n]
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n], or a placeholder when has_bias == 0
@group(0) @binding(4) var<storage, read> resid: array<f32>;    // [m, n] (epilogue 0), or a placeholder
@group(0) @binding(5) var<storage, read_write> y: array<f32>;  // [m, n]
@group(0) @binding(6) var<storage, read_write> y2: array<f32>; // [m, n]

// Writes y[idx] = s and y2[idx] = epilogue(s).
fn store_both(idx: u32, s: f32) {
    y[idx] = s;
    var e = s;
    switch p.epilogue {
        case 0u: { e = resid[idx] + s; }
        case 1u: { e = gelu_new_of(s); }
        case 2u: { e = gelu_of(s); }
        default: { e = s / (1.0 + exp(-s)); }
    }
    y2[idx] = e;
}

var<workgroup> xs: array<f32, 1024>; // TILE_K * TILE_M, [kk][r]
var<workgroup> ws: array<f32, 1024>; // TILE_K * TILE_N, [kk][c]

// Stores one row of an invocation's register block: columns c0, c0+16, c0+32, c0+48.
fn store_row(r: u32, c0: u32, v: vec4<f32>) {
    if (r >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let c = c0 + j * 16u;
        if (c < p.n) {
            var s = v[j];
            if (p.has_bias != 0u) {
                s = s + bias[c];
            }
            store_both(r * p.n + c, s);
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn linear_epilogue(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;
    let tid = lid.y * 16u + lid.x; // 0..256
    let tr = lid.y * 4u;           // first of this invocation's 4 rows within the tile
    let tc = lid.x;                // first of its 4 columns (tc, tc+16, tc+32, tc+48)

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    let n_steps = (p.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < n_steps; t = t + 1u) {
        let k0 = t * TILE_K;
        // Stage both tiles: element e = tid + l * 256 of each 1024-element tile.
        for (var l = 0u; l < 4u; l = l + 1u) {
            let e = tid + l * THREADS;
            // x tile: 16 consecutive invocations read 16 consecutive k of one row of x.
            let xr = e / TILE_K;
            let xk = e % TILE_K;
            let gr = row0 + xr;
            let gk = k0 + xk;
            var xv = 0.0;
            if (gr < p.m && gk < p.k) {
                xv = x[gr * p.k + gk];
            }
            xs[xk * TILE_M + xr] = xv;
            // w tile: 64 consecutive invocations read 64 consecutive columns of one row of w.
            let wk = e / TILE_N;
            let wc = e % TILE_N;
            let gk2 = k0 + wk;
            let gc = col0 + wc;
            var wv = 0.0;
            if (gk2 < p.k && gc < p.n) {
                wv = w[gk2 * p.n + gc];
            }
            ws[wk * TILE_N + wc] = wv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk = kk + 1u) {
            let xo = kk * TILE_M + tr;
            let wo = kk * TILE_N + tc;
            let a = vec4<f32>(xs[xo], xs[xo + 1u], xs[xo + 2u], xs[xo + 3u]);
            let bv = vec4<f32>(ws[wo], ws[wo + 16u], ws[wo + 32u], ws[wo + 48u]);
            acc0 = acc0 + a.x * bv;
            acc1 = acc1 + a.y * bv;
            acc2 = acc2 + a.z * bv;
            acc3 = acc3 + a.w * bv;
        }
        workgroupBarrier();
    }

    store_row(row0 + tr + 0u, col0 + tc, acc0);
    store_row(row0 + tr + 1u, col0 + tc, acc1);
    store_row(row0 + tr + 2u, col0 + tc, acc2);
    store_row(row0 + tr + 3u, col0 + tc, acc3);
}

// ---------------------------------------------------------------------------------------------
// linear_rows_epilogue: linear.wgsl's linear_rows (see its header).

const ROWS_R: u32 = 8u;       // rows per workgroup (uniform across it)
const COLS_PER_WG: u32 = 256u; // 64 invocations x 4 columns, strided by 64

// x[r, j], or 0.0 past the last row. r is workgroup-uniform, so this branch is uniform.
fn x_or_zero(r: u32, j: u32) -> f32 {
    if (r < p.m) {
        return x[r * p.k + j];
    }
    return 0.0;
}

// w[j, c], or 0.0 past the last column.
fn w_or_zero(j: u32, c: u32) -> f32 {
    if (c < p.n) {
        return w[j * p.n + c];
    }
    return 0.0;
}

// Stores 4 rows (r, r+1, r+2, r+3) of column c, adding the bias; skips what is out of bounds.
fn store_col4(r: u32, c: u32, v: vec4<f32>) {
    if (c >= p.n) {
        return;
    }
    var b = 0.0;
    if (p.has_bias != 0u) {
        b = bias[c];
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r + i < p.m) {
            store_both((r + i) * p.n + c, v[i] + b);
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn linear_rows_epilogue(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let r0 = wid.x * ROWS_R;
    let cb = wid.y * COLS_PER_WG + lid.x;
    // acc<q><h>: column cb + 64*q, rows r0 + 4*h .. r0 + 4*h + 4 (one vec4 = 4 rows).
    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    for (var j = 0u; j < p.k; j = j + 1u) {
        let a0 = vec4<f32>(x_or_zero(r0, j), x_or_zero(r0 + 1u, j), x_or_zero(r0 + 2u, j), x_or_zero(r0 + 3u, j));
        let a1 = vec4<f32>(x_or_zero(r0 + 4u, j), x_or_zero(r0 + 5u, j), x_or_zero(r0 + 6u, j), x_or_zero(r0 + 7u, j));
        let b0 = w_or_zero(j, cb);
        let b1 = w_or_zero(j, cb + 64u);
        let b2 = w_or_zero(j, cb + 128u);
        let b3 = w_or_zero(j, cb + 192u);
        acc00 = acc00 + a0 * b0;
        acc01 = acc01 + a1 * b0;
        acc10 = acc10 + a0 * b1;
        acc11 = acc11 + a1 * b1;
        acc20 = acc20 + a0 * b2;
        acc21 = acc21 + a1 * b2;
        acc30 = acc30 + a0 * b3;
        acc31 = acc31 + a1 * b3;
    }
    store_col4(r0, cb, acc00);
    store_col4(r0 + 4u, cb, acc01);
    store_col4(r0, cb + 64u, acc10);
    store_col4(r0 + 4u, cb + 64u, acc11);
    store_col4(r0, cb + 128u, acc20);
    store_col4(r0 + 4u, cb + 128u, acc21);
    store_col4(r0, cb + 192u, acc30);
    store_col4(r0 + 4u, cb + 192u, acc31);
}
