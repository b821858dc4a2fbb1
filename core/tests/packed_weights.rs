//! The CPU backend with its weights packed (what the browser runs: `CpuMatrix::Packed` and its
//! simd128 matmul, here on portable lanes with the same arithmetic) against the same backend
//! with dense weights (candle's matmul): every hook and the logits agree, on every family, for
//! a single token and with an intervention.

mod common;
use common::*;
use glassbox_core::cpu::CpuMatrix;
use glassbox_core::weights::MatrixSource;
use glassbox_core::{Config, CpuBackend, HookedTransformer, HostTensor, Intervention, InterventionOp, ModelWeights, RunOutput, RunRequest};

fn runs<M: MatrixSource>(cfg: &Config, weights: &ModelWeights<HostTensor, M>, req: &RunRequest) -> (RunOutput, RunOutput, usize) {
    let dense = HookedTransformer::new(&CpuBackend, cfg.clone(), weights).unwrap();
    let mut packed = HookedTransformer::new(&CpuBackend, cfg.clone(), weights).unwrap();
    packed.weights = packed.weights.map_matrices(|m| m.to_packed().unwrap());
    let n_packed = {
        let mut n = 0;
        packed.weights.map_matrices(|m| n += usize::from(matches!(m, CpuMatrix::Packed(_))));
        n
    };
    let run = |m: &HookedTransformer<CpuBackend>| pollster::block_on(m.run(&CpuBackend, req)).unwrap();
    (run(&dense), run(&packed), n_packed)
}

fn check<M: MatrixSource>(name: &str, cfg: &Config, weights: &ModelWeights<HostTensor, M>, req: &RunRequest) {
    let (dense, packed, n_packed) = runs(cfg, weights, req);
    assert!(n_packed >= 2, "{name}: the matrices were packed ({n_packed})");
    assert_eq!(dense.cache.len(), packed.cache.len(), "{name}: hooks cached");
    assert!(!dense.cache.is_empty());
    for ((h0, t0), (h1, t1)) in dense.cache.iter().zip(&packed.cache) {
        assert_eq!((h0, &t0.shape), (h1, &t1.shape));
        let scale = t0.data.iter().fold(1f32, |s, v| if v.is_finite() { s.max(v.abs()) } else { s });
        assert!(t0.max_abs_diff(t1) <= 1e-5 * scale, "{name} {h0}: packed differs from dense by {} (scale {scale})", t0.max_abs_diff(t1));
    }
    let scale = dense.logits.data.iter().fold(1f32, |s, v| s.max(v.abs()));
    assert!(dense.logits.max_abs_diff(&packed.logits) <= 1e-5 * scale, "{name}: logits differ by {}", dense.logits.max_abs_diff(&packed.logits));
}

#[test]
fn packed_weights_give_every_hook_of_every_family() {
    for name in ["gpt2-tiny", "attn-only-tiny"] {
        let f = fixture(name);
        check(name, &f.cfg, &f.weights, &RunRequest::new(f.tokens.clone()).cache_all());
    }
    for name in ["llama-tiny", "pythia-tiny"] {
        let f = family_fixture(name);
        check(name, &f.cfg, &f.weights, &RunRequest::new(f.tokens.clone()).cache_all());
    }
}

#[test]
fn packed_weights_hold_for_a_single_token_and_with_an_intervention() {
    let f = fixture("gpt2-tiny");
    // One token: fewer rows than the micro-kernel's tile.
    check("one token", &f.cfg, &f.weights, &RunRequest::new(f.tokens[..1].to_vec()).cache_all());
    let ablated = RunRequest::new(f.tokens.clone()).cache_all().intervene(Intervention::new("blocks.1.mlp.hook_post", InterventionOp::Zero));
    check("ablated", &f.cfg, &f.weights, &ablated);
}
