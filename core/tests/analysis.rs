//! The analyses (`glassbox_core::analysis`) against TransformerLens 3 on the same weights:
//! fixtures written by python/make_analysis_fixtures.py (random-weight GPT-2 and Llama
//! fixtures), within 1e-4. The attribution's sum check runs on every family.

mod common;
use common::*;

use std::collections::HashMap;

use glassbox_core::analysis::attribution::{attribute, AttributionOptions, Part};
use glassbox_core::analysis::heads::{detector_input, head_scores, HeadKind};
use glassbox_core::analysis::lens::{logit_lens, normalized_resid, LensNorm, LensOptions};
use glassbox_core::analysis::neurons::{activations, direct_effect_logits};
use glassbox_core::analysis::{hooks_needed, top_k};
use glassbox_core::gguf_model::GgufModel;
use glassbox_core::weights::{read_safetensors, HostMatrix};
use glassbox_core::{CpuBackend, HookedTransformer, HostTensor, ModelWeights, RunOutput, RunRequest};

const TOL: f32 = 1e-4;

struct Reference {
    f: FamilyFixture,
    t: HashMap<String, HostTensor>,
    json: serde_json::Value,
}

fn reference(name: &str) -> Reference {
    let f = family_fixture(name);
    let t = read_safetensors(&std::fs::read(f.dir.join("analysis.safetensors")).unwrap()).unwrap();
    let json = serde_json::from_slice(&std::fs::read(f.dir.join("analysis.json")).unwrap()).unwrap();
    Reference { f, t, json }
}

impl Reference {
    fn tensor(&self, key: &str) -> &HostTensor {
        self.t.get(key).unwrap_or_else(|| panic!("{}: the fixture lacks {key}", self.f.dir.display()))
    }
    fn u32(&self, key: &str) -> u32 {
        self.json[key].as_u64().unwrap() as u32
    }
    fn tokens(&self, key: &str) -> Vec<u32> {
        self.json[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }
}

fn run_all<M: glassbox_core::weights::MatrixSource>(cfg: &glassbox_core::Config, weights: &ModelWeights<HostTensor, M>, tokens: &[u32]) -> RunOutput {
    let model = HookedTransformer::new(&CpuBackend, cfg.clone(), weights).unwrap();
    pollster::block_on(model.run(&CpuBackend, &RunRequest::new(tokens.to_vec()).cache_all())).unwrap()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) {
    assert_eq!(ours.len(), theirs.len(), "{what}: {} values against TransformerLens's {}", ours.len(), theirs.len());
    let d = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d <= tol, "{what}: differs from TransformerLens by {d} (tolerance {tol})");
}

/// The lens's logits before reduction: the normalised residuals through W_U on the CPU.
fn lens_logits(r: &Reference, out: &RunOutput, norm: LensNorm, incl_mid: bool) -> (Vec<String>, Vec<f32>) {
    let model = HookedTransformer::new(&CpuBackend, r.f.cfg.clone(), &r.f.weights).unwrap();
    let opts = LensOptions { norm, incl_mid, ..LensOptions::default() };
    let (labels, rows) = normalized_resid(&r.f.cfg, &r.f.weights, out, &opts).unwrap();
    (labels, pollster::block_on(model.unembed(&CpuBackend, &rows)).unwrap().data)
}

#[test]
fn logit_lens_equals_transformer_lens() {
    for name in ["gpt2-tiny", "llama-tiny"] {
        let r = reference(name);
        let out = run_all(&r.f.cfg, &r.f.weights, &r.f.tokens);
        let (labels, fresh) = lens_logits(&r, &out, LensNorm::Fresh, false);
        assert_eq!(serde_json::json!(labels), r.json["lens_labels"], "{name}: labels");
        assert_close(&format!("{name} lens (fresh statistics)"), &fresh, &r.tensor("lens.fresh").data, TOL);
        // TransformerLens 3's own accumulated_resid(apply_ln=True) is the fresh one.
        assert_close(&format!("{name} lens vs TransformerLens's accumulated_resid"), &fresh, &r.tensor("lens.tl").data, TOL);
        let (_, cached) = lens_logits(&r, &out, LensNorm::CachedScale, false);
        assert_close(&format!("{name} lens (cached final scale)"), &cached, &r.tensor("lens.cached").data, TOL);
        let (labels, mid) = lens_logits(&r, &out, LensNorm::Fresh, true);
        assert_eq!(serde_json::json!(labels), r.json["lens_mid_labels"], "{name}: labels with resid_mid");
        assert_close(&format!("{name} lens with resid_mid"), &mid, &r.tensor("lens.fresh_mid").data, TOL);
        // The two readings differ before the last layer (the test could tell them apart).
        assert!(fresh.iter().zip(&cached).any(|(a, b)| (a - b).abs() > 1e-2), "{name}: fresh and cached lenses coincide");
        // The reduced lens: the last row is the model's own prediction.
        let model = HookedTransformer::new(&CpuBackend, r.f.cfg.clone(), &r.f.weights).unwrap();
        let target = r.u32("target");
        let lens =
            pollster::block_on(logit_lens(&model, &CpuBackend, &r.f.weights, &out, &LensOptions { target: Some(target), ..LensOptions::default() })).unwrap();
        let pos = r.u32("pos") as usize;
        let last = lens.cell(lens.labels.len() - 1, pos).unwrap();
        assert_eq!(last.top[0].0, top_k(out.logits.row(pos), 1)[0].0, "{name}: the lens's last row is not the model's prediction");
        let t = last.target.unwrap();
        assert_eq!(t.rank, 0);
        assert!((t.logit - out.logits.row(pos)[target as usize]).abs() < TOL);
    }
}

#[test]
fn logit_lens_on_the_gpu_equals_the_cpu() {
    let _guard = gpu_lock();
    let gpu = gpu();
    let r = reference("gpt2-tiny");
    let out = run_all(&r.f.cfg, &r.f.weights, &r.f.tokens);
    let opts = LensOptions { target: Some(3), ..LensOptions::default() };
    let cpu_model = HookedTransformer::new(&CpuBackend, r.f.cfg.clone(), &r.f.weights).unwrap();
    let gpu_model = HookedTransformer::new(gpu, r.f.cfg.clone(), &r.f.weights).unwrap();
    let c = pollster::block_on(logit_lens(&cpu_model, &CpuBackend, &r.f.weights, &out, &opts)).unwrap();
    let g = pollster::block_on(logit_lens(&gpu_model, gpu, &r.f.weights, &out, &opts)).unwrap();
    assert_eq!(c.cells.len(), g.cells.len());
    for (a, b) in c.cells.iter().zip(&g.cells) {
        assert_eq!(a.top[0].0, b.top[0].0);
        assert!((a.target.unwrap().prob - b.target.unwrap().prob).abs() < 1e-5);
    }
}

#[test]
fn direct_logit_attribution_equals_transformer_lens() {
    for name in ["gpt2-tiny", "llama-tiny"] {
        let r = reference(name);
        let out = run_all(&r.f.cfg, &r.f.weights, &r.f.tokens);
        let (pos, t, d) = (r.u32("pos") as usize, r.u32("target"), r.u32("distractor"));
        let diff = attribute(&r.f.cfg, &r.f.weights, &out, &AttributionOptions::new(pos, t, Some(d))).unwrap();
        let heads: Vec<f32> = diff.heads().map(|t| t.value).collect();
        let labels: Vec<&str> = diff.heads().map(|t| t.label.as_str()).collect();
        assert_eq!(serde_json::json!(labels), r.json["head_labels"]);
        assert_close(&format!("{name} head attributions"), &heads, &r.tensor("dla.heads_attrs").data, TOL);
        let layers: Vec<f32> = diff.layers.iter().map(|t| t.value).collect();
        let labels: Vec<&str> = diff.layers.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(serde_json::json!(labels), r.json["decompose_labels"]);
        assert_close(&format!("{name} decompose_resid attributions"), &layers, &r.tensor("dla.decompose_attrs").data, TOL);
        let b_o: Vec<f32> = diff.terms.iter().filter(|t| matches!(t.part, Part::AttnBias { .. })).map(|t| t.value).collect();
        if r.f.cfg.attn_out_bias {
            assert_close(&format!("{name} b_O terms"), &b_o, &r.tensor("dla.bias_b_O_attrs").data, TOL);
        }
        let norm_bias: f32 = diff.terms.iter().filter(|t| t.part == Part::NormBias).map(|t| t.value).sum();
        assert_close(&format!("{name} ln_final bias term"), &[norm_bias], &r.tensor("dla.bias_unembed_attr").data, TOL);
        assert_close(&format!("{name} actual logit difference"), &[diff.actual], &r.tensor("dla.logit_diff").data, TOL);
        assert!((diff.sum - diff.actual).abs() < TOL, "{name}: attributions sum to {}, the model's logit difference is {}", diff.sum, diff.actual);

        let single = attribute(&r.f.cfg, &r.f.weights, &out, &AttributionOptions::new(pos, t, None)).unwrap();
        let layers: Vec<f32> = single.layers.iter().map(|t| t.value).collect();
        assert_close(&format!("{name} single-token attributions"), &layers, &r.tensor("dla.decompose_attrs_target").data, TOL);
        assert_close(&format!("{name} target logit"), &[single.actual], &r.tensor("dla.logit_target").data, TOL);
        assert!((single.sum - single.actual).abs() < TOL);

        let centred = attribute(&r.f.cfg, &r.f.weights, &out, &AttributionOptions { center_unembed: true, ..AttributionOptions::new(pos, t, None) }).unwrap();
        let layers: Vec<f32> = centred.layers.iter().map(|t| t.value).collect();
        assert_close(&format!("{name} centred single-token attributions"), &layers, &r.tensor("dla.decompose_attrs_target_centred").data, TOL);
        assert!((centred.sum - centred.actual).abs() < TOL, "{name}: centred sum {} against {}", centred.sum, centred.actual);
    }
}

#[test]
fn attributions_add_up_to_the_logit_difference_on_every_family() {
    for name in ["gpt2-tiny", "llama-tiny", "qwen2-tiny", "pythia-tiny", "attn-only-tiny"] {
        let f = family_fixture(name);
        let out = run_all(&f.cfg, &f.weights, &f.tokens);
        let pos = f.tokens.len() - 1;
        let top = top_k(out.logits.row(pos), 2);
        let a = attribute(&f.cfg, &f.weights, &out, &AttributionOptions::new(pos, top[0].0, Some(top[1].0))).unwrap();
        let scale = out.logits.data.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        assert!((a.sum - a.actual).abs() <= 1e-4 * scale, "{name}: attributions sum to {}, the logit difference is {}", a.sum, a.actual);
        // Without folding the norm's weight the sum generally misses (what the view warns about).
        let unfolded = attribute(&f.cfg, &f.weights, &out, &AttributionOptions { fold_ln: false, ..a.opts.clone() }).unwrap();
        assert!((unfolded.sum - a.sum).abs() > 1e-6, "{name}: folding changed nothing");
        eprintln!("{name}: logit difference {:.5}, attributions sum {:.5}", a.actual, a.sum);
    }
}

#[test]
fn head_scores_equal_transformer_lens_detect_head() {
    for name in ["gpt2-tiny", "llama-tiny"] {
        let r = reference(name);
        let tokens = r.tokens("head_tokens");
        let out = run_all(&r.f.cfg, &r.f.weights, &tokens);
        let scores = head_scores(&r.f.cfg, &out, &tokens).unwrap();
        for (kind, key) in
            [(HeadKind::PreviousToken, "heads.previous_token"), (HeadKind::DuplicateToken, "heads.duplicate_token"), (HeadKind::Induction, "heads.induction")]
        {
            assert_close(&format!("{name} {key}"), scores.get(kind), &r.tensor(key).data, TOL);
        }
    }
}

#[test]
fn neuron_direct_effects_equal_transformer_lens() {
    for name in ["gpt2-tiny", "llama-tiny"] {
        let r = reference(name);
        let out = run_all(&r.f.cfg, &r.f.weights, &r.f.tokens);
        let pos = r.u32("pos") as usize;
        for ln in r.json["neurons"].as_array().unwrap() {
            let (l, n) = (ln[0].as_u64().unwrap() as usize, ln[1].as_u64().unwrap() as usize);
            let effect = direct_effect_logits(&r.f.cfg, &r.f.weights, &out, l, n, pos).unwrap();
            assert_close(&format!("{name} neuron {l}.{n} direct effect"), &effect, &r.tensor(&format!("neuron.{l}.{n}")).data, TOL);
            let post = activations(&r.f.cfg, &out, l, n).unwrap();
            assert_close(&format!("{name} neuron {l}.{n} activations"), &post, &r.tensor(&format!("neuron.{l}.{n}.post")).data, TOL);
        }
        // Out of range: a message, not a panic.
        let e = direct_effect_logits(&r.f.cfg, &r.f.weights, &out, 0, 1 << 20, pos).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }
}

#[test]
fn quantized_weights_read_like_their_dequantized_copy() {
    // The analyses read GGUF blocks in place (a column of W_U, a row of W_out); the numbers must
    // equal those on the same weights dequantized.
    let bytes = std::fs::read(repo_root().join("fixtures/gpt2-tiny/model-q8_0.gguf")).unwrap();
    let g = GgufModel::from_bytes(&bytes).unwrap();
    // W_E is a table; every other matrix is linear: densify each in its role.
    let dense = g
        .weights
        .try_map(
            |_, t| Ok(t.clone()),
            |name, m: &HostMatrix| Ok::<_, glassbox_core::Error>(HostMatrix::Dense(m.dense(glassbox_core::weights::matrix_role(name))?)),
        )
        .unwrap();
    assert!(
        matches!(g.weights.W_U, HostMatrix::Quant(_)) || matches!(g.weights.blocks[0].mlp.as_ref().unwrap().W_out, HostMatrix::Quant(_)),
        "the fixture is not quantized"
    );
    let tokens: Vec<u32> = (1..12).collect();
    let out = run_all(&g.cfg, &dense, &tokens);
    let pos = tokens.len() - 1;
    let opts = AttributionOptions::new(pos, 5, Some(9));
    let (q, d) = (attribute(&g.cfg, &g.weights, &out, &opts).unwrap(), attribute(&g.cfg, &dense, &out, &opts).unwrap());
    for (a, b) in q.terms.iter().zip(&d.terms) {
        assert!((a.value - b.value).abs() < 1e-5, "{}: {} quantized against {} dense", a.label, a.value, b.value);
    }
    let centred = AttributionOptions { center_unembed: true, distractor: None, ..opts };
    assert!((attribute(&g.cfg, &g.weights, &out, &centred).unwrap().sum - attribute(&g.cfg, &dense, &out, &centred).unwrap().sum).abs() < 1e-4);
    let (eq, ed) = (direct_effect_logits(&g.cfg, &g.weights, &out, 1, 7, pos).unwrap(), direct_effect_logits(&g.cfg, &dense, &out, 1, 7, pos).unwrap());
    assert_close("direct effect, quantized against dense", &eq, &ed, 1e-5);
}

#[test]
fn hooks_needed_feed_every_analysis() {
    let r = reference("gpt2-tiny");
    let names: Vec<String> = hooks_needed(&r.f.cfg);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let model = HookedTransformer::new(&CpuBackend, r.f.cfg.clone(), &r.f.weights).unwrap();
    let out = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(r.f.tokens.clone()).cache(&names))).unwrap();
    let pos = r.f.tokens.len() - 1;
    attribute(&r.f.cfg, &r.f.weights, &out, &AttributionOptions::new(pos, 1, Some(2))).unwrap();
    pollster::block_on(logit_lens(&model, &CpuBackend, &r.f.weights, &out, &LensOptions { incl_mid: true, ..LensOptions::default() })).unwrap();
    head_scores(&r.f.cfg, &out, &r.f.tokens).unwrap();
    direct_effect_logits(&r.f.cfg, &r.f.weights, &out, 2, 5, pos).unwrap();
}

#[test]
fn the_induction_models_card_names_the_heads_the_detector_ranks_first() {
    let dir = repo_root().join("public/models/induction-2l");
    let bundle = glassbox_core::ModelBundle::from_dir(&dir).unwrap();
    let tokens = detector_input(&bundle.cfg, bundle.tokenizer.bos());
    let out = run_all(&bundle.cfg, &bundle.weights, &tokens);
    let scores = head_scores(&bundle.cfg, &out, &tokens).unwrap();
    let heads = |key: &str| -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> =
            bundle.card["mechanism"][key].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize)).collect();
        v.sort();
        v
    };
    for (kind, key) in [(HeadKind::Induction, "induction_heads"), (HeadKind::PreviousToken, "previous_token_heads")] {
        let named = heads(key);
        let ranked = scores.ranked(kind);
        let mut top: Vec<(usize, usize)> = ranked[..named.len()].iter().map(|&(l, h, _)| (l, h)).collect();
        top.sort();
        assert_eq!(top, named, "{key}: the detector ranks {ranked:?}");
        assert!(ranked[named.len() - 1].2 > 2.0 * ranked[named.len()].2, "{key}: no clear gap in {ranked:?}");
    }
}

#[test]
fn a_model_cut_after_a_layer_computes_that_layer_as_the_whole_model_does() {
    let f = family_fixture("gpt2-tiny");
    let model = HookedTransformer::new(&CpuBackend, f.cfg.clone(), &f.weights).unwrap();
    let hook = "blocks.1.mlp.hook_post";
    let req = RunRequest::new(f.tokens.clone()).cache(&[hook]);
    let full = pollster::block_on(model.run(&CpuBackend, &req)).unwrap();
    let cut = model.truncated(&CpuBackend, 1).unwrap();
    assert_eq!((cut.cfg.n_layers, cut.weights.blocks.len()), (2, 2));
    let part = pollster::block_on(cut.run(&CpuBackend, &req)).unwrap();
    assert_eq!(part.logits.shape, vec![f.tokens.len(), 1]);
    assert_eq!(part.get(hook).unwrap().data, full.get(hook).unwrap().data);
    assert!(model.truncated(&CpuBackend, 3).is_err());
}
