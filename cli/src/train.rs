//! Trains the shipped induction model: a 2-layer attention-only transformer on sequences with
//! a repeated random segment, with candle's autograd on the CPU and a fixed seed.
//!
//! The model is the core's own `HookedTransformer` on the CPU backend with `Var` weights, so
//! the forward pass trained here is exactly the one the app runs.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use glassbox_core::cpu::CpuMatrix;
use glassbox_core::tasks::{induction, induction_heldout_accuracy, Rng};
use glassbox_core::weights::{write_safetensors, BlockWeights, MlpWeights};
use glassbox_core::{Config, CpuBackend, HookedTransformer, HostTensor, ModelWeights, RunRequest, VocabTokenizer};

pub const DEFAULT_STEPS: usize = 8000;
pub const DEFAULT_LR: f64 = 1e-3;
pub const BATCH: usize = 16;
pub const EVAL_SEED: u64 = 1_000_003;
pub const EVAL_SEQUENCES: usize = 200;

pub fn config() -> Config {
    Config { tied_embeddings: false, ..Config::gpt2(2, 64, 4, None, induction::vocab().len(), 64) }
}

/// GPT-2-style initialisation: N(0, 0.02) matrices, unit LayerNorm gains, zero biases.
pub fn init(cfg: &Config, rng: &mut Rng) -> ModelWeights<HostTensor> {
    let mut normal = |shape: Vec<usize>| {
        let n = shape.iter().product();
        HostTensor::new(shape, (0..n).map(|_| 0.02 * rng.normal()).collect())
    };
    let (d, hd) = (cfg.d_model, cfg.n_heads * cfg.d_head);
    let ones = |n: usize| HostTensor::full(vec![n], 1.0);
    let zeros = |n: usize| HostTensor::zeros(vec![n]);
    let blocks = (0..cfg.n_layers)
        .map(|_| BlockWeights {
            ln1_w: ones(d),
            ln1_b: Some(zeros(d)),
            W_Q: normal(vec![d, hd]),
            b_Q: Some(zeros(hd)),
            W_K: normal(vec![d, hd]),
            b_K: Some(zeros(hd)),
            W_V: normal(vec![d, hd]),
            b_V: Some(zeros(hd)),
            W_O: normal(vec![hd, d]),
            b_O: Some(zeros(d)),
            mlp: cfg.d_mlp.map(|m| MlpWeights {
                W_gate: None,
                ln2_w: ones(d),
                ln2_b: Some(zeros(d)),
                W_in: normal(vec![d, m]),
                b_in: Some(zeros(m)),
                W_out: normal(vec![m, d]),
                b_out: Some(zeros(d)),
            }),
        })
        .collect();
    ModelWeights {
        W_E: normal(vec![cfg.d_vocab, d]),
        W_pos: Some(normal(vec![cfg.n_ctx, d])),
        blocks,
        ln_final_w: ones(d),
        ln_final_b: Some(zeros(d)),
        W_U: normal(vec![d, cfg.d_vocab_out]),
    }
}

/// A model being trained: the core's `HookedTransformer` on the CPU backend whose weights are
/// candle `Var`s, so gradients reach them through the very forward pass the app runs.
pub struct Trainee {
    pub model: HookedTransformer<CpuBackend>,
    pub vars: Vec<Var>,
    host: ModelWeights<HostTensor>,
}

impl Trainee {
    pub fn new(cfg: &Config, seed: u64) -> candle_core::Result<Trainee> {
        let host = init(cfg, &mut Rng::new(seed));
        let mut vars: Vec<Var> = Vec::new();
        let weights = host.try_map_same(|_, t| -> candle_core::Result<Tensor> {
            let v = Var::from_tensor(&Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?)?;
            vars.push(v.clone());
            Ok(v.as_tensor().clone())
        })?;
        // Dense tensors (the `Var`s themselves), never packed: candle differentiates through them.
        let weights = weights.map_matrices(|t| CpuMatrix::Dense(t.clone()));
        Ok(Trainee { model: HookedTransformer { cfg: cfg.clone(), weights }, vars, host })
    }

    /// The current weights as host tensors.
    pub fn weights(&self) -> candle_core::Result<ModelWeights<HostTensor>> {
        let mut it = self.vars.iter();
        self.host.try_map_same(|_, t| -> candle_core::Result<HostTensor> {
            let v = it.next().expect("one var per weight");
            Ok(HostTensor::new(t.shape.clone(), v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
        })
    }
}

/// Writes the four files of a shipped model: config.json, model.safetensors, vocab.json, card.json.
pub fn write_bundle(
    out: &Path,
    cfg: &Config,
    weights: &ModelWeights<HostTensor>,
    tokenizer: &VocabTokenizer,
    card: &serde_json::Value,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("model.safetensors"), write_safetensors(&weights.to_hf_gpt2(cfg))?)?;
    std::fs::write(out.join("config.json"), cfg.to_hf_json())?;
    std::fs::write(out.join("vocab.json"), tokenizer.to_json())?;
    std::fs::write(out.join("card.json"), serde_json::to_string_pretty(card)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

pub fn train_induction(out: &Path, steps: usize, seed: u64, lr: f64) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let cfg = config();
    let trainee = Trainee::new(&cfg, seed)?;
    let model = &trainee.model;
    let mut opt = AdamW::new(trainee.vars.clone(), ParamsAdamW { lr, weight_decay: 0.01, ..Default::default() })?;
    let mut data_rng = Rng::new(seed.wrapping_add(1));
    for step in 0..steps {
        let mut losses = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let ex = induction::example(&mut data_rng);
            let (logits, _) = model.forward(&CpuBackend, &RunRequest::new(ex.tokens.clone()))?; // [pos, d_vocab]
            let n = ex.tokens.len() - 1;
            let targets = Tensor::from_slice(&ex.tokens[1..], n, &Device::Cpu)?;
            losses.push(candle_nn::loss::cross_entropy(&logits.narrow(0, 0, n)?, &targets)?);
        }
        let loss = (Tensor::stack(&losses, 0)?.sum_all()? / BATCH as f64)?;
        opt.backward_step(&loss)?;
        if step % 100 == 0 || step + 1 == steps {
            println!("step {step:>5}  loss {:.4}  ({:.0}s)", loss.to_dtype(DType::F32)?.to_scalar::<f32>()?, started.elapsed().as_secs_f32());
        }
    }
    let train_secs = started.elapsed().as_secs_f32();

    // Back to host tensors, then held-out accuracy on the shipped weights themselves.
    let trained = trainee.weights()?;
    let eval_model = HookedTransformer::new(&CpuBackend, cfg.clone(), &trained)?;
    let acc = pollster::block_on(induction_heldout_accuracy(&eval_model, &CpuBackend, EVAL_SEED, EVAL_SEQUENCES))?;
    println!("held-out induction accuracy: {acc:.4}  (trained in {train_secs:.0}s)");

    let tokenizer = VocabTokenizer::chars(induction::vocab(), Some(induction::BOS));
    let card = serde_json::json!({
        "name": "induction-2l",
        "description": "2-layer attention-only transformer that forms induction heads (A B ... A -> B)",
        "task": "next-token prediction on sequences of random characters in which one random segment (8-23 tokens) occurs twice; only the repeated half is predictable, by induction",
        "vocabulary": "63 tokens: <bos>, a-z, A-Z, 0-9 (one character per token; whitespace is ignored)",
        "architecture": { "n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_heads": cfg.n_heads, "d_head": cfg.d_head, "attn_only": true, "n_ctx": cfg.n_ctx, "positional": "learned", "normalization": "pre-LayerNorm", "unembed": "untied" },
        "training": {
            "command": format!("cargo run --release -p glassbox-cli -- train-induction --out public/models/induction-2l --steps {steps} --seed {seed} --lr {lr}"),
            "seed": seed, "steps": steps, "batch": BATCH, "optimizer": format!("AdamW lr {lr} weight decay 0.01"),
            "sequence_length": induction::SEQ_LEN, "time_seconds": train_secs.round(),
            "machine": "2 CPU cores, candle-core autograd"
        },
        "metrics": { "heldout_induction_accuracy": (acc as f64 * 10000.0).round() / 10000.0, "eval_seed": EVAL_SEED, "eval_sequences": EVAL_SEQUENCES,
                     "definition": "argmax accuracy at every position inside the second occurrence whose next token continues the segment" },
        "license": "MIT OR Apache-2.0 (trained by this project)"
    });
    write_bundle(out, &cfg, &trained, &tokenizer, &card)
}
