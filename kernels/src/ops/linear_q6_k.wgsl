// linear_q6_k.wgsl: y = x @ W + bias with W read from GGUF Q6_K super-blocks and dequantized
// on the fly (llama.cpp keeps output / embedding matrices of Q4_K_M files in Q6_K).
//
//   x [m, k] f32 (k % 256 == 0); wq: the GGUF bytes of W_t [n, k] (n rows of k/256 blocks of
//   210 bytes, packed little-endian into u32 words; blocks are not word-aligned, so every field
//   is read by byte offset); bias [n] optional; y [m, n] = x @ W_t^T (+ bias).
//
// Q6_K block (ggml-common.h): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8), d (f16)
// at byte 208. Value e: half h = e / 128, w = e % 128, quarter t = w / 32, l = w % 32;
//   low 4 bits  = ql[64h + l + 32 (t % 2)] >> (4 (t / 2)) & 15
//   high 2 bits = qh[32h + l] >> (2t) & 3
//   W = d * scales[8h + l / 16 + 2t] * (q - 32)     (the CPU reference's order of operations)
//
// One invocation per output element (WG = 64, 1D over m * n, 2D grid past 65535 workgroups);
// the sum runs over k in order. No workgroup memory.

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
@group(0) @binding(2) var<storage, read> wq: array<u32>;       // GGUF Q6_K blocks
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n], or a placeholder
// {OUTPUTS: linear_epilogue.rs renders these kernels again with its own outputs and store_y here}
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [m, n]

// Every store of y goes through here.
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
}
// {END OUTPUTS}

fn byte_at(b: u32) -> u32 {
    return (wq[b / 4u] >> ((b % 4u) * 8u)) & 0xffu;
}

@compute @workgroup_size(64, 1, 1)
fn linear_q6_k(
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
        let base = (c * nb + b) * 210u;
        let d = unpack2x16float(byte_at(base + 208u) | (byte_at(base + 209u) << 8u)).x;
        for (var e = 0u; e < 256u; e = e + 1u) {
            let h = e / 128u;
            let w = e % 128u;
            let t = w / 32u;
            let l = w % 32u;
            let lo = (byte_at(base + 64u * h + l + 32u * (t % 2u)) >> (4u * (t / 2u))) & 15u;
            let hi = (byte_at(base + 128u + 32u * h + l) >> (2u * t)) & 3u;
            let q = i32(lo | (hi << 4u)) - 32;
            let sc = f32(bitcast<i32>(byte_at(base + 192u + 8u * h + l / 16u + 2u * t) << 24u) >> 24u);
            acc = acc + x[r * p.k + b * 256u + e] * (d * sc * f32(q));
        }
    }
    if (p.has_bias != 0u) {
        acc = acc + bias[c];
    }
    store_y(idx, acc);
}
