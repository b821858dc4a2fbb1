//! The operations the forward pass needs from a backend. The model (`model.rs`) is written once
//! against this trait; `cpu.rs` (candle-core) and `gpu.rs` (our WGSL kernels) implement it.
//!
//! Ops take `&self` and return new tensors. On the GPU they only record work into one command
//! encoder; nothing runs until [`Backend::read`], which submits once and awaits the read-back.
//! On the CPU they compute eagerly and `read` only copies out.

use crate::config::{ActFn, Normalization};
use crate::tensor::HostTensor;
use crate::weights::{HostMatrix, MatrixRole};
use crate::Result;

#[allow(async_fn_in_trait)] // Backends are used from one thread (wasm32 has no other).
pub trait Backend {
    /// A tensor living on this backend. Cloning is cheap (shared storage).
    type Tensor: Clone;

    /// A weight matrix living on this backend: a dense tensor, or (GPU) quantized blocks.
    type Matrix: Clone;

    /// A short human-readable name: "CPU" or "WebGPU (SwiftShader)".
    fn name(&self) -> String;

    /// Copies a host tensor onto the backend.
    fn upload(&self, t: &HostTensor) -> Result<Self::Tensor>;

    /// Copies a weight matrix onto the backend, used as `role` says. A backend may keep
    /// quantized blocks as they are or dequantize them.
    fn upload_matrix(&self, m: &HostMatrix, role: MatrixRole) -> Result<Self::Matrix>;

    /// The unembedding of a tied model whose W_E was uploaded as `w_e`, when this backend can
    /// use the same storage for both (quantized blocks on the GPU: one copy instead of two).
    fn tied_unembed(&self, _w_e: &Self::Matrix) -> Option<Self::Matrix> {
        None
    }

    /// Rows `tokens` of `w_e` `[d_vocab, d_model]` -> `[tokens, d_model]` (`batch * pos` tokens,
    /// sequence after sequence).
    fn embed(&self, tokens: &[u32], w_e: &Self::Matrix) -> Result<Self::Tensor>;

    /// Rows `0..n_pos` of `w_pos` `[n_ctx, d_model]`, once per sequence -> `[batch * pos, d_model]`.
    fn pos_embed(&self, n_batch: usize, n_pos: usize, w_pos: &Self::Tensor) -> Result<Self::Tensor>;

    /// LayerNorm's normalisation over the last axis of `[rows, d]`, without its weight and
    /// bias (TransformerLens's `hook_normalized` is taken before them): returns (scale
    /// `[rows, 1]`, normalized `[rows, d]`), scale = sqrt(var + eps), normalized = (x - mean) / scale.
    fn layer_norm(&self, x: &Self::Tensor, eps: f32) -> Result<(Self::Tensor, Self::Tensor)>;

    /// RMSNorm's normalisation over the last axis of `[rows, d]`, without its weight: returns
    /// (scale `[rows, 1]`, normalized `[rows, d]`), scale = sqrt(mean(x^2) + eps), normalized = x / scale.
    fn rms_norm(&self, x: &Self::Tensor, eps: f32) -> Result<(Self::Tensor, Self::Tensor)>;

    /// `x [rows, d] * w [d] + b [d]`: a norm's weight and (LayerNorm only) bias.
    fn scale_shift(&self, x: &Self::Tensor, w: &Self::Tensor, b: Option<&Self::Tensor>) -> Result<Self::Tensor>;

    /// `x [m, k] @ w [k, n] + b [n]`.
    fn linear(&self, x: &Self::Tensor, w: &Self::Matrix, b: Option<&Self::Tensor>) -> Result<Self::Tensor>;

    /// GPT-2's tanh approximation of GELU, elementwise.
    fn gelu_new(&self, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// The exact (erf) GELU, elementwise.
    fn gelu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// SiLU, x * sigmoid(x), elementwise.
    fn silu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// Elementwise `a * b`.
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Uploads the rotary tables (cos, sin) `[n_pos, rot_dim / 2]` of positions `0..n_pos`.
    fn rotary_tables(&self, n_pos: usize, rot_dim: usize, base: f32) -> Result<(Self::Tensor, Self::Tensor)>;

    /// Rotary embeddings on x `[batch * pos, n_heads * d_head]` (the first `rot_dim` features of
    /// each head, rotate-half pairing), position = row within its sequence.
    fn rotary(&self, x: &Self::Tensor, tables: &(Self::Tensor, Self::Tensor), n_heads: usize, d_head: usize, rot_dim: usize) -> Result<Self::Tensor>;

    /// q `[batch * pos, n_heads * d_head]`, k `[batch * pos, n_kv_heads * d_head]` -> scores
    /// `[batch, n_heads, q_pos, k_pos]` = q.k / sqrt(d_head) within each sequence (query head h
    /// against key head h / (n_heads / n_kv_heads)), with future keys (k_pos > q_pos) set to -inf.
    #[allow(clippy::too_many_arguments)]
    fn attn_scores(&self, q: &Self::Tensor, k: &Self::Tensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Self::Tensor>;

    /// Softmax over the last axis.
    fn softmax(&self, x: &Self::Tensor) -> Result<Self::Tensor>;

    /// pattern `[batch, n_heads, q_pos, k_pos]`, v `[batch * pos, n_kv_heads * d_head]` -> z
    /// `[batch * pos, n_heads * d_head]`.
    #[allow(clippy::too_many_arguments)]
    fn attn_z(&self, pattern: &Self::Tensor, v: &Self::Tensor, n_batch: usize, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Self::Tensor>;

    /// Elementwise `a + b`.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Elementwise `x * mul + add`, except that where `mul == 0` the result is exactly `add`
    /// (so that zeroing or replacing a masked `-inf` score gives a number, not NaN).
    fn affine(&self, x: &Self::Tensor, mul: &Self::Tensor, add: &Self::Tensor) -> Result<Self::Tensor>;

    // Fused steps: a few of the ops above that the forward pass runs back to back. Each default
    // composes those ops (the CPU backend keeps it: the reference); a backend may compute them in
    // one pass (the GPU: one dispatch each) as long as every value it returns equals the
    // composition's. The model calls one only where no intervention sits between its steps, and
    // still passes every tensor it returns through that tensor's hook.

    /// The norm (`layer_norm` or `rms_norm`) and then its weight and bias (`scale_shift`):
    /// returns (scale `[rows, 1]`, normalized `[rows, d]`, normalized * w + b `[rows, d]`).
    fn norm_scale_shift(
        &self,
        norm: Normalization,
        x: &Self::Tensor,
        eps: f32,
        w: &Self::Tensor,
        b: Option<&Self::Tensor>,
    ) -> Result<(Self::Tensor, Self::Tensor, Self::Tensor)> {
        unfused::norm_scale_shift(self, norm, x, eps, w, b)
    }

    /// The norm `norm` (`layer_norm` or `rms_norm`): returns (scale, normalized).
    fn normalize(&self, norm: Normalization, x: &Self::Tensor, eps: f32) -> Result<(Self::Tensor, Self::Tensor)> {
        match norm {
            Normalization::LayerNorm => self.layer_norm(x, eps),
            Normalization::RmsNorm => self.rms_norm(x, eps),
        }
    }

    /// The activation `act`, elementwise (`gelu_new`, `gelu` or `silu`).
    fn act(&self, act: ActFn, x: &Self::Tensor) -> Result<Self::Tensor> {
        match act {
            ActFn::GeluNew => self.gelu_new(x),
            ActFn::Gelu => self.gelu(x),
            ActFn::Silu => self.silu(x),
        }
    }

    /// `linear` and then its activation: returns (pre = x @ w + b, act(pre)).
    fn linear_act(&self, x: &Self::Tensor, w: &Self::Matrix, b: Option<&Self::Tensor>, act: ActFn) -> Result<(Self::Tensor, Self::Tensor)> {
        unfused::linear_act(self, x, w, b, act)
    }

    /// `linear` added into the residual stream: returns (out = x @ w + b, resid + out).
    fn linear_add(&self, x: &Self::Tensor, w: &Self::Matrix, b: Option<&Self::Tensor>, resid: &Self::Tensor) -> Result<(Self::Tensor, Self::Tensor)> {
        unfused::linear_add(self, x, w, b, resid)
    }

    /// A gated MLP's linear half times the gate's activation `a`: returns (pre_linear = x @ w +
    /// b, a * pre_linear).
    fn linear_mul(&self, x: &Self::Tensor, w: &Self::Matrix, b: Option<&Self::Tensor>, a: &Self::Tensor) -> Result<(Self::Tensor, Self::Tensor)> {
        unfused::linear_mul(self, x, w, b, a)
    }

    /// `attn_scores`, `softmax` and `attn_z` in a row: returns (scores, pattern, z) with the
    /// shapes those give.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(Self::Tensor, Self::Tensor, Self::Tensor)> {
        unfused::attention(self, q, k, v, n_batch, n_heads, n_kv_heads, d_head)
    }

    // Incremental decoding (`generate.rs`): one sequence whose earlier positions' keys and
    // values are cached. The full forward pass does not use these.

    /// Rows `offset..offset + n_pos` of `w_pos` `[n_ctx, d_model]` -> `[n_pos, d_model]`: the
    /// learned positions of `n_pos` tokens that follow `offset` cached ones.
    fn pos_embed_at(&self, offset: usize, n_pos: usize, w_pos: &Self::Tensor) -> Result<Self::Tensor>;

    /// The rotary tables (cos, sin) `[n_pos, rot_dim / 2]` of positions `offset..offset + n_pos`:
    /// the rows of [`Backend::rotary_tables`] `(offset + n_pos, ..)` from `offset` on, the same
    /// f32 values.
    fn rotary_tables_at(&self, offset: usize, n_pos: usize, rot_dim: usize, base: f32) -> Result<(Self::Tensor, Self::Tensor)> {
        let (cos, sin) = glassbox_kernels::cpu::rotary_tables(offset + n_pos, rot_dim, base);
        let half = rot_dim / 2;
        let rows = |t: Vec<f32>| self.upload(&HostTensor::new(vec![n_pos, half], t[offset * half..].to_vec()));
        Ok((rows(cos)?, rows(sin)?))
    }

    /// `a [m, w]` then `b [n, w]` -> `[m + n, w]` (a KV cache growing by the new positions).
    fn concat_rows(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// q `[n_q, n_heads * d_head]` (positions `n_k - n_q ..`), k `[n_k, n_kv_heads * d_head]`
    /// (positions `0..n_k`) -> scores `[n_heads, n_q, n_k]` = q.k / sqrt(d_head), with keys past
    /// each query's position (k_pos > n_k - n_q + q) set to -inf. One sequence.
    fn attn_scores_cached(&self, q: &Self::Tensor, k: &Self::Tensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Self::Tensor>;

    /// pattern `[n_heads, n_q, n_k]`, v `[n_k, n_kv_heads * d_head]` -> z `[n_q, n_heads * d_head]`.
    fn attn_z_cached(&self, pattern: &Self::Tensor, v: &Self::Tensor, n_heads: usize, n_kv_heads: usize, d_head: usize) -> Result<Self::Tensor>;

    /// `attn_scores_cached`, `softmax` and `attn_z_cached` in a row (fused, as [`Backend::attention`]):
    /// returns (scores, pattern `[n_heads, n_q, n_k]`, z `[n_q, n_heads * d_head]`).
    fn attention_cached(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(Self::Tensor, Self::Tensor, Self::Tensor)> {
        unfused::attention_cached(self, q, k, v, n_heads, n_kv_heads, d_head)
    }

    /// Finishes all recorded work and copies the tensors out, in order.
    async fn read(&self, tensors: &[&Self::Tensor]) -> Result<Vec<Vec<f32>>>;
}

/// The fused steps of [`Backend`] as the ops they fuse, one after the other: the trait's
/// defaults, and what a backend that overrides one runs where it cannot fuse (a quantized
/// matrix, say).
pub mod unfused {
    use super::Backend;
    use crate::config::{ActFn, Normalization};
    use crate::Result;

    /// [`Backend::norm_scale_shift`]: the norm, then `scale_shift`.
    pub fn norm_scale_shift<B: Backend + ?Sized>(
        be: &B,
        norm: Normalization,
        x: &B::Tensor,
        eps: f32,
        w: &B::Tensor,
        b: Option<&B::Tensor>,
    ) -> Result<(B::Tensor, B::Tensor, B::Tensor)> {
        let (scale, normalized) = be.normalize(norm, x, eps)?;
        let out = be.scale_shift(&normalized, w, b)?;
        Ok((scale, normalized, out))
    }

    /// [`Backend::linear_act`]: `linear`, then the activation.
    pub fn linear_act<B: Backend + ?Sized>(be: &B, x: &B::Tensor, w: &B::Matrix, b: Option<&B::Tensor>, act: ActFn) -> Result<(B::Tensor, B::Tensor)> {
        let pre = be.linear(x, w, b)?;
        let post = be.act(act, &pre)?;
        Ok((pre, post))
    }

    /// [`Backend::linear_add`]: `linear`, then `add` into the residual.
    pub fn linear_add<B: Backend + ?Sized>(be: &B, x: &B::Tensor, w: &B::Matrix, b: Option<&B::Tensor>, resid: &B::Tensor) -> Result<(B::Tensor, B::Tensor)> {
        let out = be.linear(x, w, b)?;
        let sum = be.add(resid, &out)?;
        Ok((out, sum))
    }

    /// [`Backend::linear_mul`]: `linear`, then `mul` by the gate's activation.
    pub fn linear_mul<B: Backend + ?Sized>(be: &B, x: &B::Tensor, w: &B::Matrix, b: Option<&B::Tensor>, a: &B::Tensor) -> Result<(B::Tensor, B::Tensor)> {
        let pre_linear = be.linear(x, w, b)?;
        let post = be.mul(a, &pre_linear)?;
        Ok((pre_linear, post))
    }

    /// [`Backend::attention_cached`]: `attn_scores_cached`, `softmax`, `attn_z_cached`.
    pub fn attention_cached<B: Backend + ?Sized>(
        be: &B,
        q: &B::Tensor,
        k: &B::Tensor,
        v: &B::Tensor,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(B::Tensor, B::Tensor, B::Tensor)> {
        let scores = be.attn_scores_cached(q, k, n_heads, n_kv_heads, d_head)?;
        let pattern = be.softmax(&scores)?;
        let z = be.attn_z_cached(&pattern, v, n_heads, n_kv_heads, d_head)?;
        Ok((scores, pattern, z))
    }

    /// [`Backend::attention`]: `attn_scores`, `softmax`, `attn_z`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention<B: Backend + ?Sized>(
        be: &B,
        q: &B::Tensor,
        k: &B::Tensor,
        v: &B::Tensor,
        n_batch: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_head: usize,
    ) -> Result<(B::Tensor, B::Tensor, B::Tensor)> {
        let scores = be.attn_scores(q, k, n_batch, n_heads, n_kv_heads, d_head)?;
        let pattern = be.softmax(&scores)?;
        let z = be.attn_z(&pattern, v, n_batch, n_heads, n_kv_heads, d_head)?;
        Ok((scores, pattern, z))
    }
}
