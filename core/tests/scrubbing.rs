//! Causal scrubbing on the shipped organisms (glassbox_core::analysis::scrubbing): the worked
//! hypotheses reproduce the numbers their model cards state (`scrubbing`), the correct one beats
//! the wrong one by the card's margin, scrubbing is deterministic under a seed, claiming every
//! node gives the model's own loss and claiming none the unconditional loss.

mod common;
use common::*;
use glassbox_core::analysis::scrubbing::*;
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle};
use serde_json::Value;

fn load(name: &str) -> (ModelBundle, HookedTransformer<CpuBackend>) {
    let bundle = ModelBundle::from_dir(&repo_root().join("public/models").join(name)).unwrap();
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights).unwrap();
    (bundle, model)
}

/// Scrubs a shipped hypothesis as the card states it was run (dataset and draws from `seed`).
fn run(model: &HookedTransformer<CpuBackend>, hyp: &Hypothesis, n: usize, seed: u64, rounds: usize) -> ScrubResult {
    let data = Dataset::new(hyp.task, seed, n);
    pollster::block_on(scrub(model, &CpuBackend, &data, hyp, &ScrubOptions { seed, rounds, ..Default::default() })).unwrap()
}

/// The card's `scrubbing` entry recomputed: (name, result, card entry) per hypothesis.
fn recompute(organism: &str) -> (Value, Vec<(String, ScrubResult)>) {
    let (bundle, model) = load(organism);
    let s = bundle.card["scrubbing"].clone();
    assert!(s.is_object(), "{organism}: card.json has a scrubbing entry");
    let (n, seed, rounds) = (s["n"].as_u64().unwrap() as usize, s["seed"].as_u64().unwrap(), s["rounds"].as_u64().unwrap() as usize);
    let out = s["hypotheses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|name| (name.clone(), run(&model, &hypotheses::by_name(name).unwrap_or_else(|| panic!("{name} is a shipped hypothesis")), n, seed, rounds)))
        .collect();
    (s, out)
}

fn check_card(organism: &str, correct: &str, wrong: &str) {
    let (card, results) = recompute(organism);
    for (name, r) in &results {
        let c = &card["hypotheses"][name];
        let (lo, hi) = (c["ci95"][0].as_f64().unwrap(), c["ci95"][1].as_f64().unwrap());
        let stated = c["loss_recovered"].as_f64().unwrap();
        eprintln!("{organism} {name}: recovered {:.4} ({:.4}..{:.4}), card {stated} ({lo}..{hi})", r.loss_recovered, r.ci95.0, r.ci95.1);
        assert!(r.loss_recovered >= lo - 1e-3 && r.loss_recovered <= hi + 1e-3, "{name}: {} is outside the card's interval {lo}..{hi}", r.loss_recovered);
        assert!((r.loss_recovered - stated).abs() < 5e-3, "{name}: {} against the card's {stated}", r.loss_recovered);
    }
    let get = |n: &str| &results.iter().find(|(k, _)| k == n).unwrap().1;
    let margin = card["margin"].as_f64().unwrap();
    let (c, w) = (get(correct), get(wrong));
    assert!(c.loss_recovered > 0.8, "{correct} recovers {}", c.loss_recovered);
    assert!(c.loss_recovered - w.loss_recovered >= margin, "{correct} {} vs {wrong} {}: margin {margin}", c.loss_recovered, w.loss_recovered);
    assert!(c.ci95.0 > w.ci95.1, "the intervals do not overlap");
}

#[test]
fn parens_card_numbers() {
    check_card("balanced-parens", "parens-correct", "parens-wrong");
}

#[test]
fn induction_card_numbers() {
    check_card("induction-2l", "induction-correct", "induction-wrong");
}

#[test]
fn deterministic_under_a_seed() {
    let (_, m) = load("balanced-parens");
    let h = hypotheses::parens_wrong();
    let a = run(&m, &h, 40, 5, 1);
    let b = run(&m, &h, 40, 5, 1);
    assert_eq!(a, b);
    let c = run(&m, &h, 40, 6, 1);
    assert_ne!(a.loss_scrubbed, c.loss_scrubbed, "another seed draws other samples");
}

#[test]
fn claiming_everything_gives_the_models_loss_and_nothing_the_unconditional_loss() {
    for (organism, hyp) in [("induction-2l", hypotheses::induction_correct()), ("balanced-parens", hypotheses::parens_wrong())] {
        let (_, m) = load(organism);
        let all = run(&m, &hyp.claiming_everything(), 40, 3, 1);
        assert!((all.loss_scrubbed - all.loss_model).abs() < 1e-4, "{organism}: {} vs {}", all.loss_scrubbed, all.loss_model);
        let none = run(&m, &hyp.claiming_nothing(), 40, 3, 1);
        let base = run(&m, &hyp, 40, 3, 1);
        assert_eq!(none.loss_scrubbed, none.loss_uncond);
        assert_eq!(none.loss_scrubbed, base.loss_uncond, "{organism}: the same draws");
        assert!(none.loss_uncond > none.loss_model + 1.0, "{organism}: resampling the claimed nodes unconditionally hurts");
    }
}

#[test]
fn bad_hypotheses_are_refused() {
    let (_, m) = load("induction-2l");
    let data = Dataset::new(Task::Induction, 0, 4);
    let opts = ScrubOptions::default();
    let bad = |claims: Vec<Claim>| {
        let h = Hypothesis { name: "bad".into(), description: String::new(), task: Task::Induction, claims };
        pollster::block_on(scrub(&m, &CpuBackend, &data, &h, &opts)).unwrap_err().to_string()
    };
    assert!(bad(vec![Claim::leaf(Site::MlpOut { layer: 0 }, Feature::Nothing)]).contains("mlp_out 0"), "attention-only");
    assert!(bad(vec![Claim::leaf(Site::HeadOut { layer: 0, head: 9 }, Feature::Nothing)]).contains("head 9"));
    assert!(bad(vec![]).contains("claims no node"));
    let parens = hypotheses::parens_correct();
    assert!(pollster::block_on(scrub(&m, &CpuBackend, &data, &parens, &opts)).unwrap_err().to_string().contains("Parens"));
}

#[test]
fn interchange_on_the_final_residual_follows_the_label() {
    // Swapping the whole final residual at the readout position makes the output the source's
    // label: the causal model "balanced(source)" predicts every swap; the count-test variable
    // alone does not.
    let (_, m) = load("balanced-parens");
    let data = Dataset::new(Task::Parens, 11, 60);
    let site = Site::ResidPost { layer: 2 };
    let at = Some(vec![hypotheses::PARENS_LAST]);
    let iia = |v| pollster::block_on(interchange_accuracy(&m, &CpuBackend, &data, site, at.clone(), v, 60, 1, 64)).unwrap();
    let label = iia(CausalVariable::ParensBalanced);
    assert!(label.accuracy > 0.95 && label.changed_pairs > 10, "{label:?}");
    let count = iia(CausalVariable::ParensEqualCount);
    assert!(count.accuracy < label.accuracy, "{count:?}");
}
