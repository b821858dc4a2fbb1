//! The GPU backend: the forward pass on our WGSL kernels (`glassbox-kernels`), through wgpu
//! (WebGPU in the browser, Vulkan/Metal/DX12 natively).
//!
//! Ops only record dispatches into one command encoder; [`Backend::read`] submits the whole
//! forward pass at once and awaits one read-back (DESIGN: one submission, one read-back).
//! Interventions are uploaded as buffers before the submission, so they are in place when
//! their dispatch runs.

use std::cell::RefCell;

use glassbox_kernels::{GpuContext, GpuTensor, Recorder};

use crate::backend::Backend;
use crate::tensor::HostTensor;
use crate::{Error, Result};

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

    fn name(&self) -> String {
        format!("WebGPU ({})", self.ctx.adapter_name())
    }

    fn upload(&self, t: &HostTensor) -> Result<GpuTensor> {
        Ok(self.ctx.upload(&t.data, &t.shape))
    }

    fn embed(&self, tokens: &[u32], w_e: &GpuTensor) -> Result<GpuTensor> {
        let ids = self.ctx.upload_u32(tokens);
        Ok(self.record(|r| r.embed(&ids, tokens.len(), w_e)))
    }

    fn pos_embed(&self, n_batch: usize, n_pos: usize, w_pos: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.pos_embed(n_batch, n_pos, w_pos)))
    }

    fn layer_norm(&self, x: &GpuTensor, eps: f32) -> Result<(GpuTensor, GpuTensor)> {
        Ok(self.record(|r| r.layer_norm(x, eps)))
    }

    fn scale_shift(&self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.scale_shift(x, w, b)))
    }

    fn linear(&self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>) -> Result<GpuTensor> {
        Ok(self.record(|r| r.linear(x, w, b)))
    }

    fn gelu_new(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.gelu_new(x)))
    }

    fn attn_scores(&self, q: &GpuTensor, k: &GpuTensor, n_batch: usize, n_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_scores(q, k, n_batch, n_heads, d_head)))
    }

    fn softmax(&self, x: &GpuTensor) -> Result<GpuTensor> {
        Ok(self.record(|r| r.softmax(x)))
    }

    fn attn_z(&self, pattern: &GpuTensor, v: &GpuTensor, n_batch: usize, n_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_z(pattern, v, n_batch, n_heads, d_head)))
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
