//! An in-page benchmark for BENCHMARKS.md, exported to JavaScript (trunk puts the exports on
//! `window.wasmBindings`): `await window.wasmBindings.bench_forward("induction-2l", prompt,
//! runs, "gpu" | "cpu")` loads the model, runs `runs` forward passes with every hook cached
//! on that backend after two warm-up runs, and returns the median and minimum in ms as JSON;
//! `bench_forward_url(base, files, prompt, runs, backend)` does the same on a model fetched
//! from a URL (the GPT-2-small-shaped model of the e2e server's hub mimic).
//! `bench_generate(model, prompt, new_tokens, backend, use_cache)` times greedy generation
//! (`glassbox_core::generate`) with or without the KV cache and returns tokens per second.
//! The page's own UI never calls them; `e2e/bench/browser_bench.mjs` does.
//! `window.wasmBindings.lose_gpu_device()` destroys the WebGPU device in use, as a lost GPU
//! would, for the end-to-end test of the fallback to the CPU; `crash_engine()` makes the engine
//! panic in its worker, for the test of the restart. `gpu_buffer_bytes()` (in the worker:
//! `self.glassboxGpuBytes()`) reports the live GPU storage-buffer bytes, for the memory test.

use glassbox_core::generate::GenerateOptions;
use glassbox_core::RunRequest;
use wasm_bindgen::prelude::*;

use crate::engine::local::Engine;
use crate::loader::load_bundle;
use crate::models::find_model;

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

#[wasm_bindgen]
pub async fn bench_forward(model: String, prompt: String, runs: u32, backend: String) -> Result<JsValue, JsValue> {
    let entry = find_model(&model).ok_or_else(|| JsValue::from_str(&format!("unknown model {model}")))?;
    let (bundle, _) = load_bundle(entry, |_| {}).await.map_err(|e| JsValue::from_str(&e))?;
    time_forward(&bundle, &prompt, runs, &backend).await
}

/// [`bench_forward`] on a model from a URL: `files` (comma-separated names) are fetched from
/// `base` (for example `http://127.0.0.1:4199/hub/glassbox-test/gpt2-small-random/resolve/main`
/// and `config.json,model.safetensors,tokenizer.json`): the GPT-2-small-shaped model of the
/// wasm-against-native comparison.
#[wasm_bindgen]
pub async fn bench_forward_url(base: String, files: String, prompt: String, runs: u32, backend: String) -> Result<JsValue, JsValue> {
    let mut fetched = Vec::new();
    for name in files.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let bytes = crate::loader::fetch_bytes(&format!("{}/{name}", base.trim_end_matches('/')), |_, _| {}).await.map_err(|e| JsValue::from_str(&e))?;
        fetched.push((name.to_string(), bytes));
    }
    let bundle = glassbox_core::ModelBundle::from_files(&fetched, None).map_err(|e| JsValue::from_str(&e.to_string()))?;
    time_forward(&bundle, &prompt, runs, &backend).await
}

/// `runs` forward passes with every hook cached after two warm-up runs: the median and the
/// minimum in ms, as JSON.
async fn time_forward(bundle: &glassbox_core::ModelBundle, prompt: &str, runs: u32, backend: &str) -> Result<JsValue, JsValue> {
    let (engine, cpu_reason) = Engine::start(bundle, if backend == "cpu" { glassbox_core::BackendChoice::Cpu } else { glassbox_core::BackendChoice::WebGpu })
        .await
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    if backend == "gpu" && cpu_reason.is_some() {
        return Err(JsValue::from_str("WebGPU is unavailable in this browser"));
    }
    let tokens = bundle.tokenizer.encode(prompt).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let req = RunRequest::new(tokens.clone()).cache_all();
    let mut times = Vec::with_capacity(runs as usize);
    for i in 0..runs + 2 {
        let t = now_ms();
        engine.run(&req).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
        if i >= 2 {
            times.push(now_ms() - t);
        }
    }
    times.sort_by(f64::total_cmp);
    let json = format!(
        r#"{{"backend":"{}","n_tokens":{},"runs":{},"median_ms":{:.2},"min_ms":{:.2}}}"#,
        engine.backend_label(),
        tokens.len(),
        runs,
        times[times.len() / 2],
        times[0]
    );
    Ok(JsValue::from_str(&json))
}

#[wasm_bindgen]
pub async fn bench_generate(model: String, prompt: String, new_tokens: u32, backend: String, use_cache: bool) -> Result<JsValue, JsValue> {
    let err = |e: &dyn std::fmt::Display| JsValue::from_str(&e.to_string());
    let entry = find_model(&model).ok_or_else(|| JsValue::from_str(&format!("unknown model {model}")))?;
    let (bundle, _) = load_bundle(entry, |_| {}).await.map_err(|e| JsValue::from_str(&e))?;
    let (engine, cpu_reason) = Engine::start(&bundle, if backend == "cpu" { glassbox_core::BackendChoice::Cpu } else { glassbox_core::BackendChoice::WebGpu })
        .await
        .map_err(|e| err(&e))?;
    if backend == "gpu" && cpu_reason.is_some() {
        return Err(JsValue::from_str("WebGPU is unavailable in this browser"));
    }
    let tokens = bundle.tokenizer.encode(&prompt).map_err(|e| err(&e))?;
    let warm = GenerateOptions { max_new_tokens: 2, use_cache, ..GenerateOptions::default() };
    engine.generate(&tokens, &warm, None).await.map_err(|e| err(&e))?;
    let opts = GenerateOptions { max_new_tokens: new_tokens as usize, use_cache, ..GenerateOptions::default() };
    let t = now_ms();
    let g = engine.generate(&tokens, &opts, None).await.map_err(|e| err(&e))?;
    let ms = now_ms() - t;
    let json = format!(
        r#"{{"backend":"{}","prompt_tokens":{},"new_tokens":{},"kv_cache":{use_cache},"ms":{ms:.1},"tokens_per_s":{:.1}}}"#,
        engine.backend_label(),
        tokens.len(),
        g.tokens.len(),
        g.tokens.len() as f64 / (ms / 1000.0)
    );
    Ok(JsValue::from_str(&json))
}

/// Destroys the WebGPU device of the page's engine (in its worker), as a lost GPU would; false
/// when no engine is running.
#[wasm_bindgen]
pub fn lose_gpu_device() -> bool {
    crate::page::state::CURRENT_ENGINE.with(|c| c.borrow().as_ref().map(|e| e.lose_gpu()).is_some())
}

/// Makes the page's engine panic inside its worker, as a bug or a hostile file might: the page
/// must say so, start a new worker and keep the experiment (end-to-end test). False when no
/// engine is running.
#[wasm_bindgen]
pub fn crash_engine() -> bool {
    crate::page::state::CURRENT_ENGINE.with(|c| c.borrow().as_ref().map(|e| e.crash()).is_some())
}

/// Bytes of GPU storage buffers alive in this wasm instance (the engine's worker reads it as
/// `self.glassboxGpuBytes()`): e2e tests check that it stays flat over many runs.
#[wasm_bindgen]
pub fn gpu_buffer_bytes() -> f64 {
    glassbox_core::GpuBackend::live_buffer_bytes() as f64
}

/// The browser's own CPU matmul on packed weights (`glassbox_core::cpu::matmul`, simd128)
/// against a double-precision product, on shapes at every edge of its blocking and one of
/// GPT-2's: the largest difference relative to the largest product. The end-to-end test checks
/// that the kernel the browser runs computes what the native tests check (on portable lanes).
#[wasm_bindgen]
pub fn cpu_matmul_check() -> f64 {
    let mut worst = 0f64;
    for (m, k, n) in [(1, 64, 83), (4, 64, 83), (5, 513, 9), (63, 768, 300), (17, 1100, 129)] {
        let values = |len: usize, s: usize| (0..len).map(|i| (((i * 7 + s) % 23) as f32 - 11.0) / 11.0).collect::<Vec<f32>>();
        let (a, w) = (values(m * k, 1), values(k * n, 5));
        let mut ours = vec![0f32; m * n];
        glassbox_core::cpu::matmul::PackedMatrix::pack(k, n, &w).matmul(m, &a, &mut ours);
        let exact: Vec<f64> = (0..m * n).map(|ij| (0..k).map(|p| a[ij / n * k + p] as f64 * w[p * n + ij % n] as f64).sum()).collect();
        let scale = exact.iter().fold(0f64, |s, v| s.max(v.abs()));
        let diff = ours.iter().zip(&exact).fold(0f64, |d, (&o, &e)| d.max((o as f64 - e).abs()));
        worst = worst.max(if diff.is_nan() || scale == 0.0 { f64::INFINITY } else { diff / scale });
    }
    worst
}

/// The browser's own elementwise steps on four lanes (`glassbox_core::cpu::elementwise`, simd128
/// through `wide`): `gelu_new` and SiLU on [-20, 20] and a causal softmax, against the same
/// formulas in f64. The largest absolute difference (relative to values above 1), or infinity
/// when a masked key's probability is not exactly 0. The end-to-end test checks that the
/// simd128 build computes what the native tests check on SSE.
#[wasm_bindgen]
pub async fn cpu_elementwise_check() -> Result<f64, JsValue> {
    use glassbox_core::tensor::HostTensor;
    use glassbox_core::{Backend, CpuBackend};
    let err = |e: glassbox_core::Error| JsValue::from_str(&e.to_string());
    let cpu = CpuBackend::new();
    let x: Vec<f32> = (0..4003).map(|i| (i as f32 - 2001.0) * 0.01).collect(); // a partial group of four
    let n = 7;
    let scores: Vec<f32> = (0..n * n).map(|i| if i % n > i / n { f32::NEG_INFINITY } else { ((i * 37) % 11) as f32 - 5.0 }).collect();
    let t = cpu.upload(&HostTensor::new(vec![x.len()], x.clone())).map_err(err)?;
    let s = cpu.upload(&HostTensor::new(vec![n, n], scores.clone())).map_err(err)?;
    let (gelu, silu, pattern) = (cpu.gelu_new(&t).map_err(err)?, cpu.silu(&t).map_err(err)?, cpu.softmax(&s).map_err(err)?);
    let out = cpu.read(&[&gelu, &silu, &pattern]).await.map_err(err)?;
    let mut worst = 0f64;
    let mut diff = |ours: f32, exact: f64| {
        let d = (ours as f64 - exact).abs() / exact.abs().max(1.0);
        worst = if d.is_nan() { f64::INFINITY } else { worst.max(d) };
    };
    for (i, &v) in x.iter().enumerate() {
        let v = v as f64;
        diff(out[0][i], 0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v)).tanh()));
        diff(out[1][i], v / (1.0 + (-v).exp()));
    }
    for (row, probs) in scores.chunks(n).zip(out[2].chunks(n)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row.iter().map(|&s| (s as f64 - max).exp()).sum();
        for (&s, &p) in row.iter().zip(probs) {
            if s == f32::NEG_INFINITY && p != 0.0 {
                return Ok(f64::INFINITY);
            }
            diff(p, (s as f64 - max).exp() / sum);
        }
    }
    Ok(worst)
}
