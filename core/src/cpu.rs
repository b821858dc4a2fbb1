//! The CPU backend, on candle-core tensors: the fallback when WebGPU is missing and the
//! reference the GPU backend is tested against.
//!
//! Every op is plain candle tensor algebra, so the same forward pass also trains (candle
//! records the graph for backprop when the weights are `Var`s; see the CLI's `train`).

use candle_core::{DType, Device, Tensor, D};

use crate::backend::Backend;
use crate::tensor::HostTensor;
use crate::Result;

#[derive(Clone, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> CpuBackend {
        CpuBackend
    }

    /// The causal mask `[q, k]`: 1 where key k is visible from query q (k <= q).
    fn causal_mask(n_pos: usize) -> Result<Tensor> {
        let m: Vec<u8> = (0..n_pos * n_pos).map(|i| u8::from(i % n_pos <= i / n_pos)).collect();
        Ok(Tensor::from_vec(m, (n_pos, n_pos), &Device::Cpu)?)
    }
}

impl Backend for CpuBackend {
    type Tensor = Tensor;

    fn name(&self) -> String {
        "CPU".into()
    }

    fn upload(&self, t: &HostTensor) -> Result<Tensor> {
        Ok(Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?)
    }

    fn embed(&self, tokens: &[u32], w_e: &Tensor) -> Result<Tensor> {
        let ids = Tensor::from_slice(tokens, tokens.len(), &Device::Cpu)?;
        Ok(w_e.index_select(&ids, 0)?)
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

    fn scale_shift(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(w)?.broadcast_add(b)?)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        let y = x.matmul(w)?;
        Ok(match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    fn gelu_new(&self, x: &Tensor) -> Result<Tensor> {
        // candle's `gelu` is exactly this tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
        // in one vectorised pass (and differentiable, for training).
        Ok(x.gelu()?)
    }

    fn attn_scores(&self, q: &Tensor, k: &Tensor, n_batch: usize, n_heads: usize, d_head: usize) -> Result<Tensor> {
        let n_pos = q.dim(0)? / n_batch;
        // [batch * pos, n_heads * d_head] -> [batch, n_heads, pos, d_head]
        let heads = |x: &Tensor| x.reshape((n_batch, n_pos, n_heads, d_head))?.transpose(1, 2)?.contiguous();
        let (q, k) = (heads(q)?, heads(k)?);
        let scores = (q.matmul(&k.t()?)? / (d_head as f64).sqrt())?; // [batch, n_heads, q, k]
        let mask = Self::causal_mask(n_pos)?.broadcast_as(scores.shape())?;
        let neg_inf = Tensor::full(f32::NEG_INFINITY, scores.shape(), &Device::Cpu)?;
        let scores = mask.where_cond(&scores, &neg_inf)?;
        // One sequence keeps TransformerLens's unbatched [n_heads, q, k].
        Ok(if n_batch == 1 { scores.squeeze(0)? } else { scores })
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
        Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
    }

    fn attn_z(&self, pattern: &Tensor, v: &Tensor, n_batch: usize, n_heads: usize, d_head: usize) -> Result<Tensor> {
        let n_pos = v.dim(0)? / n_batch;
        let v = v.reshape((n_batch, n_pos, n_heads, d_head))?.transpose(1, 2)?.contiguous()?; // [batch, n_heads, pos, d_head]
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

    async fn read(&self, tensors: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        tensors.iter().map(|t| Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)).collect()
    }
}
