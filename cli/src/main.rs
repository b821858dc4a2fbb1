//! `glassbox`: the native command line. Same core as the browser app.
//!
//!   glassbox train-induction [--out DIR] [--steps N] [--seed S] [--lr LR]   train the shipped induction model
//!   glassbox eval-induction [--model DIR]                           its held-out accuracy
//!   glassbox eval-organism --model DIR                              a shipped organism's card metric, recomputed
//!
//! The other organisms (modular addition, balanced parentheses, English) are trained by
//! python/train_organisms.py; see that file for why.
//!   glassbox bench --model DIR [--tokens 16,64,256] [--runs N] [--backend cpu|gpu] [--quant f32|q8_0|q4_0]
//!   glassbox run --model DIR --prompt TEXT                          top-5 predictions per position

mod bench;
mod train;

use std::path::PathBuf;

use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle, RunRequest};

/// `--name value` from the arguments, or the default.
fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("train-induction") => train::train_induction(
            &PathBuf::from(arg(&args, "--out", "public/models/induction-2l")),
            arg(&args, "--steps", &train::DEFAULT_STEPS.to_string()).parse().expect("--steps takes a number"),
            arg(&args, "--seed", "0").parse().expect("--seed takes a number"),
            arg(&args, "--lr", &train::DEFAULT_LR.to_string()).parse().expect("--lr takes a number"),
        ),
        Some("eval-organism") => eval_organism(&PathBuf::from(arg(&args, "--model", "public/models/modular-addition"))),
        Some("eval-induction") => eval_induction(&PathBuf::from(arg(&args, "--model", "public/models/induction-2l"))),
        Some("bench") => bench::bench(
            &PathBuf::from(arg(&args, "--model", "/tmp/gpt2-small-random")),
            &arg(&args, "--tokens", "16,64,256"),
            arg(&args, "--runs", "10").parse().expect("--runs takes a number"),
            &arg(&args, "--backend", "cpu"),
            &arg(&args, "--quant", "f32"),
        ),
        Some("run") => run_prompt(&PathBuf::from(arg(&args, "--model", "public/models/induction-2l")), &arg(&args, "--prompt", "")),
        _ => {
            eprintln!("usage: glassbox train-induction|eval-induction|eval-organism|bench|run [options] (see cli/src/main.rs)");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn eval_induction(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let bundle = read_bundle(dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let seed = bundle.card["metrics"]["eval_seed"].as_u64().unwrap_or(train::EVAL_SEED);
    let n = bundle.card["metrics"]["eval_sequences"].as_u64().unwrap_or(train::EVAL_SEQUENCES as u64) as usize;
    let acc = pollster::block_on(glassbox_core::tasks::induction_heldout_accuracy(&model, &CpuBackend, seed, n))?;
    println!("held-out induction accuracy on {n} sequences (seed {seed}): {acc:.4}");
    Ok(())
}

fn run_prompt(dir: &std::path::Path, prompt: &str) -> Result<(), Box<dyn std::error::Error>> {
    let bundle = read_bundle(dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let tokens = bundle.tokenizer.encode(prompt)?;
    let out = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(tokens.clone())))?;
    for (p, &t) in tokens.iter().enumerate() {
        let top: Vec<String> = out.top_k(p, 5).iter().map(|(id, pr)| format!("{}:{pr:.3}", bundle.tokenizer.token_str(*id))).collect();
        println!("{p:>3} {:>6}  -> {}", bundle.tokenizer.token_str(t), top.join(" "));
    }
    Ok(())
}

/// Recomputes a shipped organism's held-out metric with the Rust forward pass.
fn eval_organism(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let bundle = read_bundle(dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    for (name, got, card) in pollster::block_on(glassbox_core::tasks::card_metrics(&bundle, &model, &CpuBackend, dir))? {
        println!("{name}: {got:.4} (card: {card:.4})");
    }
    Ok(())
}

/// A model from a `.gguf` file, or from a directory of a hub model's files (or a shipped
/// model's four).
fn read_bundle(path: &std::path::Path) -> Result<ModelBundle, Box<dyn std::error::Error>> {
    let files: Vec<(String, Vec<u8>)> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| Ok((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path())?)))
            .collect::<std::io::Result<_>>()?
    } else {
        vec![(path.display().to_string(), std::fs::read(path)?)]
    };
    Ok(ModelBundle::from_files(&files, None)?)
}
