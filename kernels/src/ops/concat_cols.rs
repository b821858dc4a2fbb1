//! `concat_cols`: `[rows, n_a]` and `[rows, n_b]` side by side -> `[rows, n_a + n_b]`.
//!
//! Used where a matrix is larger than the device's storage-binding limit (128 MiB by default;
//! GPT-2's f32 unembedding is 147 MiB): the matrix is split into column blocks, each block's
//! matmul runs on its own, and the pieces are joined here. Not: other axes, more than two inputs
//! (chain it).

use crate::ops::KernelDef;
use crate::ops::{groups_for, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("concat_cols.wgsl");
pub(crate) const CONCAT_COLS: KernelDef = KernelDef::new("concat_cols", WGSL, 2, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[CONCAT_COLS];

impl Recorder<'_> {
    /// a `[.., n_a]`, b `[.., n_b]` with the same leading shape -> `[.., n_a + n_b]`.
    pub fn concat_cols(&mut self, a: &GpuTensor, b: &GpuTensor) -> GpuTensor {
        let (n_a, n_b) = (a.last_dim(), b.last_dim());
        let rows = a.len().checked_div(n_a).unwrap_or(0);
        assert_eq!(b.len(), rows * n_b, "concat_cols: a {:?} and b {:?} differ in rows", a.shape, b.shape);
        let mut shape = a.shape.clone();
        *shape.last_mut().expect("concat_cols: a has an axis") = n_a + n_b;
        let out = self.output(&shape);
        let grid = self.ctx.grid_1d(groups_for(rows * (n_a + n_b), ELEMENTWISE_WG));
        self.dispatch(CONCAT_COLS, &[rows as u32, n_a as u32, n_b as u32], &[&a.buffer, &b.buffer], &[&out.buffer], grid);
        out
    }
}

/// CPU reference.
pub fn concat_cols_cpu(a: &[f32], n_a: usize, b: &[f32], n_b: usize) -> Vec<f32> {
    let rows = a.len().checked_div(n_a).unwrap_or(0);
    (0..rows).flat_map(|r| a[r * n_a..(r + 1) * n_a].iter().chain(&b[r * n_b..(r + 1) * n_b]).copied()).collect()
}
