//! `attention`: causal attention in one dispatch: `attn_scores`, `softmax` and `attn_z` fused,
//! every intermediate still written (they are hooks).
//!
//! q `[batch*pos, n_heads*d_head]`, k and v `[batch*pos, n_kv_heads*d_head]` ->
//! * scores `[batch, n_heads, pos, pos]` (hook_attn_scores): q.k / sqrt(d_head), -inf above the
//!   diagonal, exactly as `attn_scores`;
//! * pattern, same shape (hook_pattern): the softmax of each row, as `softmax`;
//! * z `[batch*pos, n_heads*d_head]` (hook_z before its own hook), as `attn_z`.
//!
//! Grouped-query: query head h reads key / value head h / (n_heads / n_kv_heads). One workgroup
//! per (batch, head, query) row; the row lives in the output buffers, not in workgroup memory,
//! so any context length works. The same sums in the same order as the three unfused kernels
//! (see attention.wgsl), so the values equal theirs.
//!
//! With a KV cache ([`Recorder::attention_cached`]): one sequence of n_q new queries against all
//! n_k keys so far, the causal mask shifted by n_k - n_q, exactly as `attn_scores_cached`,
//! `softmax` and `attn_z_cached` (the same kernel, its offset not 0).
//!
//! Not: an intervention on the scores or the pattern (it must land between the steps: the model
//! then runs the unfused kernels).

use crate::ops::KernelDef;
use crate::{GpuTensor, Recorder};

const WGSL: &str = include_str!("attention.wgsl");
pub(crate) const ATTENTION: KernelDef = KernelDef::new("attention", WGSL, 3, 3);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[ATTENTION];

impl Recorder<'_> {
    /// q `[batch*pos, n_heads*d_head]`, k, v `[batch*pos, n_kv_heads*d_head]` -> (scores, pattern
    /// `[batch, n_heads, pos, pos]` (`[n_heads, pos, pos]` when `n_batch` is 1), z
    /// `[batch*pos, n_heads*d_head]`).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        let width = n_heads * d_head;
        assert!(width > 0, "attention: n_heads * d_head must be > 0");
        assert_eq!(q.len() % width, 0, "attention: q {:?} is not [pos, {width}]", q.shape);
        assert!(n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads), "attention: {n_heads} heads do not share {n_kv_heads} key heads evenly");
        let rows = q.len() / width;
        let kv_len = rows * n_kv_heads * d_head;
        assert_eq!(k.len(), kv_len, "attention: q {:?} and k {:?} differ in positions", q.shape, k.shape);
        assert_eq!(v.len(), kv_len, "attention: q {:?} and v {:?} differ in positions", q.shape, v.shape);
        assert!(n_batch > 0 && rows.is_multiple_of(n_batch), "attention: {rows} rows do not split into {n_batch} sequences");
        let pos = rows / n_batch;
        self.attention_rows(q, k, v, [n_batch, pos, pos], n_heads, n_kv_heads, d_head)
    }

    /// With a KV cache: q `[n_q, n_heads*d_head]` (the new positions), k, v `[n_k,
    /// n_kv_heads*d_head]` (every position so far, n_k >= n_q) -> (scores, pattern `[n_heads, n_q,
    /// n_k]`, z `[n_q, n_heads*d_head]`), equal to `attn_scores_cached`, `softmax`, `attn_z_cached`.
    pub fn attention_cached(&mut self, q: &GpuTensor, k: &GpuTensor, v: &GpuTensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> (GpuTensor, GpuTensor, GpuTensor) {
        let (width, kwidth) = (n_heads * d_head, n_kv_heads * d_head);
        assert!(width > 0 && kwidth > 0, "attention_cached: heads * d_head must be > 0");
        assert!(n_heads.is_multiple_of(n_kv_heads), "attention_cached: {n_heads} heads do not share {n_kv_heads} key heads evenly");
        assert!(q.len().is_multiple_of(width), "attention_cached: q {:?} is not [n_q, {width}]", q.shape);
        assert!(k.len().is_multiple_of(kwidth), "attention_cached: k {:?} is not [n_k, {kwidth}]", k.shape);
        let (n_q, n_k) = (q.len() / width, k.len() / kwidth);
        assert!(n_q <= n_k, "attention_cached: {n_q} queries but only {n_k} keys");
        assert_eq!(v.len(), k.len(), "attention_cached: k {:?} and v {:?} differ", k.shape, v.shape);
        self.attention_rows(q, k, v, [1, n_q, n_k], n_heads, n_kv_heads, d_head)
    }

    /// The dispatch: `n_batch` sequences of `n_q` queries against `n_k` keys each.
    #[allow(clippy::too_many_arguments)]
    fn attention_rows(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        [n_batch, n_q, n_k]: [usize; 3],
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> (GpuTensor, GpuTensor, GpuTensor) {
        let shape = if n_batch == 1 { vec![n_heads, n_q, n_k] } else { vec![n_batch, n_heads, n_q, n_k] };
        let scores = self.output(&shape);
        let pattern = self.output(&shape);
        let z = self.output(&[n_batch * n_q, n_heads * d_head]);
        let n_rows = n_batch * n_heads * n_q;
        let grid = self.ctx.grid_1d(u32::try_from(n_rows).expect("attention: too many rows"));
        self.dispatch(
            ATTENTION,
            &[
                n_rows as u32,
                n_q as u32,
                n_heads as u32,
                n_kv_heads as u32,
                d_head as u32,
                f32::NEG_INFINITY.to_bits(),
                (d_head as f32).sqrt().to_bits(),
                n_k as u32,
                (n_k - n_q) as u32,
            ],
            &[&q.buffer, &k.buffer, &v.buffer],
            &[&scores.buffer, &pattern.buffer, &z.buffer],
            grid,
        );
        (scores, pattern, z)
    }
}

/// CPU reference: the unfused references composed. -> (scores, pattern, z).
pub fn attention_cpu(q: &[f32], k: &[f32], v: &[f32], n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let scores = super::attn_scores::attn_scores_cpu(q, k, n_batch, n_heads, n_kv_heads, d_head);
    let pos = q.len() / (n_heads * d_head) / n_batch;
    let pattern = super::softmax::softmax_cpu(&scores, pos);
    let z = super::attn_z::attn_z_cpu(&pattern, v, n_batch, n_heads, n_kv_heads, d_head);
    (scores, pattern, z)
}

/// CPU reference with a KV cache: the unfused references composed. -> (scores, pattern, z).
pub fn attention_cached_cpu(q: &[f32], k: &[f32], v: &[f32], n_heads: usize, n_kv_heads: usize, d_head: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let scores = super::attn_scores_cached::attn_scores_cached_cpu(q, k, n_heads, n_kv_heads, d_head);
    let n_k = k.len() / (n_kv_heads * d_head);
    let pattern = super::softmax::softmax_cpu(&scores, n_k);
    let z = super::attn_z_cached::attn_z_cached_cpu(&pattern, v, n_heads, n_kv_heads, d_head);
    (scores, pattern, z)
}
