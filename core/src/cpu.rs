//! The CPU backend, on candle-core tensors: the fallback when WebGPU is missing and the
//! reference the GPU backend is tested against.
//!
//! Every op is plain candle tensor algebra, so the same forward pass also trains (candle
//! records the graph for backprop when the weights are `Var`s; see the CLI's `train`). The
//! exceptions, in inference only: `gelu_new`, SiLU and softmax are custom ops on four lanes
//! ([`elementwise`]), as candle's call libm's scalar `tanhf` and `expf` once per element (a
//! tenth of a 256-token GPT-2-small forward pass natively, a quarter of the English model's in
//! the browser), and attention's scale and causal mask are one pass; while training they are
//! candle's own, which candle can differentiate.
//! In the browser the linear weights are also packed once at load for our own matmul
//! ([`matmul`], [`CpuMatrix::Packed`]): `gemm`, which candle calls, re-packs them on every call.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Shape, Tensor, D};

pub mod elementwise;
pub mod matmul;

use elementwise::contiguous_f32;

use std::sync::Arc;

use crate::backend::Backend;
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole};
use crate::Result;

#[derive(Clone, Debug, Default)]
pub struct CpuBackend;

/// A weight matrix on the CPU backend: a candle tensor, or, for `x W` in the browser, the same
/// `[k, n]` packed once for [`matmul::PackedMatrix::matmul`].
#[derive(Clone, Debug)]
pub enum CpuMatrix {
    Dense(Tensor),
    Packed(Arc<matmul::PackedMatrix>),
}

/// Whether [`CpuBackend::upload_matrix`] packs linear weights: in the browser, where our
/// simd128 matmul on packed weights beats `gemm`; natively `gemm`'s AVX2/AVX-512 kernels win.
pub const PACKS_LINEAR_WEIGHTS: bool = cfg!(target_arch = "wasm32");

impl CpuMatrix {
    /// This matrix packed (a `[k, n]` tensor packed; a packed one as it is).
    pub fn to_packed(&self) -> Result<CpuMatrix> {
        Ok(match self {
            CpuMatrix::Dense(t) => {
                let (k, n) = t.dims2()?;
                CpuMatrix::Packed(Arc::new(matmul::PackedMatrix::pack(k, n, &t.flatten_all()?.to_vec1::<f32>()?)))
            }
            CpuMatrix::Packed(p) => CpuMatrix::Packed(p.clone()),
        })
    }
}

/// [`matmul::PackedMatrix::matmul`] as a candle op on x `[.., k]` (forward only); as a binary
/// op, with the bias `[n]` added in the matmul's store.
struct PackedLinear<'a>(&'a matmul::PackedMatrix);

impl PackedLinear<'_> {
    fn forward(&self, x: &[f32], dims: &[usize], bias: Option<&[f32]>) -> candle_core::Result<(CpuStorage, Shape)> {
        let (k, n) = self.0.dims();
        let mut dims = dims.to_vec();
        match dims.last_mut() {
            Some(last) if *last == k => *last = n,
            _ => candle_core::bail!("packed_linear: x {dims:?} times W [{k}, {n}]"),
        }
        if bias.is_some_and(|b| b.len() != n) {
            candle_core::bail!("packed_linear: a bias of {} values for W [{k}, {n}]", bias.map_or(0, <[f32]>::len))
        }
        let m = x.len() / k.max(1);
        let mut y = vec![0f32; m * n];
        self.0.matmul_bias(m, x, bias, &mut y);
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }
}

impl CustomOp1 for PackedLinear<'_> {
    fn name(&self) -> &'static str {
        "packed_linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward(contiguous_f32("packed_linear", storage, layout)?, layout.dims(), None)
    }
}

impl CustomOp2 for PackedLinear<'_> {
    fn name(&self) -> &'static str {
        "packed_linear_bias"
    }

    fn cpu_fwd(&self, x: &CpuStorage, x_layout: &Layout, b: &CpuStorage, b_layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let bias = contiguous_f32("packed_linear_bias", b, b_layout)?;
        self.forward(contiguous_f32("packed_linear_bias", x, x_layout)?, x_layout.dims(), Some(bias))
    }
}

impl CpuBackend {
    pub fn new() -> CpuBackend {
        CpuBackend
    }

    /// Repeats each of `n_kv_heads` heads of x `[batch, n_kv_heads, pos, d_head]` so that query
    /// head h finds key head h / (n_heads / n_kv_heads) at index h: `[batch, n_heads, pos, d_head]`.
    fn repeat_kv(x: Tensor, n_heads: usize, n_kv_heads: usize) -> Result<Tensor> {
        if n_heads == n_kv_heads {
            return Ok(x);
        }
        let (b, kv, pos, dh) = x.dims4()?;
        let group = n_heads / n_kv_heads;
        Ok(x.unsqueeze(2)?.broadcast_as((b, kv, group, pos, dh))?.contiguous()?.reshape((b, n_heads, pos, dh))?)
    }

    /// Raw scores q.k `[batch, heads, q, k]` -> q.k / sqrt(d_head), -inf for keys past each
    /// query (query i sits at key position `k - q + i`). While training, candle's ops (the
    /// graph is recorded); else one pass ([`elementwise::ScaleCausal`]) instead of a divide, a
    /// mask, a tensor of -inf and a select.
    fn scale_causal(qk: Tensor, d_head: usize) -> Result<Tensor> {
        let (.., n_q, n_k) = qk.dims4()?;
        if !qk.track_op() && qk.dtype() == DType::F32 {
            return Ok(qk.contiguous()?.apply_op1_no_bwd(&elementwise::ScaleCausal { d_head })?);
        }
        let scores = (qk / (d_head as f64).sqrt())?;
        let offset = n_k - n_q;
        let m: Vec<u8> = (0..n_q * n_k).map(|x| u8::from(x % n_k <= offset + x / n_k)).collect();
        let mask = Tensor::from_vec(m, (n_q, n_k), &Device::Cpu)?.broadcast_as(scores.shape())?;
        let neg_inf = Tensor::full(f32::NEG_INFINITY, scores.shape(), &Device::Cpu)?;
        Ok(mask.where_cond(&scores, &neg_inf)?)
    }
}

impl Backend for CpuBackend {
    type Tensor = Tensor;
    type Matrix = CpuMatrix;

    fn name(&self) -> String {
        "CPU".into()
    }

    fn upload(&self, t: &HostTensor) -> Result<Tensor> {
        Ok(Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?)
    }

    /// The CPU keeps every matrix in f32: quantized blocks are dequantized here, which makes
    /// this path the f32 reference for a quantized model. In the browser linear weights are
    /// packed for our own matmul ([`PACKS_LINEAR_WEIGHTS`]).
    fn upload_matrix(&self, m: &HostMatrix, role: MatrixRole) -> Result<CpuMatrix> {
        let dense = match m {
            HostMatrix::Dense(t) => std::borrow::Cow::Borrowed(t),
            HostMatrix::Quant(_) => std::borrow::Cow::Owned(m.dense(role)?),
        };
        if PACKS_LINEAR_WEIGHTS && role == MatrixRole::Linear && dense.shape.len() == 2 {
            let (k, n) = (dense.shape[0], dense.shape[1]);
            return Ok(CpuMatrix::Packed(Arc::new(matmul::PackedMatrix::pack(k, n, &dense.data))));
        }
        Ok(CpuMatrix::Dense(self.upload(&dense)?))
    }

    fn embed(&self, tokens: &[u32], w_e: &CpuMatrix) -> Result<Tensor> {
        match w_e {
            CpuMatrix::Dense(w_e) => {
                let ids = Tensor::from_slice(tokens, tokens.len(), &Device::Cpu)?;
                Ok(w_e.index_select(&ids, 0)?)
            }
            CpuMatrix::Packed(w_e) => {
                let (vocab, d) = w_e.dims();
                let mut rows = Vec::with_capacity(tokens.len() * d);
                for &t in tokens {
                    if t as usize >= vocab {
                        return Err(crate::Error::Request(format!("token id {t} is outside the embedding's {vocab} rows")));
                    }
                    rows.extend(w_e.row(t as usize));
                }
                Ok(Tensor::from_vec(rows, (tokens.len(), d), &Device::Cpu)?)
            }
        }
    }

    fn pos_embed(&self, n_batch: usize, n_pos: usize, w_pos: &Tensor) -> Result<Tensor> {
        let rows = w_pos.narrow(0, 0, n_pos)?;
        Ok(if n_batch == 1 { rows } else { rows.repeat((n_batch, 1))? })
    }

    fn layer_norm(&self, x: &Tensor, eps: f32) -> Result<(Tensor, Tensor)> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let scale = (centred.sqr()?.mean_keepdim(D::Minus1)? + eps as f64)?.sqrt()?; // [rows, 1]
        Ok((scale.clone(), centred.broadcast_div(&scale)?))
    }

    fn rms_norm(&self, x: &Tensor, eps: f32) -> Result<(Tensor, Tensor)> {
        let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + eps as f64)?.sqrt()?; // [rows, 1]
        Ok((scale.clone(), x.broadcast_div(&scale)?))
    }

    fn scale_shift(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        let y = x.broadcast_mul(w)?;
        Ok(match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    fn linear(&self, x: &Tensor, w: &CpuMatrix, b: Option<&Tensor>) -> Result<Tensor> {
        Ok(match (w, b) {
            (CpuMatrix::Packed(w), None) => x.contiguous()?.apply_op1_no_bwd(&PackedLinear(w))?,
            (CpuMatrix::Packed(w), Some(b)) => x.contiguous()?.apply_op2_no_bwd(&b.contiguous()?, &PackedLinear(w))?,
            (CpuMatrix::Dense(w), None) => x.matmul(w)?,
            (CpuMatrix::Dense(w), Some(b)) => x.matmul(w)?.broadcast_add(b)?,
        })
    }

    fn gelu_new(&self, x: &Tensor) -> Result<Tensor> {
        // candle's `gelu` is exactly this tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
        // and differentiable: training (a graph being recorded) uses it.
        if x.track_op() || x.dtype() != DType::F32 {
            return Ok(x.gelu()?);
        }
        Ok(x.contiguous()?.apply_op1_no_bwd(&elementwise::GeluNew)?)
    }

    fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.gelu_erf()?)
    }

    fn silu(&self, x: &Tensor) -> Result<Tensor> {
        if x.track_op() || x.dtype() != DType::F32 {
            return Ok(x.silu()?);
        }
        Ok(x.contiguous()?.apply_op1_no_bwd(&elementwise::Silu)?)
    }

    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok((a * b)?)
    }

    fn rotary_tables(&self, n_pos: usize, rot_dim: usize, base: f32) -> Result<(Tensor, Tensor)> {
        let (cos, sin) = glassbox_kernels::cpu::rotary_tables(n_pos, rot_dim, base);
        let shape = (n_pos, rot_dim / 2);
        Ok((Tensor::from_vec(cos, shape, &Device::Cpu)?, Tensor::from_vec(sin, shape, &Device::Cpu)?))
    }

    fn rotary(&self, x: &Tensor, tables: &(Tensor, Tensor), n_heads: usize, d_head: usize, rot_dim: usize) -> Result<Tensor> {
        let (n_pos, half) = tables.0.dims2()?;
        let n_batch = x.dim(0)? / n_pos;
        let x4 = x.reshape((n_batch, n_pos, n_heads, d_head))?;
        // cos, sin [pos, half] -> [1, pos, 1, half], broadcast over batch and heads.
        let (cos, sin) = (tables.0.reshape((1, n_pos, 1, half))?, tables.1.reshape((1, n_pos, 1, half))?);
        let (x1, x2) = (x4.narrow(3, 0, half)?, x4.narrow(3, half, half)?);
        let y1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
        let y2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
        let mut parts = vec![y1, y2];
        if rot_dim < d_head {
            parts.push(x4.narrow(3, rot_dim, d_head - rot_dim)?);
        }
        Ok(Tensor::cat(&parts, 3)?.reshape(x.shape())?)
    }

    fn attn_scores(&self, q: &Tensor, k: &Tensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Tensor> {
        let n_pos = q.dim(0)? / n_batch;
        // [batch * pos, heads * d_head] -> [batch, heads, pos, d_head]
        let heads = |x: &Tensor, h: usize| x.reshape((n_batch, n_pos, h, d_head))?.transpose(1, 2)?.contiguous();
        let (q, k) = (heads(q, n_heads)?, Self::repeat_kv(heads(k, n_kv_heads)?, n_heads, n_kv_heads)?);
        let scores = Self::scale_causal(q.matmul(&k.t()?)?, d_head)?; // [batch, n_heads, q, k]

        // One sequence keeps TransformerLens's unbatched [n_heads, q, k].
        Ok(if n_batch == 1 { scores.squeeze(0)? } else { scores })
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        if x.track_op() || x.dtype() != DType::F32 {
            let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
            return Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?);
        }
        Ok(x.contiguous()?.apply_op1_no_bwd(&elementwise::Softmax)?)
    }

    fn attn_z(&self, pattern: &Tensor, v: &Tensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Tensor> {
        let n_pos = v.dim(0)? / n_batch;
        let v = v.reshape((n_batch, n_pos, n_kv_heads, d_head))?.transpose(1, 2)?.contiguous()?; // [batch, n_kv_heads, pos, d_head]
        let v = Self::repeat_kv(v, n_heads, n_kv_heads)?; // [batch, n_heads, pos, d_head]
        let pattern = pattern.reshape((n_batch, n_heads, n_pos, n_pos))?;
        let z = pattern.contiguous()?.matmul(&v)?; // [batch, n_heads, q, d_head]
        Ok(z.transpose(1, 2)?.contiguous()?.reshape((n_batch * n_pos, n_heads * d_head))?)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok((a + b)?)
    }

    fn affine(&self, x: &Tensor, mul: &Tensor, add: &Tensor) -> Result<Tensor> {
        // The masks come in the hook's TransformerLens shape ([pos, head, d_head] for q, k, v,
        // z), which is x's internal [pos, head * d_head] in the same memory order.
        let (mul, add) = (&mul.reshape(x.shape())?, &add.reshape(x.shape())?);
        let y = (x * mul)?.add(add)?;
        // Where mul == 0 the result is exactly `add`, even where x is -inf (a masked score).
        let keep = mul.ne(0f32)?;
        Ok(keep.where_cond(&y, add)?)
    }

    fn pos_embed_at(&self, offset: usize, n_pos: usize, w_pos: &Tensor) -> Result<Tensor> {
        Ok(w_pos.narrow(0, offset, n_pos)?)
    }

    fn concat_rows(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(Tensor::cat(&[a, b], 0)?)
    }

    fn attn_scores_cached(&self, q: &Tensor, k: &Tensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Tensor> {
        let (n_q, n_k) = (q.dim(0)?, k.dim(0)?);
        // [pos, heads * d_head] -> [1, heads, pos, d_head]
        let heads = |x: &Tensor, n: usize, h: usize| x.reshape((1, n, h, d_head))?.transpose(1, 2)?.contiguous();
        let (q, k) = (heads(q, n_q, n_heads)?, Self::repeat_kv(heads(k, n_k, n_kv_heads)?, n_heads, n_kv_heads)?);
        // [n_heads, q, k]; query i sits at position n_k - n_q + i and sees the keys up to it.
        Ok(Self::scale_causal(q.matmul(&k.t()?)?, d_head)?.squeeze(0)?)
    }

    fn attn_z_cached(&self, pattern: &Tensor, v: &Tensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Tensor> {
        let n_k = v.dim(0)?;
        let v = v.reshape((1, n_k, n_kv_heads, d_head))?.transpose(1, 2)?.contiguous()?; // [1, n_kv_heads, k, d_head]
        let v = Self::repeat_kv(v, n_heads, n_kv_heads)?.squeeze(0)?; // [n_heads, k, d_head]
        let n_q = pattern.elem_count() / (n_heads * n_k);
        let z = pattern.reshape((n_heads, n_q, n_k))?.contiguous()?.matmul(&v)?; // [n_heads, q, d_head]
        Ok(z.transpose(0, 1)?.contiguous()?.reshape((n_q, n_heads * d_head))?)
    }

    async fn read(&self, tensors: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        tensors.iter().map(|t| Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)).collect()
    }
}
