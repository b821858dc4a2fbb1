//! The messages between the page and the engine's worker. Everything here crosses
//! `postMessage` through serde-wasm-bindgen; bulk numbers travel as bytes (`serde_bytes`, a
//! `Uint8Array` on the JS side) so that a large attention pattern or neuron grid costs one copy,
//! not one JS number per value. Model files travel beside the message as transferred buffers.

use glassbox_core::{BackendChoice, Config, Experiment};
use serde::{Deserialize, Serialize};

use crate::analysis::RunView;
use crate::causal::{AblationView, PatchView, ScrubView, SteerView};
use crate::inspect::{Inspection, Query};

/// From the page to the worker. Every request but `Cancel`, `LoseGpu` and `Crash` gets exactly one
/// [`Reply`] with the same id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Parse the files (sent beside the message, in this order of names) into a model and start
    /// it on the backend `backend` asks for (see [`glassbox_core::BackendChoice`]).
    Load {
        id: u64,
        names: Vec<String>,
        /// Quantize safetensors weights on load ("q8_0", "q4_0").
        quantize: Option<String>,
        backend: BackendChoice,
        /// The shipped model these files are, if any (its prompt form and Fourier view).
        shipped: Option<String>,
    },
    /// Run the experiment's prompt (with its interventions) and answer with what the inspect
    /// views show. A newer `Run` supersedes an older one still waiting.
    Run { id: u64, experiment: Experiment },
    /// Run the experiment's sweep (`Analysis::TaskSweep`, `CorpusScan`, `Patch` or `Ablate`),
    /// with progress; `corpus` is what a corpus scan reads: (what it is, in words; its text). The
    /// worker keeps a scan's result for the neuron pages of that layer.
    Sweep { id: u64, experiment: Experiment, corpus: Option<(String, String)> },
    /// Compute what one inspect view shows from the last run of the experiment's prompt (run
    /// first if the worker has not run it).
    Inspect { id: u64, experiment: Experiment, query: Query },
    /// The experiment's run (its prompt with its interventions) with every hook cached, as
    /// numpy files (`core::export`): all hooks as an `.npz`, or one `hook` as an `.npy`.
    Export { id: u64, experiment: Experiment, hook: Option<String> },
    /// Stop request `id` at its next step (between batches); its reply says it was cancelled.
    Cancel { id: u64 },
    /// Destroy the WebGPU device, as a lost GPU would (for the end-to-end test of the fallback).
    LoseGpu,
    /// Panic inside the engine, as a bug or a hostile file might (for the end-to-end test of
    /// the restart).
    Crash,
}

/// From the worker to the page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The worker's module is running and takes requests.
    Started,
    Loaded {
        id: u64,
        result: Result<ModelSummary, String>,
    },
    Ran {
        id: u64,
        #[serde(with = "packed")]
        result: Result<RunReply, RunFailure>,
    },
    Progress {
        id: u64,
        done: usize,
        total: usize,
    },
    Swept {
        id: u64,
        result: Result<SweepResult, RunFailure>,
    },
    Inspected {
        id: u64,
        #[serde(with = "packed")]
        result: Result<Inspection, RunFailure>,
    },
    Exported {
        id: u64,
        result: Result<ExportFile, RunFailure>,
    },
    /// The backend changed under the page (a lost GPU moved the model to the CPU).
    BackendChanged {
        label: String,
        reason: String,
    },
    /// The engine panicked (the worker is dead after this; the page starts another).
    Panicked(String),
}

/// What the page knows of a loaded model: everything its views need, nothing of its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelSummary {
    pub cfg: Config,
    pub card: serde_json::Value,
    /// What the prompt box says the model accepts.
    pub vocabulary_help: String,
    /// The model answers through named outputs (a classifier's classes), not next tokens.
    pub has_readout: bool,
    /// The padding token of a model that pads every prompt to a fixed length (balanced-parens).
    pub pad: Option<u32>,
    /// The backend's label for the badge ("WebGPU (software adapter)", "CPU").
    pub backend: String,
    /// Why the model is on the CPU, when it is.
    pub cpu_reason: Option<CpuReason>,
    /// Modular addition: the embedding's norm per frequency (the Fourier view).
    pub embedding_norms: Vec<f32>,
}

/// Why the engine is not on WebGPU, when it is not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CpuReason {
    /// The URL asked for the CPU (`backend=cpu`).
    Forced,
    /// WebGPU failed; the message says how.
    GpuFailed(String),
    /// The only WebGPU adapter is a software one (SwiftShader and the like), on which a forward
    /// pass is many times slower than on our CPU path; the adapter's name.
    SoftwareGpu(String),
}

/// A finished run of the inspect view.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReply {
    pub view: RunView,
    /// The notice for a prompt longer than the context (the tail was cut).
    pub cut_notice: Option<String>,
}

/// A file made in the worker for the reader to download.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportFile {
    /// The file name offered (`glassbox-activations.npz`, `blocks.0.attn.hook_pattern.npy`).
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// Arrays in the file.
    pub arrays: usize,
}

/// Why a run or sweep gave no result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunFailure {
    /// The prompt cannot run (empty, unknown characters, wrong form): the message says why.
    Prompt(String),
    /// The model failed (a bad request, a backend error).
    Engine(String),
    /// A newer request replaced it, or the page cancelled it.
    Cancelled,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::Prompt(m) | RunFailure::Engine(m) => f.write_str(m),
            RunFailure::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// A finished sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SweepResult {
    /// Every neuron's activation at the last position over all task inputs:
    /// `acts[(a * p + b) * d_mlp + n]` as little-endian f32 bytes.
    Grid {
        p: usize,
        d_mlp: usize,
        #[serde(with = "f32s")]
        acts: Vec<f32>,
    },
    /// A layer's neurons scanned over a corpus; the examples stay in the worker (a neuron
    /// page asks for its own with [`Query::Neuron`]).
    Scan { layer: usize, what: String, tokens_scanned: usize, windows: usize },
    /// An activation patching sweep (`Analysis::Patch`).
    Patch(Box<PatchView>),
    /// An ablation (`Analysis::Ablate`).
    Ablation(Box<AblationView>),
    /// Causal scrubbing (`Analysis::Scrub`).
    Scrub(Box<ScrubView>),
    /// Generation with and without a steering vector (`Analysis::Steer`).
    Steer(Box<SteerView>),
}

/// `#[serde(with = "packed")]`: a value on the wire as one `Uint8Array` of postcard bytes. A
/// run's answer is hundreds of short strings and small arrays (tokens, the top 5 at every
/// position); serde-wasm-bindgen reads each of those with calls into JS (a length, a string
/// copy), which at 128 tokens was a quarter of the task that applies the answer. Only for types
/// that postcard can read back: no `serde_json::Value`, no skipped fields.
pub mod packed {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let bytes = postcard::to_allocvec(v).map_err(serde::ser::Error::custom)?;
        serde_bytes::serialize(&bytes, s)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        postcard::from_bytes(&b).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "f32s")]`: a `Vec<f32>` on the wire as little-endian bytes (one
/// `Uint8Array`), not as one JS number per value.
pub mod f32s {
    use serde::{Deserialize, Deserializer, Serializer};

    // wasm32 and every native target we build for are little-endian: the bytes are the floats'.

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(bytemuck::cast_slice::<f32, u8>(v), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        if b.len() % 4 != 0 {
            return Err(serde::de::Error::custom(format!("{} bytes are not whole f32 values", b.len())));
        }
        // The bytes may not be 4-aligned: copy rather than cast in place.
        Ok(bytemuck::pod_collect_to_vec(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Pattern;
    use crate::inspect::{LensCellView, LensView};

    /// A run's answer and a view's data come back from their packed bytes as they went in
    /// (JSON stands in here for the JS value serde-wasm-bindgen makes: both hold the bytes).
    #[test]
    fn packed_replies_round_trip() {
        let view = RunView {
            prompt: "a \"b\"".into(),
            ids: vec![0, 5, 7],
            tokens: vec!["<bos>".into(), " a".into(), "\u{2423}".into()],
            top5: vec![vec![("x".into(), 0.5), ("y".into(), 0.25)]; 3],
            patterns: vec![Pattern { n_heads: 1, data: (0..9).map(|i| i as f32 / 9.0).collect() }],
            loss: vec![1.5, f32::INFINITY],
            elapsed_ms: 3.25,
        };
        let sent = Reply::Ran { id: 7, result: Ok(RunReply { view, cut_notice: Some("cut".into()) }) };
        let json = serde_json::to_string(&sent).unwrap();
        let Reply::Ran { id: 7, result: Ok(back) } = serde_json::from_str::<Reply>(&json).unwrap() else { panic!("{json}") };
        let Reply::Ran { result: Ok(want), .. } = sent else { unreachable!() };
        assert_eq!(format!("{back:?}"), format!("{want:?}"));

        let failed = Reply::Ran { id: 8, result: Err(RunFailure::Prompt("no".into())) };
        let back: Reply = serde_json::from_str(&serde_json::to_string(&failed).unwrap()).unwrap();
        assert!(matches!(back, Reply::Ran { id: 8, result: Err(RunFailure::Prompt(m)) } if m == "no"));

        let lens = LensView {
            labels: vec!["0_pre".into(), "final_post".into()],
            n_pos: 1,
            norm: glassbox_core::analysis::lens::LensNorm::Fresh,
            target: Some("x".into()),
            cells: vec![LensCellView { top: vec![("x".into(), 0.9)], target: Some((0.9, 0)) }; 2],
        };
        let sent = Reply::Inspected { id: 9, result: Ok(Inspection::Lens(lens.clone())) };
        let back: Reply = serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
        assert!(matches!(back, Reply::Inspected { id: 9, result: Ok(Inspection::Lens(l)) } if l == lens));
    }
}
