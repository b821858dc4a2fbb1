//! `linear`: a dense layer, `y = x @ w + b`.
//!
//! x `[m, k]` (any leading shape, flattened to m rows), w `[k, n]` (TransformerLens layout:
//! `W_Q` reshaped to `[d_model, n_heads*d_head]`, `W_in` `[d_model, d_mlp]`, `W_U`
//! `[d_model, d_vocab]`, ...), b `[n]` optional -> y `[m, n]` (leading shape of x kept).
//!
//! Two kernels (linear.wgsl): a 64 x 64 tiled one with workgroup memory (GPUs, m >= 64) and a
//! row-block one without (m < 64, and CPU adapters, where it measured several times faster).
//! [`LinearKernel::Auto`] picks; [`Recorder::linear_with`] forces one.
//!
//! Not: a batched matmul, no transposed operands (w must be `[k, n]`), no activation or residual
//! sum fused in (that is `linear_epilogue`, the same loops with a second output),
//! no f16 or quantized weights. Accumulates in f32, sequentially over k.

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("linear.wgsl");
pub(crate) const LINEAR: KernelDef = KernelDef::new("linear", WGSL, 3, 1);
pub(crate) const LINEAR_ROWS: KernelDef = KernelDef::new("linear_rows", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LINEAR, LINEAR_ROWS];

/// Output block per workgroup of the tiled kernel (TILE_M / TILE_N in linear.wgsl).
const TILE_M: u32 = 64;
const TILE_N: u32 = 64;
/// Output block per workgroup of the row-block kernel (ROWS_R / COLS_PER_WG in linear.wgsl).
const ROWS_R: u32 = 8;
const COLS_PER_WG: u32 = 256;

/// Which WGSL kernel computes a `linear`. Both give the same results up to FMA rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinearKernel {
    /// Row-block on CPU adapters (lavapipe, SwiftShader) and for m < 64; tiled otherwise.
    #[default]
    Auto,
    /// 64 x 64 tiles staged in workgroup memory, 4 x 4 outputs per invocation.
    Tiled,
    /// 8 rows x 256 columns per workgroup, no workgroup memory.
    RowBlock,
}

impl Recorder<'_> {
    /// x `[.., k]`, w `[k, n]`, b `[n]` or None -> `[.., n]`.
    pub fn linear(&mut self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>) -> GpuTensor {
        self.linear_with(x, w, b, LinearKernel::Auto)
    }

    /// [`Recorder::linear`] with an explicit choice of kernel (tests and benchmarks).
    pub fn linear_with(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        b: Option<&GpuTensor>,
        kernel: LinearKernel,
    ) -> GpuTensor {
        assert_eq!(
            w.shape.len(),
            2,
            "linear: w must be [k, n], got {:?}",
            w.shape
        );
        let (k, n) = (w.shape[0], w.shape[1]);
        assert_eq!(
            x.last_dim(),
            k,
            "linear: x {:?} does not match w {:?}",
            x.shape,
            w.shape
        );
        if let Some(b) = b {
            assert_eq!(
                b.len(),
                n,
                "linear: bias has {} values, w has n = {n}",
                b.len()
            );
        }
        let m: usize = x.shape[..x.shape.len().saturating_sub(1)].iter().product();
        let mut shape = x.shape.clone();
        match shape.last_mut() {
            Some(last) => *last = n,
            None => shape.push(n),
        }
        let y = self.output(&shape);
        let (id, grid) = if self.row_block(m, kernel) { (LINEAR_ROWS, row_block_grid(m, n)) } else { (LINEAR, tiled_grid(m, n)) };
        let dummy = self.ctx.dummy.clone();
        let bias = b.map(|b| &**b.buffer).unwrap_or(&dummy);
        self.dispatch(
            id,
            &[m as u32, k as u32, n as u32, b.is_some() as u32],
            &[&x.buffer, &w.buffer, bias],
            &[&y.buffer],
            grid,
        );
        y
    }
}

impl Recorder<'_> {
    /// Whether `kernel` means the row-block kernel for `m` rows here.
    pub(crate) fn row_block(&self, m: usize, kernel: LinearKernel) -> bool {
        match kernel {
            LinearKernel::Tiled => false,
            LinearKernel::RowBlock => true,
            LinearKernel::Auto => m < TILE_M as usize || self.ctx.is_cpu_adapter(),
        }
    }
}

/// The row-block kernel's grid for `[m, n]`: x walks row blocks (consecutive workgroups share
/// columns of w), y column blocks.
pub(crate) fn row_block_grid(m: usize, n: usize) -> [u32; 3] {
    [super::groups_for(m, ROWS_R), super::groups_for(n, COLS_PER_WG), 1]
}

/// The tiled kernel's grid for `[m, n]`.
pub(crate) fn tiled_grid(m: usize, n: usize) -> [u32; 3] {
    [super::groups_for(n, TILE_N), super::groups_for(m, TILE_M), 1]
}

/// CPU reference. x `[m, k]`, w `[k, n]`, b `[n]` -> `[m, n]`; sums over k in order, then adds b.
pub fn linear_cpu(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), m * k);
    assert_eq!(w.len(), k * n);
    let mut y = vec![0.0; m * n];
    for r in 0..m {
        for c in 0..n {
            let mut s = 0.0f32;
            for j in 0..k {
                s += x[r * k + j] * w[j * n + c];
            }
            if let Some(b) = b {
                s += b[c];
            }
            y[r * n + c] = s;
        }
    }
    y
}
