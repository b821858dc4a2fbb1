//! Model configuration: the hyper-parameters of a GPT-2-architecture transformer, named as
//! TransformerLens names them, read from a Hugging Face GPT-2 `config.json`.
//!
//! This is not a general Hugging Face config parser: it reads the GPT-2 keys (plus our one
//! extension, `attn_only`) and rejects what it does not understand with a clear error.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Hyper-parameters of a hooked GPT-2-style transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of attention heads per block.
    pub n_heads: usize,
    /// Width of one head's query, key and value (`d_model / n_heads` for GPT-2).
    pub d_head: usize,
    /// Width of the MLP hidden layer; `None` for an attention-only model (no MLPs).
    pub d_mlp: Option<usize>,
    /// Vocabulary size (rows of `W_E`).
    pub d_vocab: usize,
    /// Number of outputs of the unembedding (columns of `W_U`): `d_vocab` for a language model,
    /// the number of classes or answers for a model with its own readout (TransformerLens's
    /// `d_vocab_out`).
    pub d_vocab_out: usize,
    /// Context length: the number of learned positions.
    pub n_ctx: usize,
    /// Epsilon inside LayerNorm's square root.
    pub eps: f32,
    /// Whether the unembedding is the transpose of the embedding.
    pub tied_embeddings: bool,
}

impl Config {
    pub fn attn_only(&self) -> bool {
        self.d_mlp.is_none()
    }

    /// Reads a Hugging Face GPT-2 `config.json` (with our optional extensions `"attn_only": true`
    /// and `"d_vocab_out": n`, the size of a readout other than the vocabulary).
    pub fn from_hf_json(json: &str) -> Result<Config, Error> {
        #[derive(Deserialize)]
        struct Hf {
            model_type: Option<String>,
            n_layer: usize,
            n_embd: usize,
            n_head: usize,
            n_positions: usize,
            vocab_size: usize,
            n_inner: Option<usize>,
            layer_norm_epsilon: Option<f32>,
            activation_function: Option<String>,
            tie_word_embeddings: Option<bool>,
            #[serde(default)]
            attn_only: bool,
            d_vocab_out: Option<usize>,
        }
        let hf: Hf = serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(t) = &hf.model_type {
            if t != "gpt2" {
                return Err(Error::Config(format!("unsupported model_type {t:?} (this build reads gpt2)")));
            }
        }
        if let Some(act) = &hf.activation_function {
            if act != "gelu_new" && !hf.attn_only {
                return Err(Error::Config(format!("unsupported activation_function {act:?} (expected gelu_new)")));
            }
        }
        if hf.n_head == 0 || hf.n_embd % hf.n_head != 0 {
            return Err(Error::Config(format!("n_embd {} is not a multiple of n_head {}", hf.n_embd, hf.n_head)));
        }
        let cfg = Config {
            n_layers: hf.n_layer,
            d_model: hf.n_embd,
            n_heads: hf.n_head,
            d_head: hf.n_embd / hf.n_head,
            d_mlp: if hf.attn_only { None } else { Some(hf.n_inner.unwrap_or(4 * hf.n_embd)) },
            d_vocab: hf.vocab_size,
            d_vocab_out: hf.d_vocab_out.unwrap_or(hf.vocab_size),
            n_ctx: hf.n_positions,
            eps: hf.layer_norm_epsilon.unwrap_or(1e-5),
            tied_embeddings: hf.tie_word_embeddings.unwrap_or(true),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Writes the config as a Hugging Face GPT-2 `config.json`.
    pub fn to_hf_json(&self) -> String {
        let mut v = serde_json::json!({
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "n_layer": self.n_layers,
            "n_embd": self.d_model,
            "n_head": self.n_heads,
            "n_positions": self.n_ctx,
            "vocab_size": self.d_vocab,
            "layer_norm_epsilon": self.eps,
            "activation_function": "gelu_new",
            "tie_word_embeddings": self.tied_embeddings,
        });
        match self.d_mlp {
            Some(d_mlp) => v["n_inner"] = d_mlp.into(),
            None => v["attn_only"] = true.into(),
        }
        if self.d_vocab_out != self.d_vocab {
            v["d_vocab_out"] = self.d_vocab_out.into();
        }
        serde_json::to_string_pretty(&v).expect("a json value serializes")
    }

    /// Rejects sizes that would make no sense or exhaust memory, before anything is allocated.
    pub fn validate(&self) -> Result<(), Error> {
        let limits = [
            ("n_layers", self.n_layers, 1, 256),
            ("d_model", self.d_model, 1, 16384),
            ("n_heads", self.n_heads, 1, 256),
            ("d_vocab", self.d_vocab, 1, 1 << 20),
            ("d_vocab_out", self.d_vocab_out, 1, 1 << 20),
            ("n_ctx", self.n_ctx, 1, 1 << 16),
            ("d_mlp", self.d_mlp.unwrap_or(1), 1, 1 << 16),
        ];
        for (name, v, lo, hi) in limits {
            if v < lo || v > hi {
                return Err(Error::Config(format!("{name} = {v} is outside {lo}..={hi}")));
            }
        }
        if self.tied_embeddings && self.d_vocab_out != self.d_vocab {
            return Err(Error::Config(format!("tied embeddings need d_vocab_out = d_vocab, got {} and {}", self.d_vocab_out, self.d_vocab)));
        }
        if self.n_heads * self.d_head != self.d_model {
            return Err(Error::Config("n_heads * d_head must equal d_model".into()));
        }
        Ok(())
    }
}
