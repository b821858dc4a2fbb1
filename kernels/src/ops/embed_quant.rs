//! `embed_q8_0` / `embed_q4_0`: token-embedding gathers from a table that stays in GGUF's Q8_0
//! or Q4_0 blocks on the GPU (a quantized model's W_E, which is also its tied W_U).
//!
//! tokens `[n_pos]` (u32), W_E as a [`QuantTensor`] with n = d_vocab rows of k = d_model ->
//! `[n_pos, d_model]` f32. Ids outside the table give zero rows, like `embed`. Every
//! dequantized value is exact in f32: the CPU reference ([`embed_quant_cpu`]: dequantize, then
//! gather) matches bit for bit.

use crate::ops::KernelDef;
use crate::ops::linear_quant::{dequantize, QuantFormat};
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuBuffer, GpuTensor, QuantTensor, Recorder};

const WGSL: &str = include_str!("embed_quant.wgsl");
pub(crate) const EMBED_Q8_0: KernelDef = KernelDef::new("embed_q8_0", WGSL, 2, 1);
pub(crate) const EMBED_Q4_0: KernelDef = KernelDef::new("embed_q4_0", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[EMBED_Q8_0, EMBED_Q4_0];

impl Recorder<'_> {
    /// tokens `[>= n_pos]`, table: the Q8_0 / Q4_0 blocks of `W_E [n, k]` -> `[n_pos, k]`.
    pub fn embed_quant(&mut self, tokens: &GpuBuffer, n_pos: usize, table: &QuantTensor) -> GpuTensor {
        assert!(tokens.len >= n_pos, "embed_quant: {n_pos} positions but only {} tokens", tokens.len);
        let (n_rows, d_model) = (table.n, table.k);
        let out = self.output(&[n_pos, d_model]);
        let grid = self.ctx.grid_1d(groups_for(n_pos * d_model, ELEMENTWISE_WG));
        let kernel = table
            .format
            .embed_kernel()
            .unwrap_or_else(|| panic!("embed_quant: no kernel gathers from {} blocks", table.format));
        self.dispatch(kernel, &[n_pos as u32, d_model as u32, n_rows as u32], &[&tokens.buffer, &table.buffer.buffer], &[&out.buffer], grid);
        out
    }
}

/// CPU reference: dequantize the table `[n_rows, d_model]`, gather rows (zero rows for ids
/// outside it).
pub fn embed_quant_cpu(tokens: &[u32], format: QuantFormat, bytes: &[u8], n_rows: usize, d_model: usize) -> Vec<f32> {
    let table = dequantize(format, bytes);
    crate::ops::embed::embed_cpu(tokens, &table, n_rows, d_model)
}
