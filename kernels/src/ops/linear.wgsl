// linear.wgsl: y = x @ w + bias, two kernels for the same op.
//
//   x [m, k] (row-major), w [k, n] (row-major, TransformerLens's W layout), bias [n] (optional)
//   y [m, n]: y[r, c] = sum_{j < k} x[r, j] * w[j, c]  (+ bias[c] when has_bias != 0)
//
// Both kernels sum over k sequentially (j = 0, 1, 2, ...) like the CPU reference; results can
// still differ by rounding where a driver fuses multiply-adds. Both bounds-check every load and
// store, so m, k, n can be anything (m = 1, odd k and n). Both share the bindings below; the host
// picks one per call (see linear.rs):
//
// `linear` (tiled, workgroup memory; for GPUs and m >= 64)
// --------------------------------------------------------
// One workgroup of 16 x 16 invocations computes a TILE_M x TILE_N = 64 x 64 block of y whose
// top-left corner is (row0, col0) = (wid.y * 64, wid.x * 64). Each invocation owns a 4 x 4
// register block: rows row0 + ty*4 + {0,1,2,3} (contiguous) and columns
// col0 + tx + 16*{0,1,2,3} (strided by 16, so neighbouring invocations read neighbouring
// workgroup-memory words and write neighbouring global addresses).
//
// The k axis is walked in steps of TILE_K = 16. Per step the workgroup stages
//   xs: the 64 x 16 block x[row0.., k0..] stored transposed as xs[kk * 64 + r]
//   ws: the 16 x 64 block w[k0.., col0..] stored as ws[kk * 64 + c]
// (1024 floats each = 4 per invocation; 8 KiB of workgroup memory in all, under the 16 KiB
// WebGPU default). Loads outside x / w (rows >= m, columns >= n, or k indices >= k) store 0.0,
// so partial tiles need no special case in the inner loop: padded terms add 0 * 0.
//
// Barriers per k step: after staging (every tile word is written before anyone reads) and
// after the inner product (nobody overwrites the tile for the next step while another
// invocation still reads it). Loop trip counts depend only on uniforms, so the barriers are in
// uniform control flow. Stores skip rows >= m and columns >= n.
//
// `linear_rows` (row block, no workgroup memory; for small m and CPU adapters)
// ----------------------------------------------------------------------------
// One workgroup of 64 invocations computes ROWS_R = 8 rows x 256 columns of y: rows
// r0 = wid.x * 8 .. r0 + 8 (wid.x walks rows so that consecutive workgroups reuse the same
// columns of w while they are in cache), columns cb + {0, 64, 128, 192} with
// cb = wid.y * 256 + lid.x. For each j every invocation loads the same 8 values x[r0.., j]
// (workgroup-uniform addresses: a broadcast, and on CPU drivers such as lavapipe / SwiftShader a
// single scalar load instead of a gather) and its own 4 values w[j, c] (neighbouring invocations,
// neighbouring addresses). 32 multiply-adds per 12 loads, no barriers. With m = 1 this wastes at
// most 7/8 of the arithmetic, against 63/64 for the 64-row tiles above.
// Bounds: rows >= m load 0.0 (a uniform branch) and are not stored; columns >= n load 0.0 and
// are not stored.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    has_bias: u32,
    // {EPILOGUE PARAMS}
}

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u; // 16 x 16

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [m, k]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [k, n]
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n], or a placeholder when has_bias == 0
// {OUTPUTS: linear_epilogue.rs renders these kernels again with its own outputs and store_y here}
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [m, n]

// Every store of y goes through here.
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
}
// {END OUTPUTS}

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
            store_y(r * p.n + c, s);
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn linear(
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
// linear_rows: see the header.

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
            store_y((r + i) * p.n + c, v[i] + b);
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn linear_rows(
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
