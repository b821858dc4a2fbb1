//! The CPU path's transcendental elementwise steps on four lanes at a time: `gelu_new` (a
//! rational tanh), SiLU and softmax (`exp`). candle computes these with libm's scalar `tanhf` and
//! `expf`, one call per element; in the browser that was a quarter of the English model's
//! forward pass (a Chrome profile at 128 tokens: `gelu_new` 12%, softmax's `exp` 13%), since
//! LLVM does not vectorize those loops for wasm. Here every step is a `wide::f32x4`: simd128
//! in the browser, SSE natively. Both builds do the same IEEE operations in the same order
//! (no fused multiply-add on either), so they compute the same bits.
//!
//! Inference only: while training (a graph being recorded) the backend uses candle's own ops,
//! which candle can differentiate.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use wide::f32x4;

/// Four lanes from a group of four values.
#[inline(always)]
fn load4(g: &[f32]) -> f32x4 {
    f32x4::new([g[0], g[1], g[2], g[3]])
}

/// `f` over `x` four lanes at a time into `y`; the last partial group is padded with `pad`.
#[inline(always)]
fn map4(x: &[f32], y: &mut [f32], pad: f32, f: impl Fn(f32x4) -> f32x4) {
    let (xs, ys) = (x.chunks_exact(4), y.chunks_exact_mut(4));
    let (x_tail, n) = (xs.remainder(), x.len() - x.len() % 4);
    for (x, y) in xs.zip(ys) {
        y.copy_from_slice(&f(load4(x)).to_array());
    }
    if !x_tail.is_empty() {
        let mut lanes = [pad; 4];
        lanes[..x_tail.len()].copy_from_slice(x_tail);
        let out = f(f32x4::new(lanes)).to_array();
        y[n..].copy_from_slice(&out[..x_tail.len()]);
    }
}

/// `f` over `y` in place, four lanes at a time (the last partial group padded with 0).
#[inline(always)]
fn map4_in_place(y: &mut [f32], f: impl Fn(f32x4) -> f32x4) {
    let mut groups = y.chunks_exact_mut(4);
    for g in &mut groups {
        g.copy_from_slice(&f(load4(g)).to_array());
    }
    let tail = groups.into_remainder();
    if !tail.is_empty() {
        let mut lanes = [0.0; 4];
        lanes[..tail.len()].copy_from_slice(tail);
        let out = f(f32x4::new(lanes)).to_array();
        let n = tail.len();
        tail.copy_from_slice(&out[..n]);
    }
}

/// A custom op's output: `f` over its contiguous f32 input, four lanes at a time.
fn unary4(op: &str, storage: &CpuStorage, layout: &Layout, f: impl Fn(f32x4) -> f32x4 + Sync) -> candle_core::Result<(CpuStorage, Shape)> {
    let x = contiguous_f32(op, storage, layout)?;
    let mut y = vec![0f32; x.len()];
    split_rows(x, &mut y, 1, |x, y| map4(x, y, 0.0, &f));
    Ok((CpuStorage::F32(y), layout.shape().clone()))
}

/// `apply(x, y)` over the whole input, split over the CPU's threads natively (rayon) in chunks
/// that keep `rows`-long rows whole; one thread in the browser.
fn split_rows(x: &[f32], y: &mut [f32], row: usize, apply: impl Fn(&[f32], &mut [f32]) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        let chunk = (16 * 1024 / row.max(1)).max(1) * row.max(1);
        y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(y, x)| apply(x, y));
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = row;
        apply(x, y);
    }
}

/// The f32 values of a custom op's contiguous input, or an error naming the op.
pub fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = storage else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&all[start..end])
}

/// tanh as a rational function (Eigen's `generic_fast_tanh_float`: odd degree-13 numerator
/// over even degree-6 denominator, on [-7.9053, 7.9053] where tanh is not yet +-1 in f32).
/// Within 5e-7 of libm's `tanhf` (4 ulp near +-1; tested below).
#[inline(always)]
pub fn tanh_fast(x: f32x4) -> f32x4 {
    let c = f32x4::splat;
    let x = x.fast_max(c(-7.905_311)).fast_min(c(7.905_311));
    let x2 = x * x;
    let p = ((((((c(-2.760_768_5e-16) * x2 + c(2.000_188e-13)) * x2 + c(-8.604_672e-11)) * x2 + c(5.122_297e-8)) * x2 + c(1.485_722_4e-5)) * x2
        + c(6.372_619_3e-4))
        * x2
        + c(4.893_524_6e-3))
        * x;
    let q = ((c(1.198_258_4e-6) * x2 + c(1.185_347e-4)) * x2 + c(2.268_434_6e-3)) * x2 + c(4.893_525e-3);
    p / q
}

/// GPT-2's `gelu_new`, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with [`tanh_fast`].
pub struct GeluNew;

impl CustomOp1 for GeluNew {
    fn name(&self) -> &'static str {
        "gelu_new"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let c = f32x4::splat;
        unary4("gelu_new", storage, layout, |v| c(0.5) * v * (c(1.0) + tanh_fast(c(0.797_884_6) * (v + c(0.044_715) * v * v * v))))
    }
}

/// SiLU, x / (1 + exp(-x)), as candle writes it, with `wide`'s `exp`.
pub struct Silu;

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        unary4("silu", storage, layout, |v| v / (f32x4::ONE + (-v).exp()))
    }
}

/// Softmax over the last axis: per row, exp(x - max) over its sum. A key masked with -inf
/// gets exactly 0.
pub struct Softmax;

impl Softmax {
    fn row(x: &[f32], y: &mut [f32]) {
        // Keys masked with -inf at the end of the row (the causal mask's) get exactly 0
        // without an exp; the rest is the softmax of what is left.
        let n = x.iter().rposition(|&v| v != f32::NEG_INFINITY).map_or(x.len(), |last| last + 1);
        let (x, (y, masked)) = (&x[..n], y.split_at_mut(n));
        masked.fill(0.0);
        let (groups, tail) = (x.chunks_exact(4), x.chunks_exact(4).remainder());
        let mut max4 = f32x4::splat(f32::NEG_INFINITY);
        for g in groups {
            max4 = max4.max(load4(g));
        }
        let max = tail.iter().copied().fold(max4.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max), f32::max);
        let m = f32x4::splat(max);
        map4(x, y, f32::NEG_INFINITY, |v| (v - m).exp());
        let (groups, tail) = (y.chunks_exact(4), y.chunks_exact(4).remainder());
        let mut sum4 = f32x4::ZERO;
        for g in groups {
            sum4 += load4(g);
        }
        let sum = f32x4::splat(tail.iter().fold(sum4.reduce_add(), |s, v| s + v));
        map4_in_place(y, |v| v / sum);
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax_last_dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("softmax", storage, layout)?;
        let n = layout.dims().last().copied().unwrap_or(1).max(1);
        let mut y = vec![0f32; x.len()];
        split_rows(x, &mut y, n, |x, y| {
            for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
                Softmax::row(x, y);
            }
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }
}

/// Attention's raw scores q.k `[.., n_q, n_k]` -> q.k / sqrt(d_head) (a multiply by the f32
/// of 1 / sqrt(d_head), as candle's divide by a scalar), -inf for keys past each query (query
/// i sits at key position `n_k - n_q + i`): one pass for candle's divide, mask, tensor of -inf
/// and select.
pub struct ScaleCausal {
    pub d_head: usize,
}

impl CustomOp1 for ScaleCausal {
    fn name(&self) -> &'static str {
        "scale_causal"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("scale_causal", storage, layout)?;
        let &[.., n_q, n_k] = layout.dims() else {
            candle_core::bail!("scale_causal: scores [.., q, k], not {:?}", layout.dims());
        };
        if n_q > n_k {
            candle_core::bail!("scale_causal: {n_q} queries after {n_k} keys");
        }
        let scale = (1.0 / (self.d_head as f64).sqrt()) as f32;
        let mut y = x.to_vec();
        for (r, row) in y.chunks_exact_mut(n_k.max(1)).enumerate() {
            let seen = n_k - n_q + r % n_q.max(1) + 1;
            map4_in_place(&mut row[..seen], |v| v * f32x4::splat(scale));
            row[seen..].fill(f32::NEG_INFINITY);
        }
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, D};

    fn tanh1(x: f32) -> f32 {
        tanh_fast(f32x4::splat(x)).to_array()[0]
    }

    #[test]
    fn tanh_fast_is_within_5e_7_of_libm() {
        let mut worst = 0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // [-20, 20]
            worst = worst.max((tanh1(x) - x.tanh()).abs());
        }
        assert!(worst < 5e-7, "max |tanh_fast - tanhf| = {worst:e}");
        assert_eq!(tanh1(f32::INFINITY), 1.0);
        assert_eq!(tanh1(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh1(0.0), 0.0);
    }

    fn worst(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(a, b)| if a == b { 0.0 } else { (a - b).abs() }).fold(0f32, f32::max)
    }

    /// [-20, 20] in steps of 1e-3: more than one thread's chunk, and a partial group of four.
    fn ramp() -> Tensor {
        let x: Vec<f32> = (0..40_001).map(|i| (i as f32 - 20_000.0) * 1e-3).collect();
        Tensor::from_vec(x, 40_001, &Device::Cpu).unwrap()
    }

    #[test]
    fn gelu_new_matches_candle_gelu() {
        let t = ramp();
        let w = worst(&t.apply_op1_no_bwd(&GeluNew).unwrap(), &t.gelu().unwrap());
        assert!(w < 5e-6, "max |ours - candle| = {w:e}");
    }

    #[test]
    fn silu_matches_candle_silu() {
        let t = ramp();
        let ours = t.apply_op1_no_bwd(&Silu).unwrap();
        let w = worst(&ours, &t.silu().unwrap());
        assert!(w < 5e-6, "max |ours - candle| = {w:e}");
        let far = Tensor::new(&[-200f32, 200.0, f32::NEG_INFINITY], &Device::Cpu).unwrap().apply_op1_no_bwd(&Silu).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(far[..2], [-0.0, 200.0]);
        assert!(far[2].is_nan(), "-inf / inf, as candle");
    }

    #[test]
    fn softmax_matches_candle_and_masked_keys_get_exactly_zero() {
        // Rows of 1, 3, 4, 7 and 130 keys (partial groups of four, whole groups), a causal mask.
        for n in [1usize, 3, 4, 7, 130] {
            let rows = 2 * n + 1;
            let x: Vec<f32> = (0..rows * n)
                .map(|i| {
                    let (q, k) = (i / n, i % n);
                    if k > q {
                        f32::NEG_INFINITY
                    } else {
                        ((i * 7919) % 1000) as f32 * 0.02 - 10.0
                    }
                })
                .collect();
            let t = Tensor::from_vec(x.clone(), (rows, n), &Device::Cpu).unwrap();
            let ours = t.apply_op1_no_bwd(&Softmax).unwrap();
            let e = t.broadcast_sub(&t.max_keepdim(D::Minus1).unwrap()).unwrap().exp().unwrap();
            let candle = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
            let w = worst(&ours, &candle);
            assert!(w < 1e-6, "{n} keys: max |ours - candle| = {w:e}");
            let ours = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (&o, &x)) in ours.iter().zip(&x).enumerate() {
                if x == f32::NEG_INFINITY {
                    assert_eq!(o, 0.0, "{n} keys, entry {i}");
                }
            }
            for row in ours.chunks(n) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn exp_is_within_2_ulp_of_libm() {
        // Softmax's exp(x - max) takes x <= 0; SiLU's exp(-x) any x.
        let mut worst_rel = 0f32;
        for i in -1_040_000..=880_000 {
            let x = i as f32 * 1e-4;
            let (ours, libm) = (f32x4::splat(x).exp().to_array()[0], x.exp());
            if libm > f32::MIN_POSITIVE {
                worst_rel = worst_rel.max((ours - libm).abs() / libm);
            } else {
                assert!((ours - libm).abs() <= 2.0 * f32::from_bits(1), "exp({x}) = {ours:e}, libm {libm:e}");
            }
        }
        assert!(worst_rel < 2.5e-7, "max relative error {worst_rel:e}");
        assert_eq!(f32x4::splat(f32::NEG_INFINITY).exp().to_array()[0], 0.0);
    }
    #[test]
    fn scale_causal_matches_candle_divide_and_mask() {
        // Two heads of 3 queries after 2 cached keys (5 keys), and a whole sequence of 4.
        for (n_q, n_k) in [(3usize, 5usize), (4, 4)] {
            let x: Vec<f32> = (0..2 * n_q * n_k).map(|i| (i as f32 - 7.0) * 0.37).collect();
            let t = Tensor::from_vec(x, (1, 2, n_q, n_k), &Device::Cpu).unwrap();
            let ours = t.apply_op1_no_bwd(&ScaleCausal { d_head: 6 }).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scaled = (&t / 6f64.sqrt()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (o, s)) in ours.iter().zip(&scaled).enumerate() {
                let (q, k) = (i / n_k % n_q, i % n_k);
                if k > n_k - n_q + q {
                    assert_eq!(*o, f32::NEG_INFINITY, "q{q} k{k}");
                } else {
                    assert_eq!(o, s, "q{q} k{k}");
                }
            }
        }
        let more_queries = Tensor::zeros((1, 1, 3, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(more_queries.apply_op1_no_bwd(&ScaleCausal { d_head: 4 }).is_err());
    }
}
