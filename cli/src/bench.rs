//! `glassbox bench`: median wall time of a forward pass with every hook cached, on a Hugging
//! Face GPT-2 directory (config.json + model.safetensors), for comparison with
//! TransformerLens's `run_with_cache` on the same weights (python/bench_transformer_lens.py).
//! `--quant q8_0|q4_0` quantizes the matrices on load (as the app's quantize-on-load does): the
//! GPU backend keeps them quantized; the CPU backend dequantizes them (it is the f32 reference).
//! Any family `config.json` works (GPT-2, Llama, Qwen2, GPT-NeoX).

use std::path::Path;
use std::time::Instant;

use glassbox_core::bundle::quantize_matrices;
use glassbox_core::weights::{from_hf_tensors, read_safetensors, HostMatrix};
use glassbox_core::{Backend, Config, CpuBackend, GpuBackend, HookedTransformer, HostTensor, ModelWeights, QuantizeOnLoad, RunRequest};

pub fn bench(dir: &Path, tokens: &str, runs: usize, backend: &str, quant: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::from_hf_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let mut weights = from_hf_tensors(&cfg, read_safetensors(&std::fs::read(dir.join("model.safetensors"))?)?)?;
    match quant {
        "f32" => {}
        "q8_0" => weights = quantize_matrices(&weights, QuantizeOnLoad::Q8_0),
        "q4_0" => weights = quantize_matrices(&weights, QuantizeOnLoad::Q4_0),
        other => return Err(format!("unknown --quant {other:?} (f32, q8_0 or q4_0)").into()),
    }
    eprintln!("weights: {:.1} MB as stored ({quant})", weights.n_bytes() as f64 / 1e6);
    let counts: Vec<usize> = tokens.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
    match backend {
        "cpu" => bench_on(&CpuBackend, &format!("cpu {quant}"), &cfg, &weights, &counts, runs),
        "gpu" => {
            let gpu = pollster::block_on(GpuBackend::new())?;
            let name = format!("gpu:{} {quant}", gpu.adapter_name());
            bench_on(&gpu, &name, &cfg, &weights, &counts, runs)
        }
        other => Err(format!("unknown backend {other:?} (cpu or gpu)").into()),
    }
}

fn bench_on<B: Backend>(b: &B, name: &str, cfg: &Config, weights: &ModelWeights<HostTensor, HostMatrix>, counts: &[usize], runs: usize) -> Result<(), Box<dyn std::error::Error>> {
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
