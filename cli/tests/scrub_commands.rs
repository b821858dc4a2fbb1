//! `glassbox scrub` on the shipped organisms: the correct hypotheses recover most of the loss
//! and the wrong ones much less, with the card's figures; JSON that parses; a hypothesis about
//! another model exits with 1 and a clear `error: ...`.

mod common;
use common::*;

use serde_json::Value;

fn card(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("public/models").join(name).join("card.json")).unwrap()).unwrap()
}

#[test]
fn induction_correct_beats_wrong_as_the_card_says() {
    let m = model("induction-2l");
    let c = card("induction-2l");
    let n = c["scrubbing"]["n"].as_u64().unwrap().to_string();
    let mut got = Vec::new();
    for h in ["induction-correct", "induction-wrong"] {
        let v = json(&["scrub", "--model", &m, "--hypothesis", h, "--n", &n, "--seed", "0"]);
        assert_eq!(v["hypothesis"]["name"], h);
        let r = v["result"]["loss_recovered"].as_f64().unwrap();
        let stated = c["scrubbing"]["hypotheses"][h]["loss_recovered"].as_f64().unwrap();
        assert!((r - stated).abs() < 5e-3, "{h}: {r} against the card's {stated}");
        got.push(r);
    }
    assert!(got[0] > 0.8 && got[0] - got[1] >= c["scrubbing"]["margin"].as_f64().unwrap(), "{got:?}");
}

#[test]
fn parens_text_output() {
    let out = ok(&["scrub", "--model", &model("balanced-parens"), "--hypothesis", "parens-wrong", "--n", "30"]);
    assert!(out.contains("parens-wrong") && out.contains("loss recovered") && out.contains("95% CI"), "{out}");
    assert!(out.contains("resid_pre 1 is computed from") && out.contains("prefix elevation"), "{out}");
}

#[test]
fn a_hypothesis_about_another_model_is_refused() {
    let err = fails(&["scrub", "--model", &model("induction-2l"), "--hypothesis", "parens-correct"], 1);
    assert!(err.contains("error:") && err.contains("balanced-parens"), "{err}");
    fails(&["scrub", "--model", &model("induction-2l"), "--hypothesis", "no-such"], 2);
}
