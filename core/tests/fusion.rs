//! The GPU backend's fused steps (issue 13: norm + weight, attention, matmul + activation,
//! matmul + residual sum): how many dispatches a forward pass records with and without them,
//! that they change no hook's value, and that an intervention between two fused steps still
//! takes effect (the pass then runs the unfused ops) and matches the CPU reference.
//!
//! Every GPU test here takes `gpu_lock()`: the dispatch counter is per process, so no other
//! GPU work may run while one test counts.

mod common;
use common::*;
use glassbox_core::gguf_model::GgufModel;
use glassbox_core::weights::{HostMatrix, MatrixSource};
use glassbox_core::{
    Backend, Config, CpuBackend, GpuBackend, HookedTransformer, HostTensor, Intervention, InterventionOp as Op, KvCache, ModelWeights, RunOutput, RunRequest,
};

fn run<B: Backend, M: MatrixSource>(b: &B, cfg: &Config, weights: &ModelWeights<HostTensor, M>, req: &RunRequest) -> RunOutput {
    let model = HookedTransformer::new(b, cfg.clone(), weights).unwrap();
    pollster::block_on(model.run(b, req)).unwrap()
}

/// Dispatches recorded by one forward pass (every hook cached), and its output.
fn count<M: MatrixSource>(gpu: &GpuBackend, fused: bool, cfg: &Config, weights: &ModelWeights<HostTensor, M>, tokens: &[u32]) -> (u64, RunOutput) {
    gpu.set_fused(fused);
    let model = HookedTransformer::new(gpu, cfg.clone(), weights).unwrap();
    let req = RunRequest::new(tokens.to_vec()).cache_all();
    let d0 = GpuBackend::dispatch_count();
    let out = pollster::block_on(model.run(gpu, &req)).unwrap();
    let n = GpuBackend::dispatch_count() - d0;
    gpu.set_fused(true);
    (n, out)
}

/// Fused and unfused passes record the expected number of dispatches, and give the same value,
/// bit for bit, at every hook (the fused kernels do the same sums in the same order).
fn check_counts<M: MatrixSource>(name: &str, cfg: &Config, weights: &ModelWeights<HostTensor, M>, tokens: &[u32], unfused: u64, fused: u64) {
    let _g = gpu_lock();
    let gpu = gpu();
    let (n0, out0) = count(gpu, false, cfg, weights, tokens);
    let (n1, out1) = count(gpu, true, cfg, weights, tokens);
    assert_eq!((n0, n1), (unfused, fused), "{name}: dispatches per pass (unfused, fused)");
    assert_eq!(out0.cache.len(), out1.cache.len());
    for ((h0, t0), (h1, t1)) in out0.cache.iter().zip(&out1.cache) {
        assert_eq!(h0, h1);
        assert_eq!(t0.shape, t1.shape, "{name} {h0}");
        let same = t0.data.iter().zip(&t1.data).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name} {h0}: the fused pass differs from the unfused one (max |diff| {})", t0.max_abs_diff(t1));
    }
    assert!(out0.logits.data.iter().zip(&out1.logits.data).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}: logits differ");
}

#[test]
fn dispatches_per_pass_gpt2() {
    // 3 layers. Unfused: embed, pos_embed, add; per layer ln1 (2), q k v (3), scores, softmax,
    // z, W_O, add, ln2 (2), W_in, gelu_new, W_out, add = 16; ln_final (2), unembed = 54.
    // Fused: per layer ln1, q k v, attention, W_O+add, ln2, W_in+gelu_new, W_out+add = 9;
    // 3 + 27 + ln_final (1) + unembed = 32.
    let f = fixture("gpt2-tiny");
    check_counts("gpt2-tiny", &f.cfg, &f.weights, &f.tokens, 54, 32);
}

#[test]
fn dispatches_per_pass_attn_only() {
    // 2 layers, no MLP. Unfused: 3 + 2 x (ln1 2, q k v 3, attention 3, W_O, add = 10) + 3 = 26.
    // Fused: 3 + 2 x (1 + 3 + 1 + 1 = 6) + 2 = 17.
    let f = fixture("attn-only-tiny");
    check_counts("attn-only-tiny", &f.cfg, &f.weights, &f.tokens, 26, 17);
}

#[test]
fn dispatches_per_pass_llama() {
    // RMSNorm, rotary (2 dispatches, no pos_embed), grouped-query, gated SwiGLU. Unfused: embed;
    // per layer ln1 2, q k v 3, rotary 2, attention 3, W_O, add, ln2 2, gate, in, silu, mul,
    // W_out, add = 20; ln_final 2, unembed = 44. Fused: per layer ln1, q k v, rotary 2,
    // attention, W_O+add, ln2, gate+silu, in+mul, W_out+add = 12; 1 + 24 + 2 = 27.
    let f = family_fixture("llama-tiny");
    check_counts("llama-tiny", &f.cfg, &f.weights, &f.tokens, 44, 27);
}

#[test]
fn dispatches_per_pass_pythia() {
    // GPT-NeoX's parallel block with the exact GELU. Unfused: embed; per layer ln1 2, q k v 3,
    // rotary 2, attention 3, W_O, ln2 2, W_in, gelu, W_out, add, add = 18; 2 + 1 = 40.
    // Fused: per layer ln1, q k v, rotary 2, attention, W_O+add, ln2, W_in+gelu, W_out+add = 11;
    // 1 + 22 + 2 = 25.
    let f = family_fixture("pythia-tiny");
    check_counts("pythia-tiny", &f.cfg, &f.weights, &f.tokens, 40, 25);
}

/// A GGUF fixture: its quantized matrices stay quantized on the GPU and fuse with their
/// activation or residual sum as dense ones do (linear_epilogue.rs renders every quantized
/// matmul kernel with the epilogue); counts and bit-identical hooks as above.
fn check_gguf(model: &str, file: &str, unfused: u64, fused: u64) {
    let m = GgufModel::from_bytes(&std::fs::read(repo_root().join("fixtures").join(model).join(file)).unwrap()).unwrap();
    let quantized = m
        .weights
        .blocks
        .iter()
        .flat_map(|b| [&b.W_O, &b.mlp.as_ref().unwrap().W_in, &b.mlp.as_ref().unwrap().W_out])
        .filter(|w| matches!(w, HostMatrix::Quant(_)))
        .count();
    assert!(quantized >= 2, "{model}/{file}: fused matrices that are quantized: {quantized}");
    let tokens = family_fixture(model).tokens;
    check_counts(&format!("{model}/{file}"), &m.cfg, &m.weights, &tokens, unfused, fused);
}

#[test]
fn dispatches_per_pass_quantized() {
    // The same counts as the f32 models above: every W_O, W_in and W_out fuses, whatever its
    // format (Q8_0 and Q4_0: the row-block kernel; Q4_K, Q6_K: one invocation per output).
    check_gguf("gpt2-tiny", "model-q8_0.gguf", 54, 32);
    check_gguf("gpt2-tiny", "model-q4_0.gguf", 54, 32);
    check_gguf("llama-tiny", "model-q4_k.gguf", 44, 27);
    check_gguf("pythia-tiny", "model-q8_0.gguf", 40, 25);
}

/// The dispatches of one KV-cached step of `n_new` tokens after a prefill of the rest, and its
/// logits.
fn cached_step<M: MatrixSource>(
    gpu: &GpuBackend,
    fused: bool,
    cfg: &Config,
    weights: &ModelWeights<HostTensor, M>,
    tokens: &[u32],
    n_new: usize,
) -> (u64, Vec<f32>) {
    gpu.set_fused(fused);
    let model = HookedTransformer::new(gpu, cfg.clone(), weights).unwrap();
    let mut cache = KvCache::new(cfg.n_layers);
    let split = tokens.len() - n_new;
    model.forward_step(gpu, &mut cache, &tokens[..split], &[]).unwrap();
    let d0 = GpuBackend::dispatch_count();
    let logits = model.forward_step(gpu, &mut cache, &tokens[split..], &[]).unwrap();
    let n = GpuBackend::dispatch_count() - d0;
    gpu.set_fused(true);
    (n, pollster::block_on(gpu.read(&[&logits])).unwrap().remove(0))
}

#[test]
fn a_kv_cached_step_runs_attention_as_one_dispatch() {
    // Generation's steps (new queries against the cached keys) fuse as a full pass does, the
    // cached attention included (one dispatch per layer instead of three), the logits
    // bit-identical. gpt2-tiny, 3 layers: per layer ln1 1, attention 2, W_O + add 1, ln2 1,
    // W_in + gelu_new 1, W_out + add 1 fewer; ln_final 1 (the previous build: 16, attention
    // unfused with a cache).
    let f = fixture("gpt2-tiny");
    let l = family_fixture("llama-tiny");
    let _g = gpu_lock();
    let gpu = gpu();
    for (name, n_new) in [("gpt2-tiny, one token", 1), ("gpt2-tiny, three tokens", 3)] {
        let (n0, logits0) = cached_step(gpu, false, &f.cfg, &f.weights, &f.tokens, n_new);
        let (n1, logits1) = cached_step(gpu, true, &f.cfg, &f.weights, &f.tokens, n_new);
        assert_eq!(n0 - n1, 3 * (1 + 2 + 1 + 1 + 1 + 1) + 1, "{name}: dispatches unfused {n0}, fused {n1}");
        assert!(logits0.iter().zip(&logits1).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}: logits differ");
    }
    let (n0, logits0) = cached_step(gpu, false, &l.cfg, &l.weights, &l.tokens, 1);
    let (n1, logits1) = cached_step(gpu, true, &l.cfg, &l.weights, &l.tokens, 1);
    assert!(n1 < n0, "llama-tiny: dispatches unfused {n0}, fused {n1}");
    assert!(logits0.iter().zip(&logits1).all(|(a, b)| a.to_bits() == b.to_bits()), "llama-tiny: logits differ");
}

/// An intervention on `hook`, a hook between two steps that the pass fuses when nothing sits
/// there: on the GPU (fusion on) it must change the logits and `downstream` as on the CPU.
fn check_intervention<M: MatrixSource>(name: &str, cfg: &Config, weights: &ModelWeights<HostTensor, M>, tokens: &[u32], iv: Intervention, downstream: &str) {
    let _g = gpu_lock();
    let gpu = gpu();
    let hook = iv.hook.clone();
    let req = RunRequest::new(tokens.to_vec()).cache(&[hook.as_str(), downstream]);
    let clean = run(&CpuBackend, cfg, weights, &req);
    let req = req.intervene(iv);
    let cpu = run(&CpuBackend, cfg, weights, &req);
    let out = run(gpu, cfg, weights, &req);
    // The parity tests' tolerance: 1e-4 + 1e-4 x the largest magnitude.
    let tol = |t: &HostTensor| 1e-4 + 1e-4 * t.data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    // The intervention moves `downstream` well past the tolerance, so a GPU pass that dropped it
    // (say, by fusing across the hook) could not match the CPU below.
    let (c0, c1) = (clean.get(downstream).unwrap(), cpu.get(downstream).unwrap());
    let moved = c0.max_abs_diff(c1);
    assert!(moved > 10.0 * tol(c1), "{name} {hook}: the intervention should move {downstream} on the CPU (moved {moved})");
    for (what, c, g) in [
        ("logits", &cpu.logits, &out.logits),
        (hook.as_str(), cpu.get(&hook).unwrap(), out.get(&hook).unwrap()),
        (downstream, c1, out.get(downstream).unwrap()),
    ] {
        let d = c.max_abs_diff(g);
        assert!(d <= tol(c), "{name} {hook}: GPU {what} differs from the CPU by {d}");
    }
}

#[test]
fn interventions_between_fused_steps_take_effect_gpt2() {
    let f = fixture("gpt2-tiny");
    let (d_model, d_mlp) = (f.cfg.d_model, f.cfg.d_mlp.unwrap());
    let steer: Vec<f32> = (0..d_model).map(|i| (i as f32 * 0.37).sin()).collect();
    let cases = [
        (Intervention::new("blocks.0.mlp.hook_pre", Op::Scale(4.0)).at_neuron(d_mlp / 3), "blocks.0.mlp.hook_post"),
        (Intervention::new("blocks.1.attn.hook_pattern", Op::Zero).at_head(1), "blocks.1.attn.hook_z"),
        (Intervention::new("blocks.1.attn.hook_attn_scores", Op::Zero).at_head(0), "blocks.1.attn.hook_pattern"),
        (Intervention::new("blocks.0.ln1.hook_normalized", Op::Add(steer.clone())), "blocks.0.attn.hook_q"),
        (Intervention::new("blocks.2.ln2.hook_normalized", Op::Scale(0.0)).at_positions(vec![2]), "blocks.2.mlp.hook_pre"),
        (Intervention::new("ln_final.hook_normalized", Op::Scale(2.0)), "unembed.hook_in"),
        (Intervention::new("blocks.0.hook_attn_out", Op::Add(steer.clone())).at_positions(vec![1, 3]), "blocks.0.hook_resid_mid"),
        (Intervention::new("blocks.1.hook_mlp_out", Op::Scale(-1.0)), "blocks.1.hook_resid_post"),
    ];
    for (iv, downstream) in cases {
        check_intervention("gpt2-tiny", &f.cfg, &f.weights, &f.tokens, iv, downstream);
    }
}

#[test]
fn interventions_between_fused_steps_take_effect_attn_only() {
    let f = fixture("attn-only-tiny");
    let steer: Vec<f32> = (0..f.cfg.d_model).map(|i| (i as f32 * 0.7).cos()).collect();
    check_intervention(
        "attn-only-tiny",
        &f.cfg,
        &f.weights,
        &f.tokens,
        Intervention::new("blocks.0.hook_attn_out", Op::Add(steer)),
        "blocks.0.hook_resid_post",
    );
}

#[test]
fn interventions_between_fused_steps_take_effect_llama_and_pythia() {
    let l = family_fixture("llama-tiny");
    check_intervention(
        "llama-tiny",
        &l.cfg,
        &l.weights,
        &l.tokens,
        Intervention::new("blocks.1.ln1.hook_normalized", Op::Scale(3.0)).at_positions(vec![1]),
        "blocks.1.attn.hook_v",
    );
    check_intervention(
        "llama-tiny",
        &l.cfg,
        &l.weights,
        &l.tokens,
        Intervention::new("blocks.0.attn.hook_pattern", Op::Zero).at_head(2),
        "blocks.0.attn.hook_z",
    );
    // The gated MLP's two halves: each fuses its matmul with the next step unless its hook has
    // an intervention.
    let d_mlp = l.cfg.d_mlp.unwrap();
    for (hook, downstream) in [("blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"), ("blocks.1.mlp.hook_pre_linear", "blocks.1.mlp.hook_post")] {
        let iv = Intervention::new(hook, Op::Scale(-3.0)).at_neuron(d_mlp / 2);
        check_intervention("llama-tiny", &l.cfg, &l.weights, &l.tokens, iv, downstream);
    }
    let p = family_fixture("pythia-tiny");
    let steer: Vec<f32> = (0..p.cfg.d_model).map(|i| (i as f32 * 0.37).sin()).collect();
    check_intervention("pythia-tiny", &p.cfg, &p.weights, &p.tokens, Intervention::new("blocks.0.hook_attn_out", Op::Add(steer)), "blocks.0.hook_resid_post");
    check_intervention("pythia-tiny", &p.cfg, &p.weights, &p.tokens, Intervention::new("blocks.1.mlp.hook_pre", Op::Scale(5.0)), "blocks.1.mlp.hook_post");
}
