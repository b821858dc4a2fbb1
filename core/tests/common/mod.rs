//! Shared test helpers: fixtures, and one GPU backend per test binary.
#![allow(dead_code)]

use std::path::PathBuf;

use glassbox_core::weights::read_safetensors;
use glassbox_core::{Config, GpuBackend, HostTensor, ModelWeights};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A model fixture written by python/make_parity_fixtures.py.
pub struct Fixture {
    pub cfg: Config,
    pub weights: ModelWeights<HostTensor>,
    pub tokens: Vec<u32>,
    /// Activations from Hugging Face transformers / TransformerLens, keyed by hook name.
    pub activations: std::collections::HashMap<String, HostTensor>,
    /// TransformerLens's cache order.
    pub hook_names: Vec<String>,
}

pub fn fixture(name: &str) -> Fixture {
    let dir = repo_root().join("fixtures").join(name);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("reading fixture {name}/{f}: {e}"));
    let cfg = Config::from_hf_json(std::str::from_utf8(&read("config.json")).unwrap()).unwrap();
    let weights = ModelWeights::from_hf_gpt2(&cfg, read_safetensors(&read("model.safetensors")).unwrap()).unwrap();
    let tokens: serde_json::Value = serde_json::from_slice(&read("tokens.json")).unwrap();
    let tokens = tokens["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    let activations = read_safetensors(&read("activations.safetensors")).unwrap();
    let hook_names = serde_json::from_slice(&read("hook_names.json")).unwrap();
    Fixture { cfg, weights, tokens, activations, hook_names }
}

/// The GPU backend on whatever adapter wgpu finds (lavapipe in CI). A missing adapter fails the
/// test: the test command installs lavapipe, so there must be one.
pub fn gpu() -> &'static GpuBackend {
    use std::sync::OnceLock;
    struct Shared(GpuBackend);
    // SAFETY-free sharing: tests in one binary may run on several threads, but wgpu's native
    // types are Send + Sync; the backend's RefCell is only used inside one test at a time
    // because GPU tests take the lock below.
    unsafe impl Sync for Shared {}
    unsafe impl Send for Shared {}
    static GPU: OnceLock<Shared> = OnceLock::new();
    &GPU.get_or_init(|| {
        Shared(pollster::block_on(GpuBackend::new()).expect("no GPU adapter: install mesa-vulkan-drivers (lavapipe) and set WGPU_BACKEND=vulkan"))
    })
    .0
}

/// Serialises the tests that use the shared GPU backend.
pub fn gpu_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fixture of any family (python/make_family_fixtures.py): weights through the general
/// Hugging Face loader.
pub struct FamilyFixture {
    pub dir: PathBuf,
    pub cfg: Config,
    pub weights: ModelWeights<HostTensor, glassbox_core::weights::HostMatrix>,
    pub tokens: Vec<u32>,
    pub activations: std::collections::HashMap<String, HostTensor>,
    pub hook_names: Vec<String>,
}

pub fn family_fixture(name: &str) -> FamilyFixture {
    let dir = repo_root().join("fixtures").join(name);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("reading fixture {name}/{f}: {e}"));
    let cfg = Config::from_hf_json(std::str::from_utf8(&read("config.json")).unwrap()).unwrap();
    let weights = glassbox_core::weights::from_hf_tensors(&cfg, read_safetensors(&read("model.safetensors")).unwrap()).unwrap();
    let tokens: serde_json::Value = serde_json::from_slice(&read("tokens.json")).unwrap();
    let tokens = tokens["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    let activations = read_safetensors(&read("activations.safetensors")).unwrap();
    let hook_names = serde_json::from_slice(&read("hook_names.json")).unwrap();
    FamilyFixture { dir, cfg, weights, tokens, activations, hook_names }
}
