//! `glassbox path-patch` on the shipped induction model: the path from the previous-token head
//! to the induction heads' keys is the one its card names; the grid and JSON; bad input exits
//! with 1 (or 2 for usage) and a clear message.

mod common;
use common::*;

use serde_json::Value;

const CLEAN: &str = "kQmz7RbpTxkQmz7Rbp";
const CORRUPTED: &str = "aBcd3FgHjWkQmz7Rbp";

fn induction() -> String {
    model("induction-2l")
}

fn floats(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(|x| x.as_f64()).collect()
}

#[test]
fn the_previous_token_head_reaches_the_induction_heads_through_their_keys() {
    let m = induction();
    let base = ["path-patch", "--model", &m, "--clean", CLEAN, "--corrupted", CORRUPTED, "--target", "T", "--distractor", "j"];
    let with = |extra: &[&str]| json(&[&base[..], extra].concat());
    let v = with(&["--receivers", "1.0,1.3", "--input", "k"]);
    let r = &v["result"];
    assert_eq!(r["spec"]["receivers"]["input"], "k");
    assert_eq!(r["senders"], 4, "only layer 0 comes before the receivers");
    let n = floats(&r["normalized"]);
    assert_eq!(n.len(), 8);
    assert!(n[4..].iter().all(|x| x.is_none()), "layer-1 senders are not run (null): {n:?}");
    let effect: Vec<f64> = n[..4].iter().map(|x| 1.0 - x.unwrap()).collect();
    assert!(effect[0] > 0.8 && effect[0] > 2.5 * effect[1..].iter().fold(0f64, |m, e| m.max(e.abs())), "L0H0 -> induction keys: {effect:?}");
    // Through the queries the previous-token head does nearly nothing.
    let q = with(&["--receivers", "1.0,1.3", "--input", "q"]);
    let nq = floats(&q["result"]["normalized"]);
    assert!((1.0 - nq[0].unwrap()).abs() < 0.1 * effect[0], "{nq:?}");
    // To the logits: every head is a sender; the induction heads themselves matter most.
    let l = with(&["--receivers", "logits"]);
    let nl = floats(&l["result"]["normalized"]);
    assert!(nl.iter().all(|x| x.is_some()));
    let mut idx: Vec<usize> = (0..8).collect();
    idx.sort_by(|&a, &b| (1.0 - nl[b].unwrap()).abs().total_cmp(&(1.0 - nl[a].unwrap()).abs()));
    let mut top = idx[..2].to_vec();
    top.sort();
    assert_eq!(top, vec![4, 7], "L1H0 and L1H3 -> logits: {nl:?}");
}

#[test]
fn the_grid_names_senders_receivers_and_the_normalisation() {
    let m = induction();
    let text = ok(&[
        "path-patch",
        "--model",
        &m,
        "--clean",
        CLEAN,
        "--corrupted",
        CORRUPTED,
        "--target",
        "T",
        "--distractor",
        "j",
        "--receivers",
        "1.0,1.3",
        "--input",
        "k",
    ]);
    assert!(text.contains("the k input of heads L1H0, L1H3") && text.contains("1 = clean") && text.contains("largest effects: L0H0"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("L1") && l.contains('-')), "layer 1 senders shown as not run: {text}");
    let raw = ok(&["path-patch", "--model", &m, "--clean", CLEAN, "--corrupted", CORRUPTED, "--metric", "logprob", "--target", "T", "--raw"]);
    assert!(raw.contains("-> the logits") && raw.contains("log-probability of T") && raw.contains("the metric of the path-patched run"), "{raw}");
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let m = induction();
    let base = ["path-patch", "--model", &m, "--clean", CLEAN, "--corrupted", CORRUPTED, "--target", "T", "--distractor", "j"];
    let with = |extra: &[&str], code| fails(&[&base[..], extra].concat(), code);
    let e = with(&["--receivers", "1.0"], 1);
    assert!(e.starts_with("error: ") && e.contains("--input q|k|v"), "{e}");
    let e = with(&["--receivers", "logits", "--input", "v"], 1);
    assert!(e.contains("needs receiver heads"), "{e}");
    let e = with(&["--receivers", "1-0", "--input", "k"], 1);
    assert!(e.contains("LAYER.HEAD"), "{e}");
    let e = with(&["--receivers", "2.0", "--input", "k"], 1);
    assert!(e.contains("receiver layer 2"), "{e}");
    let e = with(&["--mlp"], 1);
    assert!(e.contains("attention-only"), "{e}");
    let e = fails(&["path-patch", "--model", &m, "--clean", "abcabc", "--corrupted", "abcab", "--metric", "loss"], 1);
    assert!(e.contains("same number of tokens"), "{e}");
    with(&["--input", "z"], 2);
}
