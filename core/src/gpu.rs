//! The GPU backend: the forward pass on our WGSL kernels (`glassbox-kernels`), through wgpu
//! (WebGPU in the browser, Vulkan/Metal/DX12 natively).
//!
//! Ops only record dispatches into one command encoder; [`Backend::read`] submits the whole
//! forward pass at once and awaits one read-back (DESIGN: one submission, one read-back).
//! Interventions are uploaded as buffers before the submission, so they are in place when
//! their dispatch runs.

use std::cell::RefCell;
use std::sync::Arc;

use glassbox_kernels::{Epilogue, GpuAdapter, GpuContext, GpuTensor, NormKind, QuantTensor, Recorder};

use crate::backend::{unfused, Backend};
use crate::config::{ActFn, Normalization};
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole};
use crate::{Error, Result};

/// A weight matrix on the GPU: dense f32 (`[in, out]`, or `[d_vocab, d_model]` for W_E), blocks
/// that the matmul (and, for Q8_0 / Q4_0, the embedding) kernels dequantize as they read, or, for
/// a matrix larger than one storage binding may be, pieces along its output axis (a table's rows,
/// a linear layer's output columns), each starting at the given offset.
#[derive(Clone, Debug)]
pub enum GpuMatrix {
    Dense(GpuTensor),
    /// Blocks that both the linear and the embedding kernels read (Q8_0, Q4_0).
    Quant(QuantTensor),
    /// Blocks only a linear kernel reads (Q4_K, Q6_K super-blocks of a linear layer's
    /// `W_t [n, k]`, k a multiple of 256).
    KQuant(QuantTensor),
    Chunks(Vec<(usize, GpuMatrix)>),
}

impl GpuMatrix {
    /// Bytes on the GPU.
    pub fn n_bytes(&self) -> usize {
        match self {
            GpuMatrix::Dense(t) => 4 * t.len(),
            GpuMatrix::Quant(q) | GpuMatrix::KQuant(q) => 4 * q.buffer.len,
            GpuMatrix::Chunks(c) => c.iter().map(|(_, m)| m.n_bytes()).sum(),
        }
    }
}

/// Splits `n` rows of `row_bytes` each into runs of at most `limit` bytes: (start, len) pairs.
fn chunk_rows(n: usize, row_bytes: usize, limit: u64) -> Vec<(usize, usize)> {
    let per = ((limit / row_bytes.max(1) as u64) as usize).max(1);
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

/// The forward pass on the GPU. Owns its context (device, pipelines): dropping the backend and
/// every model and tensor made with it releases the device and its buffers.
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// The encoder that ops record into (holding its own reference to the context); started
    /// lazily, submitted by `read`.
    recorder: RefCell<Option<Recorder<'static>>>,
    /// A smaller storage-binding limit than the device's, for tests of split matrices.
    binding_limit: std::cell::Cell<Option<u64>>,
    /// Whether the fused steps run as one kernel each (the default) or as the ops they fuse.
    fused: std::cell::Cell<bool>,
}

impl GpuBackend {
    /// Requests a GPU adapter and device. Fails (with the reason) where there is no WebGPU.
    pub async fn new() -> Result<GpuBackend> {
        Self::with_adapter(GpuAdapter::request().await?).await
    }

    /// A device on an adapter already requested (and judged worth using: `GpuAdapter::is_software`).
    pub async fn with_adapter(adapter: GpuAdapter) -> Result<GpuBackend> {
        let ctx = Arc::new(GpuContext::with_adapter(adapter).await?);
        Ok(GpuBackend { ctx, recorder: RefCell::new(None), binding_limit: std::cell::Cell::new(None), fused: std::cell::Cell::new(true) })
    }

    /// The context (device, queue, pipelines). Dropping the backend drops its reference;
    /// `Arc::downgrade` of this tells whether anything else still holds it.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Bytes of GPU storage buffers alive in this process (weights, and tensors still held by
    /// a run): [`GpuContext::live_buffer_bytes`].
    pub fn live_buffer_bytes() -> u64 {
        GpuContext::live_buffer_bytes()
    }

    /// Compute dispatches recorded so far in this process: [`GpuContext::dispatch_count`].
    pub fn dispatch_count() -> u64 {
        GpuContext::dispatch_count()
    }

    /// Uploads later matrices as if the device bound at most `bytes` per storage buffer
    /// (`None`: the device's own limit). Exists so that tests can split small matrices.
    pub fn set_binding_limit(&self, bytes: Option<u64>) {
        self.binding_limit.set(bytes);
    }

    /// Whether the fused steps (`Backend::norm_scale_shift`, `attention`, `linear_act`,
    /// `linear_add`) run as one kernel each (`true`, the default) or as the ops they fuse, one
    /// dispatch each (`false`: what the pass recorded before they were fused; tests and
    /// `glassbox bench --unfused` compare the two).
    pub fn set_fused(&self, fused: bool) {
        self.fused.set(fused);
    }

    pub fn adapter_name(&self) -> String {
        self.ctx.adapter_name()
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later run fails
    /// with a "device lost" error. Exists so that tests can check what callers do then.
    pub fn destroy_device(&self) {
        self.ctx.device().destroy();
    }

    /// A dense matrix, in pieces when it is larger than one binding may be: a table by rows,
    /// a linear layer `[in, out]` by output columns.
    fn upload_dense(&self, t: &HostTensor, role: MatrixRole, limit: u64) -> Result<GpuMatrix> {
        if (4 * t.len()) as u64 <= limit || t.shape.len() != 2 {
            return Ok(GpuMatrix::Dense(self.upload(t)?));
        }
        let (r, c) = (t.shape[0], t.shape[1]);
        Ok(GpuMatrix::Chunks(match role {
            MatrixRole::Table => {
                chunk_rows(r, 4 * c, limit).into_iter().map(|(s, n)| (s, GpuMatrix::Dense(self.ctx.upload(&t.data[s * c..(s + n) * c], &[n, c])))).collect()
            }
            MatrixRole::Linear => {
                chunk_rows(c, 4 * r, limit).into_iter().map(|(s, n)| (s, GpuMatrix::Dense(self.ctx.upload(&t.columns(s, s + n).data, &[r, n])))).collect()
            }
        }))
    }

    fn record<T>(&self, f: impl FnOnce(&mut Recorder<'static>) -> T) -> T {
        let mut slot = self.recorder.borrow_mut();
        f(slot.get_or_insert_with(|| self.ctx.shared_recorder()))
    }

    /// `x w + b` and `epilogue` of it in one dispatch, where a kernel does both (a dense or a
    /// quantized matrix, fusion on); `None` for split matrices or with fusion off.
    fn linear_epilogue(&self, x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, epilogue: Epilogue<'_>) -> Option<(GpuTensor, GpuTensor)> {
        if !self.fused.get() {
            return None;
        }
        match w {
            GpuMatrix::Dense(w) => Some(self.record(|r| r.linear_epilogue(x, w, b, epilogue))),
            GpuMatrix::Quant(q) | GpuMatrix::KQuant(q) => Some(self.record(|r| r.linear_quant_epilogue(x, q, b, epilogue))),
            GpuMatrix::Chunks(_) => None,
        }
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

    /// Blocks stay quantized where a kernel reads them (the format says: Q8_0 and Q4_0 for
    /// tables and linear layers, Q4_K and Q6_K for linear layers); other formats (F16, a K-quant
    /// embedding table) are dequantized to f32 here. A matrix larger than the device's
    /// storage-binding limit is uploaded in pieces along its output axis.
    fn upload_matrix(&self, m: &HostMatrix, role: MatrixRole) -> Result<GpuMatrix> {
        let limit = self.binding_limit.get().unwrap_or_else(|| self.ctx.max_binding_bytes());
        let q = match m {
            HostMatrix::Dense(t) => return self.upload_dense(t, role, limit),
            HostMatrix::Quant(q) => q,
        };
        let kept = q.ggml_type.format().filter(|f| {
            q.cols.is_multiple_of(f.block_size())
                && match role {
                    MatrixRole::Table => f.has_embed_kernel(),
                    MatrixRole::Linear => f.has_linear_kernel(),
                }
        });
        let Some(format) = kept else {
            return self.upload_dense(&m.dense(role)?, role, limit);
        };
        let row_bytes = q.bytes.len() / q.rows.max(1);
        let pieces = chunk_rows(q.rows, row_bytes, limit);
        let up = |start: usize, n: usize| {
            let t = self.ctx.upload_quant(format, &q.bytes[start * row_bytes..(start + n) * row_bytes], n, q.cols);
            if format.has_embed_kernel() {
                GpuMatrix::Quant(t)
            } else {
                GpuMatrix::KQuant(t)
            }
        };
        Ok(match pieces.as_slice() {
            [(s, n)] => up(*s, *n),
            _ => GpuMatrix::Chunks(pieces.iter().map(|&(s, n)| (s, up(s, n))).collect()),
        })
    }

    fn tied_unembed(&self, w_e: &GpuMatrix) -> Option<GpuMatrix> {
        match w_e {
            GpuMatrix::Quant(_) => Some(w_e.clone()),
            // Row pieces of quantized blocks are also the output pieces of the linear layer.
            GpuMatrix::Chunks(c) if c.iter().all(|(_, m)| matches!(m, GpuMatrix::Quant(_))) => Some(w_e.clone()),
            _ => None,
        }
    }

    fn embed(&self, tokens: &[u32], w_e: &GpuMatrix) -> Result<GpuTensor> {
        match w_e {
            GpuMatrix::Dense(t) => {
                let ids = self.ctx.upload_u32(tokens);
                Ok(self.record(|r| r.embed(&ids, tokens.len(), t)))
            }
            GpuMatrix::Quant(q) => {
                let ids = self.ctx.upload_u32(tokens);
                Ok(self.record(|r| r.embed_quant(&ids, tokens.len(), q)))
            }
            GpuMatrix::KQuant(q) => {
                Err(Error::Gpu(format!("no kernel gathers embeddings from {} blocks; such tables are dequantized at upload, this one was not", q.format)))
            }
            GpuMatrix::Chunks(chunks) => {
                // Each piece gathers the tokens in its rows (ids shifted into it; the others fall
                // outside it and give zero rows), and the pieces are summed.
                let mut sum: Option<GpuTensor> = None;
                for (start, piece) in chunks {
                    let shifted: Vec<u32> = tokens.iter().map(|&t| t.checked_sub(*start as u32).unwrap_or(u32::MAX)).collect();
                    let part = self.embed(&shifted, piece)?;
                    sum = Some(match sum {
                        None => part,
                        Some(s) => self.add(&s, &part)?,
                    });
                }
                sum.ok_or_else(|| Error::Gpu("an empty embedding table".into()))
            }
        }
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
        match w {
            GpuMatrix::Dense(w) => Ok(self.record(|r| r.linear(x, w, b))),
            GpuMatrix::Quant(q) | GpuMatrix::KQuant(q) => Ok(self.record(|r| r.linear_quant(x, q, b))),
            GpuMatrix::Chunks(chunks) => {
                // Output columns piece by piece, joined side by side, then the bias.
                let mut out: Option<GpuTensor> = None;
                for (_, piece) in chunks {
                    let part = self.linear(x, piece, None)?;
                    out = Some(match out {
                        None => part,
                        Some(o) => self.record(|r| r.concat_cols(&o, &part)),
                    });
                }
                let out = out.ok_or_else(|| Error::Gpu("an empty weight matrix".into()))?;
                match b {
                    None => Ok(out),
                    Some(b) => {
                        let ones = self.ctx.upload(&vec![1.0; b.len()], &[b.len()]);
                        Ok(self.record(|r| r.scale_shift(&out, &ones, Some(b))))
                    }
                }
            }
        }
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

    fn norm_scale_shift(
        &self,
        norm: Normalization,
        x: &GpuTensor,
        eps: f32,
        w: &GpuTensor,
        b: Option<&GpuTensor>,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        if !self.fused.get() {
            return unfused::norm_scale_shift(self, norm, x, eps, w, b);
        }
        let kind = match norm {
            Normalization::LayerNorm => NormKind::LayerNorm,
            Normalization::RmsNorm => NormKind::RmsNorm,
        };
        Ok(self.record(|r| r.norm_scale_shift(kind, x, eps, w, b)))
    }

    /// One matmul that also writes the activation, for a dense or quantized matrix (split ones
    /// run the two ops).
    fn linear_act(&self, x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, act: ActFn) -> Result<(GpuTensor, GpuTensor)> {
        let epilogue = match act {
            ActFn::GeluNew => Epilogue::GeluNew,
            ActFn::Gelu => Epilogue::Gelu,
            ActFn::Silu => Epilogue::Silu,
        };
        match self.linear_epilogue(x, w, b, epilogue) {
            Some(out) => Ok(out),
            None => unfused::linear_act(self, x, w, b, act),
        }
    }

    /// One matmul that also writes the residual sum, for a dense or quantized matrix (split ones
    /// run the two ops).
    fn linear_add(&self, x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, resid: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
        match self.linear_epilogue(x, w, b, Epilogue::Add(resid)) {
            Some(out) => Ok(out),
            None => unfused::linear_add(self, x, w, b, resid),
        }
    }

    /// One matmul that also writes the gated product, for a dense or quantized matrix (split ones
    /// run the two ops).
    fn linear_mul(&self, x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, a: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
        match self.linear_epilogue(x, w, b, Epilogue::Mul(a)) {
            Some(out) => Ok(out),
            None => unfused::linear_mul(self, x, w, b, a),
        }
    }

    fn attention(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        if !self.fused.get() {
            return unfused::attention(self, q, k, v, n_batch, n_heads, n_kv_heads, d_head);
        }
        Ok(self.record(|r| r.attention(q, k, v, n_batch, n_heads, n_kv_heads, d_head)))
    }

    /// Gathers rows `offset..` of the table with the embedding kernel.
    fn pos_embed_at(&self, offset: usize, n_pos: usize, w_pos: &GpuTensor) -> Result<GpuTensor> {
        let n_ctx = w_pos.shape.first().copied().unwrap_or(0);
        if offset + n_pos > n_ctx {
            return Err(Error::Request(format!("positions up to {} exceed the model's {n_ctx}", offset + n_pos)));
        }
        let ids: Vec<u32> = (offset..offset + n_pos).map(|p| p as u32).collect();
        let ids = self.ctx.upload_u32(&ids);
        Ok(self.record(|r| r.embed(&ids, n_pos, w_pos)))
    }

    /// Both flattened to one row, joined side by side: row-major, that is `a`'s rows then `b`'s.
    fn concat_rows(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        let w = a.shape.last().copied().unwrap_or(1);
        if b.shape.last().copied().unwrap_or(1) != w {
            return Err(Error::Gpu(format!("concat_rows: {:?} and {:?} differ in width", a.shape, b.shape)));
        }
        let joined = self.record(|r| r.concat_cols(&a.reshape(&[1, a.len()]), &b.reshape(&[1, b.len()])));
        Ok(joined.reshape(&[(a.len() + b.len()) / w.max(1), w]))
    }

    fn attn_scores_cached(&self, q: &GpuTensor, k: &GpuTensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_scores_cached(q, k, n_heads, n_kv_heads, d_head)))
    }

    fn attn_z_cached(&self, pattern: &GpuTensor, v: &GpuTensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<GpuTensor> {
        Ok(self.record(|r| r.attn_z_cached(pattern, v, n_heads, n_kv_heads, d_head)))
    }

    fn attention_cached(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        if !self.fused.get() {
            return unfused::attention_cached(self, q, k, v, n_heads, n_kv_heads, d_head);
        }
        Ok(self.record(|r| r.attention_cached(q, k, v, n_heads, n_kv_heads, d_head)))
    }

    async fn read(&self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        if let Some(rec) = self.recorder.borrow_mut().take() {
            rec.submit();
        }
        self.ctx.read(tensors).await.map_err(Error::from)
    }
}
