//! `glassbox steer | generate | bench-generate`: generation with the KV cache
//! (`glassbox_core::generate`), steered by ActAdd (a prompt pair's difference at
//! `blocks.{L}.hook_resid_pre`, added at the prompt's first positions) or by an MLP neuron's
//! output direction, with the unsteered continuation beside it; and the tokens per second of
//! generation with and without the KV cache.

use std::path::Path;
use std::time::Instant;

use glassbox_core::generate::{actadd, generate, neuron_steering, GenerateOptions, Generation, Steering};
use glassbox_core::{Backend, CpuBackend, GpuBackend, HookedTransformer, ModelBundle, Tokenizer};
use serde_json::json;

use crate::analyze::print_json;
use crate::bench::BenchBackend;
use crate::{read_bundle, CliResult};

/// Sampling options shared by `steer` and `generate`.
pub struct SampleArgs {
    pub max_new: usize,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Stop at these tokens (as text; each must be one token).
    pub stop: Vec<String>,
}

pub struct SteerArgs<'a> {
    pub model: &'a Path,
    pub prompt: &'a str,
    pub plus: Option<&'a str>,
    pub minus: Option<&'a str>,
    pub layer: Option<usize>,
    /// `L.N`
    pub neuron: Option<&'a str>,
    pub coeff: f32,
    pub sample: SampleArgs,
    pub json: bool,
}

/// The text of new tokens.
fn decode(tok: &Tokenizer, ids: &[u32]) -> String {
    tok.decode(ids)
}

/// The prompt's tokens (with the tokenizer's BOS); an empty prompt is an error.
fn encode(bundle: &ModelBundle, text: &str, what: &str) -> CliResult<Vec<u32>> {
    let ids = bundle.tokenizer.encode(text)?;
    if ids.is_empty() || ids.iter().all(|&t| Some(t) == bundle.tokenizer.bos()) {
        return Err(format!("{what} is empty (give it as text)").into());
    }
    if ids.len() > bundle.cfg.n_ctx {
        return Err(format!("{what} has {} tokens, more than the model's context of {}", ids.len(), bundle.cfg.n_ctx).into());
    }
    Ok(ids)
}

fn options(bundle: &ModelBundle, s: &SampleArgs) -> CliResult<GenerateOptions> {
    if s.temperature < 0.0 || !s.temperature.is_finite() {
        return Err(format!("--temperature {} must be 0 (greedy) or positive", s.temperature).into());
    }
    if let Some(p) = s.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("--top-p {p} must be in (0, 1]").into());
        }
    }
    let stop = s.stop.iter().map(|t| crate::analyze::resolve_token(bundle, t)).collect::<CliResult<Vec<u32>>>()?;
    Ok(GenerateOptions {
        max_new_tokens: s.max_new,
        temperature: s.temperature,
        top_p: s.top_p,
        seed: s.seed,
        stop,
        top_k: 0,
        keep_logits: false,
        use_cache: true,
    })
}

/// The steering vector the arguments name.
fn steering(bundle: &ModelBundle, model: &HookedTransformer<CpuBackend>, a: &SteerArgs<'_>) -> CliResult<Steering> {
    match (a.plus, a.minus, a.neuron) {
        (Some(plus), Some(minus), None) => {
            let layer = a.layer.ok_or("--plus/--minus need --layer L (the block whose resid_pre is steered)")?;
            let pad = bundle
                .tokenizer
                .encode(" ")?
                .into_iter()
                .rfind(|&t| Some(t) != bundle.tokenizer.bos())
                .ok_or("the tokenizer has no space token to pad with")?;
            let (plus, minus) = (encode(bundle, plus, "--plus")?, encode(bundle, minus, "--minus")?);
            Ok(pollster::block_on(actadd(model, &CpuBackend, &plus, &minus, pad, layer, a.coeff))?)
        }
        (None, None, Some(neuron)) => {
            if a.layer.is_some() {
                return Err("--neuron L.N names its layer; leave out --layer".into());
            }
            let (l, n) = neuron.split_once('.').ok_or_else(|| format!("--neuron {neuron:?}: write LAYER.NEURON, for example 1.42"))?;
            let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("--neuron {neuron:?}: write LAYER.NEURON, for example 1.42"));
            Ok(neuron_steering(&bundle.cfg, &bundle.weights, parse(l)?, parse(n)?, a.coeff)?)
        }
        (None, None, None) => Err("give a steering vector: --plus TEXT --minus TEXT --layer L, or --neuron L.N".into()),
        (_, _, Some(_)) => Err("give either --plus/--minus or --neuron, not both".into()),
        _ => Err("--plus and --minus go together".into()),
    }
}

fn stop_name(g: &Generation) -> &'static str {
    match g.stop {
        glassbox_core::generate::StopReason::MaxTokens => "max_new_tokens",
        glassbox_core::generate::StopReason::StopToken => "stop_token",
        glassbox_core::generate::StopReason::ContextFull => "context_full",
    }
}

pub fn steer_cmd(a: SteerArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let prompt = encode(&bundle, a.prompt, "--prompt")?;
    let opts = options(&bundle, &a.sample)?;
    let steer = steering(&bundle, &model, &a)?;
    let plain = pollster::block_on(generate(&model, &CpuBackend, &prompt, &opts, None))?;
    let steered = pollster::block_on(generate(&model, &CpuBackend, &prompt, &opts, Some(&steer)))?;
    let (plain_text, steered_text) = (decode(&bundle.tokenizer, &plain.tokens), decode(&bundle.tokenizer, &steered.tokens));
    let norms = steer.row_norms();
    if a.json {
        return print_json(&json!({
            "prompt": a.prompt,
            "prompt_tokens": prompt,
            "hook": steer.hook,
            "coeff": steer.coeff,
            "positions": match steer.at { glassbox_core::SteerAt::Prefix => json!(norms.len().min(prompt.len())), glassbox_core::SteerAt::Every => json!("all") },
            "vector_norms": norms,
            "options": {"max_new_tokens": opts.max_new_tokens, "temperature": opts.temperature, "top_p": opts.top_p, "seed": opts.seed},
            "unsteered": {"text": plain_text, "tokens": plain.tokens, "stop": stop_name(&plain)},
            "steered": {"text": steered_text, "tokens": steered.tokens, "stop": stop_name(&steered)},
        }));
    }
    let at = match steer.at {
        glassbox_core::SteerAt::Prefix => format!("the prompt's first {} positions", norms.len().min(prompt.len())),
        glassbox_core::SteerAt::Every => "every position".into(),
    };
    let max_norm = norms.iter().copied().fold(0.0f32, f32::max);
    println!("steering: {} x {} at {at} (largest row norm {max_norm:.3})", steer.coeff, steer.hook);
    println!("prompt:    {}", a.prompt);
    println!("unsteered: {}", plain_text);
    println!("steered:   {}", steered_text);
    Ok(())
}

pub fn generate_cmd(model_dir: &Path, prompt: &str, sample: &SampleArgs, json: bool) -> CliResult<()> {
    let bundle = read_bundle(model_dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let ids = encode(&bundle, prompt, "--prompt")?;
    let opts = GenerateOptions { top_k: 3, ..options(&bundle, sample)? };
    let out = pollster::block_on(generate(&model, &CpuBackend, &ids, &opts, None))?;
    let text = decode(&bundle.tokenizer, &out.tokens);
    if json {
        let top: Vec<_> = out
            .top
            .iter()
            .map(|t| t.iter().map(|(id, p)| json!({"token": bundle.tokenizer.token_str(*id), "id": id, "prob": p})).collect::<Vec<_>>())
            .collect();
        return print_json(&json!({"prompt": prompt, "text": text, "tokens": out.tokens, "stop": stop_name(&out), "top": top}));
    }
    println!("{prompt}{text}");
    Ok(())
}

/// `glassbox bench-generate`: tokens per second of greedy generation after a prompt, with and
/// without the KV cache (one JSON line each).
pub fn bench_generate(model_dir: &Path, prompt_len: usize, new_tokens: usize, runs: usize, backend: BenchBackend) -> CliResult<()> {
    let (cfg, weights) = if model_dir.join("card.json").exists() || model_dir.extension().is_some_and(|e| e == "gguf") {
        let b = read_bundle(model_dir)?;
        (b.cfg, b.weights)
    } else {
        let cfg = glassbox_core::Config::from_hf_json(&std::fs::read_to_string(model_dir.join("config.json"))?)?;
        let w = glassbox_core::weights::from_hf_tensors(&cfg, glassbox_core::weights::read_safetensors(&std::fs::read(model_dir.join("model.safetensors"))?)?)?;
        (cfg, w)
    };
    if prompt_len == 0 || prompt_len + new_tokens > cfg.n_ctx {
        return Err(format!("--prompt-len {prompt_len} + --new {new_tokens} must be between 1 and the context of {}", cfg.n_ctx).into());
    }
    match backend {
        BenchBackend::Cpu => bench_on(&CpuBackend, "cpu", &cfg, &weights, prompt_len, new_tokens, runs, model_dir),
        BenchBackend::Gpu => {
            let gpu = pollster::block_on(GpuBackend::new())?;
            let name = format!("gpu:{}", gpu.adapter_name());
            bench_on(&gpu, &name, &cfg, &weights, prompt_len, new_tokens, runs, model_dir)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn bench_on<B: Backend>(
    b: &B,
    name: &str,
    cfg: &glassbox_core::Config,
    weights: &glassbox_core::ModelWeights<glassbox_core::HostTensor, glassbox_core::weights::HostMatrix>,
    prompt_len: usize,
    new_tokens: usize,
    runs: usize,
    dir: &Path,
) -> CliResult<()> {
    let model = HookedTransformer::new(b, cfg.clone(), weights)?;
    let prompt: Vec<u32> = (0..prompt_len).map(|i| ((i * 7919 + 1) % cfg.d_vocab) as u32).collect();
    let mut tokens_seen = Vec::new();
    for use_cache in [true, false] {
        // Greedy; no stop tokens, so every run makes exactly `new_tokens`.
        let opts = GenerateOptions { max_new_tokens: new_tokens, use_cache, ..Default::default() };
        pollster::block_on(generate(&model, b, &prompt, &opts, None))?; // warm-up
        let mut times = Vec::with_capacity(runs);
        let mut out = None;
        for _ in 0..runs {
            let t = Instant::now();
            out = Some(pollster::block_on(generate(&model, b, &prompt, &opts, None))?);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[runs / 2];
        let out = out.ok_or("--runs must be at least 1")?;
        tokens_seen.push(out.tokens.clone());
        println!(
            "{{\"impl\":\"glassbox\",\"model\":{:?},\"backend\":{:?},\"kv_cache\":{use_cache},\"prompt_tokens\":{prompt_len},\"new_tokens\":{},\"median_s\":{median:.4},\"tokens_per_s\":{:.1},\"runs\":{runs}}}",
            dir.display().to_string(),
            name,
            out.tokens.len(),
            out.tokens.len() as f64 / median
        );
    }
    if tokens_seen[0] != tokens_seen[1] {
        eprintln!("note: the cached and uncached greedy tokens differ (float ties): {:?} vs {:?}", tokens_seen[0], tokens_seen[1]);
    }
    Ok(())
}
