//! Interventions (zero, scale, add, replace) at hook x position x head x neuron, on both
//! backends through the same test bodies, plus the request errors a user can trigger.

mod common;
use common::*;
use glassbox_core::{hook_names, Backend, CpuBackend, HookedTransformer, Intervention, InterventionOp as Op, RunOutput, RunRequest};

fn run<B: Backend>(b: &B, f: &Fixture, req: RunRequest) -> RunOutput {
    let model = HookedTransformer::new(b, f.cfg.clone(), &f.weights).unwrap();
    pollster::block_on(model.run(b, &req)).unwrap()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 + 1e-4 * y.abs())
}

fn zero_one_head<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let (n_heads, d_head) = (f.cfg.n_heads, f.cfg.d_head);
    let hook = "blocks.1.attn.hook_z";
    let clean = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]));
    let req = RunRequest::new(f.tokens.clone()).cache(&[hook]).intervene(Intervention::new(hook, Op::Zero).at_head(2).at_positions(vec![3, 5]));
    let out = run(b, &f, req);
    let (z0, z) = (clean.get(hook).unwrap(), out.get(hook).unwrap());
    for p in 0..f.tokens.len() {
        for h in 0..n_heads {
            let s = (p * n_heads + h) * d_head;
            let (a, c) = (&z.data[s..s + d_head], &z0.data[s..s + d_head]);
            if h == 2 && (p == 3 || p == 5) {
                assert!(a.iter().all(|&x| x == 0.0), "pos {p} head {h} should be zero");
            } else {
                assert!(close(a, c), "pos {p} head {h} should be untouched");
            }
        }
    }
    // Later positions of the logits move, earlier ones cannot (causal).
    assert!(close(out.logits.row(2), clean.logits.row(2)));
    assert!(!close(out.logits.row(3), clean.logits.row(3)));
}

fn add_steering_vector<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let hook = "blocks.0.hook_resid_post";
    let v: Vec<f32> = (0..f.cfg.d_model).map(|i| (i as f32 * 0.37).sin()).collect();
    let clean = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]));
    let out = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]).intervene(Intervention::new(hook, Op::Add(v.clone())).at_positions(vec![4])));
    let (r0, r) = (clean.get(hook).unwrap(), out.get(hook).unwrap());
    let expected: Vec<f32> = r0.row(4).iter().zip(&v).map(|(a, b)| a + b).collect();
    assert!(close(r.row(4), &expected));
    assert!(close(r.row(3), r0.row(3)));
}

fn scale_one_neuron<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let hook = "blocks.0.mlp.hook_post";
    let clean = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]));
    let out = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]).intervene(Intervention::new(hook, Op::Scale(3.0)).at_neuron(7)));
    let (a0, a) = (clean.get(hook).unwrap(), out.get(hook).unwrap());
    let d_mlp = f.cfg.d_mlp.unwrap();
    for (i, (x, y)) in a.data.iter().zip(&a0.data).enumerate() {
        let want = if i % d_mlp == 7 { 3.0 * y } else { *y };
        assert!((x - want).abs() <= 1e-4 + 1e-4 * want.abs(), "entry {i}: {x} vs {want}");
    }
}

/// Activation patching: copying the whole clean residual stream into the corrupted run at
/// layer 1 gives the clean logits; copying it at one position moves only later positions.
fn patch_residual<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let hook = "blocks.1.hook_resid_pre";
    let mut corrupted_tokens = f.tokens.clone();
    corrupted_tokens[2] = (corrupted_tokens[2] + 1) % f.cfg.d_vocab as u32;
    let clean = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]));
    let corrupted = run(b, &f, RunRequest::new(corrupted_tokens.clone()));
    let clean_resid = clean.get(hook).unwrap().clone();
    let all = run(b, &f, RunRequest::new(corrupted_tokens.clone()).intervene(Intervention::new(hook, Op::Replace(clean_resid.clone()))));
    assert!(close(&all.logits.data, &clean.logits.data), "full patch must restore the clean logits");
    let one = run(b, &f, RunRequest::new(corrupted_tokens).intervene(Intervention::new(hook, Op::Replace(clean_resid)).at_positions(vec![2])));
    assert!(close(one.logits.row(2), clean.logits.row(2)));
    assert!(!close(corrupted.logits.row(2), clean.logits.row(2)));
    assert!(close(one.logits.row(1), corrupted.logits.row(1)));
}

/// Zeroing attention scores overwrites the masked -inf entries too: the result is a number.
fn zero_scores_gives_numbers<B: Backend>(b: &B) {
    let f = fixture("attn-only-tiny");
    let hook = "blocks.0.attn.hook_attn_scores";
    let out =
        run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook, "blocks.0.attn.hook_pattern"]).intervene(Intervention::new(hook, Op::Zero).at_head(1)));
    let n = f.tokens.len();
    let pattern = out.get("blocks.0.attn.hook_pattern").unwrap();
    // Head 1 now attends uniformly to every position, future included.
    for q in 0..n {
        let row = &pattern.data[(n + q) * n..(n + q + 1) * n];
        assert!(row.iter().all(|&p| (p - 1.0 / n as f32).abs() < 1e-5), "row {q}: {row:?}");
    }
    assert!(out.logits.data.iter().all(|x| x.is_finite()));
}

fn two_interventions_compose<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let hook = "blocks.0.hook_attn_out";
    let clean = run(b, &f, RunRequest::new(f.tokens.clone()).cache(&[hook]));
    let v = vec![1.0; f.cfg.d_model];
    let out = run(
        b,
        &f,
        RunRequest::new(f.tokens.clone()).cache(&[hook]).intervene(Intervention::new(hook, Op::Scale(2.0))).intervene(Intervention::new(hook, Op::Add(v))),
    );
    let want: Vec<f32> = clean.get(hook).unwrap().data.iter().map(|x| 2.0 * x + 1.0).collect();
    assert!(close(&out.get(hook).unwrap().data, &want));
}

fn forward_visits_exactly_the_hook_list<B: Backend>(b: &B) {
    for name in ["gpt2-tiny", "attn-only-tiny"] {
        let f = fixture(name);
        let out = run(b, &f, RunRequest::new(f.tokens.clone()).cache_all());
        let got: Vec<String> = out.cache.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(got, hook_names(&f.cfg));
        for (n, t) in &out.cache {
            assert_eq!(t.shape, glassbox_core::hook_point(&f.cfg, n).unwrap().shape(&f.cfg, f.tokens.len()), "{n}");
        }
    }
}

macro_rules! on_every_backend {
    ($($body:ident),*) => {
        mod cpu { use super::*; $( #[test] fn $body() { super::$body(&CpuBackend) } )* }
        mod gpu { use super::*; $( #[test] fn $body() { let _g = gpu_lock(); super::$body(common::gpu()) } )* }
    };
}
on_every_backend!(
    zero_one_head,
    add_steering_vector,
    scale_one_neuron,
    patch_residual,
    zero_scores_gives_numbers,
    two_interventions_compose,
    forward_visits_exactly_the_hook_list
);

#[test]
fn bad_requests_are_clear_errors() {
    let f = fixture("gpt2-tiny");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let err = |req: RunRequest| pollster::block_on(model.run(&CpuBackend, &req)).unwrap_err().to_string();
    assert!(err(RunRequest::new(vec![])).contains("empty"));
    assert!(err(RunRequest::new(vec![1; 65])).contains("longer than the model's context of 64"));
    assert!(err(RunRequest::new(vec![101])).contains("outside the vocabulary"));
    assert!(err(RunRequest::new(vec![1, 2]).cache(&["blocks.9.hook_resid_pre"])).contains("unknown hook"));
    let iv = |i: Intervention| RunRequest::new(vec![1, 2, 3]).intervene(i);
    assert!(err(iv(Intervention::new("blocks.0.hook_resid_pre", Op::Zero).at_positions(vec![3]))).contains("position 3"));
    assert!(err(iv(Intervention::new("blocks.0.hook_resid_pre", Op::Zero).at_head(0))).contains("no head axis"));
    assert!(err(iv(Intervention::new("blocks.0.attn.hook_z", Op::Zero).at_head(4))).contains("head 4"));
    assert!(err(iv(Intervention::new("blocks.0.hook_resid_pre", Op::Add(vec![1.0; 3])))).contains("expected 64"));
}
