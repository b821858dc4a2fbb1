//! Parity: the CPU path against Hugging Face transformers (and TransformerLens), and the GPU
//! path against the CPU path, on every hook of two random-weight fixtures.
//!
//! Tolerances:
//! - CPU vs transformers: 1e-4 absolute on every hook (the bar). Both are f32; the
//!   differences come from summation order in matmuls and reductions (seen: ~1e-6).
//! - GPU vs CPU: 1e-4 absolute plus 1e-4 relative to the hook's largest magnitude. The kernels
//!   sum in a different order than candle's gemm, and the tanh in GELU differs by a few ulp;
//!   errors grow with |x| (attention scores, logits), hence the relative part.

mod common;
use common::*;
use glassbox_core::{hook_names, Backend, CpuBackend, HookedTransformer, RunRequest};

fn check_cpu_against_reference(name: &str) {
    let f = fixture(name);
    assert_eq!(hook_names(&f.cfg), f.hook_names, "our hook list differs from TransformerLens's for {name}");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let out = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(f.tokens.clone()).cache_all())).unwrap();
    let names: Vec<&str> = out.cache.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, f.hook_names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut worst = (String::new(), 0.0f32);
    for (hook, ours) in &out.cache {
        let reference = f.activations.get(hook).unwrap_or_else(|| panic!("fixture lacks {hook}"));
        assert_eq!(ours.shape, reference.shape, "{hook}: shape");
        let d = ours.max_abs_diff(reference);
        assert!(d <= 1e-4, "{name} {hook}: CPU differs from transformers by {d}");
        if d > worst.1 {
            worst = (hook.clone(), d);
        }
    }
    assert!(out.logits.max_abs_diff(&f.activations["unembed.hook_out"]) <= 1e-4);
    eprintln!("{name}: CPU vs reference, worst hook {} at {:e}", worst.0, worst.1);
}

fn check_gpu_against_cpu(name: &str) {
    let _guard = gpu_lock();
    let f = fixture(name);
    let gpu = gpu();
    let req = RunRequest::new(f.tokens.clone()).cache_all();
    let cpu_out = pollster::block_on(HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap().run(&CpuBackend, &req)).unwrap();
    let gpu_out = pollster::block_on(HookedTransformer::new(gpu, f.cfg.clone(), &f.weights).unwrap().run(gpu, &req)).unwrap();
    assert_eq!(cpu_out.cache.len(), gpu_out.cache.len());
    for ((hook, c), (hook2, g)) in cpu_out.cache.iter().zip(&gpu_out.cache) {
        assert_eq!(hook, hook2);
        let scale = c.data.iter().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));
        let tol = 1e-4 + 1e-4 * scale;
        let d = g.max_abs_diff(c);
        assert!(d <= tol, "{name} {hook}: GPU ({}) differs from CPU by {d} (tolerance {tol})", gpu.name());
    }
}

#[test]
fn cpu_matches_transformers_gpt2_tiny() {
    check_cpu_against_reference("gpt2-tiny");
}

#[test]
fn cpu_matches_transformer_lens_attn_only_tiny() {
    check_cpu_against_reference("attn-only-tiny");
}

#[test]
fn gpu_matches_cpu_gpt2_tiny() {
    check_gpu_against_cpu("gpt2-tiny");
}

#[test]
fn gpu_matches_cpu_attn_only_tiny() {
    check_gpu_against_cpu("attn-only-tiny");
}
