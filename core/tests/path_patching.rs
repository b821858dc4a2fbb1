//! Path patching (`glassbox_core::analysis::path_patching`) against TransformerLens 3 hooks in
//! the way of ARENA's IOI exercise: fixtures written by python/make_path_patching_fixtures.py
//! (the random GPT-2 fixture, with the pair and metric of the activation-patching fixture, and
//! the shipped induction organism), every cell within 1e-4. Also: the batched sweep against
//! plain full runs on another family (rotary, grouped-query, gated), the induction organism's
//! K-composition, chunking, progress and cancelling, errors, and the GPU backend.

mod common;
use common::*;

use std::collections::HashMap;

use glassbox_core::analysis::patching::Metric;
use glassbox_core::analysis::path_patching::{path_patch, HeadInput, PathPatchResult, PathPatchSpec, Receivers};
use glassbox_core::backend::Backend;
use glassbox_core::weights::read_safetensors;
use glassbox_core::{CpuBackend, HookedTransformer, HostTensor, Intervention, InterventionOp, ModelBundle, RunRequest};
use serde_json::Value;

const TOL: f32 = 1e-4;

struct Reference {
    t: HashMap<String, HostTensor>,
    json: Value,
}

fn reference() -> Reference {
    let dir = repo_root().join("fixtures/gpt2-tiny");
    let t = read_safetensors(&std::fs::read(dir.join("path_patching.safetensors")).unwrap()).unwrap();
    let json = serde_json::from_slice(&std::fs::read(dir.join("path_patching.json")).unwrap()).unwrap();
    Reference { t, json }
}

impl Reference {
    fn tensor(&self, key: &str) -> &HostTensor {
        self.t.get(key).unwrap_or_else(|| panic!("the fixture lacks {key}"))
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn heads(v: &Value) -> Vec<(usize, usize)> {
    v.as_array().unwrap().iter().map(|h| (h[0].as_u64().unwrap() as usize, h[1].as_u64().unwrap() as usize)).collect()
}

/// A model, its clean and corrupted tokens and the metric.
struct Case<B: Backend> {
    model: HookedTransformer<B>,
    clean: Vec<u32>,
    corrupted: Vec<u32>,
    metric: Metric,
}

impl<B: Backend> Case<B> {
    fn sweep(&self, backend: &B, receivers: Receivers, mlp_senders: bool, chunk: usize) -> PathPatchResult {
        let spec = PathPatchSpec { receivers, metric: self.metric.clone(), pos: None, mlp_senders };
        pollster::block_on(path_patch(&self.model, backend, &self.clean, &self.corrupted, &spec, chunk, async |_, _| {}, || false)).unwrap().unwrap()
    }
}

fn metric_of(j: &Value) -> Metric {
    Metric::LogitDiff { target: j["target"].as_u64().unwrap() as u32, distractor: j["distractor"].as_u64().unwrap() as u32 }
}

fn gpt2<B: Backend>(r: &Reference, backend: &B) -> Case<B> {
    let f = family_fixture("gpt2-tiny");
    Case {
        model: HookedTransformer::new(backend, f.cfg.clone(), &f.weights).unwrap(),
        clean: ids(&r.json["clean_tokens"]),
        corrupted: ids(&r.json["corrupted_tokens"]),
        metric: metric_of(&r.json),
    }
}

fn induction_bundle() -> ModelBundle {
    let dir = repo_root().join("public/models/induction-2l");
    let files: Vec<(String, Vec<u8>)> =
        ["config.json", "model.safetensors", "vocab.json", "card.json"].iter().map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap())).collect();
    ModelBundle::from_files(&files, None).unwrap()
}

fn induction<B: Backend>(r: &Reference, backend: &B) -> Case<B> {
    let j = &r.json["induction"];
    let b = induction_bundle();
    let clean = ids(&j["clean_tokens"]);
    // The fixture's ids are the shipped tokenizer's.
    let mut encoded = b.tokenizer.encode(j["clean"].as_str().unwrap()).unwrap();
    b.tokenizer.pad(&mut encoded);
    assert_eq!(encoded, clean);
    Case { model: HookedTransformer::new(backend, b.cfg.clone(), &b.weights).unwrap(), clean, corrupted: ids(&j["corrupted_tokens"]), metric: metric_of(j) }
}

fn max_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) -> f32 {
    let d = max_diff(ours, theirs);
    assert!(d <= tol, "{what}: differs by {d} (tolerance {tol})\n ours   {ours:?}\n theirs {theirs:?}");
    d
}

/// Compares one sweep with the fixture's `<key>.heads` (ARENA's shape: the layers before the
/// last receiver layer) and `<key>.mlp`; the senders that were not run are NaN. Returns the
/// largest deviation.
fn check_against(r: &Reference, key: &str, res: &PathPatchResult, mlp: bool) -> f32 {
    let want = r.tensor(&format!("{key}.heads"));
    let n = want.data.len();
    let mut worst = assert_close(&format!("{key}.heads"), &res.values[..n], &want.data, TOL);
    assert!(res.values[n..].iter().all(|v| v.is_nan()), "{key}: senders after the receivers are not run: {:?}", res.values);
    if mlp {
        let want = r.tensor(&format!("{key}.mlp"));
        let n = want.data.len();
        worst = worst.max(assert_close(&format!("{key}.mlp"), &res.mlp_values[..n], &want.data, TOL));
        assert!(res.mlp_values[n..].iter().all(|v| v.is_nan()));
    }
    worst
}

#[test]
fn every_path_matches_transformer_lens_on_gpt2() {
    let r = reference();
    let case = gpt2(&r, &CpuBackend);
    let (l, h) = (case.model.cfg.n_layers, case.model.cfg.n_heads);
    let t0 = std::time::Instant::now();
    let res = case.sweep(&CpuBackend, Receivers::Logits, true, 64);
    let mut worst = check_against(&r, "logits", &res, true);
    assert_eq!(res.values.len(), l * h);
    assert_eq!((res.senders, res.runs, res.batches), (l * h + l, l * h + l, l), "one batch per sender layer");
    assert_close("clean", &[res.clean], &r.tensor("metric.clean").data, TOL);
    assert_close("corrupted", &[res.corrupted], &r.tensor("metric.corrupted").data, TOL);
    let norm: Vec<f32> = res.values.iter().map(|v| (v - res.corrupted) / (res.clean - res.corrupted)).collect();
    assert_close("normalized", &res.normalized, &norm, 1e-5);
    // The random model's q / k paths move the metric by ~1e-6: also compare the effects
    // (value - clean) tightly, so that the cells are more than the clean value.
    let mut worst_effect = 0f32;
    for (set, rec) in [("last", heads(&r.json["receiver_sets"]["last"])), ("mixed", heads(&r.json["receiver_sets"]["mixed"]))] {
        for input in HeadInput::ALL {
            let key = format!("{set}.{}", input.name());
            let res = case.sweep(&CpuBackend, Receivers::Heads { heads: rec.clone(), input }, true, 64);
            worst = worst.max(check_against(&r, &key, &res, true));
            let theirs_clean = r.tensor("metric.clean").data[0];
            let want = r.tensor(&format!("{key}.heads"));
            let ours: Vec<f32> = res.values[..want.data.len()].iter().map(|v| v - res.clean).collect();
            let theirs: Vec<f32> = want.data.iter().map(|v| v - theirs_clean).collect();
            worst_effect = worst_effect.max(assert_close(&format!("{key} effects"), &ours, &theirs, 2e-6));
        }
    }
    eprintln!("gpt2-tiny: max deviation from TransformerLens {worst:.2e} (effects {worst_effect:.2e}); 7 sweeps in {:.2?}", t0.elapsed());
}

#[test]
fn every_path_matches_transformer_lens_on_the_induction_organism() {
    let r = reference();
    let case = induction(&r, &CpuBackend);
    let rec = heads(&r.json["induction"]["receivers"]);
    let res = case.sweep(&CpuBackend, Receivers::Logits, false, 64);
    let mut worst = check_against(&r, "induction.logits", &res, false);
    assert_close("clean", &[res.clean], &r.tensor("induction.metric.clean").data, TOL);
    assert_close("corrupted", &[res.corrupted], &r.tensor("induction.metric.corrupted").data, TOL);
    for input in HeadInput::ALL {
        let res = case.sweep(&CpuBackend, Receivers::Heads { heads: rec.clone(), input }, false, 3);
        worst = worst.max(check_against(&r, &format!("induction.ind.{}", input.name()), &res, false));
    }
    eprintln!("induction-2l: max deviation from TransformerLens {worst:.2e}");
}

/// The card's mechanism: the previous-token head 0.0 feeds the induction heads 1.0 and 1.3
/// through their keys. Path patching 0.0 -> (1.0, 1.3).k moves the metric most, and far more
/// than through their queries.
#[test]
fn the_previous_token_head_feeds_the_induction_heads_keys() {
    let r = reference();
    let case = induction(&r, &CpuBackend);
    let card: Value = serde_json::from_str(&std::fs::read_to_string(repo_root().join("public/models/induction-2l/card.json")).unwrap()).unwrap();
    let ind = heads(&card["mechanism"]["induction_heads"]);
    let prev = heads(&card["mechanism"]["previous_token_heads"])[0];
    let k = case.sweep(&CpuBackend, Receivers::Heads { heads: ind.clone(), input: HeadInput::K }, false, 64);
    let effect = |res: &PathPatchResult, l: usize, h: usize| 1.0 - res.normalized[l * 4 + h];
    let own = effect(&k, prev.0, prev.1);
    let others = (0..4).filter(|&h| (0, h) != prev).map(|h| effect(&k, 0, h).abs()).fold(0f32, f32::max);
    assert!(own > 0.8, "0.0 -> induction keys carries most of the corruption: effect {own} (normalized {:?})", k.normalized);
    assert!(own > 2.5 * others, "0.0's effect {own} against the other layer-0 heads' {others}");
    let q = case.sweep(&CpuBackend, Receivers::Heads { heads: ind, input: HeadInput::Q }, false, 64);
    assert!(effect(&q, prev.0, prev.1).abs() < 0.1 * own, "through the queries: {:?}", q.normalized);
}

/// The batched sweep (suffix models, truncated step 2, receivers patched from the first receiver
/// layer) equals the algorithm written as plain full runs, on a rotary, grouped-query, gated
/// family, with MLP senders, k receivers (key/value heads) and every metric kind.
#[test]
fn batched_sweep_equals_plain_full_runs_on_llama() {
    let f = family_fixture("llama-tiny");
    let cfg = f.cfg.clone();
    assert!(cfg.n_kv_heads < cfg.n_heads, "the fixture is grouped-query");
    let model = HookedTransformer::new(&CpuBackend, cfg.clone(), &f.weights).unwrap();
    let clean = f.tokens.clone();
    let n = clean.len();
    let mut corrupted = clean.clone();
    for p in [1, n / 2, n - 1] {
        corrupted[p] = (clean[p] + 7) % cfg.d_vocab as u32;
    }
    let run = |tokens: &[u32], ivs: Vec<Intervention>, cache: &[&str]| {
        let mut req = RunRequest::new(tokens.to_vec()).cache(cache);
        req.interventions = ivs;
        pollster::block_on(model.run(&CpuBackend, &req)).unwrap()
    };
    let zs: Vec<String> = (0..cfg.n_layers).map(|l| format!("blocks.{l}.attn.hook_z")).collect();
    let mlps: Vec<String> = (0..cfg.n_layers).map(|l| format!("blocks.{l}.hook_mlp_out")).collect();
    let all: Vec<&str> = zs.iter().chain(&mlps).map(|s| s.as_str()).collect();
    let c = run(&clean, vec![], &all);
    let k = run(&corrupted, vec![], &all);
    // Step 2 as one full run: every z frozen to clean, the sender from corrupted.
    let step2 = |layer: usize, head: Option<usize>, cache: &[&str]| {
        let mut ivs: Vec<Intervention> = zs.iter().map(|z| Intervention::new(z.clone(), InterventionOp::Replace(c.get(z).unwrap().clone()))).collect();
        match head {
            Some(h) => ivs.push(Intervention::new(zs[layer].clone(), InterventionOp::Replace(k.get(&zs[layer]).unwrap().clone())).at_head(h)),
            None => ivs.push(Intervention::new(mlps[layer].clone(), InterventionOp::Replace(k.get(&mlps[layer]).unwrap().clone()))),
        }
        run(&clean, ivs, cache)
    };
    let pos = n - 2;
    let ls = glassbox_core::analysis::log_softmax;
    let clean_logits = c.logits.clone();
    let value = |metric: &Metric, logits: &HostTensor| match metric {
        Metric::LogitDiff { target, distractor } => logits.row(pos)[*target as usize] - logits.row(pos)[*distractor as usize],
        Metric::Prob { target } => ls(logits.row(pos))[*target as usize].exp(),
        Metric::LogProb { target } => ls(logits.row(pos))[*target as usize],
        Metric::Loss => (0..n - 1).map(|p| -ls(logits.row(p))[clean[p + 1] as usize]).sum::<f32>() / (n - 1) as f32,
        Metric::Kl => {
            let (p, q) = (ls(clean_logits.row(pos)), ls(logits.row(pos)));
            p.iter().zip(&q).map(|(a, b)| a.exp() * (a - b)).sum()
        }
    };
    let last = cfg.n_layers - 1;
    let rec = vec![(last, cfg.n_kv_heads - 1), (1, 0)];
    for metric in [Metric::LogitDiff { target: 3, distractor: 9 }, Metric::Prob { target: 3 }, Metric::LogProb { target: 3 }, Metric::Loss, Metric::Kl] {
        for receivers in [Receivers::Logits, Receivers::Heads { heads: rec.clone(), input: HeadInput::K }] {
            let spec = PathPatchSpec { receivers: receivers.clone(), metric: metric.clone(), pos: Some(pos), mlp_senders: true };
            let res = pollster::block_on(path_patch(&model, &CpuBackend, &clean, &corrupted, &spec, 3, async |_, _| {}, || false)).unwrap().unwrap();
            for (layer, head) in [(0, Some(0)), (0, None), (1, Some(cfg.n_heads - 1)), (last - 1, None), (last, Some(1))] {
                let got = match head {
                    Some(h) => res.values[layer * cfg.n_heads + h],
                    None => res.mlp_values[layer],
                };
                let want = match &receivers {
                    Receivers::Logits => value(&metric, &step2(layer, head, &[]).logits),
                    Receivers::Heads { heads, input } => {
                        if layer >= last {
                            assert!(got.is_nan(), "a sender of the last receiver layer is not run");
                            continue;
                        }
                        let names: Vec<String> = heads.iter().map(|&(l, _)| input.hook(l)).collect();
                        let s2 = step2(layer, head, &names.iter().map(|s| s.as_str()).collect::<Vec<_>>());
                        let ivs = heads
                            .iter()
                            .map(|&(l, h)| Intervention::new(input.hook(l), InterventionOp::Replace(s2.get(&input.hook(l)).unwrap().clone())).at_head(h))
                            .collect();
                        value(&metric, &run(&clean, ivs, &[]).logits)
                    }
                };
                assert_close(&format!("{metric:?} {receivers:?} sender {layer}.{head:?}"), &[got], &[want], 2e-5);
            }
        }
    }
}

#[test]
fn chunking_progress_and_cancel() {
    let r = reference();
    let case = gpt2(&r, &CpuBackend);
    let rec = Receivers::Heads { heads: vec![(2, 0), (2, 3)], input: HeadInput::V };
    let a = case.sweep(&CpuBackend, rec.clone(), true, 1);
    let b = case.sweep(&CpuBackend, rec.clone(), true, 1000);
    assert_eq!((a.senders, a.runs, a.batches), (10, 20, 20), "chunks of one sender: two runs (steps 2 and 3) each");
    assert_eq!((b.senders, b.batches), (10, 4), "one chunk per sender layer");
    assert_close("chunk 1 vs 1000", &a.values[..8], &b.values[..8], 1e-6);
    assert_close("chunk 1 vs 1000 (mlp)", &a.mlp_values[..2], &b.mlp_values[..2], 1e-6);

    let spec = PathPatchSpec { receivers: Receivers::Logits, metric: case.metric.clone(), pos: None, mlp_senders: false };
    let calls = std::cell::RefCell::new(Vec::new());
    let res = pollster::block_on(path_patch(
        &case.model,
        &CpuBackend,
        &case.clean,
        &case.corrupted,
        &spec,
        3,
        async |d, t| calls.borrow_mut().push((d, t)),
        || calls.borrow().len() >= 2,
    ))
    .unwrap();
    assert!(res.is_none(), "a cancelled sweep returns None");
    assert_eq!(*calls.borrow(), vec![(3, 12), (4, 12)], "4 heads per layer in chunks of 3: 3, 1, then cancelled");
}

#[test]
fn errors_are_clear() {
    let r = reference();
    let case = gpt2(&r, &CpuBackend);
    let run = |rec: Receivers, mlp: bool, corrupted: &[u32]| {
        let spec = PathPatchSpec { receivers: rec, metric: case.metric.clone(), pos: None, mlp_senders: mlp };
        pollster::block_on(path_patch(&case.model, &CpuBackend, &case.clean, corrupted, &spec, 8, async |_, _| {}, || false)).unwrap_err().to_string()
    };
    let e = run(Receivers::Logits, false, &case.corrupted[..5]);
    assert!(e.contains("same number of tokens"), "{e}");
    let e = run(Receivers::Heads { heads: vec![], input: HeadInput::Q }, false, &case.corrupted);
    assert!(e.contains("no receiver heads"), "{e}");
    let e = run(Receivers::Heads { heads: vec![(3, 0)], input: HeadInput::Q }, false, &case.corrupted);
    assert!(e.contains("receiver layer 3"), "{e}");
    let e = run(Receivers::Heads { heads: vec![(1, 4)], input: HeadInput::K }, false, &case.corrupted);
    assert!(e.contains("receiver head 4") && e.contains("blocks.1.attn.hook_k"), "{e}");
    let ind = induction(&r, &CpuBackend);
    let spec = PathPatchSpec { receivers: Receivers::Logits, metric: ind.metric.clone(), pos: None, mlp_senders: true };
    let e = pollster::block_on(path_patch(&ind.model, &CpuBackend, &ind.clean, &ind.corrupted, &spec, 8, async |_, _| {}, || false)).unwrap_err();
    assert!(e.to_string().contains("attention-only"), "{e}");
    // Receivers in layer 0 only: no sender reaches them; nothing runs.
    let res = case.sweep(&CpuBackend, Receivers::Heads { heads: vec![(0, 1)], input: HeadInput::Q }, false, 8);
    assert_eq!((res.senders, res.runs), (0, 0));
    assert!(res.values.iter().all(|v| v.is_nan()));
}

/// The GPU backend (lavapipe) agrees with the CPU and with the fixture.
#[test]
fn gpu_sweep_matches_cpu_and_transformer_lens() {
    let _g = gpu_lock();
    let r = reference();
    let rec = Receivers::Heads { heads: heads(&r.json["receiver_sets"]["mixed"]), input: HeadInput::V };
    for (receivers, key) in [(Receivers::Logits, "logits"), (rec, "mixed.v")] {
        let cpu = gpt2(&r, &CpuBackend).sweep(&CpuBackend, receivers.clone(), true, 16);
        let gpu = gpt2(&r, gpu()).sweep(gpu(), receivers, true, 16);
        let d = max_diff(&cpu.values, &gpu.values).max(max_diff(&cpu.mlp_values, &gpu.mlp_values));
        assert!(d <= 1e-4, "{key}: GPU differs from CPU by {d}");
        let fx = check_against(&r, key, &gpu, true);
        eprintln!("{key}: GPU vs CPU {d:.2e}, GPU vs TransformerLens {fx:.2e}");
    }
    let ind = induction(&r, gpu());
    let res = ind.sweep(gpu(), Receivers::Heads { heads: heads(&r.json["induction"]["receivers"]), input: HeadInput::K }, false, 16);
    let fx = check_against(&r, "induction.ind.k", &res, false);
    eprintln!("induction.ind.k: GPU vs TransformerLens {fx:.2e}");
}
