//! glassbox-core: everything about a model that is not pixels. Configs, weight loading,
//! tokenizers, the hooked forward pass (one code path, two backends), interventions, runs and
//! the experiment value they are lowered from.
//! Compiles natively and for wasm32; knows nothing of leptos or the DOM.
// wgpu's handles are Send + Sync natively (where the tests share them across threads) but not on
// wasm32, where everything runs on one thread: the Arcs are right for both.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
#![allow(non_snake_case)] // Weight names follow the field: W_Q, W_in, b_out.

pub mod analysis;
pub mod backend;
pub mod bundle;
pub mod config;
pub mod cpu;
mod error;
pub mod experiment;
pub mod export;
pub mod generate;
pub mod gguf;
pub mod gguf_model;
pub mod gpu;
pub mod hash;
pub mod hf_tokenizer;
pub mod hooks;
pub mod model;
pub mod run;
pub mod share;
pub mod tasks;
pub mod tensor;
pub mod tokenizer;
pub mod weights;

pub use backend::Backend;
pub use bundle::{ModelBundle, QuantizeOnLoad, Tokenizer};
pub use config::Config;
pub use cpu::CpuBackend;
pub use error::{Error, Result};
pub use experiment::{Analysis, BackendChoice, Experiment, InterventionSpec, ModelRef, ModelSource, Prompt, Selection, SpecOp, SteerSpec, SteerVector, View};
pub use generate::{generate, GenerateOptions, Generation, KvCache, SteerAt, Steering};
pub use glassbox_kernels::{GpuAdapter, QuantFormat};
pub use gpu::GpuBackend;
pub use hf_tokenizer::HfTokenizer;
pub use hooks::{hook_names, hook_point, hook_points, HookKind, HookPoint};
pub use model::HookedTransformer;
pub use run::{BatchRequest, CacheSpec, Intervention, InterventionOp, RunOutput, RunRequest};
pub use share::{Fragment, ShareError, Widget};
pub use tensor::HostTensor;
pub use tokenizer::VocabTokenizer;
pub use weights::ModelWeights;
