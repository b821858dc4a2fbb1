// linear_q4_k.wgsl: y = x @ W + bias with W read from GGUF Q4_K super-blocks and dequantized
// on the fly (the K-quant that llama.cpp's Q4_K_M files use for most matrices).
//
//   x [m, k] f32 (k % 256 == 0); wq: the GGUF bytes of W_t [n, k] (n rows of k/256 blocks of 144
//   bytes, packed little-endian into u32 words; 144 = 36 words, so every block is word-aligned);
//   bias [n] optional; y [m, n]: y[r, c] = sum_j x[r, j] * W_t[c, j] (+ bias[c]).
//
// Q4_K block (ggml-common.h): d: f16, dmin: f16 (word 0), scales[12] (words 1..3: eight 6-bit
// scales and mins, packed as get_scale_min_k4), qs[128] (words 4..35). Value e of the block:
// chunk i = e / 64, sub-block s = 2i + (e % 64 >= 32), byte qs[32i + e % 32], its low nibble for
// the first 32 values of the chunk and its high nibble for the next 32;
// W = (d * scale_s) * nibble - (dmin * min_s), the CPU reference's order of operations.
//
// Work split: one invocation per output element (WG = 64 per workgroup, 1D over m * n, split
// into a 2D grid past 65535 workgroups; indices >= m * n exit). Not tiled: simple and exact in
// its order of summation (j = 0, 1, ...), like the CPU reference. No workgroup memory.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    has_bias: u32,
    // {EPILOGUE PARAMS}
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [m, k]
@group(0) @binding(2) var<storage, read> wq: array<u32>;       // GGUF Q4_K blocks
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n], or a placeholder
// {OUTPUTS: linear_epilogue.rs renders these kernels again with its own outputs and store_y here}
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [m, n]

// Every store of y goes through here.
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
}
// {END OUTPUTS}

// Byte `i` of the 12 scale bytes of the block at word `base`.
fn scale_byte(base: u32, i: u32) -> u32 {
    return (wq[base + 1u + i / 4u] >> ((i % 4u) * 8u)) & 0xffu;
}

// (scale, min) of sub-block j (get_scale_min_k4).
fn scale_min(base: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(scale_byte(base, j) & 63u), f32(scale_byte(base, j + 4u) & 63u));
    }
    let sc = (scale_byte(base, j + 4u) & 15u) | ((scale_byte(base, j - 4u) >> 6u) << 4u);
    let mn = (scale_byte(base, j + 4u) >> 4u) | ((scale_byte(base, j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(mn));
}

@compute @workgroup_size(64, 1, 1)
fn linear_q4_k(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let idx = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (idx >= p.m * p.n) {
        return;
    }
    let r = idx / p.n;
    let c = idx % p.n;
    let nb = p.k / 256u;
    var acc = 0.0;
    for (var b = 0u; b < nb; b = b + 1u) {
        let base = (c * nb + b) * 36u;
        let dm = unpack2x16float(wq[base]);
        for (var s = 0u; s < 8u; s = s + 1u) {
            let sm = scale_min(base, s);
            let d1 = dm.x * sm.x;
            let m1 = dm.y * sm.y;
            let chunk = s / 2u;
            let shift = (s % 2u) * 4u;
            let x0 = r * p.k + b * 256u + s * 32u;
            for (var l = 0u; l < 32u; l = l + 1u) {
                let qb = 32u * chunk + l; // byte of qs
                let q = (wq[base + 4u + qb / 4u] >> ((qb % 4u) * 8u + shift)) & 15u;
                acc = acc + x[x0 + l] * (d1 * f32(q) - m1);
            }
        }
    }
    if (p.has_bias != 0u) {
        acc = acc + bias[c];
    }
    store_y(idx, acc);
}
