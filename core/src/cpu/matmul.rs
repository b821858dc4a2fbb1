//! The browser's CPU matmul: `x W` for weights packed once, at load, on 128-bit lanes (wasm
//! simd128).
//!
//! Natively candle's matmul (the `gemm` crate's AVX2/AVX-512 kernels) stays. In the browser
//! `gemm`'s simd128 kernels spend a seventh of their time re-packing the weights on every
//! call; this kernel reads weights packed once by [`PackedMatrix::pack`] and ran every shape of
//! a GPT-2 block 1.2-2.0x faster than `gemm` in headless Chromium (BENCHMARKS.md, "wasm CPU
//! against native"; `e2e/bench/wasm_matmul` times it, compiling this file in by path, so it
//! uses nothing of its crate). [`super::CpuBackend::upload_matrix`]
//! packs a model's linear weights on wasm32.
//!
//! The layout is the classic one (Goto and van de Geijn). The weights `[k, n]` are stored in
//! blocks of `KC` rows; within a block, in panels of `NR` columns, k outermost. For each block,
//! the rows of x are packed `MR` at a time with k outermost, and a micro-kernel keeps an
//! `MR x NR` tile of the output in registers (8 accumulators of 4 lanes) while it walks k,
//! reading one panel (16 kB, in L1) and one row block of x. Partial sums of later blocks are
//! added to the output.
//!
//! Every lane operation is a separate IEEE multiply and add (baseline wasm SIMD has no fused
//! multiply-add), so the portable lanes below, which the native tests run, give bit for bit what
//! the browser computes.

/// Rows of x per micro-kernel tile (fewer rows are done one at a time).
const MR: usize = 4;
/// Columns of W per panel: two vectors of 4 lanes.
const NR: usize = 8;
/// Rows of W per block.
const KC: usize = 512;

#[cfg(target_arch = "wasm32")]
mod lanes {
    use core::arch::wasm32::*;

    /// Four f32 lanes.
    #[derive(Clone, Copy)]
    pub struct F4(v128);

    impl F4 {
        #[inline(always)]
        pub fn zero() -> F4 {
            F4(f32x4_splat(0.0))
        }
        /// # Safety
        /// `p..p+4` is readable.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> F4 {
            F4(unsafe { v128_load(p as *const v128) })
        }
        /// # Safety
        /// `p` is readable.
        #[inline(always)]
        pub unsafe fn splat(p: *const f32) -> F4 {
            F4(unsafe { v128_load32_splat(p as *const u32) })
        }
        /// # Safety
        /// `p..p+4` is writable.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        /// self + a * b, rounded twice.
        #[cfg(not(target_feature = "relaxed-simd"))]
        #[inline(always)]
        pub fn mul_add(self, a: F4, b: F4) -> F4 {
            F4(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }
        /// self + a * b, fused or rounded twice as the machine does it (relaxed SIMD). Only
        /// `e2e/bench/wasm_matmul` builds this, to measure what a fused multiply-add would give;
        /// the app's build has no relaxed SIMD (browsers without it refuse the whole module).
        #[cfg(target_feature = "relaxed-simd")]
        #[inline(always)]
        pub fn mul_add(self, a: F4, b: F4) -> F4 {
            F4(f32x4_relaxed_madd(a.0, b.0, self.0))
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod lanes {
    /// Four f32 lanes, portable: the same arithmetic as the wasm ones.
    #[derive(Clone, Copy)]
    pub struct F4([f32; 4]);

    impl F4 {
        #[inline(always)]
        pub fn zero() -> F4 {
            F4([0.0; 4])
        }
        /// # Safety
        /// `p..p+4` is readable.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> F4 {
            F4(unsafe { core::ptr::read_unaligned(p as *const [f32; 4]) })
        }
        /// # Safety
        /// `p` is readable.
        #[inline(always)]
        pub unsafe fn splat(p: *const f32) -> F4 {
            F4([unsafe { *p }; 4])
        }
        /// # Safety
        /// `p..p+4` is writable.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { core::ptr::write_unaligned(p as *mut [f32; 4], self.0) }
        }
        /// self + a * b, rounded twice.
        #[inline(always)]
        pub fn mul_add(self, a: F4, b: F4) -> F4 {
            F4(core::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }
    }
}

use lanes::F4;

/// The `R x NR` tile of a row block `[kc][R]` times a panel `[kc][NR]`.
///
/// # Safety
/// `a` holds `kc * R` floats and `b` holds `kc * NR`.
#[inline(always)]
unsafe fn micro_kernel<const R: usize>(kc: usize, mut a: *const f32, mut b: *const f32) -> [[f32; NR]; R] {
    let mut acc = [[F4::zero(); 2]; R];
    for _ in 0..kc {
        let (b0, b1) = unsafe { (F4::load(b), F4::load(b.add(4))) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let ar = unsafe { F4::splat(a.add(r)) };
            acc[0] = acc[0].mul_add(ar, b0);
            acc[1] = acc[1].mul_add(ar, b1);
        }
        unsafe {
            a = a.add(R);
            b = b.add(NR);
        }
    }
    let mut out = [[0f32; NR]; R];
    for (o, acc) in out.iter_mut().zip(acc) {
        // SAFETY: o is NR = 8 floats.
        unsafe {
            acc[0].store(o.as_mut_ptr());
            acc[1].store(o.as_mut_ptr().add(4));
        }
    }
    out
}

/// A weight matrix `W [k, n]` packed for [`PackedMatrix::matmul`]: blocks of `KC` rows, each in
/// panels of `NR` columns with k outermost; the columns past `n` of the last panel are zero.
#[derive(Debug)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Packs the row-major `w [k, n]`.
    pub fn pack(k: usize, n: usize, w: &[f32]) -> PackedMatrix {
        assert_eq!(w.len(), k * n, "PackedMatrix::pack: {} values for [{k}, {n}]", w.len());
        let padded = n.div_ceil(NR) * NR;
        let mut data = vec![0f32; k * padded];
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let block = &mut data[pc * padded..(pc + kc) * padded];
            for p in 0..kc {
                for (q, cols) in w[(pc + p) * n..(pc + p + 1) * n].chunks(NR).enumerate() {
                    block[(q * kc + p) * NR..(q * kc + p) * NR + cols.len()].copy_from_slice(cols);
                }
            }
        }
        PackedMatrix { k, n, data }
    }

    /// `(k, n)`: W is `[k, n]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Row `p` of W (`n` values).
    pub fn row(&self, p: usize) -> Vec<f32> {
        let (pc, padded) = (p / KC * KC, self.n.div_ceil(NR) * NR);
        let kc = KC.min(self.k - pc);
        let block = &self.data[pc * padded..(pc + kc) * padded];
        (0..self.n).map(|j| block[(j / NR * kc + p - pc) * NR + j % NR]).collect()
    }

    /// `c = a W` for row-major `a [m, k]` and `c [m, n]` (overwritten).
    pub fn matmul(&self, m: usize, a: &[f32], c: &mut [f32]) {
        self.matmul_bias(m, a, None, c)
    }

    /// `c = a W + bias` (bias `[n]`, added to every row): the bias joins each output in the
    /// store of the last block of k, so no second pass over c, and the sum is rounded as
    /// `(a W) + bias` is, bit for bit.
    pub fn matmul_bias(&self, m: usize, a: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(a.len() == m * k && c.len() == m * n, "PackedMatrix::matmul: [{m}, {k}] x [{k}, {n}] with {} and {} values", a.len(), c.len());
        assert!(bias.is_none_or(|b| b.len() == n), "PackedMatrix::matmul: a bias of {} values for {n} columns", bias.map_or(0, <[f32]>::len));
        if k == 0 {
            match bias {
                Some(b) => c.chunks_mut(n.max(1)).for_each(|row| row.copy_from_slice(b)),
                None => c.fill(0.0),
            }
            return;
        }
        let padded = n.div_ceil(NR) * NR;
        // Rows of a in blocks of MR, the rest one at a time: `(first row, rows)`. A block's packed
        // rows start at `first row * kc` in `a_pack`.
        let row_blocks = || {
            let full = m / MR * MR;
            (0..full).step_by(MR).map(|i0| (i0, MR)).chain((full..m).map(|i0| (i0, 1)))
        };
        let mut a_pack = vec![0f32; m * KC.min(k)];
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let last = pc + kc == k;
            let block = &self.data[pc * padded..(pc + kc) * padded];
            for (i0, rows) in row_blocks() {
                let packed = &mut a_pack[i0 * kc..(i0 + rows) * kc]; // [kc][rows]
                for r in 0..rows {
                    for (p, &v) in a[(i0 + r) * k + pc..(i0 + r) * k + pc + kc].iter().enumerate() {
                        packed[p * rows + r] = v;
                    }
                }
            }
            for q in 0..padded / NR {
                let (j0, panel) = (q * NR, &block[q * kc * NR..(q + 1) * kc * NR]);
                let width = NR.min(n - j0);
                for (i0, rows) in row_blocks() {
                    let packed = &a_pack[i0 * kc..(i0 + rows) * kc];
                    // SAFETY: packed is kc * rows floats, panel kc * NR.
                    let sums: &[[f32; NR]] = if rows == MR {
                        &unsafe { micro_kernel::<MR>(kc, packed.as_ptr(), panel.as_ptr()) }
                    } else {
                        &unsafe { micro_kernel::<1>(kc, packed.as_ptr(), panel.as_ptr()) }
                    };
                    let bias_cols = bias.filter(|_| last).map(|b| &b[j0..j0 + width]);
                    for (r, sums) in sums.iter().enumerate() {
                        let out = &mut c[(i0 + r) * n + j0..(i0 + r) * n + j0 + width];
                        match (pc == 0, bias_cols) {
                            (true, None) => out.copy_from_slice(&sums[..width]),
                            (true, Some(b)) => out.iter_mut().zip(sums).zip(b).for_each(|((o, s), b)| *o = s + b),
                            (false, None) => out.iter_mut().zip(sums).for_each(|(o, s)| *o += s),
                            (false, Some(b)) => out.iter_mut().zip(sums).zip(b).for_each(|((o, s), b)| *o = (*o + s) + b),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5).collect()
    }

    /// Every edge of the blocking: rows not a multiple of MR (and fewer than MR), columns not a
    /// multiple of NR, k across several blocks and not a multiple of KC, and the empty sizes.
    #[test]
    fn matches_a_double_precision_product_at_every_edge_of_the_blocking() {
        for &(m, k, n) in
            &[(1, 1, 1), (4, 1, 8), (5, 3, 9), (7, 512, 129), (9, 513, 7), (13, 1100, 300), (64, 64, 83), (3, 1025, 257), (2, 5, 16), (6, 0, 5), (0, 7, 5)]
        {
            let (a, w) = (values(m * k, 1), values(k * n, 2));
            let packed = PackedMatrix::pack(k, n, &w);
            assert_eq!(packed.dims(), (k, n));
            let mut c = vec![f32::NAN; m * n];
            packed.matmul(m, &a, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k).map(|p| a[i * k + p] as f64 * w[p * n + j] as f64).sum();
                    let got = c[i * n + j] as f64;
                    assert!((got - exact).abs() <= 1e-6 * (k as f64).sqrt().max(1.0), "[{m}, {k}] x [{k}, {n}] at ({i}, {j}): {got} against {exact}");
                }
            }
            // With a bias: the same product plus the bias, rounded as the unfused add rounds.
            let bias = values(n, 3);
            let mut with_bias = vec![f32::NAN; m * n];
            packed.matmul_bias(m, &a, Some(&bias), &mut with_bias);
            for (i, (&got, &plain)) in with_bias.iter().zip(&c).enumerate() {
                assert_eq!(got.to_bits(), (plain + bias[i % n]).to_bits(), "[{m}, {k}] x [{k}, {n}] + bias at {i}");
            }
            for p in [0, k / 2, k.saturating_sub(1)].into_iter().filter(|&p| p < k) {
                assert_eq!(packed.row(p), w[p * n..(p + 1) * n], "[{k}, {n}]: row {p}");
            }
        }
    }
}
