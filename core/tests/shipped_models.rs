//! The shipped models reach the held-out metrics their model cards state (no retraining:
//! this reads the committed weights in public/models/), predict known examples correctly, and
//! their vocabularies reject what they cannot tokenize by name.

mod common;
use common::*;
use glassbox_core::tasks::{card_metrics, modular, parens};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle, RunRequest};

const SHIPPED: [&str; 4] = ["induction-2l", "modular-addition", "balanced-parens", "english-char-3l"];

fn load(name: &str) -> (ModelBundle, HookedTransformer<CpuBackend>) {
    let bundle = ModelBundle::from_dir(&repo_root().join("public/models").join(name)).unwrap_or_else(|e| panic!("the shipped model {name} loads: {e}"));
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights).unwrap();
    (bundle, model)
}

/// The readout's argmax at the last position of `prompt`, by name, as the app computes it.
fn answer(bundle: &ModelBundle, model: &HookedTransformer<CpuBackend>, prompt: &str) -> String {
    let mut ids = bundle.tokenizer.encode(prompt).unwrap();
    bundle.tokenizer.pad(&mut ids);
    let out = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(ids.clone()))).unwrap();
    let (id, _) = out.top_k(ids.len() - 1, 1)[0];
    bundle.tokenizer.output_str(id).to_string()
}

#[test]
fn every_shipped_model_reaches_its_card_metrics() {
    for name in SHIPPED {
        let (bundle, model) = load(name);
        let dir = repo_root().join("public/models").join(name);
        let metrics = pollster::block_on(card_metrics(&bundle, &model, &CpuBackend, &dir)).unwrap();
        assert!(!metrics.is_empty());
        for (metric, got, card) in metrics {
            // The card rounds to 4 decimals and was computed by the trainer (python/ or the
            // CLI); the Rust forward pass sums in another order, so allow 2e-3.
            let lower_is_better = metric.contains("loss");
            let ok = if lower_is_better { got <= card + 2e-3 } else { got + 2e-3 >= card };
            assert!(ok, "{name}: {metric} is {got:.4} with the Rust forward pass, the card says {card:.4}");
            eprintln!("{name}: {metric} {got:.4} (card {card:.4})");
        }
    }
}

/// What the issue asks of each organism, as floors on the card (so that retraining a worse
/// model cannot ship): induction > 0.9, modular addition > 99%, parentheses > 99% overall and
/// on the hard case, English better than the bigram baseline.
#[test]
fn the_cards_meet_the_targets() {
    let card = |name: &str| load(name).0.card;
    let m = |c: &serde_json::Value, k: &str| c["metrics"][k].as_f64().unwrap_or_else(|| panic!("metrics.{k}"));
    assert!(m(&card("induction-2l"), "heldout_induction_accuracy") > 0.9);
    assert!(m(&card("modular-addition"), "heldout_accuracy") > 0.99);
    let p = card("balanced-parens");
    assert!(m(&p, "heldout_accuracy") > 0.99 && m(&p, "heldout_hard_case_accuracy") > 0.99);
    let e = card("english-char-3l");
    assert!(m(&e, "heldout_loss_nats_per_char") < m(&e, "bigram_baseline_nats_per_char"));
    assert!(m(&e, "bigram_baseline_nats_per_char") < m(&e, "unigram_baseline_nats_per_char"));
}

#[test]
fn the_modular_split_is_the_trainers_split() {
    // python/train_organisms.py ports SplitMix64 and the shuffle; the card records the first
    // training pairs it drew, which must be ours too, or "held-out" would be a lie.
    let (bundle, _) = load("modular-addition");
    let (train, test) = modular::split(bundle.card["metrics"]["split_seed"].as_u64().unwrap(), modular::TRAIN_FRACTION);
    let first: Vec<(usize, usize)> = bundle.card["metrics"]["first_train_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize))
        .collect();
    assert_eq!(&train[..first.len()], &first[..]);
    assert_eq!(train.len(), bundle.card["metrics"]["train_pairs"].as_u64().unwrap() as usize);
    assert_eq!(test.len(), bundle.card["metrics"]["heldout_pairs"].as_u64().unwrap() as usize);
}

#[test]
fn known_examples() {
    let (b, m) = load("modular-addition");
    assert_eq!(answer(&b, &m, "37 + 85 ="), ((37 + 85) % 113).to_string());
    assert_eq!(answer(&b, &m, "112 + 112 ="), ((112 + 112) % 113).to_string());
    assert_eq!(answer(&b, &m, "0 + 0 ="), "0");

    let (b, m) = load("balanced-parens");
    for s in ["(())()", "((()))(())", "()"] {
        assert!(parens::is_balanced(s));
        assert_eq!(answer(&b, &m, s), "balanced", "{s}");
    }
    for s in ["())(()", ")(", "(((", "(()))(()"] {
        assert!(!parens::is_balanced(s));
        assert_eq!(answer(&b, &m, s), "unbalanced", "{s}");
    }

    // The English model finishes an obvious word.
    let (b, m) = load("english-char-3l");
    assert_eq!(answer(&b, &m, "Call me Ishmael. The whale swam in the se"), "a");
    assert_eq!(answer(&b, &m, "the captain of the shi"), "p");
}

#[test]
fn vocabularies_match_their_models_and_reject_what_they_lack() {
    for name in SHIPPED {
        let (b, _) = load(name);
        assert_eq!(b.tokenizer.vocab_size(), b.cfg.d_vocab, "{name}");
        assert_eq!(b.tokenizer.n_outputs(), b.cfg.d_vocab_out, "{name}");
    }
    let (b, _) = load("induction-2l");
    assert_eq!(b.tokenizer.encode("ab C9").unwrap().len(), 5, "BOS + 4 characters, whitespace skipped");
    let err = b.tokenizer.encode("ab!?").unwrap_err().to_string();
    assert!(err.contains("\"!\"") && err.contains("\"?\""), "{err}");

    let (b, _) = load("balanced-parens");
    let err = b.tokenizer.encode("(a)").unwrap_err().to_string();
    assert!(err.contains("\"a\""), "a letter in the parentheses model is named: {err}");

    let (b, _) = load("modular-addition");
    let err = b.tokenizer.encode("200 + 3 =").unwrap_err().to_string();
    assert!(err.contains("\"200\""), "{err}");

    let (b, _) = load("english-char-3l");
    let err = b.tokenizer.encode("snow ☃").unwrap_err().to_string();
    assert!(err.contains("☃"), "{err}");
}

/// The induction card's ablation: zero-ablating its induction heads on the card's held-out
/// evaluation (seed and sequence count of `metrics`) gives the accuracy the card states (what
/// the page's ablation view shows beside its own figure), and ablating two other heads of layer
/// 1 barely moves it.
#[test]
fn zero_ablating_the_induction_heads_gives_the_cards_accuracy() {
    use glassbox_core::analysis::patching::{zero_ablation, AblationTarget};
    use glassbox_core::tasks::induction_heldout_accuracy_with;
    let (bundle, model) = load("induction-2l");
    let card = &bundle.card;
    let seed = card["metrics"]["eval_seed"].as_u64().unwrap();
    let n = card["metrics"]["eval_sequences"].as_u64().unwrap() as usize;
    let ablation = &card["mechanism"]["zero_ablation"];
    let heads: Vec<(usize, usize)> = serde_json::from_value(ablation["heads"].clone()).expect("mechanism.zero_ablation.heads");
    let induction: Vec<(usize, usize)> = serde_json::from_value(card["mechanism"]["induction_heads"].clone()).unwrap();
    assert_eq!(heads, induction, "the card's ablation is of its induction heads");
    let stated = ablation["induction_accuracy"].as_f64().expect("mechanism.zero_ablation.induction_accuracy");
    let ivs = zero_ablation(&bundle.cfg, &AblationTarget::Heads { heads }).unwrap();
    let got = pollster::block_on(induction_heldout_accuracy_with(&model, &CpuBackend, seed, n, &ivs)).unwrap() as f64;
    eprintln!("induction accuracy with the induction heads zero-ablated: {got:.4} (card {stated:.4})");
    assert!((got - stated).abs() < 2e-3, "zero ablation of the induction heads: {got:.4}, the card says {stated:.4}");
    assert!(stated < 0.5 * card["metrics"]["heldout_induction_accuracy"].as_f64().unwrap());
    let others = zero_ablation(&bundle.cfg, &AblationTarget::Heads { heads: vec![(1, 1), (1, 2)] }).unwrap();
    let other = pollster::block_on(induction_heldout_accuracy_with(&model, &CpuBackend, seed, n, &others)).unwrap() as f64;
    assert!(other > 0.8, "ablating two other heads drops the accuracy to {other:.4}");
}
