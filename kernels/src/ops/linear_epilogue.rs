//! `linear_epilogue`: a dense layer whose stores also apply the next elementwise op: `linear`
//! and then `add` (the residual sum) or an activation (`gelu_new`, `gelu`, `silu`), in one
//! dispatch, both results written.
//!
//! x `[m, k]` (any leading shape), w `[k, n]` (f32, or quantized: Q8_0, Q4_0, Q4_K, Q6_K blocks of
//! `W_t [n, k]`), b `[n]` optional ->
//! * y `[m, n]` = x @ w + b, exactly as the matmul alone (`linear`, `linear_quant`: their WGSL
//!   rendered with a second output by [`render`])
//! * y2 `[m, n]` = [`Epilogue`] of y: `resid + y` (hook_attn_out / hook_mlp_out into the residual
//!   stream), `act(y)` (mlp.hook_pre -> the activation that hook_post caches) or `a * y` (a gated
//!   MLP: act(hook_pre) times hook_pre_linear, the hook_post of SwiGLU).
//!
//! The activations are the elementwise ops' own WGSL, so y2 equals the unfused op on y. Not:
//! split weights (those keep `concat_cols` and the unfused ops).

use crate::ops::linear::{row_block_grid, tiled_grid};
use crate::ops::{gelu, gelu_new, KernelDef};
use crate::{GpuTensor, LinearKernel, Recorder};

/// The uniform's fields after linear.wgsl's (`Params` stays 16-byte aligned).
const PARAMS: &str = "    epilogue: u32, // 0: other + y, 1: gelu_new, 2: gelu, 3: silu, 4: other * y
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,";

/// The outputs and the store that replace linear.wgsl's: y and y2 = epilogue(y). The
/// activations are the elementwise ops' own WGSL helpers (gelu_new.rs, gelu.rs) and silu.rs's
/// expression, the residual sum add.rs's `a + b` and the gated product mul.rs's `a * b`, so y2
/// equals the unfused op on y. `epilogue` is a uniform: the switch is uniform control flow.
/// Bindings: uniform, x, w, bias, other (the residual or the gate's activation), then y, y2 (6
/// storage buffers).
const OUTPUTS: &str = "@group(0) @binding(4) var<storage, read> other: array<f32>;    // [m, n] (epilogues 0 and 4), or a placeholder
@group(0) @binding(5) var<storage, read_write> y: array<f32>;  // [m, n]
@group(0) @binding(6) var<storage, read_write> y2: array<f32>; // [m, n]

// Writes y[idx] = s and y2[idx] = epilogue(s).
fn store_y(idx: u32, s: f32) {
    y[idx] = s;
    var e = s;
    switch p.epilogue {
        case 0u: { e = other[idx] + s; }
        case 1u: { e = gelu_new_of(s); }
        case 2u: { e = gelu_of(s); }
        case 3u: { e = s / (1.0 + exp(-s)); }
        default: { e = other[idx] * s; }
    }
    y2[idx] = e;
}
";

/// A linear kernel module rendered with an epilogue: [`PARAMS`] added to its uniform, [`OUTPUTS`]
/// in place of its output and `store_y` (between its `{OUTPUTS` and `{END OUTPUTS}` markers),
/// each entry point `e` renamed `e_epilogue`, its loops and sums verbatim; then the activations'
/// helpers. `src` stores every output through `store_y`.
fn render(file: &str, src: &str, entries: &[&str]) -> String {
    let once = |s: &str, from: &str, to: &str| {
        assert_eq!(s.matches(from).count(), 1, "{file}: expected one {from:?}");
        s.replacen(from, to, 1)
    };
    let (head, rest) = src.split_once("// {OUTPUTS").unwrap_or_else(|| panic!("{file}: the outputs marker"));
    let (_, tail) = rest.split_once("// {END OUTPUTS}").unwrap_or_else(|| panic!("{file}: the end-of-outputs marker"));
    let head = once(head, "    // {EPILOGUE PARAMS}", PARAMS);
    let tail = entries.iter().fold(tail.to_string(), |t, e| once(&t, &format!("fn {e}("), &format!("fn {e}_epilogue(")));
    format!("{head}{OUTPUTS}{tail}\n{}\n{}", gelu_new::OP.helpers, gelu::OP.helpers)
}

fn dense_wgsl() -> String {
    render("linear.wgsl", include_str!("linear.wgsl"), &["linear", "linear_rows"])
}
fn quant_wgsl() -> String {
    render("linear_quant.wgsl", include_str!("linear_quant.wgsl"), &["linear_q8_0", "linear_q4_0"])
}
fn q4_k_wgsl() -> String {
    render("linear_q4_k.wgsl", include_str!("linear_q4_k.wgsl"), &["linear_q4_k"])
}
fn q6_k_wgsl() -> String {
    render("linear_q6_k.wgsl", include_str!("linear_q6_k.wgsl"), &["linear_q6_k"])
}

pub(crate) const LINEAR_EPILOGUE: KernelDef = KernelDef::composed("linear_epilogue", dense_wgsl, 4, 2);
pub(crate) const LINEAR_ROWS_EPILOGUE: KernelDef = KernelDef::composed("linear_rows_epilogue", dense_wgsl, 4, 2);
pub(crate) const LINEAR_Q8_0_EPILOGUE: KernelDef = KernelDef::composed("linear_q8_0_epilogue", quant_wgsl, 4, 2);
pub(crate) const LINEAR_Q4_0_EPILOGUE: KernelDef = KernelDef::composed("linear_q4_0_epilogue", quant_wgsl, 4, 2);
pub(crate) const LINEAR_Q4_K_EPILOGUE: KernelDef = KernelDef::composed("linear_q4_k_epilogue", q4_k_wgsl, 4, 2);
pub(crate) const LINEAR_Q6_K_EPILOGUE: KernelDef = KernelDef::composed("linear_q6_k_epilogue", q6_k_wgsl, 4, 2);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] =
    &[LINEAR_EPILOGUE, LINEAR_ROWS_EPILOGUE, LINEAR_Q8_0_EPILOGUE, LINEAR_Q4_0_EPILOGUE, LINEAR_Q4_K_EPILOGUE, LINEAR_Q6_K_EPILOGUE];

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
    /// `a * y`: a gated MLP's product of the gate's activation `a` (`[m, n]`) and the linear half.
    Mul(&'t GpuTensor),
}

impl Epilogue<'_> {
    fn code(&self) -> u32 {
        match self {
            Epilogue::Add(_) => 0,
            Epilogue::GeluNew => 1,
            Epilogue::Gelu => 2,
            Epilogue::Silu => 3,
            Epilogue::Mul(_) => 4,
        }
    }

    /// The second operand, for the epilogues that have one.
    fn other(&self) -> Option<&GpuTensor> {
        match self {
            Epilogue::Add(t) | Epilogue::Mul(t) => Some(t),
            Epilogue::GeluNew | Epilogue::Gelu | Epilogue::Silu => None,
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
        let (id, grid) = if self.row_block(m, kernel) { (LINEAR_ROWS_EPILOGUE, row_block_grid(m, n)) } else { (LINEAR_EPILOGUE, tiled_grid(m, n)) };
        let (y, y2) = self.dispatch_linear(id, [m, k, n], x, &w.buffer, b, Some(epilogue), grid);
        (y, y2.expect("an epilogue writes y2"))
    }

    /// Records a linear kernel over x `[.., k]`, weights `w` and bias `b` -> y `[.., n]`: the
    /// plain kernel (uniform m, k, n, has_bias; inputs x, w, bias; output y), or with an epilogue
    /// its rendering by this file (uniform and epilogue code; inputs and the other operand; outputs y
    /// and y2). The quantized matmuls record through here; `grid` is the kernel's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch_linear(
        &mut self,
        kernel: KernelDef,
        [m, k, n]: [usize; 3],
        x: &GpuTensor,
        w: &wgpu::Buffer,
        b: Option<&GpuTensor>,
        epilogue: Option<Epilogue<'_>>,
        grid: [u32; 3],
    ) -> (GpuTensor, Option<GpuTensor>) {
        if let Some(t) = epilogue.as_ref().and_then(Epilogue::other) {
            assert_eq!(t.len(), m * n, "{}: the epilogue's operand {:?} is not [{m}, {n}]", kernel.entry, t.shape);
        }
        let mut shape = x.shape.clone();
        match shape.last_mut() {
            Some(last) => *last = n,
            None => shape.push(n),
        }
        let y = self.output(&shape);
        let y2 = epilogue.map(|_| self.output(&shape));
        if m == 0 || n == 0 {
            return (y, y2);
        }
        let dummy = self.ctx.dummy.clone();
        let bias = b.map(|b| &**b.buffer).unwrap_or(&dummy);
        let params = [m as u32, k as u32, n as u32, u32::from(b.is_some())];
        match (epilogue, &y2) {
            (Some(epilogue), Some(y2)) => {
                let other = epilogue.other().map_or(&dummy, |t| &**t.buffer);
                let params = [&params[..], &[epilogue.code()]].concat();
                self.dispatch(kernel, &params, &[&x.buffer, w, bias, other], &[&y.buffer, &y2.buffer], grid);
            }
            _ => self.dispatch(kernel, &params, &[&x.buffer, w, bias], &[&y.buffer], grid),
        }
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
    Mul(&'t [f32]),
}

impl EpilogueCpu<'_> {
    /// The unfused op's reference on a matmul's result y.
    pub fn apply(self, y: &[f32]) -> Vec<f32> {
        match self {
            EpilogueCpu::Add(r) => super::add::add_cpu(r, y),
            EpilogueCpu::GeluNew => super::gelu_new::gelu_new_cpu(y),
            EpilogueCpu::Gelu => super::gelu::gelu_cpu(y),
            EpilogueCpu::Silu => super::silu::silu_cpu(y),
            EpilogueCpu::Mul(a) => super::mul::mul_cpu(a, y),
        }
    }
}

/// CPU reference: `linear_cpu`, then the unfused op's reference on its result. -> (y, y2).
pub fn linear_epilogue_cpu(x: &[f32], w: &[f32], b: Option<&[f32]>, m: usize, k: usize, n: usize, epilogue: EpilogueCpu<'_>) -> (Vec<f32>, Vec<f32>) {
    let y = super::linear::linear_cpu(x, w, b, m, k, n);
    let y2 = epilogue.apply(&y);
    (y, y2)
}
