//! Activation patching and ablations (`glassbox_core::analysis::patching`) against
//! TransformerLens 3's `transformer_lens.patching` on the same weights: fixtures written by
//! python/make_patching_fixtures.py (the random GPT-2 fixture), every cell within 1e-4. Also:
//! the GPU backend against the CPU, the batched sweep (shared prefix, unembedding of the
//! metric's rows only) against plain full runs on another family, chunking, cancelling and the
//! errors.

mod common;
use common::*;

use std::collections::HashMap;

use glassbox_core::analysis::patching::{ablate, patch, AblationKind, AblationTarget, Component, Direction, Granularity, Metric, PatchResult, PatchSpec};
use glassbox_core::backend::Backend;
use glassbox_core::weights::read_safetensors;
use glassbox_core::{CpuBackend, HookedTransformer, HostTensor, Intervention, InterventionOp, RunRequest};

const TOL: f32 = 1e-4;

struct Reference {
    f: FamilyFixture,
    t: HashMap<String, HostTensor>,
    json: serde_json::Value,
}

fn reference() -> Reference {
    let f = family_fixture("gpt2-tiny");
    let t = read_safetensors(&std::fs::read(f.dir.join("patching.safetensors")).unwrap()).unwrap();
    let json = serde_json::from_slice(&std::fs::read(f.dir.join("patching.json")).unwrap()).unwrap();
    Reference { f, t, json }
}

impl Reference {
    fn tensor(&self, key: &str) -> &HostTensor {
        self.t.get(key).unwrap_or_else(|| panic!("the fixture lacks {key}"))
    }
    fn tokens(&self, key: &str) -> Vec<u32> {
        self.json[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }
    fn metric(&self) -> Metric {
        Metric::LogitDiff { target: self.json["target"].as_u64().unwrap() as u32, distractor: self.json["distractor"].as_u64().unwrap() as u32 }
    }
    fn model<B: Backend>(&self, backend: &B) -> HookedTransformer<B> {
        HookedTransformer::new(backend, self.f.cfg.clone(), &self.f.weights).unwrap()
    }
}

fn sweep<B: Backend>(r: &Reference, backend: &B, component: Component, by: Granularity, direction: Direction, chunk: usize) -> PatchResult {
    let model = r.model(backend);
    let spec = PatchSpec { component, by, direction, metric: r.metric(), pos: None };
    pollster::block_on(patch(&model, backend, &r.tokens("clean_tokens"), &r.tokens("corrupted_tokens"), &spec, chunk, async |_, _| {}, || false))
        .unwrap()
        .unwrap()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) {
    assert_eq!(ours.len(), theirs.len(), "{what}: {} values against {}", ours.len(), theirs.len());
    let d = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d <= tol, "{what}: differs by {d} (tolerance {tol})\n ours   {ours:?}\n theirs {theirs:?}");
}

/// Rows `i` of a `[n, ...]` tensor.
fn slice(t: &HostTensor, i: usize) -> &[f32] {
    t.row(i)
}

#[test]
fn every_denoising_sweep_matches_transformer_lens() {
    let r = reference();
    let (l, h, p) = (r.f.cfg.n_layers, r.f.cfg.n_heads, r.tokens("clean_tokens").len());
    let d = Direction::Denoising;
    for (c, key) in [(Component::ResidPre, "resid_pre"), (Component::ResidMid, "resid_mid"), (Component::AttnOut, "attn_out"), (Component::MlpOut, "mlp_out")] {
        let res = sweep(&r, &CpuBackend, c, Granularity::ByPos, d, 8);
        assert_eq!(res.shape(), vec![l, p]);
        assert_eq!(res.axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["layer", "pos"]);
        assert_close(&format!("denoise.{key}"), &res.values, &r.tensor(&format!("denoise.{key}")).data, TOL);
        assert_close(&format!("{key}: clean"), &[res.clean], &r.tensor("metric.clean").data, TOL);
        assert_close(&format!("{key}: corrupted"), &[res.corrupted], &r.tensor("metric.corrupted").data, TOL);
    }
    let z = sweep(&r, &CpuBackend, Component::Z, Granularity::ByPos, d, 16);
    assert_eq!(z.shape(), vec![l, p, h]);
    assert_close("denoise.z_by_pos", &z.values, &r.tensor("denoise.z_by_pos").data, TOL);
    let z_all = sweep(&r, &CpuBackend, Component::Z, Granularity::AllPos, d, 16);
    assert_eq!(z_all.shape(), vec![l, h]);
    assert_close("denoise.z_all_pos", &z_all.values, &r.tensor("denoise.z_all_pos").data, TOL);

    // get_act_patch_attn_head_all_pos_every: [z, q, k, v, pattern] x [layer, head].
    let every = r.tensor("denoise.all_pos_every");
    let by_pos_every = r.tensor("denoise.by_pos_every");
    for (i, c) in [Component::Z, Component::Q, Component::K, Component::V, Component::Pattern].into_iter().enumerate() {
        let res = sweep(&r, &CpuBackend, c, Granularity::AllPos, d, 5);
        assert_close(&format!("all_pos_every[{}]", c.name()), &res.values, slice(every, i), TOL);
        if c != Component::Pattern {
            let res = sweep(&r, &CpuBackend, c, Granularity::ByPos, d, 64);
            assert_close(&format!("by_pos_every[{}]", c.name()), &res.values, slice(by_pos_every, i), TOL);
        }
    }
    // The pattern by destination position: [layer, head_index, dest_pos].
    let pat = sweep(&r, &CpuBackend, Component::Pattern, Granularity::ByPos, d, 7);
    assert_eq!(pat.axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["layer", "head_index", "dest_pos"]);
    assert_close("denoise.pattern_by_dest", &pat.values, &r.tensor("denoise.pattern_by_dest").data, TOL);
    // ... which by_pos_every[4] holds as [layer, pos, head].
    let mut rearranged = Vec::new();
    for li in 0..l {
        for pi in 0..p {
            for hi in 0..h {
                rearranged.push(pat.get(&[li, hi, pi]));
            }
        }
    }
    assert_close("by_pos_every[pattern]", &rearranged, slice(by_pos_every, 4), TOL);
}

#[test]
fn noising_matches_transformer_lens_with_the_roles_swapped() {
    let r = reference();
    let res = sweep(&r, &CpuBackend, Component::ResidPre, Granularity::ByPos, Direction::Noising, 12);
    assert_close("noise.resid_pre", &res.values, &r.tensor("noise.resid_pre").data, TOL);
    let res = sweep(&r, &CpuBackend, Component::Z, Granularity::AllPos, Direction::Noising, 12);
    assert_close("noise.z_all_pos", &res.values, &r.tensor("noise.z_all_pos").data, TOL);
    // Normalised: clean = 1, corrupted = 0 in both directions.
    assert_close("clean", &[res.clean], &r.tensor("metric.clean").data, TOL);
    let nz = res.values.iter().map(|v| (v - res.corrupted) / (res.clean - res.corrupted)).collect::<Vec<_>>();
    assert_close("normalized", &res.normalized, &nz, 1e-6);
}

#[test]
fn normalisation_puts_corrupted_at_zero_and_clean_at_one() {
    let r = reference();
    let res = sweep(&r, &CpuBackend, Component::ResidPre, Granularity::ByPos, Direction::Denoising, 64);
    let changed: Vec<usize> = r.json["changed_positions"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let p = r.tokens("clean_tokens").len();
    for pos in 0..p {
        let n = res.normalized[pos]; // layer 0
        if changed.contains(&pos) {
            continue;
        }
        assert!(n.abs() < 1e-3, "patching an unchanged position at layer 0 leaves the corrupted run: {n}");
    }
    // Every position of resid_pre at layer 0 at once is the clean run.
    let all = sweep(&r, &CpuBackend, Component::ResidPre, Granularity::AllPos, Direction::Denoising, 64);
    assert!((all.normalized[0] - 1.0).abs() < 1e-3, "{}", all.normalized[0]);
}

#[test]
fn ablations_match_transformer_lens_hooks() {
    let r = reference();
    let model = r.model(&CpuBackend);
    let prompt = r.tokens("clean_tokens");
    let dataset: Vec<Vec<u32>> =
        r.json["dataset"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect();
    let head = r.json["ablate_head"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect::<Vec<_>>();
    let heads = AblationTarget::Heads { heads: vec![(head[0], head[1])] };
    let run = |target: &AblationTarget, kind| pollster::block_on(ablate(&model, &CpuBackend, &prompt, target, kind, &dataset, &r.metric(), None, 4)).unwrap();
    let zero = run(&heads, AblationKind::Zero);
    assert_close("zero head", &[zero.ablated], &r.tensor("ablate.zero_head").data, TOL);
    assert_close("base", &[zero.base], &r.tensor("metric.clean").data, TOL);
    assert!((zero.change - (zero.ablated - zero.base)).abs() < 1e-7);
    assert_close("mean head", &[run(&heads, AblationKind::Mean).ablated], &r.tensor("ablate.mean_head").data, TOL);
    let res = run(&heads, AblationKind::Resample);
    assert_close("resample head", &res.samples, &r.tensor("ablate.resample_head").data, TOL);
    let mean: f32 = r.tensor("ablate.resample_head").data.iter().sum::<f32>() / dataset.len() as f32;
    assert_close("resample mean", &[res.ablated], &[mean], TOL);
    let mlp = AblationTarget::Mlp { layer: r.json["ablate_mlp"].as_u64().unwrap() as usize };
    assert_close("zero mlp", &[run(&mlp, AblationKind::Zero).ablated], &r.tensor("ablate.zero_mlp").data, TOL);
    let n = &r.json["ablate_neurons"];
    let neurons = AblationTarget::Neurons {
        layer: n["layer"].as_u64().unwrap() as usize,
        neurons: n["neurons"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
    };
    assert_close("zero neurons", &[run(&neurons, AblationKind::Zero).ablated], &r.tensor("ablate.zero_neurons").data, TOL);
    // A dataset of another length is refused.
    let short = vec![vec![1u32, 2, 3]];
    let e = pollster::block_on(ablate(&model, &CpuBackend, &prompt, &heads, AblationKind::Mean, &short, &r.metric(), None, 4)).unwrap_err();
    assert!(e.to_string().contains("3 tokens"), "{e}");
}

#[test]
fn chunking_does_not_change_results() {
    let r = reference();
    let a = sweep(&r, &CpuBackend, Component::Z, Granularity::ByPos, Direction::Denoising, 1);
    let b = sweep(&r, &CpuBackend, Component::Z, Granularity::ByPos, Direction::Denoising, 1000);
    assert_eq!(a.runs, b.runs);
    assert_eq!(a.batches, a.runs, "chunks of one cell: one batch per cell");
    assert_eq!(b.batches, r.f.cfg.n_layers, "one batch per layer (the shared prefix)");
    assert_close("chunk 1 vs 1000", &a.values, &b.values, 1e-5);
}

#[test]
fn cancel_stops_between_chunks_and_progress_counts_cells() {
    let r = reference();
    let model = r.model(&CpuBackend);
    let spec = PatchSpec { component: Component::ResidPre, by: Granularity::ByPos, direction: Direction::Denoising, metric: r.metric(), pos: None };
    let (clean, corrupted) = (r.tokens("clean_tokens"), r.tokens("corrupted_tokens"));
    let calls = std::cell::RefCell::new(Vec::new());
    let res = pollster::block_on(patch(
        &model,
        &CpuBackend,
        &clean,
        &corrupted,
        &spec,
        5,
        async |d, t| calls.borrow_mut().push((d, t)),
        || calls.borrow().len() >= 2,
    ))
    .unwrap();
    assert!(res.is_none(), "a cancelled sweep returns None");
    assert_eq!(*calls.borrow(), vec![(5, 36), (10, 36)], "two chunks ran, then the cancel check stopped the sweep");
    let calls = std::cell::RefCell::new(Vec::new());
    let res =
        pollster::block_on(patch(&model, &CpuBackend, &clean, &corrupted, &spec, 5, async |d, t| calls.borrow_mut().push((d, t)), || false)).unwrap().unwrap();
    // 12 positions per layer in chunks of 5: 5, 5, 2 per layer.
    assert_eq!(res.batches, 9);
    assert_eq!(calls.borrow().last(), Some(&(36, 36)));
    assert_eq!(calls.borrow().len(), 9);
}

#[test]
fn errors_are_clear() {
    let r = reference();
    let model = r.model(&CpuBackend);
    let clean = r.tokens("clean_tokens");
    let spec = PatchSpec { component: Component::ResidPre, by: Granularity::ByPos, direction: Direction::Denoising, metric: r.metric(), pos: None };
    let e = pollster::block_on(patch(&model, &CpuBackend, &clean, &clean[..5], &spec, 8, async |_, _| {}, || false)).unwrap_err();
    assert!(e.to_string().contains("same number of tokens") && e.to_string().contains("12 and 5"), "{e}");
    let bad = PatchSpec { metric: Metric::Prob { target: 5000 }, ..spec.clone() };
    let e = pollster::block_on(patch(&model, &CpuBackend, &clean, &clean, &bad, 8, async |_, _| {}, || false)).unwrap_err();
    assert!(e.to_string().contains("5000"), "{e}");
    let bad = PatchSpec { pos: Some(12), ..spec };
    let e = pollster::block_on(patch(&model, &CpuBackend, &clean, &clean, &bad, 8, async |_, _| {}, || false)).unwrap_err();
    assert!(e.to_string().contains("position 12"), "{e}");
    // An attention-only model has no MLP output to patch.
    let f = family_fixture("attn-only-tiny");
    let m = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let spec = PatchSpec { component: Component::MlpOut, by: Granularity::ByPos, direction: Direction::Denoising, metric: Metric::Loss, pos: None };
    let e = pollster::block_on(patch(&m, &CpuBackend, &f.tokens, &f.tokens, &spec, 8, async |_, _| {}, || false)).unwrap_err();
    assert!(e.to_string().contains("no mlp_out"), "{e}");
}

/// The batched sweep (suffix models from each layer, unembedding only the metric's rows) equals
/// plain full runs with one intervention each, on a rotary, grouped-query, gated family, for
/// every metric.
#[test]
fn batched_sweep_equals_single_full_runs_on_llama() {
    let f = family_fixture("llama-tiny");
    let cfg = &f.cfg;
    let model = HookedTransformer::new(&CpuBackend, cfg.clone(), &f.weights).unwrap();
    let clean = f.tokens.clone();
    let mut corrupted = clean.clone();
    let n = clean.len();
    for p in [1, n / 2, n - 1] {
        corrupted[p] = (clean[p] + 7) % cfg.d_vocab as u32;
    }
    let full = |tokens: &[u32], iv: Option<Intervention>| {
        let mut req = RunRequest::new(tokens.to_vec());
        req.interventions.extend(iv);
        pollster::block_on(model.run(&CpuBackend, &req)).unwrap().logits
    };
    let clean_logits = full(&clean, None);
    let ls = |row: &[f32]| glassbox_core::analysis::log_softmax(row);
    for metric in [Metric::LogitDiff { target: 3, distractor: 9 }, Metric::Prob { target: 3 }, Metric::LogProb { target: 3 }, Metric::Loss, Metric::Kl] {
        for (component, by) in [
            (Component::ResidPre, Granularity::ByPos),
            (Component::K, Granularity::ByPos),
            (Component::Pattern, Granularity::AllPos),
            (Component::MlpOut, Granularity::AllPos),
        ] {
            let spec = PatchSpec { component, by, direction: Direction::Denoising, metric: metric.clone(), pos: Some(n - 2) };
            let res = pollster::block_on(patch(&model, &CpuBackend, &clean, &corrupted, &spec, 3, async |_, _| {}, || false)).unwrap().unwrap();
            let clean_cache = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(clean.clone()).cache_all())).unwrap();
            // A few cells, each as one full run of the corrupted prompt with one intervention.
            let shape = res.shape();
            for flat in [0, res.values.len() / 2, res.values.len() - 1] {
                let mut idx = vec![0; shape.len()];
                let mut rest = flat;
                for (i, s) in shape.iter().enumerate().rev() {
                    idx[i] = rest % s;
                    rest /= s;
                }
                let layer = idx[0];
                let hook = component.hook(layer);
                let mut iv = Intervention::new(hook.clone(), InterventionOp::Replace(clean_cache.get(&hook).unwrap().clone()));
                match (component, by) {
                    (Component::ResidPre, _) => iv = iv.at_positions(vec![idx[1]]),
                    (Component::K, _) => iv = iv.at_positions(vec![idx[1]]).at_head(idx[2]),
                    (Component::Pattern, _) => iv = iv.at_head(idx[1]),
                    _ => {}
                }
                let logits = full(&corrupted, Some(iv));
                let pos = n - 2;
                let want = match &metric {
                    Metric::LogitDiff { target, distractor } => logits.row(pos)[*target as usize] - logits.row(pos)[*distractor as usize],
                    Metric::Prob { target } => ls(logits.row(pos))[*target as usize].exp(),
                    Metric::LogProb { target } => ls(logits.row(pos))[*target as usize],
                    Metric::Loss => (0..n - 1).map(|p| -ls(logits.row(p))[clean[p + 1] as usize]).sum::<f32>() / (n - 1) as f32,
                    Metric::Kl => {
                        let (p, q) = (ls(clean_logits.row(pos)), ls(logits.row(pos)));
                        p.iter().zip(&q).map(|(a, b)| a.exp() * (a - b)).sum()
                    }
                };
                assert_close(&format!("{metric:?} {} {idx:?}", component.name()), &[res.values[flat]], &[want], 2e-5);
            }
        }
    }
}

/// One sweep on the GPU backend (lavapipe) against the CPU, within 1e-4 relative.
#[test]
fn gpu_sweep_matches_cpu() {
    let _g = gpu_lock();
    let r = reference();
    for (c, by) in [(Component::Z, Granularity::ByPos), (Component::ResidPre, Granularity::ByPos)] {
        let cpu = sweep(&r, &CpuBackend, c, by, Direction::Denoising, 16);
        let gpu = sweep(&r, gpu(), c, by, Direction::Denoising, 16);
        let scale = cpu.values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = cpu.values.iter().zip(&gpu.values).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d <= 1e-4 * scale.max(1.0), "{}: GPU differs from CPU by {d} (scale {scale})", c.name());
        assert_close("gpu vs fixture", &gpu.values, &r.tensor(&format!("denoise.{}", if c == Component::Z { "z_by_pos" } else { "resid_pre" })).data, TOL);
    }
}
