// embed_quant.wgsl: row gathers from an embedding table kept in GGUF Q8_0 / Q4_0 blocks
// (W_E of a quantized model stays quantized on the GPU; it is also the tied unembedding).
//
//   out[p, c] = W_E[tokens[p], c]     table: GGUF blocks of W_E [n_rows, d_model], each row a run
//                                     of d_model / 32 blocks; out: [n_pos, d_model] f32
//
// Block formats and word addressing as linear_quant.wgsl: block bi starts at byte bi * 34 (Q8_0)
// or bi * 18 (Q4_0); both are even, so its f16 scale is the low or high half of word
// base = bi * bytes / 4, and byte j of its quants is byte 2 + j of the block.
//   Q8_0: W = d * i8(q[j]);   Q4_0: W = d * (nibble - 8), element j < 16 the low nibble of q[j],
//         j >= 16 the high nibble of q[j - 16].
// Every dequantized value is exact in f32, so the result equals the CPU reference bit for bit.
//
// One invocation per output element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n_pos * d_model exits. Token ids
// >= n_rows give 0.0 (like embed.wgsl). No workgroup memory, no barriers.

struct Params {
    n_pos: u32,
    d_model: u32,   // a multiple of 32
    n_rows: u32,
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;    // [n_pos]
@group(0) @binding(2) var<storage, read> wq: array<u32>;        // GGUF blocks, packed bytes
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [n_pos, d_model]

// Byte `b` (0-based, from the start of the buffer).
fn byte_at(b: u32) -> u32 {
    return (wq[b / 4u] >> ((b % 4u) * 8u)) & 0xffu;
}

// The f16 scale of the block starting at byte `start` (even).
fn scale_at(start: u32) -> f32 {
    let s = unpack2x16float(wq[start / 4u]);
    return select(s.x, s.y, (start % 4u) != 0u);
}

fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(256, 1, 1)
fn embed_q8_0(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.n_pos * p.d_model) {
        return;
    }
    let t = tokens[i / p.d_model];
    let c = i % p.d_model;
    if (t >= p.n_rows) {
        out[i] = 0.0;
        return;
    }
    let start = (t * (p.d_model / 32u) + c / 32u) * 34u;
    let q = byte_at(start + 2u + c % 32u);
    let v = bitcast<i32>(q << 24u) >> 24u; // sign-extend the byte
    out[i] = scale_at(start) * f32(v);
}

@compute @workgroup_size(256, 1, 1)
fn embed_q4_0(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.n_pos * p.d_model) {
        return;
    }
    let t = tokens[i / p.d_model];
    let c = i % p.d_model;
    if (t >= p.n_rows) {
        out[i] = 0.0;
        return;
    }
    let start = (t * (p.d_model / 32u) + c / 32u) * 18u;
    let j = c % 32u;
    let q = byte_at(start + 2u + j % 16u);
    let nib = select(q & 0xfu, q >> 4u, j >= 16u);
    out[i] = scale_at(start) * (f32(nib) - 8.0);
}
