//! `glassbox lens | attribute | neuron | heads | scan` on the shipped models: the numbers the
//! organisms' cards lead one to expect, JSON that parses, and bad input that exits with 1 and
//! a clear `error: ...` (usage errors with 2).

mod common;
use common::*;

use serde_json::Value;

fn corpus() -> String {
    repo().join("public/corpus/moby-dick-heldout.txt").display().to_string()
}

#[test]
fn heads_rank_an_induction_head_of_layer_1_first_on_the_induction_model() {
    // The card: a 2-layer attention-only model that forms induction heads (A B ... A -> B),
    // which needs a previous-token head in layer 0 and an induction head in layer 1.
    let m = model("induction-2l");
    let v = json(&["heads", "--model", &m]);
    let first = &v["ranked"][0];
    assert_eq!(first["layer"], 1, "the top induction head is not in layer 1: {first}");
    assert!(first["score"].as_f64().unwrap() > 0.3, "{first}");
    let layer0_best = v["ranked"].as_array().unwrap().iter().filter(|h| h["layer"] == 0).map(|h| h["score"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!(first["score"].as_f64().unwrap() > 5.0 * layer0_best, "layer 0 scores as high: {layer0_best}");
    let prev = json(&["heads", "--model", &m, "--sort", "previous-token"]);
    assert_eq!(prev["ranked"][0]["layer"], 0, "the top previous-token head is not in layer 0");
    // The table, for a reader.
    let text = ok(&["heads", "--model", &m, "--repeated", "10", "--seed", "3"]);
    assert!(text.contains("ranked by induction score") && text.contains("top induction head: L1H"), "{text}");
    // On a prompt.
    let p = json(&["heads", "--model", &m, "--prompt", "abcdefabcdef"]);
    assert_eq!(p["scores"]["tokens"].as_array().unwrap().len(), 13);
}

#[test]
fn attribution_on_modular_addition_puts_the_answer_on_the_mlp_and_adds_up() {
    // 37 + 85 = 122 = 9 mod 113.
    let m = model("modular-addition");
    let v = json(&["attribute", "--model", &m, "--prompt", "37 + 85 =", "--target", "9"]);
    assert_eq!(v["largest"], "0_mlp_out");
    assert_eq!(v["agree"], true);
    let a = &v["attribution"];
    let (sum, actual) = (a["sum"].as_f64().unwrap(), a["actual"].as_f64().unwrap());
    assert!((sum - actual).abs() < 1e-3, "sum {sum}, logit {actual}");
    let labels: Vec<&str> = a["terms"].as_array().unwrap().iter().map(|t| t["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["embed", "pos_embed", "L0H0", "L0H1", "L0H2", "L0H3", "0_b_O", "0_mlp_out", "ln_final.b"]);
    // The logit difference against a distractor, by id; the table says whether it adds up.
    let text = ok(&["attribute", "--model", &m, "--prompt", "37 + 85 =", "--target", "#9", "--distractor", "10"]);
    assert!(text.contains("agree: the terms add up") && text.contains("largest term: 0_mlp_out"), "{text}");
    // Without folding the norm the table says why it may not add up.
    let text = ok(&["attribute", "--model", &m, "--prompt", "37 + 85 =", "--target", "9", "--no-fold-ln", "--center-unembed"]);
    assert!(text.contains("not folded"), "{text}");
}

#[test]
fn the_lens_shows_the_induction_answer_only_at_the_end() {
    // "kQmz7Rb pTx kQmz7Rb" -> p, by induction: only the last residual predicts it.
    let v = json(&["lens", "--model", &model("induction-2l"), "--prompt", "kQmz7RbpTxkQmz7Rb", "--target", "p", "--top", "3"]);
    let lens = &v["lens"];
    assert_eq!(lens["labels"], serde_json::json!(["0_pre", "1_pre", "final_post"]));
    let n_pos = lens["n_pos"].as_u64().unwrap() as usize;
    let cells = lens["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3 * n_pos);
    let rank = |layer: usize| cells[layer * n_pos + n_pos - 1]["target"]["rank"].as_u64().unwrap();
    assert_eq!(rank(2), 0, "the model does not predict p at the end");
    assert!(rank(0) > 0 && rank(1) > 0, "p is already on top before the last layer");
    assert_eq!(cells[0]["top"].as_array().unwrap().len(), 3);
    let text = ok(&["lens", "--model", &model("induction-2l"), "--prompt", "abab", "--norm", "cached", "--mid"]);
    assert!(text.contains("norm cached") && text.contains("final_post"), "{text}");
}

#[test]
fn neuron_reports_activations_and_direct_effects() {
    let v = json(&["neuron", "--model", &model("english-char-3l"), "--prompt", "the whale", "--layer", "2", "--neuron", "5", "--top", "4"]);
    assert_eq!(v["activations"].as_array().unwrap().len(), 10); // <bos> + 9 characters
    assert_eq!(v["direct_effect"]["promoted"].as_array().unwrap().len(), 4);
    let p = v["direct_effect"]["promoted"][0][1].as_f64().unwrap();
    let s = v["direct_effect"]["suppressed"][0][1].as_f64().unwrap();
    assert!(p > 0.0 && s < 0.0 && p.is_finite());
    let text = ok(&["neuron", "--model", &model("english-char-3l"), "--prompt", "the whale", "--layer", "0", "--neuron", "0", "--pos", "3"]);
    assert!(text.contains("promoted:") && text.contains("suppressed:") && text.contains("max activation"), "{text}");
}

#[test]
fn scan_prints_top_activating_examples_from_the_corpus() {
    let m = model("english-char-3l");
    let out = glassbox(&["scan", "--model", &m, "--layer", "1", "--neuron", "7", "--k", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let examples: Vec<&str> = text.lines().filter(|l| l.contains(" window ") && l.contains("[[")).collect();
    assert_eq!(examples.len(), 5, "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens/s"));
    assert!(text.contains("59309 tokens"), "the default corpus is the shipped slice: {text}");
    // JSON, on a part of the corpus (debug builds are slow).
    let part = std::env::temp_dir().join(format!("glassbox-cli-part-{}.txt", std::process::id()));
    std::fs::write(&part, std::fs::read_to_string(corpus()).unwrap().chars().take(12000).collect::<String>()).unwrap();
    let v = json(&["scan", "--model", &m, "--layer", "1", "--neuron", "7", "--k", "5", "--corpus", &part.display().to_string()]);
    std::fs::remove_file(&part).ok();
    let ex = v["examples"].as_array().unwrap();
    let acts: Vec<f64> = ex.iter().map(|e| e["act"].as_f64().unwrap()).collect();
    assert!(acts.windows(2).all(|w| w[0] >= w[1]), "not sorted: {acts:?}");
    for e in ex {
        // The marked token is the context's maximum, and the context reads the corpus.
        let (pos, start) = (e["pos"].as_u64().unwrap() as usize, e["start"].as_u64().unwrap() as usize);
        let ctx: Vec<f64> = e["context"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(ctx[pos - start], e["act"].as_f64().unwrap());
        assert!(ctx.iter().all(|&x| x <= ctx[pos - start]));
        let tokens: String = e["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert!(std::fs::read_to_string(corpus()).unwrap().contains(&tokens), "{tokens:?} is not in the corpus");
    }
    assert_eq!(v["tokens_scanned"], 94 * 127);
}

#[test]
fn scan_of_the_truncated_model_equals_the_full_forward_pass() {
    let dir = std::env::temp_dir().join(format!("glassbox-cli-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let small = dir.join("corpus.txt");
    std::fs::write(&small, std::fs::read_to_string(corpus()).unwrap().chars().take(3000).collect::<String>()).unwrap();
    let small = small.display().to_string();
    let m = model("english-char-3l");
    let args = ["scan", "--model", &m, "--layer", "0", "--neuron", "3", "--corpus", &small, "--window", "64", "--batch", "3"];
    let cut = json(&args);
    let mut full_args = args.to_vec();
    full_args.push("--full-forward");
    let full = json(&full_args);
    assert_eq!(cut["tokens_scanned"], full["tokens_scanned"]);
    let pairs = |v: &Value| v["examples"].as_array().unwrap().iter().map(|e| (e["window"].clone(), e["pos"].clone())).collect::<Vec<_>>();
    assert_eq!(pairs(&cut), pairs(&full));
    for (a, b) in cut["examples"].as_array().unwrap().iter().zip(full["examples"].as_array().unwrap()) {
        assert!((a["act"].as_f64().unwrap() - b["act"].as_f64().unwrap()).abs() < 1e-5);
    }
    // A corpus shorter than a window is one shorter window.
    std::fs::write(dir.join("short.txt"), "Call me Ishmael.").unwrap();
    let short = json(&["scan", "--model", &m, "--layer", "0", "--corpus", &dir.join("short.txt").display().to_string()]);
    assert_eq!(short["tokens_scanned"], 16);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_with_a_clear_error() {
    let english = model("english-char-3l");
    let induction = model("induction-2l");
    let addition = model("modular-addition");
    let empty = std::env::temp_dir().join(format!("glassbox-cli-empty-{}.txt", std::process::id()));
    std::fs::write(&empty, "  \n").unwrap();
    let empty_s = empty.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["scan", "--model", &english, "--layer", "3"], "layer 3 is out of range"),
        (vec!["scan", "--model", &english, "--layer", "0", "--neuron", "512"], "neuron 512 is out of range"),
        (vec!["neuron", "--model", &english, "--prompt", "the", "--layer", "0", "--neuron", "9999"], "neuron 9999 is out of range"),
        (vec!["neuron", "--model", &induction, "--prompt", "abc", "--layer", "0", "--neuron", "0"], "no MLP neurons"),
        (vec!["scan", "--model", &english, "--layer", "0", "--corpus", &empty_s], "is empty"),
        (vec!["scan", "--model", &english, "--layer", "0", "--corpus", "/nonexistent/corpus.txt"], "cannot read the corpus"),
        (vec!["lens", "--model", "/nonexistent/model", "--prompt", "ab"], "no model at /nonexistent/model"),
        (vec!["lens", "--model", &induction, "--prompt", "abc", "--target", "xy"], "\"xy\" is not a single token"),
        (vec!["attribute", "--model", &addition, "--prompt", "1 + 2 =", "--target", "113"], "\"113\" is not a single token"),
        (vec!["attribute", "--model", &addition, "--prompt", "1 + 2 =", "--target", "#113"], "token id 113 is out of range"),
        (vec!["attribute", "--model", &induction, "--prompt", "abc", "--target", "a", "--pos", "9"], "position 9 is out of range"),
        (vec!["lens", "--model", &induction, "--prompt", ""], "the prompt is empty"),
        (vec!["lens", "--model", &induction, "--prompt", "ab!"], "not in the vocabulary"),
        (vec!["heads", "--model", &induction, "--repeated", "40"], "more than the model's context"),
    ];
    for (args, msg) in cases {
        let err = fails(&args, 1);
        assert!(err.starts_with("error: ") && err.contains(msg), "glassbox {args:?}: expected {msg:?} in {err:?}");
    }
    std::fs::remove_file(&empty).ok();
    // Usage errors: clap's exit status 2.
    fails(&["lens", "--model", &induction], 2);
    fails(&["scan", "--model", &english], 2);
    fails(&["neuron", "--model", &english, "--prompt", "x", "--layer", "zero", "--neuron", "1"], 2);
    fails(&["heads", "--model", &induction, "--prompt", "ab", "--repeated", "3"], 2);
}
