//! `glassbox`: the native command line. Same core as the browser app.
//!
//!   glassbox train-induction [--out DIR] [--steps N] [--seed S] [--lr LR]   train the shipped induction model
//!   glassbox eval-induction [--model DIR]                           its held-out accuracy
//!   glassbox eval-organism [--model DIR]                            a shipped organism's card metric, recomputed
//!   glassbox bench [--model DIR] [--tokens 16,64,256] [--runs N] [--backend cpu|gpu] [--quant f32|q8_0|q4_0] [--unfused] [--no-pool]
//!   glassbox run [--model DIR|FILE.gguf] [--prompt TEXT]            top-5 predictions per position
//!   glassbox steer --model M --prompt TEXT (--plus TEXT --minus TEXT --layer L | --neuron L.N) [--coeff C]
//!                  [--max-new N --temperature T --top-p P --seed S]   unsteered and steered continuations (ActAdd)
//!   glassbox generate --model M --prompt TEXT [--max-new N --temperature T --top-p P --seed S]   continue a prompt (KV cache)
//!   glassbox bench-generate [--model DIR] [--prompt-len N] [--new N] [--backend cpu|gpu]   tokens/s with and without the KV cache
//!   glassbox lens --model M --prompt TEXT [--target TOKEN] [--norm fresh|cached] [--mid] [--top K]
//!   glassbox attribute --model M --prompt TEXT --target TOKEN [--distractor TOKEN] [--pos N] [--no-fold-ln] [--center-unembed]
//!   glassbox neuron --model M --prompt TEXT --layer L --neuron N [--pos P] [--top K]
//!   glassbox heads --model M [--prompt TEXT | --repeated N [--seed S]]
//!   glassbox scan --model M --layer L [--neuron N] [--corpus FILE] [--k 10] [--batch B] [--window W]
//!   glassbox patch --model M --clean TEXT --corrupted TEXT --what resid_pre|...|pattern [--by pos|all] [--noising]
//!                  [--metric logit_diff|prob|logprob|loss|kl] [--target T] [--distractor D]   activation patching
//!   glassbox ablate --model M --prompt TEXT --head L.H[,L.H] | --mlp L | --neurons L:n,n --kind zero|mean|resample [--dataset FILE]
//!   glassbox scrub --model DIR --hypothesis parens-correct|parens-wrong|induction-correct|induction-wrong [--n N] [--seed S]   causal scrubbing
//!   glassbox path-patch --model M --clean TEXT --corrupted TEXT --receivers logits|L.H[,L.H] [--input q|k|v] [--mlp]   path patching
//!   glassbox link encode EXPERIMENT.json [--widget KIND] [--static] | link decode LINK   share links (v1/...)
//!
//! The analysis commands (lens, attribute, neuron, heads, scan) print what the app's views show
//! (glassbox_core::analysis), for a reader, or as JSON with `--json`.
//!
//! `glassbox --help` and `glassbox <command> --help` list every option with its default.
//! Bad arguments print a message and exit with status 2; a failure while running prints
//! `error: ...` and exits with status 1.
//!
//! The other organisms (modular addition, balanced parentheses, English) are trained by
//! python/train_organisms.py; see that file for why.

mod analyze;
mod bench;
mod link;
mod patch;
mod path_patch;
mod scan;
mod scrub;
mod steer;
mod train;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle, RunRequest};

use analyze::{NormArg, SortArg};
use bench::{BenchBackend, BenchQuant};
use patch::{ByArg, KindArg, MetricArg, WhatArg};

/// mimalloc reuses freed tensor memory; glibc's allocator mapped and zeroed every large tensor
/// afresh (see cli/Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a command returns: a failure prints `error: ...` and exits with 1.
pub(crate) type CliResult<T> = Result<T, Box<dyn std::error::Error>>;

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
        /// GPU: run each fused step (norm + weight, attention, matmul + activation / residual
        /// sum) as the separate ops it fuses, one dispatch each, for comparison.
        #[arg(long)]
        unfused: bool,
        /// GPU: create a new buffer for every op output instead of reusing those of dropped
        /// tensors, for comparison.
        #[arg(long)]
        no_pool: bool,
    },
    /// Continue a prompt twice, without and with a steering vector (ActAdd: the difference of
    /// two prompts' resid_pre at a layer, added at the prompt's first positions; or an MLP
    /// neuron's output direction at every position), and print both.
    Steer {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt to continue.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// ActAdd's positive prompt.
        #[arg(long, value_name = "TEXT", requires = "minus")]
        plus: Option<String>,
        /// ActAdd's negative prompt (the shorter one is padded with spaces).
        #[arg(long, value_name = "TEXT", requires = "plus")]
        minus: Option<String>,
        /// The block whose resid_pre ActAdd steers.
        #[arg(long, value_name = "L")]
        layer: Option<usize>,
        /// Steer along an MLP neuron's output direction (row of W_out) instead, as LAYER.NEURON.
        #[arg(long, value_name = "L.N", conflicts_with_all = ["plus", "minus"])]
        neuron: Option<String>,
        /// The steering vector's coefficient.
        #[arg(long, value_name = "C", default_value_t = 4.0, allow_negative_numbers = true)]
        coeff: f32,
        /// New tokens at most.
        #[arg(long = "max-new", value_name = "N", default_value_t = 40)]
        max_new: usize,
        /// Sampling temperature; 0 is greedy.
        #[arg(long, value_name = "T", default_value_t = 0.0)]
        temperature: f64,
        /// Nucleus sampling: keep the most likely tokens up to this total probability.
        #[arg(long = "top-p", value_name = "P")]
        top_p: Option<f64>,
        /// The sampler's seed (both continuations use it).
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// Stop at this token (repeatable): the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        stop: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Continue a prompt (KV cache; seeded sampling).
    Generate {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt to continue.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// New tokens at most.
        #[arg(long = "max-new", value_name = "N", default_value_t = 40)]
        max_new: usize,
        /// Sampling temperature; 0 is greedy.
        #[arg(long, value_name = "T", default_value_t = 0.0)]
        temperature: f64,
        /// Nucleus sampling: keep the most likely tokens up to this total probability.
        #[arg(long = "top-p", value_name = "P")]
        top_p: Option<f64>,
        /// The sampler's seed.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// Stop at this token (repeatable): the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        stop: Vec<String>,
        /// Print JSON (text, tokens, each step's top 3) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Tokens per second of greedy generation, with and without the KV cache (one JSON line each).
    BenchGenerate {
        /// A shipped model's directory, or a Hugging Face one (config.json + model.safetensors).
        #[arg(long, value_name = "DIR", default_value = "/tmp/gpt2-small-random")]
        model: PathBuf,
        /// Prompt tokens before generation.
        #[arg(long = "prompt-len", value_name = "N", default_value_t = 16)]
        prompt_len: usize,
        /// Tokens generated per run.
        #[arg(long = "new", value_name = "N", default_value_t = 64)]
        new_tokens: usize,
        /// Timed runs (after one warm-up).
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Where the forward pass runs.
        #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
        backend: BenchBackend,
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
    /// The logit lens: every layer's residual stream read through ln_final and the unembedding
    /// (TransformerLens accumulated_resid(apply_ln=True) @ W_U), labels x positions.
    Lens {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// A token whose probability every cell reports: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        target: Option<String>,
        /// fresh: ln_final re-run on each residual (TransformerLens 3); cached: divided by the
        /// final residual's cached scale (TransformerLens before 2.18).
        #[arg(long, value_enum, default_value_t = NormArg::Fresh)]
        norm: NormArg,
        /// Also read resid_mid between each layer's attention and MLP.
        #[arg(long)]
        mid: bool,
        /// Predictions kept per cell (the top-K of the last position are printed).
        #[arg(long, value_name = "K", default_value_t = 1)]
        top: usize,
        /// Print JSON (the core's LogitLens) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Direct logit attribution: each component's direct contribution to a token's logit (or a
    /// logit difference) at one position, with the bias terms that make the sum exact.
    Attribute {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// The token whose logit is explained: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        target: String,
        /// Explain the logit difference target - distractor instead.
        #[arg(long, value_name = "TOKEN")]
        distractor: Option<String>,
        /// The position whose prediction is explained (default: the last).
        #[arg(long, value_name = "N")]
        pos: Option<usize>,
        /// Do not fold ln_final's weight into the unembedding (the terms then need not add up).
        #[arg(long)]
        no_fold_ln: bool,
        /// Subtract the mean unembedding direction (TransformerLens center_unembed).
        #[arg(long)]
        center_unembed: bool,
        /// Print JSON (the core's Attribution) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One MLP neuron: its activation at every position and its direct effect on the logits.
    Neuron {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// The layer.
        #[arg(long, value_name = "L")]
        layer: usize,
        /// The neuron (0 to d_mlp - 1).
        #[arg(long, value_name = "N")]
        neuron: usize,
        /// The position whose ln_final scale the direct effect is read at (default: the last).
        #[arg(long, value_name = "P")]
        pos: Option<usize>,
        /// Promoted and suppressed tokens listed.
        #[arg(long, value_name = "K", default_value_t = 10)]
        top: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Previous-token, duplicate-token and induction scores of every head (TransformerLens
    /// detect_head), on a prompt or on a repeated random sequence.
    Heads {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// Score the heads on this prompt instead of a repeated random sequence.
        #[arg(long, value_name = "TEXT", conflicts_with = "repeated")]
        prompt: Option<String>,
        /// Random tokens repeated twice (after BOS): the detector's standard input.
        #[arg(long, value_name = "N", default_value_t = 20)]
        repeated: usize,
        /// Seed of the random sequence.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// The score the table is ranked by.
        #[arg(long, value_enum, default_value_t = SortArg::Induction)]
        sort: SortArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Top-activating examples of a layer's MLP neurons over a text corpus; throughput to stderr.
    Scan {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The layer whose mlp.hook_post is scanned.
        #[arg(long, value_name = "L")]
        layer: usize,
        /// The neuron whose examples are printed (default: the one that fired most).
        #[arg(long, value_name = "N")]
        neuron: Option<usize>,
        /// A UTF-8 text file.
        #[arg(long, value_name = "FILE", default_value = "public/corpus/moby-dick-heldout.txt")]
        corpus: PathBuf,
        /// Examples kept per neuron.
        #[arg(long, value_name = "K", default_value_t = 10)]
        k: usize,
        /// Windows per forward pass.
        #[arg(long, value_name = "B", default_value_t = 8)]
        batch: usize,
        /// Tokens per window, BOS included (default: the model's context).
        #[arg(long, value_name = "W")]
        window: Option<usize>,
        /// Run every layer and the unembedding (default: only the blocks up to the layer).
        #[arg(long)]
        full_forward: bool,
        /// Print JSON instead of the examples.
        #[arg(long)]
        json: bool,
    },
    /// Activation patching (TransformerLens patching.get_act_patch_*): every layer x position
    /// (x head) of an activation patched from one prompt's run into the other's, with the
    /// metric of each patched run (normalised: 0 = corrupted, 1 = clean).
    Patch {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The clean prompt.
        #[arg(long, value_name = "TEXT")]
        clean: String,
        /// The corrupted prompt (the same number of tokens).
        #[arg(long, value_name = "TEXT")]
        corrupted: String,
        /// The metric's token: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        target: Option<String>,
        /// The logit difference's other token: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        distractor: Option<String>,
        /// The activation patched (z: a head's output).
        #[arg(long, value_enum)]
        what: WhatArg,
        /// One cell per position, or per layer (x head) over all positions.
        #[arg(long, value_enum, default_value_t = ByArg::Pos)]
        by: ByArg,
        /// Patch corrupted activations into the clean run (default: clean into corrupted).
        #[arg(long)]
        noising: bool,
        /// What is measured on each patched run.
        #[arg(long, value_enum, default_value_t = MetricArg::LogitDiff)]
        metric: MetricArg,
        /// The position the metric reads (default: the last).
        #[arg(long, value_name = "N")]
        pos: Option<usize>,
        /// Print the raw metric instead of the normalised one.
        #[arg(long)]
        raw: bool,
        /// Patched runs per forward pass.
        #[arg(long, value_name = "N", default_value_t = patch::DEFAULT_CHUNK)]
        chunk: usize,
        /// --clean and --corrupted are comma-separated token ids, not text.
        #[arg(long)]
        ids: bool,
        /// Print JSON (the core's PatchResult) instead of a grid.
        #[arg(long)]
        json: bool,
    },
    /// Path patching (Wang et al. 2022; ARENA's IOI exercise): every head (with --mlp, every MLP)
    /// as the sender, its corrupted output reaching the receivers (the logits, or heads' q, k or
    /// v) directly and through the MLPs only, every other head frozen to its clean output
    /// (normalised: 1 = clean, 0 = corrupted).
    PathPatch {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The clean prompt.
        #[arg(long, value_name = "TEXT")]
        clean: String,
        /// The corrupted prompt (the same number of tokens).
        #[arg(long, value_name = "TEXT")]
        corrupted: String,
        /// The metric's token: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        target: Option<String>,
        /// The logit difference's other token: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        distractor: Option<String>,
        /// Where the paths end: logits, or heads as LAYER.HEAD, comma-separated.
        #[arg(long, value_name = "logits|L.H[,L.H]", default_value = "logits")]
        receivers: String,
        /// Which input of the receiver heads (needed with receiver heads).
        #[arg(long, value_enum)]
        input: Option<path_patch::InputArg>,
        /// Also every MLP layer as a sender.
        #[arg(long)]
        mlp: bool,
        /// What is measured on each patched run.
        #[arg(long, value_enum, default_value_t = MetricArg::LogitDiff)]
        metric: MetricArg,
        /// The position the metric reads (default: the last).
        #[arg(long, value_name = "N")]
        pos: Option<usize>,
        /// Print the raw metric instead of the normalised one.
        #[arg(long)]
        raw: bool,
        /// Senders per forward pass.
        #[arg(long, value_name = "N", default_value_t = path_patch::DEFAULT_CHUNK)]
        chunk: usize,
        /// --clean and --corrupted are comma-separated token ids, not text.
        #[arg(long)]
        ids: bool,
        /// Print JSON (the core's PathPatchResult) instead of a grid.
        #[arg(long)]
        json: bool,
    },
    /// Ablate heads, an MLP layer or neurons (zero, mean or resample) and report the metric's change.
    Ablate {
        /// A model directory (shipped, or a hub model's files) or a .gguf file.
        #[arg(long, value_name = "DIR|FILE")]
        model: PathBuf,
        /// The prompt.
        #[arg(long, value_name = "TEXT")]
        prompt: String,
        /// Heads' outputs (hook_z), as LAYER.HEAD, comma-separated.
        #[arg(long = "head", value_name = "L.H[,L.H]")]
        heads: Option<String>,
        /// An MLP layer's output (hook_mlp_out).
        #[arg(long, value_name = "L")]
        mlp: Option<usize>,
        /// Neurons of one layer (mlp.hook_post), as LAYER:N,N.
        #[arg(long, value_name = "L:N,N")]
        neurons: Option<String>,
        /// What replaces the activation.
        #[arg(long, value_enum, default_value_t = KindArg::Zero)]
        kind: KindArg,
        /// Prompts, one per line, each as long as the prompt in tokens (mean and resample).
        #[arg(long, value_name = "FILE")]
        dataset: Option<PathBuf>,
        /// What is measured.
        #[arg(long, value_enum, default_value_t = MetricArg::Loss)]
        metric: MetricArg,
        /// The metric's token: the token itself, or #ID.
        #[arg(long, value_name = "TOKEN")]
        target: Option<String>,
        /// The logit difference's other token.
        #[arg(long, value_name = "TOKEN")]
        distractor: Option<String>,
        /// The position the metric reads (default: the last).
        #[arg(long, value_name = "N")]
        pos: Option<usize>,
        /// Print JSON (the core's AblationResult) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Causal scrubbing of a shipped hypothesis: the loss with every claimed node resampled from
    /// examples that agree on its claimed feature, against the model's and the unconditional loss.
    Scrub {
        /// The shipped organism's directory (balanced-parens or induction-2l).
        #[arg(long, value_name = "DIR")]
        model: PathBuf,
        /// The hypothesis (glassbox_core::analysis::scrubbing::hypotheses).
        #[arg(long, value_enum)]
        hypothesis: scrub::HypothesisArg,
        /// Dataset size (examples drawn with the seed).
        #[arg(long, value_name = "N", default_value_t = 100)]
        n: usize,
        /// Seed of the dataset and of every resampling draw.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// Rounds of resampling (each redraws every sample).
        #[arg(long, value_name = "R", default_value_t = 2)]
        rounds: usize,
        /// Runs per forward pass.
        #[arg(long, value_name = "N", default_value_t = 64)]
        chunk: usize,
        /// Print JSON (the hypothesis and the core's ScrubResult) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Share links: an experiment's URL fragment (`v1/...`), and back.
    Link {
        #[command(subcommand)]
        action: link::LinkCmd,
    },
}

fn main() {
    // Usage errors exit with 2 (clap's convention), `--help` / `--version` with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::TrainInduction { out, steps, seed, lr } => train::train_induction(&out, steps, seed, lr),
        Command::EvalInduction { model } => eval_induction(&model),
        Command::EvalOrganism { model } => eval_organism(&model),
        Command::Bench { model, tokens, runs, backend, quant, unfused, no_pool } => {
            bench::bench(&model, &tokens, runs as usize, backend, quant, unfused, no_pool)
        }
        Command::Steer { model, prompt, plus, minus, layer, neuron, coeff, max_new, temperature, top_p, seed, stop, json } => {
            steer::steer_cmd(steer::SteerArgs {
                model: &model,
                prompt: &prompt,
                plus: plus.as_deref(),
                minus: minus.as_deref(),
                layer,
                neuron: neuron.as_deref(),
                coeff,
                sample: steer::SampleArgs { max_new, temperature, top_p, seed, stop },
                json,
            })
        }
        Command::Generate { model, prompt, max_new, temperature, top_p, seed, stop, json } => {
            steer::generate_cmd(&model, &prompt, &steer::SampleArgs { max_new, temperature, top_p, seed, stop }, json)
        }
        Command::BenchGenerate { model, prompt_len, new_tokens, runs, backend } => {
            steer::bench_generate(&model, prompt_len, new_tokens, runs as usize, backend)
        }
        Command::Run { model, prompt } => run_prompt(&model, &prompt),
        Command::Lens { model, prompt, target, norm, mid, top, json } => {
            analyze::lens(analyze::LensArgs { model: &model, prompt: &prompt, target: target.as_deref(), norm, mid, top, json })
        }
        Command::Attribute { model, prompt, target, distractor, pos, no_fold_ln, center_unembed, json } => analyze::attribute_cmd(analyze::AttributeArgs {
            model: &model,
            prompt: &prompt,
            target: &target,
            distractor: distractor.as_deref(),
            pos,
            fold_ln: !no_fold_ln,
            center_unembed,
            json,
        }),
        Command::Neuron { model, prompt, layer, neuron, pos, top, json } => {
            analyze::neuron(analyze::NeuronArgs { model: &model, prompt: &prompt, layer, neuron, pos, top, json })
        }
        Command::Heads { model, prompt, repeated, seed, sort, json } => {
            analyze::heads(analyze::HeadsArgs { model: &model, prompt: prompt.as_deref(), repeated, seed, sort, json })
        }
        Command::Scan { model, layer, neuron, corpus, k, batch, window, full_forward, json } => {
            scan::scan(scan::ScanArgs { model: &model, layer, neuron, corpus: &corpus, k, batch, window, full_forward, json })
        }
        Command::Patch { model, clean, corrupted, target, distractor, what, by, noising, metric, pos, raw, chunk, ids, json } => {
            patch::patch_cmd(patch::PatchArgs {
                model: &model,
                clean: &clean,
                corrupted: &corrupted,
                target: target.as_deref(),
                distractor: distractor.as_deref(),
                what,
                by,
                noising,
                metric,
                pos,
                raw,
                chunk,
                ids,
                json,
            })
        }
        Command::PathPatch { model, clean, corrupted, target, distractor, receivers, input, mlp, metric, pos, raw, chunk, ids, json } => {
            path_patch::path_patch_cmd(path_patch::PathPatchArgs {
                model: &model,
                clean: &clean,
                corrupted: &corrupted,
                target: target.as_deref(),
                distractor: distractor.as_deref(),
                receivers: &receivers,
                input,
                mlp,
                metric,
                pos,
                raw,
                chunk,
                ids,
                json,
            })
        }
        Command::Ablate { model, prompt, heads, mlp, neurons, kind, dataset, metric, target, distractor, pos, json } => patch::ablate_cmd(patch::AblateArgs {
            model: &model,
            prompt: &prompt,
            heads: heads.as_deref(),
            mlp,
            neurons: neurons.as_deref(),
            kind,
            dataset: dataset.as_deref(),
            metric,
            target: target.as_deref(),
            distractor: distractor.as_deref(),
            pos,
            json,
        }),
        Command::Scrub { model, hypothesis, n, seed, rounds, chunk, json } => {
            scrub::scrub_cmd(scrub::ScrubArgs { model: &model, hypothesis, n, seed, rounds, chunk, json })
        }
        Command::Link { action } => link::run(action),
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
pub(crate) fn read_bundle(path: &Path) -> CliResult<ModelBundle> {
    if !path.exists() {
        return Err(format!("no model at {} (give a model directory or a .gguf file)", path.display()).into());
    }
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
