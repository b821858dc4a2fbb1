//! `linear_q4_k`: a dense layer `y = x @ W + b` whose weights stay in GGUF's Q4_K super-blocks
//! on the GPU (256 values in 144 bytes: f16 `d` and `dmin`, eight packed 6-bit scales and mins,
//! 128 bytes of nibbles) and are dequantized inside the matmul.
//!
//! x `[m, k]` f32 (k a multiple of 256), W given as GGUF stores an nn.Linear weight, `W_t [n, k]`,
//! bias `[n]` optional -> y `[m, n]`. One invocation per output, summing over k in order, like
//! the CPU reference ([`linear_q4_k_cpu`]: [`dequantize_q4_k`], then a plain matmul).
//!
//! Not: a tiled kernel (Q8_0 / Q4_0 have the fast row-block one), Q6_K and the other K-quants,
//! quantized embedding gathers of Q4_K tables (those are dequantized at upload).

use crate::ops::KernelDef;
use crate::{GpuBuffer, GpuTensor, Recorder};

const WGSL: &str = include_str!("linear_q4_k.wgsl");
pub(crate) const LINEAR_Q4_K: KernelDef = KernelDef::new("linear_q4_k", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LINEAR_Q4_K];

/// Values and bytes per Q4_K super-block.
pub const QK_K: usize = crate::QuantFormat::Q4_K.block_size();
pub const Q4_K_BLOCK_BYTES: usize = crate::QuantFormat::Q4_K.block_bytes();

impl Recorder<'_> {
    /// x `[.., k]` @ W (Q4_K blocks of `W_t [n, k]` in `w_q`) + bias `[n]` -> `[.., n]`.
    /// Panics unless k is a multiple of 256 and the sizes agree.
    #[track_caller]
    pub fn linear_q4_k(&mut self, x: &GpuTensor, w_q: &GpuBuffer, n: usize, k: usize, bias: Option<&GpuTensor>) -> GpuTensor {
        self.linear_quantized(crate::QuantFormat::Q4_K, x, w_q, n, k, bias, None).0
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    crate::format::f16_le(&b[i..])
}

/// The (6-bit scale, 6-bit min) of sub-block `j` from the 12 packed scale bytes (ggml's `get_scale_min_k4`).
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K blocks -> f32 (ggml's `dequantize_row_q4_K`; the core's GGUF reader has the same
/// function, tested bit-exact against the `gguf` package).
pub fn dequantize_q4_k(blocks: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() / Q4_K_BLOCK_BYTES * QK_K);
    for block in blocks.chunks_exact(Q4_K_BLOCK_BYTES) {
        let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
        let (scales, qs) = (&block[4..16], &block[16..]);
        for (i, q) in qs.chunks_exact(32).enumerate() {
            let (s1, m1) = scale_min_k4(2 * i, scales);
            let (s2, m2) = scale_min_k4(2 * i + 1, scales);
            let (d1, mm1, d2, mm2) = (d * s1 as f32, dmin * m1 as f32, d * s2 as f32, dmin * m2 as f32);
            out.extend(q.iter().map(|&b| d1 * (b & 0x0F) as f32 - mm1));
            out.extend(q.iter().map(|&b| d2 * (b >> 4) as f32 - mm2));
        }
    }
    out
}

/// CPU reference: dequantize `W_t [n, k]`, then `y[r, c] = sum_j x[r, j] W_t[c, j] + bias[c]`
/// summed in order.
pub fn linear_q4_k_cpu(x: &[f32], bytes: &[u8], n: usize, k: usize, bias: Option<&[f32]>) -> Vec<f32> {
    crate::ops::linear_quant::matmul_t_cpu(x, &dequantize_q4_k(bytes), bias, x.len() / k, k, n)
}
