//! `glassbox bench`: median wall time of a forward pass with every hook cached, on a Hugging
//! Face GPT-2 directory (config.json + model.safetensors), for comparison with
//! TransformerLens's `run_with_cache` on the same weights (python/bench_transformer_lens.py).

use std::path::Path;
use std::time::Instant;

use glassbox_core::weights::read_safetensors;
use glassbox_core::{Backend, Config, CpuBackend, GpuBackend, HookedTransformer, ModelWeights, RunRequest};

pub fn bench(dir: &Path, tokens: &str, runs: usize, backend: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::from_hf_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let weights = ModelWeights::from_hf_gpt2(&cfg, read_safetensors(&std::fs::read(dir.join("model.safetensors"))?)?)?;
    let counts: Vec<usize> = tokens.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
    match backend {
        "cpu" => bench_on(&CpuBackend, "cpu", &cfg, &weights, &counts, runs),
        "gpu" => {
            let gpu = pollster::block_on(GpuBackend::new())?;
            let name = format!("gpu:{}", gpu.adapter_name());
            bench_on(&gpu, &name, &cfg, &weights, &counts, runs)
        }
        other => Err(format!("unknown backend {other:?} (cpu or gpu)").into()),
    }
}

fn bench_on<B: Backend>(b: &B, name: &str, cfg: &Config, weights: &ModelWeights<glassbox_core::HostTensor>, counts: &[usize], runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let model = HookedTransformer::new(b, cfg.clone(), weights)?;
    for &n in counts {
        let tokens: Vec<u32> = (0..n).map(|i| ((i * 7919) % cfg.d_vocab) as u32).collect();
        let req = if std::env::var("BENCH_NO_CACHE").is_ok() { RunRequest::new(tokens) } else { RunRequest::new(tokens).cache_all() };
        for _ in 0..2 {
            pollster::block_on(model.run(b, &req))?;
        }
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                pollster::block_on(model.run(b, &req)).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        println!("{{\"impl\":\"glassbox\",\"backend\":\"{name}\",\"n_tokens\":{n},\"median_ms\":{:.2},\"runs\":{runs}}}", times[runs / 2]);
    }
    Ok(())
}
