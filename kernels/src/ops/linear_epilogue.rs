//! `linear_epilogue`: a dense layer whose stores also apply the next elementwise op: `linear`
//! and then `add` (the residual sum) or an activation (`gelu_new`, `gelu`, `silu`), in one
//! dispatch, both results written.
//!
//! x `[m, k]` (any leading shape), w `[k, n]`, b `[n]` optional ->
//! * y `[m, n]` = x @ w + b, exactly as `linear` (the same two kernels' loops: linear_epilogue.wgsl)
//! * y2 `[m, n]` = [`Epilogue`] of y: `resid + y` (hook_attn_out / hook_mlp_out into the residual
//!   stream) or `act(y)` (mlp.hook_pre -> the activation that hook_post caches).
//!
//! The activations are the elementwise ops' own WGSL, so y2 equals the unfused op on y. Not:
//! quantized or split weights (those keep `linear_quant` / `concat_cols` and the unfused ops), no
//! gated MLP (its product needs a second matmul).

use crate::ops::linear::{row_block_grid, tiled_grid};
use crate::ops::{gelu, gelu_new, KernelDef};
use crate::{GpuTensor, LinearKernel, Recorder};

/// The module: the activations' helpers (from `gelu_new.rs` and `gelu.rs`), then the kernels.
fn wgsl() -> String {
    format!("{}\n{}\n{}", include_str!("linear_epilogue.wgsl"), gelu_new::OP.helpers, gelu::OP.helpers)
}

pub(crate) const LINEAR_EPILOGUE: KernelDef = KernelDef::composed("linear_epilogue", wgsl, 4, 2);
pub(crate) const LINEAR_ROWS_EPILOGUE: KernelDef = KernelDef::composed("linear_rows_epilogue", wgsl, 4, 2);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LINEAR_EPILOGUE, LINEAR_ROWS_EPILOGUE];

/// What [`Recorder::linear_epilogue`] writes beside `y`.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'t> {
    /// `resid + y`: an output projection added into the residual stream (`resid` is `[m, n]`).
    Add(&'t GpuTensor),
    /// `gelu_new(y)` (GPT-2).
    GeluNew,
    /// `gelu(y)`, the exact erf GELU (GPT-NeoX).
    Gelu,
    /// `silu(y)`.
    Silu,
}

impl Epilogue<'_> {
    fn code(&self) -> u32 {
        match self {
            Epilogue::Add(_) => 0,
            Epilogue::GeluNew => 1,
            Epilogue::Gelu => 2,
            Epilogue::Silu => 3,
        }
    }
}

impl Recorder<'_> {
    /// x `[.., k]`, w `[k, n]`, b `[n]` or None -> (y `[.., n]`, y2 `[.., n]`).
    pub fn linear_epilogue(&mut self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>, epilogue: Epilogue<'_>) -> (GpuTensor, GpuTensor) {
        self.linear_epilogue_with(x, w, b, epilogue, LinearKernel::Auto)
    }

    /// [`Recorder::linear_epilogue`] with an explicit choice of kernel (tests).
    pub fn linear_epilogue_with(&mut self, x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>, epilogue: Epilogue<'_>, kernel: LinearKernel) -> (GpuTensor, GpuTensor) {
        assert_eq!(w.shape.len(), 2, "linear_epilogue: w must be [k, n], got {:?}", w.shape);
        let (k, n) = (w.shape[0], w.shape[1]);
        assert_eq!(x.last_dim(), k, "linear_epilogue: x {:?} does not match w {:?}", x.shape, w.shape);
        if let Some(b) = b {
            assert_eq!(b.len(), n, "linear_epilogue: bias has {} values, w has n = {n}", b.len());
        }
        let m: usize = x.shape[..x.shape.len().saturating_sub(1)].iter().product();
        if let Epilogue::Add(r) = epilogue {
            assert_eq!(r.len(), m * n, "linear_epilogue: the residual {:?} is not [{m}, {n}]", r.shape);
        }
        let mut shape = x.shape.clone();
        match shape.last_mut() {
            Some(last) => *last = n,
            None => shape.push(n),
        }
        let y = self.output(&shape);
        let y2 = self.output(&shape);
        let (id, grid) = if self.row_block(m, kernel) { (LINEAR_ROWS_EPILOGUE, row_block_grid(m, n)) } else { (LINEAR_EPILOGUE, tiled_grid(m, n)) };
        let dummy = self.ctx.dummy.clone();
        let bias = b.map(|b| &**b.buffer).unwrap_or(&dummy);
        let resid = match epilogue {
            Epilogue::Add(r) => &**r.buffer,
            _ => &dummy,
        };
        self.dispatch(id, &[m as u32, k as u32, n as u32, u32::from(b.is_some()), epilogue.code()], &[&x.buffer, &w.buffer, bias, resid], &[&y.buffer, &y2.buffer], grid);
        (y, y2)
    }
}

/// What [`linear_epilogue_cpu`] applies (the CPU side of [`Epilogue`]).
#[derive(Clone, Copy, Debug)]
pub enum EpilogueCpu<'t> {
    Add(&'t [f32]),
    GeluNew,
    Gelu,
    Silu,
}

/// CPU reference: `linear_cpu`, then the unfused op's reference on its result. -> (y, y2).
pub fn linear_epilogue_cpu(x: &[f32], w: &[f32], b: Option<&[f32]>, m: usize, k: usize, n: usize, epilogue: EpilogueCpu<'_>) -> (Vec<f32>, Vec<f32>) {
    let y = super::linear::linear_cpu(x, w, b, m, k, n);
    let y2 = match epilogue {
        EpilogueCpu::Add(r) => super::add::add_cpu(r, &y),
        EpilogueCpu::GeluNew => super::gelu_new::gelu_new_cpu(&y),
        EpilogueCpu::Gelu => super::gelu::gelu_cpu(&y),
        EpilogueCpu::Silu => super::silu::silu_cpu(&y),
    };
    (y, y2)
}
