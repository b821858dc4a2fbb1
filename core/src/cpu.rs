//! The CPU backend, on candle-core tensors: the fallback when WebGPU is missing and the
//! reference the GPU backend is tested against.
//!
//! Every op is plain candle tensor algebra, so the same forward pass also trains (candle
//! records the graph for backprop when the weights are `Var`s; see the CLI's `train`). The one
//! exception is `gelu_new` in inference: a custom op ([`GeluNew`]) with a vectorizable tanh, as
//! candle's calls libm's scalar `tanhf` once per element (a tenth of a 256-token GPT-2-small
//! forward pass); while training it is candle's own `gelu`, which candle can differentiate.
//! In the browser the linear weights are also packed once at load for our own matmul
//! ([`matmul`], [`CpuMatrix::Packed`]): `gemm`, which candle calls, re-packs them on every call.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};

pub mod matmul;

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

/// The f32 values of a custom op's contiguous input, or an error naming the op.
fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = storage else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&all[start..end])
}

/// [`matmul::PackedMatrix::matmul`] as a candle op on x `[.., k]` (forward only).
struct PackedLinear<'a>(&'a matmul::PackedMatrix);

impl CustomOp1 for PackedLinear<'_> {
    fn name(&self) -> &'static str {
        "packed_linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("packed_linear", storage, layout)?;
        let (k, n) = self.0.dims();
        let mut dims = layout.dims().to_vec();
        match dims.last_mut() {
            Some(last) if *last == k => *last = n,
            _ => candle_core::bail!("packed_linear: x {:?} times W [{k}, {n}]", layout.dims()),
        }
        let m = x.len() / k.max(1);
        let mut y = vec![0f32; m * n];
        self.0.matmul(m, x, &mut y);
        Ok((CpuStorage::F32(y), Shape::from(dims)))
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

    /// The causal mask `[q, k]`: 1 where key k is visible from query q (k <= q).
    fn causal_mask(n_pos: usize) -> Result<Tensor> {
        let m: Vec<u8> = (0..n_pos * n_pos).map(|i| u8::from(i % n_pos <= i / n_pos)).collect();
        Ok(Tensor::from_vec(m, (n_pos, n_pos), &Device::Cpu)?)
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
        let y = match w {
            CpuMatrix::Dense(w) => x.matmul(w)?,
            CpuMatrix::Packed(w) => x.contiguous()?.apply_op1_no_bwd(&PackedLinear(w))?,
        };
        Ok(match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    fn gelu_new(&self, x: &Tensor) -> Result<Tensor> {
        // candle's `gelu` is exactly this tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
        // and differentiable: training (a graph being recorded) uses it.
        if x.track_op() || x.dtype() != DType::F32 {
            return Ok(x.gelu()?);
        }
        Ok(x.apply_op1_no_bwd(&GeluNew)?)
    }

    fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.gelu_erf()?)
    }

    fn silu(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.silu()?)
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
        let scores = (q.matmul(&k.t()?)? / (d_head as f64).sqrt())?.squeeze(0)?;
        let offset = n_k - n_q;
        let m: Vec<u8> = (0..n_q * n_k).map(|x| u8::from(x % n_k <= offset + x / n_k)).collect();
        let mask = Tensor::from_vec(m, (n_q, n_k), &Device::Cpu)?.broadcast_as(scores.shape())?;
        let neg_inf = Tensor::full(f32::NEG_INFINITY, scores.shape(), &Device::Cpu)?;
        Ok(mask.where_cond(&scores, &neg_inf)?)
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

/// tanh for f32 as a rational function (Eigen's `generic_fast_tanh_float`: odd degree-13
/// numerator over even degree-6 denominator, on [-7.9053, 7.9053] where tanh is not yet +-1 in
/// f32). Only multiplies, adds, one divide and a clamp: LLVM vectorizes a loop of it (SSE2
/// natively, simd128 in wasm). Within 5e-7 of libm's `tanhf` (4 ulp near +-1; tested below).
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = ((((((A13 * x2 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((B6 * x2 + B4) * x2 + B2) * x2 + B0;
    p / q
}

/// GPT-2's `gelu_new`, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with [`tanh_fast`],
/// over contiguous f32 tensors; split over the CPU's threads natively (rayon).
pub struct GeluNew;

impl GeluNew {
    fn apply(x: &[f32], y: &mut [f32]) {
        const C: f32 = 0.797_884_6; // sqrt(2 / pi)
        for (y, &v) in y.iter_mut().zip(x) {
            *y = 0.5 * v * (1.0 + tanh_fast(C * (v + 0.044_715 * v * v * v)));
        }
    }
}

impl CustomOp1 for GeluNew {
    fn name(&self) -> &'static str {
        "gelu_new"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("gelu_new", storage, layout)?;
        let mut y = vec![0f32; x.len()];
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            const CHUNK: usize = 16 * 1024;
            y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| Self::apply(x, y));
        }
        #[cfg(target_arch = "wasm32")]
        Self::apply(x, &mut y);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_fast_is_within_5e_7_of_libm() {
        let mut worst = 0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // [-20, 20]
            worst = worst.max((tanh_fast(x) - x.tanh()).abs());
        }
        assert!(worst < 5e-7, "max |tanh_fast - tanhf| = {worst:e}");
        assert_eq!(tanh_fast(f32::INFINITY), 1.0);
        assert_eq!(tanh_fast(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_fast(0.0), 0.0);
    }

    #[test]
    fn gelu_new_op_matches_candle_gelu() {
        let x: Vec<f32> = (0..40_001).map(|i| (i as f32 - 20_000.0) * 1e-3).collect(); // [-20, 20], more than one chunk
        let t = Tensor::from_vec(x, 40_001, &Device::Cpu).unwrap();
        let ours = CpuBackend.gelu_new(&t).unwrap().to_vec1::<f32>().unwrap();
        let candle = t.gelu().unwrap().to_vec1::<f32>().unwrap();
        let worst = ours.iter().zip(&candle).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 5e-6, "max |ours - candle| = {worst:e}");
    }
}
