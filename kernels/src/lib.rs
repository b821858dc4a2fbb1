//! glassbox-kernels: the WebGPU compute kernels (WGSL, run through wgpu) of the GPT-2-style
//! forward pass (GPT-2, Llama-family and GPT-NeoX blocks), each with a plain-Rust CPU reference.
//!
//! * [`GpuContext`] owns the device, the queue and the compute pipelines (each compiled at its
//!   first dispatch, so a model compiles only the kernels it runs; [`GpuContext::compile_all`]
//!   compiles every one inside an error scope: a WGSL error is a [`GpuError::Shader`]).
//! * [`Recorder`] records dispatches into ONE command encoder; every op returns a new
//!   [`GpuTensor`] (a fresh buffer), so every intermediate can be kept as a hook.
//! * [`GpuContext::read`] copies tensors back to the host in one submission.
//! * [`cpu`] re-exports the CPU reference of every op (`<op>_cpu`), used by the tests and
//!   available to callers that want to check a result.
//!
//! Kernels register themselves beside their WGSL: each `ops/<op>.rs` declares its `KERNELS`
//! (entry points and binding counts), listed once by the `ops!` macro in `ops/mod.rs`; the
//! elementwise ops share one WGSL template (`ops/elementwise.rs`) and differ only in an
//! expression. [`ops::wgsl_sources`] gives every module's WGSL as compiled (templates rendered).
//!
//! [`QuantFormat`] is every weight format (f32, f16, Q8_0, Q4_0, Q4_K, Q6_K) in one place:
//! GGUF type code, block geometry, the one dequantizer, and which kernel reads its blocks.
//! Quantized weights ([`QuantTensor`]) are dequantized inside `linear_q8_0` / `linear_q4_0` /
//! `linear_q4_k` / `linear_q6_k`; host quantizers live in [`ops::linear_quant`].
//!
//! All tensors are contiguous, row-major f32. No kernel needs `shader-f16` or subgroups, and
//! the WGSL compiles under both naga (native wgpu; `cargo test`) and Tint (Chromium;
//! `node kernels/scripts/tint_check.mjs`). See kernels/README.md.
// wgpu's handles are Send + Sync natively (where the tests share them across threads) but not on
// wasm32, where everything runs on one thread: the Arcs are right for both.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

mod context;
mod format;
pub mod ops;

pub use context::{GpuAdapter, GpuBuffer, GpuContext, GpuError, GpuTensor, Recorder, TrackedBuffer, MAX_POOLED_BYTES};
pub use format::{QuantFormat, UnknownFormat};
pub use ops::linear::LinearKernel;
pub use ops::linear_epilogue::Epilogue;
pub use ops::linear_quant::QuantTensor;
pub use ops::norm_scale_shift::NormKind;

/// The CPU reference of every op, under one roof.
pub mod cpu {
    pub use crate::ops::add::add_cpu;
    pub use crate::ops::affine::affine_cpu;
    pub use crate::ops::attention::{attention_cached_cpu, attention_cpu};
    pub use crate::ops::attn_scores::attn_scores_cpu;
    pub use crate::ops::attn_scores_cached::attn_scores_cached_cpu;
    pub use crate::ops::attn_z::attn_z_cpu;
    pub use crate::ops::attn_z_cached::attn_z_cached_cpu;
    pub use crate::ops::concat_cols::concat_cols_cpu;
    pub use crate::ops::embed::{embed_cpu, pos_embed_cpu};
    pub use crate::ops::embed_quant::embed_quant_cpu;
    pub use crate::ops::gelu::gelu_cpu;
    pub use crate::ops::gelu_new::gelu_new_cpu;
    pub use crate::ops::layer_norm::layer_norm_cpu;
    pub use crate::ops::linear::linear_cpu;
    pub use crate::ops::linear_epilogue::{linear_epilogue_cpu, EpilogueCpu};
    pub use crate::ops::linear_q4_k::{dequantize_q4_k, linear_q4_k_cpu};
    pub use crate::ops::linear_q6_k::{dequantize_q6_k, linear_q6_k_cpu};
    pub use crate::ops::linear_quant::{
        dequantize_q4_0, dequantize_q8_0, linear_q4_0_cpu, linear_q8_0_cpu, linear_quant_cpu, quantize, quantize_q4_0, quantize_q8_0,
    };
    pub use crate::ops::mul::mul_cpu;
    pub use crate::ops::norm_scale_shift::norm_scale_shift_cpu;
    pub use crate::ops::rms_norm::rms_norm_cpu;
    pub use crate::ops::rotary::{rotary_cpu, rotary_tables};
    pub use crate::ops::scale_shift::scale_shift_cpu;
    pub use crate::ops::silu::silu_cpu;
    pub use crate::ops::softmax::softmax_cpu;
}
