//! `glassbox steer`, `glassbox generate` and `glassbox bench-generate` on the shipped English
//! organism (character-level): steering changes the continuation, a zero coefficient does not,
//! seeds repeat, and bad arguments are refused by name.

mod common;
use common::*;

const ENGLISH: &str = "english-char-3l";

#[test]
fn actadd_changes_the_continuation_and_a_zero_coefficient_does_not() {
    let m = model(ENGLISH);
    let args = ["steer", "--model", &m, "--prompt", "The captain said that the", "--plus", "the sea", "--minus", "the man", "--layer", "1", "--max-new", "40"];
    let on = json(&[&args[..], &["--coeff", "4"]].concat());
    assert_eq!(on["hook"], "blocks.1.hook_resid_pre");
    assert_eq!(on["positions"], 8); // "<bos>the sea" is 8 tokens
    assert_ne!(on["steered"]["text"], on["unsteered"]["text"]);
    assert_eq!(on["steered"]["tokens"].as_array().unwrap().len(), 40);
    let off = json(&[&args[..], &["--coeff", "0"]].concat());
    assert_eq!(off["steered"], off["unsteered"]);
    assert_eq!(off["unsteered"], on["unsteered"]);
    // The text form prints both side by side.
    let text = ok(&[&args[..], &["--coeff", "4"]].concat());
    assert!(text.contains("unsteered: ") && text.contains("steered:   "), "{text}");
}

#[test]
fn neuron_steering_and_seeded_sampling() {
    let m = model(ENGLISH);
    let args = ["steer", "--model", &m, "--prompt", "The whale", "--neuron", "2.17", "--coeff", "8", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3"];
    let a = json(&args);
    assert_eq!(a["hook"], "blocks.2.hook_mlp_out");
    assert_eq!(a["positions"], "all");
    assert_eq!(a, json(&args), "the same seed must give the same text");
    let g = json(&["generate", "--model", &m, "--prompt", "The whale", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3", "--max-new", "40"]);
    assert_eq!(g["tokens"], a["unsteered"]["tokens"], "generate equals steer's unsteered continuation");
    assert_eq!(g["top"].as_array().unwrap().len(), 40);
    // A stop token ends the text (and is kept).
    let s = json(&["generate", "--model", &m, "--prompt", "Call me", "--max-new", "40", "--stop", "."]);
    let text = s["text"].as_str().unwrap();
    assert!(s["stop"] == "stop_token" && text.ends_with('.') || s["stop"] == "max_new_tokens" && !text.contains('.'), "{s}");
}

#[test]
fn bad_steering_arguments_are_refused() {
    let m = model(ENGLISH);
    let base = ["steer", "--model", m.as_str(), "--prompt", "The whale"];
    assert!(fails(&[&base[..], &["--plus", "a", "--minus", "b"]].concat(), 1).contains("--layer"));
    assert!(fails(&[&base[..], &["--neuron", "9.1"]].concat(), 1).contains("out of range"));
    assert!(fails(&[&base[..], &["--neuron", "x"]].concat(), 1).contains("LAYER.NEURON"));
    assert!(fails(&base, 1).contains("steering vector"));
    assert!(fails(&[&base[..], &["--neuron", "1.2", "--temperature=-1"]].concat(), 1).contains("temperature"));
    fails(&[&base[..], &["--plus", "a"]].concat(), 2);
}

#[test]
fn bench_generate_reports_both_modes() {
    let m = model(ENGLISH);
    let out = ok(&["bench-generate", "--model", &m, "--prompt-len", "8", "--new", "8", "--runs", "1"]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["kv_cache"].as_bool(), lines[1]["kv_cache"].as_bool()), (Some(true), Some(false)));
    assert!(lines.iter().all(|l| l["tokens_per_s"].as_f64().unwrap() > 0.0 && l["new_tokens"] == 8));
}
