//! The shipped models reach the held-out metrics their model cards state (no retraining:
//! this reads the committed weights in public/models/).

mod common;
use common::*;
use glassbox_core::tasks::induction_heldout_accuracy;
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle};

#[test]
fn induction_model_reaches_its_card_accuracy() {
    let bundle = ModelBundle::from_dir(&repo_root().join("public/models/induction-2l")).expect("the shipped induction model loads");
    let metrics = &bundle.card["metrics"];
    let claimed = metrics["heldout_induction_accuracy"].as_f64().expect("the card states its accuracy") as f32;
    let seed = metrics["eval_seed"].as_u64().unwrap();
    let n = metrics["eval_sequences"].as_u64().unwrap() as usize;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights).unwrap();
    let acc = pollster::block_on(induction_heldout_accuracy(&model, &CpuBackend, seed, n)).unwrap();
    // The card rounds to 4 decimals; the evaluation is deterministic.
    assert!(acc + 1e-4 >= claimed, "held-out accuracy {acc} is below the card's {claimed}");
    assert!(claimed > 0.9, "the card claims only {claimed}: the model did not learn induction");
}

/// The vocabulary file and the model agree, and the tokenizer rejects what it lacks by name.
#[test]
fn induction_tokenizer_matches_the_model() {
    let bundle = ModelBundle::from_dir(&repo_root().join("public/models/induction-2l")).unwrap();
    assert_eq!(bundle.tokenizer.vocab_size(), bundle.cfg.d_vocab);
    let ids = bundle.tokenizer.encode("ab C9").unwrap();
    assert_eq!(ids.len(), 5, "BOS + 4 characters, whitespace skipped");
    let err = bundle.tokenizer.encode("ab!?").unwrap_err().to_string();
    assert!(err.contains("'!'") && err.contains("'?'"), "{err}");
}
