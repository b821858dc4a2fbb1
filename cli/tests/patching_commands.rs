//! `glassbox patch | ablate` on the shipped induction model: head-output patching singles out
//! the induction heads its card names, ablating them drops its induction accuracy; JSON that
//! parses; bad input exits with 1 and a clear `error: ...`.

mod common;
use common::*;

use serde_json::Value;

/// The shipped induction model.
fn induction() -> String {
    model("induction-2l")
}

/// The card's induction heads, as (layer, head).
fn card_induction_heads() -> Vec<(u64, u64)> {
    let card: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("public/models/induction-2l/card.json")).unwrap()).unwrap();
    card["mechanism"]["induction_heads"].as_array().unwrap().iter().map(|h| (h[0].as_u64().unwrap(), h[1].as_u64().unwrap())).collect()
}

#[test]
fn head_output_patching_singles_out_the_induction_heads() {
    // Clean: a segment, then its start again: the next token is predictable by induction.
    // Corrupted: the first occurrence's tokens changed; the same length.
    let m = induction();
    let mut want = card_induction_heads();
    want.sort();
    for (clean, corrupted, target, distractor) in
        [("kQmz7RbpTxkQmz7Rbp", "aBcd3FgHjWkQmz7Rbp", "T", "j"), ("Xa9Lw2Hq7vcNXa9Lw2Hq", "Pt4Ej8Ys1bcNXa9Lw2Hq", "7", "1")]
    {
        let v = json(&[
            "patch",
            "--model",
            &m,
            "--clean",
            clean,
            "--corrupted",
            corrupted,
            "--target",
            target,
            "--distractor",
            distractor,
            "--what",
            "z",
            "--by",
            "all",
        ]);
        let r = &v["result"];
        let axes: Vec<&str> = r["axes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(axes, ["layer", "head"]);
        assert!(r["clean"].as_f64().unwrap() > r["corrupted"].as_f64().unwrap() + 0.5, "the clean run prefers the target: {r}");
        let norm: Vec<f64> = r["normalized"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let n_heads = 4;
        let mut idx: Vec<usize> = (0..norm.len()).collect();
        idx.sort_by(|&a, &b| norm[b].total_cmp(&norm[a]));
        let mut top: Vec<(u64, u64)> = idx[..2].iter().map(|&i| ((i / n_heads) as u64, (i % n_heads) as u64)).collect();
        top.sort();
        assert_eq!(top, want, "{clean}: the two heads whose clean output restores the answer most: {norm:?}");
        assert!(norm[idx[1]] > 2.0 * norm[idx[2]].abs().max(0.01), "{norm:?}");
    }
}

#[test]
fn the_residual_grid_shows_where_the_answer_moves() {
    let m = induction();
    let text = ok(&[
        "patch",
        "--model",
        &m,
        "--clean",
        "kQmz7RbpTxkQmz7Rbp",
        "--corrupted",
        "aBcd3FgHjWkQmz7Rbp",
        "--target",
        "T",
        "--distractor",
        "j",
        "--what",
        "resid_pre",
    ]);
    // Token labels (clean/corrupted where they differ), both layers, the normalisation.
    assert!(text.contains("9:T/j") && text.contains("0:<bos>") && text.contains("L1") && text.contains("0 = corrupted, 1 = clean"), "{text}");
    // In layer 1 the clean answer token's residual (position 9) restores everything.
    let v = json(&[
        "patch",
        "--model",
        &m,
        "--clean",
        "kQmz7RbpTxkQmz7Rbp",
        "--corrupted",
        "aBcd3FgHjWkQmz7Rbp",
        "--target",
        "T",
        "--distractor",
        "j",
        "--what",
        "resid_pre",
    ]);
    let r = &v["result"];
    let n_pos = r["axes"][1]["size"].as_u64().unwrap() as usize;
    let at = |l: usize, p: usize| r["normalized"][l * n_pos + p].as_f64().unwrap();
    assert!((at(1, 9) - 1.0).abs() < 0.05, "{}", at(1, 9));
    // Noising, other metrics, the raw values, a pattern by destination position.
    let v = json(&[
        "patch",
        "--model",
        &m,
        "--clean",
        "kQmz7RbpTxkQmz7Rbp",
        "--corrupted",
        "aBcd3FgHjWkQmz7Rbp",
        "--target",
        "T",
        "--what",
        "z",
        "--noising",
        "--metric",
        "logprob",
    ]);
    assert_eq!(v["result"]["spec"]["direction"], "noising");
    assert_eq!(v["result"]["values"].as_array().unwrap().len(), 2 * 19 * 4);
    let text = ok(&["patch", "--model", &m, "--clean", "abcdabcd", "--corrupted", "xyzwabcd", "--what", "pattern", "--metric", "kl", "--raw"]);
    assert!(text.contains("L1H3") && text.contains("KL(clean || run)"), "{text}");
}

#[test]
fn zero_ablating_the_induction_heads_drops_induction_accuracy() {
    use glassbox_core::analysis::patching::{zero_ablation, AblationTarget};
    use glassbox_core::tasks::{induction_heldout_accuracy, induction_heldout_accuracy_with};
    use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle};
    let dir = repo().join("public/models/induction-2l");
    let files: Vec<(String, Vec<u8>)> =
        ["config.json", "model.safetensors", "vocab.json", "card.json"].iter().map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap())).collect();
    let bundle = ModelBundle::from_files(&files, None).unwrap();
    let net = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights).unwrap();
    let heads: Vec<(usize, usize)> = card_induction_heads().into_iter().map(|(l, h)| (l as usize, h as usize)).collect();
    let (seed, n) = (1_000_003, 40);
    let before = pollster::block_on(induction_heldout_accuracy(&net, &CpuBackend, seed, n)).unwrap();
    let ivs = zero_ablation(&bundle.cfg, &AblationTarget::Heads { heads }).unwrap();
    let after = pollster::block_on(induction_heldout_accuracy_with(&net, &CpuBackend, seed, n, &ivs)).unwrap();
    // Two other heads of layer 1 ablated instead: the accuracy stays.
    let ivs = zero_ablation(&bundle.cfg, &AblationTarget::Heads { heads: vec![(1, 1), (1, 2)] }).unwrap();
    let other = pollster::block_on(induction_heldout_accuracy_with(&net, &CpuBackend, seed, n, &ivs)).unwrap();
    assert!(before > 0.9, "{before}");
    assert!(after < 0.3, "ablating the induction heads leaves {after} (from {before})");
    assert!(other > 0.8, "ablating two other heads drops it to {other}");

    // The command: the loss of the repeated half goes up.
    let m = induction();
    let v = json(&["ablate", "--model", &m, "--prompt", "kQmz7RbpTxkQmz7Rbp", "--head", "1.0,1.3", "--kind", "zero"]);
    assert!(v["result"]["change"].as_f64().unwrap() > 0.3, "{v}");
    let text = ok(&["ablate", "--model", &m, "--prompt", "kQmz7RbpTxkQmz7Rbp", "--head", "1.0,1.3", "--metric", "logprob", "--target", "T"]);
    assert!(text.contains("zero ablation of heads L1H0, L1H3") && text.contains("change -"), "{text}");
}

#[test]
fn mean_and_resample_ablations_read_a_dataset() {
    let m = induction();
    let data = std::env::temp_dir().join(format!("glassbox-ablate-{}.txt", std::process::id()));
    std::fs::write(&data, "abcdefghabcdefgh\nQWERTYUIQWERTYUI\n\nzxcvbnm1zxcvbnm1\n").unwrap();
    let d = data.display().to_string();
    let v = json(&["ablate", "--model", &m, "--prompt", "kQmz7RbpkQmz7Rbp", "--head", "1.3", "--kind", "mean", "--dataset", &d]);
    assert_eq!(v["dataset_size"], 3);
    assert_eq!(v["result"]["kind"], "mean");
    let v = json(&["ablate", "--model", &m, "--prompt", "kQmz7RbpkQmz7Rbp", "--head", "1.3", "--kind", "resample", "--dataset", &d, "--metric", "kl"]);
    let samples = v["result"]["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    let mean = samples.iter().map(|s| s.as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((mean - v["result"]["ablated"].as_f64().unwrap()).abs() < 1e-5);
    // A dataset line of another length names the line.
    std::fs::write(&data, "abcdefghabcdefgh\nabc\n").unwrap();
    let e = fails(&["ablate", "--model", &m, "--prompt", "kQmz7RbpkQmz7Rbp", "--head", "1.3", "--kind", "mean", "--dataset", &d], 1);
    assert!(e.starts_with("error: ") && e.contains("line 2") && e.contains("4 tokens"), "{e}");
    std::fs::remove_file(&data).ok();
    let e = fails(&["ablate", "--model", &m, "--prompt", "abab", "--head", "1.3", "--kind", "resample"], 1);
    assert!(e.contains("needs --dataset"), "{e}");
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let m = induction();
    let e = fails(&["patch", "--model", &m, "--clean", "abcabc", "--corrupted", "abcab", "--target", "a", "--distractor", "b", "--what", "z"], 1);
    assert!(e.starts_with("error: ") && e.contains("same number of tokens") && e.contains("7") && e.contains("6"), "{e}");
    let e = fails(&["patch", "--model", &m, "--clean", "abcabc", "--corrupted", "xbcabc", "--target", "a", "--what", "z"], 1);
    assert!(e.contains("--distractor"), "{e}");
    let e = fails(&["patch", "--model", &m, "--clean", "abcabc", "--corrupted", "xbcabc", "--target", "%", "--distractor", "b", "--what", "z"], 1);
    assert!(e.contains("not a single token"), "{e}");
    // An attention-only model has no MLP.
    let e = fails(&["patch", "--model", &m, "--clean", "abcabc", "--corrupted", "xbcabc", "--what", "mlp_out", "--metric", "loss"], 1);
    assert!(e.contains("no mlp_out"), "{e}");
    let e = fails(&["ablate", "--model", &m, "--prompt", "abab", "--head", "1-3"], 1);
    assert!(e.contains("LAYER.HEAD"), "{e}");
    let e = fails(&["ablate", "--model", &m, "--prompt", "abab", "--head", "5.0"], 1);
    assert!(e.contains("layer 5"), "{e}");
    let e = fails(&["ablate", "--model", &m, "--prompt", "abab", "--mlp", "0"], 1);
    assert!(e.contains("attention-only"), "{e}");
    let e = fails(&["ablate", "--model", &m, "--prompt", "abab"], 1);
    assert!(e.contains("exactly one of"), "{e}");
    // Usage errors exit with 2.
    fails(&["patch", "--model", &m, "--clean", "ab", "--corrupted", "ab", "--what", "nope"], 2);
}
