//! `softmax`: numerically stable softmax over the last axis (attention patterns).
//!
//! x `[.., cols]` (used on scores `[n_heads, q_pos, k_pos]` = `[n_heads*pos, pos]` rows) ->
//! y same shape (hook_pattern). Entries <= -1e38 (the -inf of the causal mask) give exactly 0;
//! the row max is taken over the other entries. A row with no such entry gives zeros (PyTorch
//! would give NaN; a causal mask never produces one).
//!
//! Not: log-softmax, no temperature, no mask input (the mask is already in the -inf entries),
//! and NaN inputs are not propagated reliably.

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("softmax.wgsl");
pub(crate) const SOFTMAX: KernelDef = KernelDef::new("softmax", WGSL, 1, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[SOFTMAX];

/// Entries at or below this are masked (must match MASKED in softmax.wgsl).
const MASKED: f32 = -1.0e38;

impl Recorder<'_> {
    /// x `[.., cols]` -> `[.., cols]`, softmax over the last axis.
    pub fn softmax(&mut self, x: &GpuTensor) -> GpuTensor {
        let cols = x.last_dim();
        let rows = x.len().checked_div(cols).unwrap_or(0);
        let y = self.output(&x.shape);
        let grid = self.ctx.grid_1d(rows as u32);
        self.dispatch(
            SOFTMAX,
            &[rows as u32, cols as u32],
            &[&x.buffer],
            &[&y.buffer],
            grid,
        );
        y
    }
}

/// CPU reference over rows of length `cols`.
pub fn softmax_cpu(x: &[f32], cols: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    if cols == 0 {
        return y;
    }
    for (xr, yr) in x.chunks(cols).zip(y.chunks_mut(cols)) {
        let mut m = f32::MIN;
        for &v in xr {
            if v > MASKED {
                m = m.max(v);
            }
        }
        let mut s = 0.0f32;
        for &v in xr {
            if v > MASKED {
                s += (v - m).exp();
            }
        }
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = if v > MASKED { (v - m).exp() / s } else { 0.0 };
        }
    }
    y
}
