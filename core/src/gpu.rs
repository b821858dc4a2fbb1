//! The GPU backend: the forward pass on our WGSL kernels (`glassbox-kernels`), through wgpu
//! (WebGPU in the browser, Vulkan/Metal/DX12 natively).
//!
//! Ops only record dispatches into one command encoder; [`Backend::read`] submits the whole
//! forward pass at once and awaits one read-back (DESIGN: one submission, one read-back).
//! Interventions are uploaded as buffers before the submission, so they are in place when
//! their dispatch runs.

use std::cell::RefCell;

use glassbox_kernels::{GpuContext, GpuTensor, QuantFormat, QuantTensor, Recorder};

use crate::backend::Backend;
use crate::gguf::GgmlType;
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole};
use crate::{Error, Result};

/// A weight matrix on the GPU: dense f32 (`[in, out]`, or `[d_vocab, d_model]` for W_E), or
/// Q8_0 / Q4_0 blocks that the matmul and embedding kernels dequantize as they read.
#[derive(Clone, Debug)]
pub enum GpuMatrix {
    Dense(GpuTensor),
    Quant(QuantTensor),
}

impl GpuMatrix {
    /// Bytes on the GPU.
    pub fn n_bytes(&self) -> usize {
        match self {
            GpuMatrix::Dense(t) => 4 * t.len(),
            GpuMatrix::Quant(q) => 4 * q.buffer.len,
        }
    }
}

pub struct GpuBackend {
    ctx: &'static GpuContext,
    /// The encoder that ops record into; started lazily, submitted by `read`.
    recorder: RefCell<Option<Recorder<'static>>>,
}

impl GpuBackend {
    /// Requests a GPU adapter and device. Fails (with the reason) where there is no WebGPU.
    pub async fn new() -> Result<GpuBackend> {
        let ctx = GpuContext::new().await?;
        // The context lives as long as the page (or the process); leaking it lets recorders
        // borrow it without a self-referential struct.
        let ctx: &'static GpuContext = Box::leak(Box::new(ctx));
        Ok(GpuBackend { ctx, recorder: RefCell::new(None) })
    }

    pub fn adapter_name(&self) -> String {
        self.ctx.adapter_name()
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later run fails
    /// with a "device lost" error. Exists so that tests can check what callers do then.
    pub fn destroy_device(&self) {
        self.ctx.device().destroy();
    }

    fn record<T>(&self, f: impl FnOnce(&mut Recorder<'static>) -> T) -> T {
        let mut slot = self.recorder.borrow_mut();
        f(slot.get_or_insert_with(|| self.ctx.recorder()))
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Matrix = GpuMatrix;

    fn name(&self) -> String {
        format!("WebGPU ({})", self.ctx.adapter_name())
    }

    fn upload(&self, t: &HostTensor) -> Result<GpuTensor> {
        Ok(self.ctx.upload(&t.data, &t.shape))
    }

    /// Q8_0 and Q4_0 stay quantized (the kernels read the blocks); other formats (F16, Q4_K,
    /// Q6_K) are dequantized to f32 here, as there is no kernel for them yet.
    fn upload_matrix(&self, m: &HostMatrix, role: MatrixRole) -> Result<GpuMatrix> {
        let format = match m {
            HostMatrix::Quant(q) if q.cols % 32 == 0 => match q.ggml_type {
                GgmlType::Q8_0 => Some(QuantFormat::Q8_0),
                GgmlType::Q4_0 => Some(QuantFormat::Q4_0),
                _ => None,
            },
            _ => None,
        };
        match (m, format) {
            (HostMatrix::Quant(q), Some(format)) => Ok(GpuMatrix::Quant(self.ctx.upload_quant(format, &q.bytes, q.rows, q.cols))),
            (HostMatrix::Dense(t), _) => Ok(GpuMatrix::Dense(self.upload(t)?)),
            (_, None) => Ok(GpuMatrix::Dense(self.upload(&m.dense(role)?)?)),
        }
    }

    fn embed(&self, tokens: &[u32], w_e: &GpuMatrix) -> Result<GpuTensor> {
        let ids = self.ctx.upload_u32(tokens);
        Ok(self.record(|r| match w_e {
            GpuMatrix::Dense(t) => r.embed(&ids, tokens.len(), t),
            GpuMatrix::Quant(q) => r.embed_quant(&ids, tokens.len(), q),
        }))
    }

    fn pos_embed(&self, n_batch: usize, n_pos: usize, w_pos: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.pos_embed(n_batch, n_pos, w_pos)))
    }

    fn layer_norm(&self, x: &GpuTensor, eps: f32) -> Result<(GpuTensor, GpuTensor)> {
        Ok(self.record(|r| r.layer_norm(x, eps)))
    }

    fn rms_norm(&self, x: &GpuTensor, eps: f32) -> Result<(GpuTensor, GpuTensor)> {
        Ok(self.record(|r| r.rms_norm(x, eps)))
    }

    fn scale_shift(&self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>) -> Result<GpuTensor> {
        Ok(self.record(|r| r.scale_shift(x, w, b)))
    }

    fn linear(&self, x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>) -> Result<GpuTensor> {
        Ok(self.record(|r| match w {
            GpuMatrix::Dense(w) => r.linear(x, w, b),
            GpuMatrix::Quant(q) => r.linear_quant(x, q, b),
        }))
    }

    fn gelu(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.gelu(x)))
    }

    fn silu(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.silu(x)))
    }

    fn mul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.mul(a, b)))
    }

    fn rotary_tables(&self, n_pos: usize, rot_dim: usize, base: f32) -> Result<(GpuTensor, GpuTensor)> {
        let (cos, sin) = glassbox_kernels::cpu::rotary_tables(n_pos, rot_dim, base);
        let shape = [n_pos, rot_dim / 2];
        Ok((self.ctx.upload(&cos, &shape), self.ctx.upload(&sin, &shape)))
    }

    fn rotary(&self, x: &GpuTensor, tables: &(GpuTensor, GpuTensor), n_heads: usize, d_head: usize, rot_dim: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.rotary(x, &tables.0, &tables.1, n_heads, d_head, rot_dim)))
    }

    fn gelu_new(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.gelu_new(x)))
    }

    fn attn_scores(&self, q: &GpuTensor, k: &GpuTensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_scores(q, k, n_batch, n_heads, n_kv_heads, d_head)))
    }

    fn softmax(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.softmax(x)))
    }

    fn attn_z(&self, pattern: &GpuTensor, v: &GpuTensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_z(pattern, v, n_batch, n_heads, n_kv_heads, d_head)))
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.add(a, b)))
    }

    fn affine(&self, x: &GpuTensor, mul: &GpuTensor, add: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.affine(x, mul, add)))
    }

    async fn read(&self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        if let Some(rec) = self.recorder.borrow_mut().take() {
            rec.submit();
        }
        self.ctx.read(tensors).await.map_err(Error::from)
    }
}
