//! `linear_q6_k`: a dense layer `y = x @ W + b` whose weights stay in GGUF's Q6_K super-blocks
//! on the GPU (256 values in 210 bytes: 4 low bits, 2 high bits, 16 signed 8-bit scales, an f16
//! `d`) and are dequantized inside the matmul. llama.cpp's Q4_K_M files keep their output (and
//! often embedding) matrices in Q6_K.
//!
//! x `[m, k]` f32 (k a multiple of 256), `W_t [n, k]` as GGUF stores an nn.Linear weight, bias
//! `[n]` optional -> y `[m, n]`. One invocation per output, summing over k in order, like the
//! CPU reference ([`linear_q6_k_cpu`]: [`dequantize_q6_k`], then a plain matmul).
//!
//! Not: a tiled kernel, quantized embedding gathers of Q6_K tables (dequantized at upload).

use crate::ops::KernelDef;
use crate::{GpuBuffer, GpuTensor, Recorder};

const WGSL: &str = include_str!("linear_q6_k.wgsl");
pub(crate) const LINEAR_Q6_K: KernelDef = KernelDef::new("linear_q6_k", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LINEAR_Q6_K];

/// Bytes per Q6_K super-block (of 256 values).
pub const Q6_K_BLOCK_BYTES: usize = crate::QuantFormat::Q6_K.block_bytes();

impl Recorder<'_> {
    /// x `[.., k]` @ W (Q6_K blocks of `W_t [n, k]` in `w_q`) + bias `[n]` -> `[.., n]`.
    /// Panics unless k is a multiple of 256 and the sizes agree.
    #[track_caller]
    pub fn linear_q6_k(&mut self, x: &GpuTensor, w_q: &GpuBuffer, n: usize, k: usize, bias: Option<&GpuTensor>) -> GpuTensor {
        self.linear_quantized(crate::QuantFormat::Q6_K, x, w_q, n, k, bias, None).0
    }
}

/// Q6_K blocks -> f32 (ggml's `dequantize_row_q6_K`; the core's GGUF reader has the same
/// function, tested bit-exact against the `gguf` package).
pub fn dequantize_q6_k(blocks: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0f32; blocks.len() / Q6_K_BLOCK_BYTES * 256];
    for (block, y) in blocks.chunks_exact(Q6_K_BLOCK_BYTES).zip(out.chunks_exact_mut(256)) {
        let d = crate::format::f16_le(&block[208..]);
        for half in 0..2 {
            let ql = &block[64 * half..64 * half + 64];
            let qh = &block[128 + 32 * half..128 + 32 * half + 32];
            let sc = &block[192 + 8 * half..192 + 8 * half + 8];
            let y = &mut y[128 * half..128 * half + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
    out
}

/// CPU reference: dequantize `W_t [n, k]`, then `y[r, c] = sum_j x[r, j] W_t[c, j] + bias[c]`
/// summed in order.
pub fn linear_q6_k_cpu(x: &[f32], bytes: &[u8], n: usize, k: usize, bias: Option<&[f32]>) -> Vec<f32> {
    crate::ops::linear_quant::matmul_t_cpu(x, &dequantize_q6_k(bytes), bias, x.len() / k, k, n)
}
