//! Generation with a KV cache (`generate.rs`): incremental logits against the full forward pass
//! on every family fixture (CPU and GPU), interventions during the steps, seeded sampling,
//! steering (ActAdd on the English organism; a neuron direction), and a TransformerLens
//! reference (python/make_steering_fixtures.py).
//!
//! Tolerance: 1e-4 absolute on the logits, incremental against full, on either backend (the
//! same ops on fewer rows; the differences are summation order, seen ~1e-6).

mod common;
use common::*;

use glassbox_core::generate::{actadd, actadd_rows, generate, neuron_steering, GenerateOptions, KvCache, SteerAt, Steering, StopReason};
use glassbox_core::{Backend, CpuBackend, HookedTransformer, HostTensor, Intervention, InterventionOp, ModelBundle, RunRequest};

const FIXTURES: [&str; 5] = ["gpt2-tiny", "attn-only-tiny", "llama-tiny", "qwen2-tiny", "pythia-tiny"];

/// The fixture's tokens repeated to 40 (past the kernels' 16-wide tiles, inside every n_ctx).
fn long_tokens(tokens: &[u32]) -> Vec<u32> {
    tokens.iter().copied().cycle().take(40).collect()
}

/// Prefill 3 positions, then blocks of 1, 2, 1, 5, 17, 1, 3... up to the end: the logits of every
/// position, `[pos, d_vocab_out]`.
fn incremental_logits<B: Backend>(model: &HookedTransformer<B>, b: &B, tokens: &[u32], interventions: &[Intervention]) -> HostTensor {
    let mut cache = KvCache::<B>::new(model.cfg.n_layers);
    let sizes = [3, 1, 2, 1, 5, 17, 1, 3];
    let mut data = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while start < tokens.len() {
        let n = sizes[i % sizes.len()].min(tokens.len() - start);
        let logits = model.forward_step(b, &mut cache, &tokens[start..start + n], interventions).unwrap();
        data.extend(pollster::block_on(b.read(&[&logits])).unwrap().remove(0));
        start += n;
        i += 1;
        assert_eq!(cache.len(), start);
    }
    HostTensor::new(vec![tokens.len(), model.cfg.d_vocab_out], data)
}

fn steering_interventions(cfg: &glassbox_core::Config) -> Vec<Intervention> {
    let d = cfg.d_model;
    let v: Vec<f32> = (0..d).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3).collect();
    vec![
        // At every position (the new ones included), and at two absolute positions.
        Intervention::new("blocks.1.hook_resid_pre", InterventionOp::Add(v.clone())),
        Intervention::new("blocks.0.hook_resid_pre", InterventionOp::Add(v.iter().map(|x| -2.0 * x).collect())).at_positions(vec![1, 7]),
        Intervention::new("blocks.0.attn.hook_z", InterventionOp::Scale(0.5)).at_head(1).at_positions(vec![4, 20, 33]),
    ]
}

fn check_incremental<B: Backend>(b: &B, what: &str) {
    for name in FIXTURES {
        let f = family_fixture(name);
        let model = HookedTransformer::new(b, f.cfg.clone(), &f.weights).unwrap();
        let tokens = long_tokens(&f.tokens);
        for interventions in [Vec::new(), steering_interventions(&f.cfg)] {
            let req = RunRequest { tokens: tokens.clone(), cache: Default::default(), interventions: interventions.clone() };
            let full = pollster::block_on(model.run(b, &req)).unwrap().logits;
            let inc = incremental_logits(&model, b, &tokens, &interventions);
            assert_eq!(inc.shape, full.shape);
            let d = inc.max_abs_diff(&full);
            eprintln!("{what} {name} ({} interventions): incremental vs full, max |diff| {d:e}", interventions.len());
            assert!(d <= 1e-4, "{what} {name}: incremental logits differ from the full pass by {d}");
            if !interventions.is_empty() {
                let plain = pollster::block_on(model.run(b, &RunRequest::new(tokens.clone()))).unwrap().logits;
                assert!(plain.max_abs_diff(&full) > 1e-2, "{name}: the interventions should change the logits");
            }
        }
    }
}

#[test]
fn incremental_logits_equal_the_full_pass_on_cpu() {
    check_incremental(&CpuBackend, "CPU");
}

#[test]
fn incremental_logits_equal_the_full_pass_on_gpu() {
    let _guard = gpu_lock();
    check_incremental(gpu(), "GPU");
}

#[test]
fn steps_refuse_what_they_cannot_do() {
    let f = family_fixture("gpt2-tiny");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let mut cache = KvCache::<CpuBackend>::new(f.cfg.n_layers);
    let pattern = Intervention::new("blocks.0.attn.hook_pattern", InterventionOp::Zero);
    assert!(model.forward_step(&CpuBackend, &mut cache, &f.tokens, &[pattern]).is_err());
    let mut cache = KvCache::<CpuBackend>::new(f.cfg.n_layers);
    let too_long: Vec<u32> = f.tokens.iter().copied().cycle().take(f.cfg.n_ctx + 1).collect();
    assert!(model.forward_step(&CpuBackend, &mut cache, &too_long, &[]).is_err());
}

#[test]
fn cached_and_uncached_generation_agree_and_seeds_repeat() {
    let f = family_fixture("llama-tiny");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let prompt = &f.tokens[..5];
    for (temperature, top_p) in [(0.0, None), (1.0, None), (0.8, Some(0.9))] {
        let opts = GenerateOptions { max_new_tokens: 20, temperature, top_p, seed: 7, keep_logits: true, top_k: 3, ..Default::default() };
        let a = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts, None)).unwrap();
        let b = pollster::block_on(generate(&model, &CpuBackend, prompt, &GenerateOptions { use_cache: false, ..opts.clone() }, None)).unwrap();
        let again = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts, None)).unwrap();
        assert_eq!(a.tokens.len(), 20);
        assert_eq!(a.stop, StopReason::MaxTokens);
        assert_eq!(a.tokens, b.tokens, "temperature {temperature}: the KV cache changed the tokens");
        assert_eq!(a, again, "temperature {temperature}: a seed must repeat");
        for (x, y) in a.logits.iter().zip(&b.logits) {
            let d = x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(d <= 1e-4, "step logits differ by {d}");
        }
        assert_eq!(a.top[0].len(), 3);
    }
    // Another seed samples something else at temperature 1.
    let opts = |seed| GenerateOptions { max_new_tokens: 20, temperature: 1.0, seed, ..Default::default() };
    let s1 = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts(1), None)).unwrap();
    let s2 = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts(2), None)).unwrap();
    assert_ne!(s1.tokens, s2.tokens);
    // A stop token ends it (and is kept); the context's end ends it.
    let greedy = pollster::block_on(generate(&model, &CpuBackend, prompt, &GenerateOptions { max_new_tokens: 10, ..Default::default() }, None)).unwrap();
    let stop = greedy.tokens[3];
    let first = greedy.tokens.iter().position(|&t| t == stop).unwrap();
    let stopped =
        pollster::block_on(generate(&model, &CpuBackend, prompt, &GenerateOptions { max_new_tokens: 10, stop: vec![stop], ..Default::default() }, None))
            .unwrap();
    assert_eq!(stopped.stop, StopReason::StopToken);
    assert_eq!(stopped.tokens, greedy.tokens[..=first].to_vec());
    let full = pollster::block_on(generate(&model, &CpuBackend, prompt, &GenerateOptions { max_new_tokens: 1000, ..Default::default() }, None)).unwrap();
    assert_eq!(full.stop, StopReason::ContextFull);
    assert_eq!(prompt.len() + full.tokens.len(), f.cfg.n_ctx + 1);
}

#[test]
fn a_zero_vector_changes_nothing() {
    let f = family_fixture("gpt2-tiny");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let prompt = &f.tokens[..6];
    let opts = GenerateOptions { max_new_tokens: 16, temperature: 1.0, top_p: Some(0.95), seed: 3, ..Default::default() };
    let plain = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts, None)).unwrap();
    let rows = pollster::block_on(actadd_rows(&model, &CpuBackend, &f.tokens[..4], &f.tokens[4..9], 0, "blocks.1.hook_resid_pre")).unwrap();
    for at in [SteerAt::Prefix, SteerAt::Every] {
        let off = Steering { hook: "blocks.1.hook_resid_pre".into(), rows: rows.clone(), coeff: 0.0, at };
        let steered = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts, Some(&off))).unwrap();
        assert_eq!(steered, plain, "{at:?}: a coefficient of 0 must give the unsteered generation");
        let on = Steering { coeff: 20.0, ..off };
        let steered = pollster::block_on(generate(&model, &CpuBackend, prompt, &opts, Some(&on))).unwrap();
        assert_ne!(steered.tokens, plain.tokens, "{at:?}: a large coefficient should change the tokens");
    }
    // A neuron's direction is W_out's row, at hook_mlp_out.
    let s = neuron_steering(&f.cfg, &f.weights, 1, 5, 2.0).unwrap();
    assert_eq!((s.hook.as_str(), s.rows.len(), s.rows[0].len(), s.at), ("blocks.1.hook_mlp_out", 1, f.cfg.d_model, SteerAt::Every));
    assert!(neuron_steering(&f.cfg, &f.weights, 9, 5, 2.0).is_err());
}

#[test]
fn actadd_steers_the_english_organism() {
    let dir = repo_root().join("public/models/english-char-3l");
    let bundle = ModelBundle::from_dir(&dir).unwrap();
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights).unwrap();
    let enc = |s: &str| bundle.tokenizer.encode(s).unwrap();
    let text = |ids: &[u32]| ids.iter().map(|&i| bundle.tokenizer.token_str(i)).collect::<String>();
    let space = *enc(" ").last().unwrap();
    let prompt = enc("The captain said that the");
    let opts = GenerateOptions { max_new_tokens: 60, temperature: 0.0, ..Default::default() };
    let plain = pollster::block_on(generate(&model, &CpuBackend, &prompt, &opts, None)).unwrap();
    let steering = pollster::block_on(actadd(&model, &CpuBackend, &enc("the sea"), &enc("the man"), space, 1, 4.0)).unwrap();
    assert_eq!(steering.rows.len(), enc("the sea").len());
    assert!(steering.rows[0].iter().all(|&x| x.abs() < 1e-6), "row 0 is the BOS position of both prompts");
    let steered = pollster::block_on(generate(&model, &CpuBackend, &prompt, &opts, Some(&steering))).unwrap();
    eprintln!("unsteered: {:?}\nsteered:   {:?}", text(&plain.tokens), text(&steered.tokens));
    assert_ne!(plain.tokens, steered.tokens, "ActAdd at coefficient 4 should change the greedy continuation");
    // And the same with the KV cache off.
    let uncached = pollster::block_on(generate(&model, &CpuBackend, &prompt, &GenerateOptions { use_cache: false, ..opts }, Some(&steering))).unwrap();
    assert_eq!(uncached.tokens, steered.tokens);
}

#[test]
fn steered_greedy_continuation_matches_transformer_lens() {
    // python/make_steering_fixtures.py: a TransformerLens hook adds the steering rows at
    // blocks.{layer}.hook_resid_pre (the prompt's first positions, ActAdd-style) and greedily
    // generates with its KV cache; it records every step's logits.
    let f = family_fixture("gpt2-tiny");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(f.dir.join("steering.json")).unwrap()).unwrap();
    let tensors = glassbox_core::weights::read_safetensors(&std::fs::read(f.dir.join("steering.safetensors")).unwrap()).unwrap();
    let ids = |k: &str| meta[k].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect::<Vec<u32>>();
    let (prompt, plus, minus) = (ids("prompt"), ids("plus"), ids("minus"));
    let layer = meta["layer"].as_u64().unwrap() as usize;
    let coeff = meta["coeff"].as_f64().unwrap() as f32;
    let pad = meta["pad"].as_u64().unwrap() as u32;
    let n_new = meta["max_new_tokens"].as_u64().unwrap() as usize;
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let steering = pollster::block_on(actadd(&model, &CpuBackend, &plus, &minus, pad, layer, coeff)).unwrap();
    let rows = &tensors["steering_rows"];
    let ours = HostTensor::new(vec![steering.rows.len(), f.cfg.d_model], steering.rows.concat());
    let d_rows = ours.max_abs_diff(rows);
    assert!(d_rows <= 1e-4, "steering rows differ from TransformerLens's by {d_rows}");
    let coeff_every = meta["coeff_every"].as_f64().unwrap() as f32;
    let every = Steering { hook: steering.hook.clone(), rows: vec![steering.rows.last().unwrap().clone()], coeff: coeff_every, at: SteerAt::Every };
    let opts = GenerateOptions { max_new_tokens: n_new, keep_logits: true, ..Default::default() };
    for (key, steer) in [("steered", Some(&steering)), ("every", Some(&every)), ("plain", None)] {
        for b in [true, false] {
            let out = pollster::block_on(generate(&model, &CpuBackend, &prompt, &GenerateOptions { use_cache: b, ..opts.clone() }, steer)).unwrap();
            assert_eq!(out.tokens, ids(&format!("{key}_tokens")), "{key} (cache {b}): tokens differ from TransformerLens's");
            let ours = HostTensor::new(vec![n_new, f.cfg.d_vocab_out], out.logits.concat());
            let d = ours.max_abs_diff(&tensors[&format!("{key}_logits")]);
            eprintln!("{key} (KV cache {b}): max |diff| vs TransformerLens {d:e}");
            assert!(d <= 1e-4, "{key} (cache {b}): logits differ from TransformerLens's by {d}");
        }
    }
    // The prefix steering moves the logits far past the tolerance; the vector at every position
    // changes the tokens (the random model's argmax barely depends on its input).
    assert!(tensors["steered_logits"].max_abs_diff(&tensors["plain_logits"]) > 2e-3);
    assert_ne!(ids("every_tokens"), ids("plain_tokens"));
}
