// rotary.wgsl: rotary position embeddings (RoPE) on q or k, all heads, rotate-half convention
// (Hugging Face Llama, Qwen2, GPT-NeoX; TransformerLens hook_rot_q / hook_rot_k).
//
//   x   [rows, n_heads * d_head]  rows = batch * pos, sequence after sequence; position = row % pos
//   cos [pos, half], sin [pos, half]   half = rot_dim / 2, angle(p, i) = p * base^(-2i / rot_dim),
//                                      computed on the host in f32 as transformers does
//   y[r, h*d_head + e] =
//     x[e] * cos[p, e] - x[e + half] * sin[p, e]                    e < half
//     x[e] * cos[p, e - half] + x[e - half] * sin[p, e - half]      half <= e < rot_dim
//     x[e]                                                          e >= rot_dim (partial rotary)
//   (x[e] meaning x[r, h*d_head + e]).
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits. No barriers.

struct Params {
    n: u32,        // rows * width
    width: u32,    // n_heads * d_head
    pos: u32,      // positions per sequence
    d_head: u32,
    rot_dim: u32,  // even, <= d_head
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [rows, n_heads * d_head]
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;    // [pos, rot_dim / 2]
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;    // [pos, rot_dim / 2]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [rows, n_heads * d_head]

@compute @workgroup_size(256, 1, 1)
fn rotary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
    let e = (i % p.width) % p.d_head;
    if (e >= p.rot_dim) {
        y[i] = x[i];
        return;
    }
    let half = p.rot_dim / 2u;
    let t = ((i / p.width) % p.pos) * half; // row of the cos / sin tables
    if (e < half) {
        y[i] = x[i] * cos_t[t + e] - x[i + half] * sin_t[t + e];
    } else {
        y[i] = x[i] * cos_t[t + e - half] + x[i - half] * sin_t[t + e - half];
    }
}
