//! The engine: the model, on WebGPU or the CPU, in a dedicated Web Worker.
//!
//! - `protocol.rs`: the messages between the page and the worker (serde-wasm-bindgen).
//! - `client.rs`: the page's handle (`EngineClient`): start a worker, await replies.
//! - `worker.rs`: the worker's side: one model, a queue of requests, runs and sweeps.
//! - `local.rs`: the model on a backend in the current thread (`Engine`), used by the worker
//!   and by the in-page benchmark.

mod causal;
pub mod client;
pub mod local;
pub mod protocol;
pub mod worker;

pub use client::{EngineClient, EngineEvent};
pub use protocol::{CpuReason, ModelSummary, RunFailure, SweepResult};
