//! `glassbox`: the native command line. Same core as the browser app.
//!
//!   glassbox train-induction [--out DIR] [--steps N] [--seed S] [--lr LR]   train the shipped induction model
//!   glassbox eval-induction [--model DIR]                           its held-out accuracy
//!   glassbox eval-organism [--model DIR]                            a shipped organism's card metric, recomputed
//!   glassbox bench [--model DIR] [--tokens 16,64,256] [--runs N] [--backend cpu|gpu] [--quant f32|q8_0|q4_0]
//!   glassbox run [--model DIR|FILE.gguf] [--prompt TEXT]            top-5 predictions per position
//!
//! `glassbox --help` and `glassbox <command> --help` list every option with its default.
//! Bad arguments print a message and exit with status 2; a failure while running prints
//! `error: ...` and exits with status 1.
//!
//! The other organisms (modular addition, balanced parentheses, English) are trained by
//! python/train_organisms.py; see that file for why.

mod bench;
mod train;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle, RunRequest};

use bench::{BenchBackend, BenchQuant};

/// glassbox: train, evaluate, benchmark and run the explorer's models natively.
#[derive(Debug, Parser)]
#[command(name = "glassbox", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train the shipped induction model (2-layer attention-only) on the CPU.
    TrainInduction {
        /// Directory to write config.json, model.safetensors, vocab.json and card.json to.
        #[arg(long, value_name = "DIR", default_value = "public/models/induction-2l")]
        out: PathBuf,
        /// Optimizer steps.
        #[arg(long, value_name = "N", default_value_t = train::DEFAULT_STEPS)]
        steps: usize,
        /// Seed of the initialisation and of the training data.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// AdamW learning rate.
        #[arg(long, value_name = "LR", default_value_t = train::DEFAULT_LR)]
        lr: f64,
    },
    /// The induction model's held-out accuracy.
    EvalInduction {
        /// The model's directory.
        #[arg(long, value_name = "DIR", default_value = "public/models/induction-2l")]
        model: PathBuf,
    },
    /// A shipped organism's card metrics, recomputed with the Rust forward pass.
    EvalOrganism {
        /// The model's directory.
        #[arg(long, value_name = "DIR", default_value = "public/models/modular-addition")]
        model: PathBuf,
    },
    /// Median wall time of a forward pass with every hook cached (one JSON line per length).
    Bench {
        /// A Hugging Face model directory (config.json + model.safetensors).
        #[arg(long, value_name = "DIR", default_value = "/tmp/gpt2-small-random")]
        model: PathBuf,
        /// Prompt lengths, comma-separated.
        #[arg(long, value_name = "N,N,...", value_delimiter = ',', num_args = 1.., default_value = "16,64,256")]
        tokens: Vec<usize>,
        /// Timed runs per length (after two warm-up runs).
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Where the forward pass runs.
        #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
        backend: BenchBackend,
        /// Quantize the matrices on load (f32 keeps them as they are).
        #[arg(long, value_enum, default_value_t = BenchQuant::F32)]
        quant: BenchQuant,
    },
    /// Top-5 predictions at every position of a prompt.
    Run {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE", default_value = "public/models/induction-2l")]
        model: PathBuf,
        /// The prompt.
        #[arg(long, value_name = "TEXT", default_value = "")]
        prompt: String,
    },
}

fn main() {
    // Usage errors exit with 2 (clap's convention), `--help` / `--version` with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::TrainInduction { out, steps, seed, lr } => train::train_induction(&out, steps, seed, lr),
        Command::EvalInduction { model } => eval_induction(&model),
        Command::EvalOrganism { model } => eval_organism(&model),
        Command::Bench { model, tokens, runs, backend, quant } => bench::bench(&model, &tokens, runs as usize, backend, quant),
        Command::Run { model, prompt } => run_prompt(&model, &prompt),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn eval_induction(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bundle = read_bundle(dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let seed = bundle.card["metrics"]["eval_seed"].as_u64().unwrap_or(train::EVAL_SEED);
    let n = bundle.card["metrics"]["eval_sequences"].as_u64().unwrap_or(train::EVAL_SEQUENCES as u64) as usize;
    let acc = pollster::block_on(glassbox_core::tasks::induction_heldout_accuracy(&model, &CpuBackend, seed, n))?;
    println!("held-out induction accuracy on {n} sequences (seed {seed}): {acc:.4}");
    Ok(())
}

fn run_prompt(dir: &Path, prompt: &str) -> Result<(), Box<dyn std::error::Error>> {
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
fn eval_organism(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bundle = read_bundle(dir)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    for (name, got, card) in pollster::block_on(glassbox_core::tasks::card_metrics(&bundle, &model, &CpuBackend, dir))? {
        println!("{name}: {got:.4} (card: {card:.4})");
    }
    Ok(())
}

/// A model from a `.gguf` file, or from a directory of a hub model's files (or a shipped
/// model's four).
fn read_bundle(path: &Path) -> Result<ModelBundle, Box<dyn std::error::Error>> {
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
