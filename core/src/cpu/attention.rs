//! Attention's two products on the CPU, read straight from the `[pos, heads * d_head]` rows
//! that the q, k and v projections write: scores = q.k / sqrt(d_head) with the causal mask,
//! and z = pattern . v. candle's route to the same numbers reshapes q, k and v to
//! `[batch, heads, pos, d_head]` (three copies), multiplies every query with every key (the
//! masked half too), divides the scores in a separate pass, builds a mask and a tensor of -inf
//! to select between them, and copies z back to `[pos, heads * d_head]`. Here each step is one
//! pass over the keys a query sees, four lanes at a time (`wide::f32x4`: simd128 in the
//! browser, SSE natively), split over threads natively by query rows.
//!
//! Both ops take `offset`: query i sits at position `offset + i` of the keys (0 for a whole
//! sequence; the number of cached positions in incremental decoding). Inference only: while
//! training the backend uses candle's ops, which candle can differentiate.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape};
use wide::f32x4;

use super::elementwise::contiguous_f32;

/// The shape of one attention: `n_batch` sequences of `n_q` queries against `n_k` keys each,
/// `n_heads` query heads sharing `n_kv_heads` key/value heads, `d_head` wide.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_batch: usize,
    pub n_q: usize,
    pub n_k: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
}

impl AttnShape {
    /// Keys at positions up to `offset + i` are visible from query i.
    fn offset(&self) -> usize {
        self.n_k - self.n_q
    }
    /// The key/value head query head h reads.
    fn kv_head(&self, h: usize) -> usize {
        h / (self.n_heads / self.n_kv_heads).max(1)
    }
    /// Errors unless the first input has `first` values where it should have `expected`, and
    /// the key or value rows `kv_len`.
    fn check(&self, op: &str, first: usize, expected: usize, kv_len: usize) -> candle_core::Result<()> {
        let s = self;
        if s.n_k < s.n_q
            || s.n_kv_heads == 0
            || !s.n_heads.is_multiple_of(s.n_kv_heads)
            || first != expected
            || kv_len != s.n_batch * s.n_k * s.n_kv_heads * s.d_head
        {
            candle_core::bail!("{op}: inputs of {first} and {kv_len} values do not fit {s:?}");
        }
        Ok(())
    }
}

/// `a . b` four lanes at a time (the tail one by one).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    let mut acc = f32x4::ZERO;
    for (a, b) in ca.zip(cb) {
        acc += f32x4::new([a[0], a[1], a[2], a[3]]) * f32x4::new([b[0], b[1], b[2], b[3]]);
    }
    ta.iter().zip(tb).fold(acc.reduce_add(), |s, (a, b)| s + a * b)
}

/// `y += p x` four lanes at a time.
#[inline(always)]
fn axpy(p: f32, x: &[f32], y: &mut [f32]) {
    let (cx, mut cy) = (x.chunks_exact(4), y.chunks_exact_mut(4));
    let tx = cx.remainder();
    let pv = f32x4::splat(p);
    for (x, y) in cx.zip(&mut cy) {
        let v = f32x4::new([y[0], y[1], y[2], y[3]]) + pv * f32x4::new([x[0], x[1], x[2], x[3]]);
        y.copy_from_slice(&v.to_array());
    }
    for (y, x) in cy.into_remainder().iter_mut().zip(tx) {
        *y += p * x;
    }
}

/// `f(row_index, row)` for every `width`-long row of `out`, over the CPU's threads natively.
fn for_rows(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(width.max(1)).enumerate().for_each(|(i, row)| f(i, row));
    }
    #[cfg(target_arch = "wasm32")]
    for (i, row) in out.chunks_mut(width.max(1)).enumerate() {
        f(i, row);
    }
}

/// q `[n_batch * n_q, n_heads * d_head]`, k `[n_batch * n_k, n_kv_heads * d_head]` -> scores
/// `[n_batch, n_heads, n_q, n_k]` = q.k / sqrt(d_head), -inf for keys past the query.
pub struct AttnScores(pub AttnShape);

impl CustomOp2 for AttnScores {
    fn name(&self) -> &'static str {
        "attn_scores"
    }

    fn cpu_fwd(&self, qs: &CpuStorage, ql: &Layout, ks: &CpuStorage, kl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let s = self.0;
        let (q, k) = (contiguous_f32("attn_scores", qs, ql)?, contiguous_f32("attn_scores", ks, kl)?);
        let (qw, kw, d) = (s.n_heads * s.d_head, s.n_kv_heads * s.d_head, s.d_head);
        s.check("attn_scores", q.len(), s.n_batch * s.n_q * qw, k.len())?;
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        let mut out = vec![0f32; s.n_batch * s.n_heads * s.n_q * s.n_k];
        // One row of scores per (batch, head, query).
        for_rows(&mut out, s.n_k, |r, row| {
            let (i, h, b) = (r % s.n_q, r / s.n_q % s.n_heads, r / (s.n_q * s.n_heads));
            let (g, seen) = (s.kv_head(h), s.offset() + i + 1);
            let q_row = &q[(b * s.n_q + i) * qw + h * d..][..d];
            for (j, out) in row.iter_mut().enumerate() {
                *out = if j < seen { dot(q_row, &k[(b * s.n_k + j) * kw + g * d..][..d]) * scale } else { f32::NEG_INFINITY };
            }
        });
        let shape: Shape = (s.n_batch, s.n_heads, s.n_q, s.n_k).into();
        Ok((CpuStorage::F32(out), shape))
    }
}

/// pattern `[n_batch, n_heads, n_q, n_k]`, v `[n_batch * n_k, n_kv_heads * d_head]` -> z
/// `[n_batch * n_q, n_heads * d_head]` = pattern . v. A key whose weight is exactly 0 (every
/// masked key, unless an intervention gave it weight) adds nothing and is skipped.
pub struct AttnZ(pub AttnShape);

impl CustomOp2 for AttnZ {
    fn name(&self) -> &'static str {
        "attn_z"
    }

    fn cpu_fwd(&self, ps: &CpuStorage, pl: &Layout, vs: &CpuStorage, vl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let s = self.0;
        let (p, v) = (contiguous_f32("attn_z", ps, pl)?, contiguous_f32("attn_z", vs, vl)?);
        let (zw, vw, d) = (s.n_heads * s.d_head, s.n_kv_heads * s.d_head, s.d_head);
        s.check("attn_z", p.len(), s.n_batch * s.n_heads * s.n_q * s.n_k, v.len())?;
        let mut out = vec![0f32; s.n_batch * s.n_q * zw];
        // One row of z per (batch, query): every head's d_head values.
        for_rows(&mut out, zw, |r, z_row| {
            let (i, b) = (r % s.n_q, r / s.n_q);
            for (h, z) in z_row.chunks_exact_mut(d.max(1)).enumerate() {
                let g = s.kv_head(h);
                let weights = &p[((b * s.n_heads + h) * s.n_q + i) * s.n_k..][..s.n_k];
                for (j, &w) in weights.iter().enumerate() {
                    if w != 0.0 {
                        axpy(w, &v[(b * s.n_k + j) * vw + g * d..][..d], z);
                    }
                }
            }
        });
        let shape: Shape = (s.n_batch * s.n_q, zw).into();
        Ok((CpuStorage::F32(out), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 500.0).collect()
    }

    /// Every case: one and two sequences, grouped key/value heads, a d_head that is not a
    /// multiple of four, and queries after cached keys (offset).
    fn shapes() -> Vec<AttnShape> {
        let mut all = Vec::new();
        for (n_batch, n_q, n_k) in [(1, 5, 5), (2, 7, 7), (1, 1, 9), (1, 3, 8)] {
            for (n_heads, n_kv_heads, d_head) in [(4, 4, 8), (4, 2, 6), (3, 1, 5), (2, 2, 64)] {
                all.push(AttnShape { n_batch, n_q, n_k, n_heads, n_kv_heads, d_head });
            }
        }
        all
    }

    #[test]
    fn scores_match_a_double_precision_product_with_the_causal_mask() {
        for s in shapes() {
            let (qw, kw) = (s.n_heads * s.d_head, s.n_kv_heads * s.d_head);
            let (q, k) = (values(s.n_batch * s.n_q * qw, 1), values(s.n_batch * s.n_k * kw, 2));
            let qt = Tensor::from_vec(q.clone(), (s.n_batch * s.n_q, qw), &Device::Cpu).unwrap();
            let kt = Tensor::from_vec(k.clone(), (s.n_batch * s.n_k, kw), &Device::Cpu).unwrap();
            let out = qt.apply_op2_no_bwd(&kt, &AttnScores(s)).unwrap();
            assert_eq!(out.dims(), [s.n_batch, s.n_heads, s.n_q, s.n_k]);
            let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let group = s.n_heads / s.n_kv_heads;
            for b in 0..s.n_batch {
                for h in 0..s.n_heads {
                    for i in 0..s.n_q {
                        for j in 0..s.n_k {
                            let got = out[((b * s.n_heads + h) * s.n_q + i) * s.n_k + j];
                            if j > s.n_k - s.n_q + i {
                                assert_eq!(got, f32::NEG_INFINITY, "{s:?} b{b} h{h} q{i} k{j}");
                                continue;
                            }
                            let exact: f64 = (0..s.d_head)
                                .map(|e| q[(b * s.n_q + i) * qw + h * s.d_head + e] as f64 * k[(b * s.n_k + j) * kw + h / group * s.d_head + e] as f64)
                                .sum::<f64>()
                                / (s.d_head as f64).sqrt();
                            assert!((got as f64 - exact).abs() < 1e-5 * exact.abs().max(1.0), "{s:?} b{b} h{h} q{i} k{j}: {got} against {exact}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn z_matches_a_double_precision_product_and_counts_weight_on_any_key() {
        for s in shapes() {
            let (zw, vw) = (s.n_heads * s.d_head, s.n_kv_heads * s.d_head);
            // Weights on every key, masked ones included (an intervention can put weight there),
            // and some exact zeros.
            let mut p = values(s.n_batch * s.n_heads * s.n_q * s.n_k, 3);
            p.iter_mut().step_by(3).for_each(|w| *w = 0.0);
            let v = values(s.n_batch * s.n_k * vw, 4);
            let pt = Tensor::from_vec(p.clone(), (s.n_batch, s.n_heads, s.n_q, s.n_k), &Device::Cpu).unwrap();
            let vt = Tensor::from_vec(v.clone(), (s.n_batch * s.n_k, vw), &Device::Cpu).unwrap();
            let out = pt.apply_op2_no_bwd(&vt, &AttnZ(s)).unwrap();
            assert_eq!(out.dims(), [s.n_batch * s.n_q, zw]);
            let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let group = s.n_heads / s.n_kv_heads;
            for b in 0..s.n_batch {
                for i in 0..s.n_q {
                    for h in 0..s.n_heads {
                        for e in 0..s.d_head {
                            let exact: f64 = (0..s.n_k)
                                .map(|j| p[((b * s.n_heads + h) * s.n_q + i) * s.n_k + j] as f64 * v[(b * s.n_k + j) * vw + h / group * s.d_head + e] as f64)
                                .sum();
                            let got = out[(b * s.n_q + i) * zw + h * s.d_head + e];
                            assert!((got as f64 - exact).abs() < 1e-5 * exact.abs().max(1.0), "{s:?} b{b} q{i} h{h} e{e}: {got} against {exact}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn inputs_that_do_not_fit_the_shape_are_an_error() {
        let s = AttnShape { n_batch: 1, n_q: 4, n_k: 4, n_heads: 2, n_kv_heads: 2, d_head: 4 };
        let q = Tensor::zeros((4, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let short = Tensor::zeros((3, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(q.apply_op2_no_bwd(&short, &AttnScores(s)).is_err());
        assert!(short.apply_op2_no_bwd(&q, &AttnScores(s)).is_err());
        let fewer_keys = AttnShape { n_k: 3, ..s };
        assert!(q.apply_op2_no_bwd(&short, &AttnScores(fewer_keys)).is_err());
    }
}
