//! `glassbox bench`: median wall time of a forward pass with every hook cached, on a Hugging
//! Face GPT-2 directory (config.json + model.safetensors), for comparison with
//! TransformerLens's `run_with_cache` on the same weights (python/bench_transformer_lens.py).
//! `--quant q8_0|q4_0` quantizes the matrices on load (as the app's quantize-on-load does): the
//! GPU backend keeps them quantized; the CPU backend dequantizes them (it is the f32 reference).
//! Any family `config.json` works (GPT-2, Llama, Qwen2, GPT-NeoX). `--unfused` runs the GPU
//! backend's fused steps as the ops they fuse (the dispatch count before they were fused);
//! `--no-pool` makes every GPU op output a new buffer instead of reusing dropped ones.

use std::path::Path;
use std::time::Instant;

use glassbox_core::bundle::quantize_matrices;
use glassbox_core::weights::{from_hf_tensors, read_safetensors, HostMatrix};
use glassbox_core::{Backend, CacheSpec, Config, CpuBackend, GpuBackend, HookedTransformer, HostTensor, ModelWeights, QuantFormat, RunRequest};

/// Where `glassbox bench` runs the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// candle on the CPU.
    Cpu,
    /// wgpu (natively Vulkan; `WGPU_BACKEND=vulkan` for lavapipe).
    Gpu,
}

/// How `glassbox bench` stores the matrices: as read, or quantized on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchQuant {
    /// As stored in the file (f32 after loading).
    #[value(name = "f32")]
    F32,
    /// GGUF Q8_0 blocks (8-bit, 32 weights per block).
    #[value(name = "q8_0")]
    Q8_0,
    /// GGUF Q4_0 blocks (4-bit, 32 weights per block).
    #[value(name = "q4_0")]
    Q4_0,
}

impl BenchQuant {
    /// The weight format it names.
    pub fn format(self) -> QuantFormat {
        match self {
            BenchQuant::F32 => QuantFormat::F32,
            BenchQuant::Q8_0 => QuantFormat::Q8_0,
            BenchQuant::Q4_0 => QuantFormat::Q4_0,
        }
    }
}

impl std::fmt::Display for BenchQuant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.format().fmt(f)
    }
}

pub fn bench(
    dir: &Path,
    counts: &[usize],
    runs: usize,
    backend: BenchBackend,
    quant: BenchQuant,
    unfused: bool,
    no_pool: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::from_hf_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let mut weights = from_hf_tensors(&cfg, read_safetensors(&std::fs::read(dir.join("model.safetensors"))?)?)?;
    if quant != BenchQuant::F32 {
        weights = quantize_matrices(&weights, quant.format())?;
    }
    eprintln!("weights: {:.1} MB as stored ({quant})", weights.n_bytes() as f64 / 1e6);
    match backend {
        BenchBackend::Cpu => bench_on(&CpuBackend, &format!("cpu {quant}"), &cfg, &weights, counts, runs),
        BenchBackend::Gpu => {
            let gpu = pollster::block_on(GpuBackend::new())?;
            gpu.set_fused(!unfused);
            gpu.context().set_buffer_pool(!no_pool);
            let name = format!("gpu:{} {quant}{}{}", gpu.adapter_name(), if unfused { " unfused" } else { "" }, if no_pool { " no-pool" } else { "" });
            bench_on(&gpu, &name, &cfg, &weights, counts, runs)
        }
    }
}

fn bench_on<B: Backend>(
    b: &B,
    name: &str,
    cfg: &Config,
    weights: &ModelWeights<HostTensor, HostMatrix>,
    counts: &[usize],
    runs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let model = HookedTransformer::new(b, cfg.clone(), weights)?;
    for &n in counts {
        let tokens: Vec<u32> = (0..n).map(|i| ((i * 7919) % cfg.d_vocab) as u32).collect();
        // Every hook (the comparison with `run_with_cache`); `BENCH_NO_CACHE=1`: none (the
        // comparison with a plain forward); `BENCH_CACHE=views`: the hooks the page's views read.
        let views = std::env::var("BENCH_CACHE").is_ok_and(|v| v == "views");
        let cache = std::env::var("BENCH_NO_CACHE").is_err();
        let req = match (cache, views) {
            (false, _) => RunRequest::new(tokens),
            (true, true) => RunRequest::new(tokens).with_cache(CacheSpec::Names(glassbox_core::analysis::hooks_needed(cfg))),
            (true, false) => RunRequest::new(tokens).cache_all(),
        };
        // Two warm-up runs; the second counts the GPU dispatches of one forward pass (0 on the CPU).
        pollster::block_on(model.run(b, &req))?;
        let d0 = glassbox_core::GpuBackend::dispatch_count();
        pollster::block_on(model.run(b, &req))?;
        let dispatches = glassbox_core::GpuBackend::dispatch_count() - d0;
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                pollster::block_on(model.run(b, &req)).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        let median = *times.get(runs / 2).ok_or("--runs must be at least 1")?;
        println!("{{\"impl\":\"glassbox\",\"backend\":\"{name}\",\"cache\":{cache},\"views_only\":{views},\"n_tokens\":{n},\"median_ms\":{:.2},\"runs\":{runs},\"dispatches\":{dispatches}}}", median);
    }
    Ok(())
}
