// linear_quant.wgsl: y = x @ W + bias with W read from GGUF Q8_0 / Q4_0 blocks and dequantized
// on the fly. Two entry points, identical except for how a block is decoded.
//
//   x [m, k] f32 (row-major, k % 32 == 0, bound as vec4s: k/4 per row)
//   wq: the GGUF bytes of W_t [n, k] (nn.Linear layout: n rows of k elements, each row a run of
//       k/32 blocks), packed little-endian into u32 words (the host pads the bytes to a multiple
//       of 4). Block `bi = c * (k/32) + b` holds W_t[c, 32b .. 32b+32] = W[32b .., c].
//   bias [n] (optional), y [m, n]: y[r, c] = sum_{j < k} x[r, j] * W_t[c, j]  (+ bias[c])
//
// Block formats (ggml-common.h):
//   Q8_0: 34 bytes {d: f16, qs: [i8; 32]};  W = d * qs[j]
//   Q4_0: 18 bytes {d: f16, qs: [u8; 16]};  W = d * (nibble - 8), element j < 16 is the low
//         nibble of qs[j], element j + 16 the high nibble of qs[j]
// Both sizes are even, so a block starts at byte 4 * base (bi even) or 4 * base + 2 (bi odd),
// with base = bi * 34 / 4 (Q8_0) or bi * 18 / 4 (Q4_0), rounded down. Its f16 scale is then the
// low or the high half of word `base`, and quant word i (bytes 2 + 4i .. 6 + 4i of the block) is
// word base + 1 + i (odd) or the high half of word base + i joined with the low half of word
// base + i + 1 (even). Every block lies within words base .. base + 8 (Q8_0) / base + 4 (Q4_0),
// so no read passes the end of the padded buffer.
//
// Exactness: an f16 scale times an integer of at most 8 bits has at most 19 significant bits,
// so every dequantized weight is exact in f32 (the same value as the CPU reference's). Each
// output is summed sequentially over j = 0, 1, 2, ... like linear_cpu / linear_q*_cpu, then the
// bias is added; only a driver's multiply-add fusion can make the results differ.
//
// Work split (like linear_rows in linear.wgsl; no workgroup memory, no barriers): a workgroup
// of 64 invocations computes ROWS_R = 8 rows x 256 columns of y. Invocation lid.x owns columns
// cb + {0, 64, 128, 192} (cb = wid.z * 256 + lid.x) for the workgroup's 8 rows: 32 accumulators,
// as 8 vec4 (acc<q><h> = column q, rows 4h .. 4h+4). Per group of 4 consecutive k it loads
// 4 x values of each of the 8 rows as vec4 (workgroup-uniform addresses: a broadcast), decodes 4
// weights of each of its 4 columns from one quant word, and does 128 multiply-adds (64 when the
// group's rows 4..8 all lie past m: a branch on `has_hi`, uniform across the workgroup, skips
// their loads and multiply-adds, which halves the work for m <= 4, e.g. one token at a time).
// Row groups are spread over (x, y) past 65535 workgroups: group = wid.y * num_workgroups.x +
// wid.x; a group past the last row exits at once (uniform per workgroup). Column blocks are z.
// Other rows >= m and columns >= n are clamped to the last row / column for loading (valid
// memory, no per-invocation branches in the loop) and never stored.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    has_bias: u32,
    // {EPILOGUE PARAMS}
}

const ROWS_R: u32 = 8u;        // rows per workgroup
const COLS_PER_WG: u32 = 256u; // 64 invocations x 4 columns, strided by 64

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [m, k / 4]
@group(0) @binding(2) var<storage, read> wq: array<u32>;       // GGUF blocks, packed bytes
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n], or a placeholder when has_bias == 0
// {OUTPUTS: linear_epilogue.rs renders these kernels again with its own outputs and store_y here}
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [m, n]

// Every store of y goes through here.
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
}
// {END OUTPUTS}

// The f16 scale of the block at word `base` (+2 bytes when `odd`).
fn block_scale(base: u32, odd: bool) -> f32 {
    let s = unpack2x16float(wq[base]);
    return select(s.x, s.y, odd);
}

// Quant word i of the block (its bytes 2 + 4i .. 6 + 4i), little-endian.
fn block_word(base: u32, odd: bool, i: u32) -> u32 {
    let lo = wq[base + i];
    let hi = wq[base + i + 1u];
    return select((lo >> 16u) | (hi << 16u), hi, odd);
}

// The 4 signed bytes of a Q8_0 quant word, as f32.
fn q8_values(word: u32) -> vec4<f32> {
    let v = bitcast<i32>(word);
    return vec4<f32>(
        f32((v << 24u) >> 24u),
        f32((v << 16u) >> 24u),
        f32((v << 8u) >> 24u),
        f32(v >> 24u),
    );
}

// The 4 nibbles at bit `sh` (0: low nibbles, 4: high nibbles) of the 4 bytes of a Q4_0 quant
// word, minus 8, as f32.
fn q4_values(word: u32, sh: u32) -> vec4<f32> {
    let v = word >> sh;
    return vec4<f32>(
        f32(i32(v & 15u) - 8),
        f32(i32((v >> 8u) & 15u) - 8),
        f32(i32((v >> 16u) & 15u) - 8),
        f32(i32((v >> 24u) & 15u) - 8),
    );
}

// acc[r] += t[e][r] * w[e] for e = 0, 1, 2, 3 in that order (t = x transposed: t[e] holds
// x[row r0 + r, j + e] for the 4 rows r of this accumulator).
fn fma4(acc: vec4<f32>, t: mat4x4<f32>, w: vec4<f32>) -> vec4<f32> {
    var a = acc;
    a = a + t[0] * w.x;
    a = a + t[1] * w.y;
    a = a + t[2] * w.z;
    a = a + t[3] * w.w;
    return a;
}

// Stores 4 rows (r .. r+4) of column c, adding the bias; skips what is out of bounds.
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

// vec4 offset of row r of x, clamped to the last row.
fn xrow(r: u32) -> u32 {
    return min(r, p.m - 1u) * (p.k / 4u);
}

// The first block index of (clamped) column c.
fn first_block(c: u32, nb: u32) -> u32 {
    return min(c, p.n - 1u) * nb;
}

@compute @workgroup_size(64, 1, 1)
fn linear_q8_0(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let r0 = (wid.y * nwg.x + wid.x) * ROWS_R;
    if (r0 >= p.m) {
        return;
    }
    let cb = wid.z * COLS_PER_WG + lid.x;
    let xr0 = xrow(r0); let xr1 = xrow(r0 + 1u); let xr2 = xrow(r0 + 2u); let xr3 = xrow(r0 + 3u);
    let xr4 = xrow(r0 + 4u); let xr5 = xrow(r0 + 5u); let xr6 = xrow(r0 + 6u); let xr7 = xrow(r0 + 7u);
    let nb = p.k / 32u;
    let has_hi = r0 + 4u < p.m; // rows r0+4 .. r0+8 exist (uniform: skip half the work if not)
    let f0 = first_block(cb, nb);
    let f1 = first_block(cb + 64u, nb);
    let f2 = first_block(cb + 128u, nb);
    let f3 = first_block(cb + 192u, nb);

    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    for (var b = 0u; b < nb; b = b + 1u) {
        // Block index -> (word, odd); 34 bytes per block.
        let i0 = f0 + b; let base0 = (i0 * 17u) >> 1u; let odd0 = (i0 & 1u) == 1u;
        let i1 = f1 + b; let base1 = (i1 * 17u) >> 1u; let odd1 = (i1 & 1u) == 1u;
        let i2 = f2 + b; let base2 = (i2 * 17u) >> 1u; let odd2 = (i2 & 1u) == 1u;
        let i3 = f3 + b; let base3 = (i3 * 17u) >> 1u; let odd3 = (i3 & 1u) == 1u;
        let d0 = block_scale(base0, odd0);
        let d1 = block_scale(base1, odd1);
        let d2 = block_scale(base2, odd2);
        let d3 = block_scale(base3, odd3);
        for (var i = 0u; i < 8u; i = i + 1u) {
            let xo = b * 8u + i; // vec4 index of k = 32b + 4i within a row
            let lo = transpose(mat4x4<f32>(x[xr0 + xo], x[xr1 + xo], x[xr2 + xo], x[xr3 + xo]));
            let w0 = q8_values(block_word(base0, odd0, i)) * d0;
            let w1 = q8_values(block_word(base1, odd1, i)) * d1;
            let w2 = q8_values(block_word(base2, odd2, i)) * d2;
            let w3 = q8_values(block_word(base3, odd3, i)) * d3;
            acc00 = fma4(acc00, lo, w0);
            acc10 = fma4(acc10, lo, w1);
            acc20 = fma4(acc20, lo, w2);
            acc30 = fma4(acc30, lo, w3);
            if (has_hi) {
                let hi = transpose(mat4x4<f32>(x[xr4 + xo], x[xr5 + xo], x[xr6 + xo], x[xr7 + xo]));
                acc01 = fma4(acc01, hi, w0);
                acc11 = fma4(acc11, hi, w1);
                acc21 = fma4(acc21, hi, w2);
                acc31 = fma4(acc31, hi, w3);
            }
        }
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

@compute @workgroup_size(64, 1, 1)
fn linear_q4_0(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let r0 = (wid.y * nwg.x + wid.x) * ROWS_R;
    if (r0 >= p.m) {
        return;
    }
    let cb = wid.z * COLS_PER_WG + lid.x;
    let xr0 = xrow(r0); let xr1 = xrow(r0 + 1u); let xr2 = xrow(r0 + 2u); let xr3 = xrow(r0 + 3u);
    let xr4 = xrow(r0 + 4u); let xr5 = xrow(r0 + 5u); let xr6 = xrow(r0 + 6u); let xr7 = xrow(r0 + 7u);
    let nb = p.k / 32u;
    let has_hi = r0 + 4u < p.m; // rows r0+4 .. r0+8 exist (uniform: skip half the work if not)
    let f0 = first_block(cb, nb);
    let f1 = first_block(cb + 64u, nb);
    let f2 = first_block(cb + 128u, nb);
    let f3 = first_block(cb + 192u, nb);

    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    for (var b = 0u; b < nb; b = b + 1u) {
        // Block index -> (word, odd); 18 bytes per block.
        let i0 = f0 + b; let base0 = (i0 * 9u) >> 1u; let odd0 = (i0 & 1u) == 1u;
        let i1 = f1 + b; let base1 = (i1 * 9u) >> 1u; let odd1 = (i1 & 1u) == 1u;
        let i2 = f2 + b; let base2 = (i2 * 9u) >> 1u; let odd2 = (i2 & 1u) == 1u;
        let i3 = f3 + b; let base3 = (i3 * 9u) >> 1u; let odd3 = (i3 & 1u) == 1u;
        let d0 = block_scale(base0, odd0);
        let d1 = block_scale(base1, odd1);
        let d2 = block_scale(base2, odd2);
        let d3 = block_scale(base3, odd3);
        // Elements 0..16 are the low nibbles (h = 0), 16..32 the high nibbles (h = 1).
        for (var h = 0u; h < 2u; h = h + 1u) {
            let sh = 4u * h;
            for (var i = 0u; i < 4u; i = i + 1u) {
                let xo = b * 8u + h * 4u + i; // vec4 index of k = 32b + 16h + 4i within a row
                let lo = transpose(mat4x4<f32>(x[xr0 + xo], x[xr1 + xo], x[xr2 + xo], x[xr3 + xo]));
                let w0 = q4_values(block_word(base0, odd0, i), sh) * d0;
                let w1 = q4_values(block_word(base1, odd1, i), sh) * d1;
                let w2 = q4_values(block_word(base2, odd2, i), sh) * d2;
                let w3 = q4_values(block_word(base3, odd3, i), sh) * d3;
                acc00 = fma4(acc00, lo, w0);
                acc10 = fma4(acc10, lo, w1);
                acc20 = fma4(acc20, lo, w2);
                acc30 = fma4(acc30, lo, w3);
                if (has_hi) {
                    let hi = transpose(mat4x4<f32>(x[xr4 + xo], x[xr5 + xo], x[xr6 + xo], x[xr7 + xo]));
                    acc01 = fma4(acc01, hi, w0);
                    acc11 = fma4(acc11, hi, w1);
                    acc21 = fma4(acc21, hi, w2);
                    acc31 = fma4(acc31, hi, w3);
                }
            }
        }
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
