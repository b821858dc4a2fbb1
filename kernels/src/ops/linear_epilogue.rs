//! `linear_epilogue`: a dense layer whose stores also apply the next elementwise op: `linear`
//! and then `add` (the residual sum) or an activation (`gelu_new`, `gelu`, `silu`), in one
//! dispatch, both results written.
//!
//! x `[m, k]` (any leading shape), w `[k, n]`, b `[n]` optional ->
//! * y `[m, n]` = x @ w + b, exactly as `linear` (linear.wgsl's two kernels, rendered with a second output: [`wgsl`])
//! * y2 `[m, n]` = [`Epilogue`] of y: `resid + y` (hook_attn_out / hook_mlp_out into the residual
//!   stream) or `act(y)` (mlp.hook_pre -> the activation that hook_post caches).
//!
//! The activations are the elementwise ops' own WGSL, so y2 equals the unfused op on y. Not:
//! quantized or split weights (those keep `linear_quant` / `concat_cols` and the unfused ops), no
//! gated MLP (its product needs a second matmul).

use crate::ops::linear::{row_block_grid, tiled_grid};
use crate::ops::{gelu, gelu_new, KernelDef};
use crate::{GpuTensor, LinearKernel, Recorder};

/// The uniform's fields after linear.wgsl's (`Params` stays 16-byte aligned).
const PARAMS: &str = "    epilogue: u32, // 0: resid + y, 1: gelu_new, 2: gelu, 3: silu
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,";

/// The outputs and the store that replace linear.wgsl's: y and y2 = epilogue(y). The
/// activations are the elementwise ops' own WGSL helpers (gelu_new.rs, gelu.rs) and silu.rs's
/// expression, the residual sum add.rs's `a + b`, so y2 equals the unfused op on y. `epilogue`
/// is a uniform: the switch is uniform control flow. Bindings: uniform, x, w, bias, resid, then
/// y, y2 (6 storage buffers).
const OUTPUTS: &str = "@group(0) @binding(4) var<storage, read> resid: array<f32>;    // [m, n] (epilogue 0), or a placeholder
@group(0) @binding(5) var<storage, read_write> y: array<f32>;  // [m, n]
@group(0) @binding(6) var<storage, read_write> y2: array<f32>; // [m, n]

// Writes y[idx] = s and y2[idx] = epilogue(s).
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
    var e = s;
    switch p.epilogue {
        case 0u: { e = resid[idx] + s; }
        case 1u: { e = gelu_new_of(s); }
        case 2u: { e = gelu_of(s); }
        default: { e = s / (1.0 + exp(-s)); }
    }
    y2[idx] = e;
}
";

/// The module: linear.wgsl's two kernels, their loops and sums verbatim, with [`PARAMS`] added to
/// the uniform, [`OUTPUTS`] in place of its output and store, the entry points renamed; then the
/// activations' helpers.
fn wgsl() -> String {
    fn once(s: &str, from: &str, to: &str) -> String {
        assert_eq!(s.matches(from).count(), 1, "linear.wgsl: expected one {from:?}");
        s.replacen(from, to, 1)
    }
    let src = include_str!("linear.wgsl");
    let (head, rest) = src.split_once("// {OUTPUTS").expect("linear.wgsl: the outputs marker");
    let (_, tail) = rest.split_once("// {END OUTPUTS}").expect("linear.wgsl: the end-of-outputs marker");
    let head = once(head, "    // {EPILOGUE PARAMS}", PARAMS);
    let tail = once(&once(tail, "fn linear(", "fn linear_epilogue("), "fn linear_rows(", "fn linear_rows_epilogue(");
    format!("{head}{OUTPUTS}{tail}\n{}\n{}", gelu_new::OP.helpers, gelu::OP.helpers)
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
