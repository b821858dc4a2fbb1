//! Model configuration: the hyper-parameters of a hooked transformer, named as TransformerLens
//! names them, read from a Hugging Face `config.json` (GPT-2, Llama, Qwen2, GPT-NeoX) or from
//! GGUF metadata (`gguf_model.rs`).
//!
//! This is not a general Hugging Face config parser: it reads the keys of those families and
//! rejects what it does not understand (another model_type, RoPE scaling, another activation)
//! with a clear error that names it.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The architecture family: which block the forward pass builds (see model.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// GPT-2: learned positions, LayerNorm, GELU (tanh) MLP, biases everywhere.
    #[default]
    Gpt2,
    /// Llama family (Llama, SmolLM, TinyLlama, Qwen2): rotary positions, RMSNorm, SwiGLU MLP,
    /// grouped-query attention, no biases (Qwen2: q, k, v biases).
    Llama,
    /// GPT-NeoX (Pythia): partial rotary positions, LayerNorm, attention and MLP in parallel
    /// from the same residual stream, exact GELU.
    NeoX,
}

/// Which normalisation the blocks use (TransformerLens `normalization_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Normalization {
    /// (x - mean) / sqrt(var + eps), then weight and bias.
    #[default]
    LayerNorm,
    /// x / sqrt(mean(x^2) + eps), then weight.
    RmsNorm,
}

/// The MLP activation (TransformerLens `act_fn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActFn {
    /// GPT-2's tanh approximation.
    #[default]
    GeluNew,
    /// The exact erf GELU.
    Gelu,
    /// x * sigmoid(x), the gate of a SwiGLU MLP.
    Silu,
}

/// How positions enter the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Positional {
    /// A learned table `W_pos` added to the token embeddings (hook_pos_embed).
    #[default]
    Learned,
    /// Rotary embeddings on the first `dim` features of every query and key head, angle
    /// `pos * base^(-2i/dim)` (hook_rot_q / hook_rot_k).
    Rotary { dim: usize, base: f32 },
}

/// Hyper-parameters of a hooked transformer, named as TransformerLens names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub arch: Arch,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of attention (query) heads per block.
    pub n_heads: usize,
    /// Number of key and value heads (grouped-query attention); `n_heads` without grouping.
    pub n_kv_heads: usize,
    /// Width of one head's query, key and value.
    pub d_head: usize,
    /// Width of the MLP hidden layer; `None` for an attention-only model (no MLPs).
    pub d_mlp: Option<usize>,
    /// Vocabulary size (rows of `W_E`).
    pub d_vocab: usize,
    /// Number of outputs of the unembedding (columns of `W_U`): `d_vocab` for a language model,
    /// the number of classes or answers for a model with its own readout (TransformerLens's
    /// `d_vocab_out`).
    pub d_vocab_out: usize,
    /// Context length: learned positions, or the longest context the model was trained on.
    pub n_ctx: usize,
    /// Epsilon inside the normalisation's square root.
    pub eps: f32,
    /// Whether the unembedding is the transpose of the embedding.
    pub tied_embeddings: bool,
    #[serde(default)]
    pub normalization: Normalization,
    #[serde(default)]
    pub act_fn: ActFn,
    /// SwiGLU-style MLP: `act(x W_gate) * (x W_in)` (hook_pre, hook_pre_linear).
    #[serde(default)]
    pub gated_mlp: bool,
    /// Attention and MLP both read `resid_pre` (GPT-NeoX); there is no `hook_resid_mid`.
    #[serde(default)]
    pub parallel_attn_mlp: bool,
    #[serde(default)]
    pub positional: Positional,
    /// Biases on q, k and v.
    #[serde(default = "yes")]
    pub attn_qkv_bias: bool,
    /// Bias on the attention output projection.
    #[serde(default = "yes")]
    pub attn_out_bias: bool,
    /// Biases on the MLP's linear layers.
    #[serde(default = "yes")]
    pub mlp_bias: bool,
}

fn yes() -> bool {
    true
}

/// A `config.json` value, read leniently (Hugging Face configs vary across versions).
struct Json<'a>(&'a serde_json::Value);

impl Json<'_> {
    fn usize(&self, key: &str) -> Result<usize, Error> {
        self.opt_usize(key)?.ok_or_else(|| Error::Config(format!("config.json lacks {key}")))
    }
    fn opt_usize(&self, key: &str) -> Result<Option<usize>, Error> {
        match self.0.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| Error::Config(format!("config.json: {key} = {v} is not a whole number"))),
        }
    }
    fn opt_f64(&self, key: &str) -> Option<f64> {
        self.0.get(key).and_then(|v| v.as_f64())
    }
    fn opt_bool(&self, key: &str) -> Option<bool> {
        self.0.get(key).and_then(|v| v.as_bool())
    }
    fn opt_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }
    /// A rotary parameter: top level (transformers 4) or inside `rope_parameters` (5).
    fn rope(&self, keys: &[&str]) -> Option<f64> {
        let nested = self.0.get("rope_parameters").map(Json);
        keys.iter().find_map(|k| self.opt_f64(k).or_else(|| nested.as_ref().and_then(|n| n.opt_f64(k))))
    }
    /// Rejects RoPE scaling (linear, dynamic, YaRN, Llama 3): the kernels apply plain RoPE.
    fn check_rope_type(&self) -> Result<(), Error> {
        for key in ["rope_scaling", "rope_parameters"] {
            if let Some(v) = self.0.get(key).filter(|v| !v.is_null()) {
                let t = v.get("rope_type").or_else(|| v.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
                if t != "default" {
                    return Err(Error::Config(format!("RoPE scaling {t:?} is not supported (plain rotary embeddings only)")));
                }
            }
        }
        Ok(())
    }
}

impl Config {
    pub fn attn_only(&self) -> bool {
        self.d_mlp.is_none()
    }

    /// The rotary dimension and base, for rotary models.
    pub fn rotary(&self) -> Option<(usize, f32)> {
        match self.positional {
            Positional::Rotary { dim, base } => Some((dim, base)),
            Positional::Learned => None,
        }
    }

    /// A GPT-2 config with these sizes and GPT-2's choices for everything else.
    #[allow(clippy::too_many_arguments)]
    pub fn gpt2(n_layers: usize, d_model: usize, n_heads: usize, d_mlp: Option<usize>, d_vocab: usize, n_ctx: usize) -> Config {
        Config {
            arch: Arch::Gpt2,
            n_layers,
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            d_head: d_model / n_heads.max(1),
            d_mlp,
            d_vocab,
            d_vocab_out: d_vocab,
            n_ctx,
            eps: 1e-5,
            tied_embeddings: true,
            normalization: Normalization::LayerNorm,
            act_fn: ActFn::GeluNew,
            gated_mlp: false,
            parallel_attn_mlp: false,
            positional: Positional::Learned,
            attn_qkv_bias: true,
            attn_out_bias: true,
            mlp_bias: true,
        }
    }

    /// A short name of the family for the page: "GPT-2", "Llama", "GPT-NeoX".
    pub fn family(&self) -> &'static str {
        match self.arch {
            Arch::Gpt2 => "GPT-2",
            Arch::Llama => "Llama",
            Arch::NeoX => "GPT-NeoX",
        }
    }

    /// Reads a Hugging Face `config.json` of a GPT-2 (`gpt2`), Llama-family (`llama`, `qwen2`)
    /// or GPT-NeoX (`gpt_neox`) model. GPT-2 configs may carry our extensions `"attn_only":
    /// true` and `"d_vocab_out": n` (a readout other than the vocabulary).
    pub fn from_hf_json(json: &str) -> Result<Config, Error> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Config(format!("config.json is not valid JSON ({e})")))?;
        if !v.is_object() {
            return Err(Error::Config("config.json is not a JSON object".into()));
        }
        let model_type = v.get("model_type").and_then(|t| t.as_str()).unwrap_or("gpt2");
        let cfg = match model_type {
            "gpt2" => Self::from_gpt2_json(json)?,
            "llama" | "qwen2" => Self::from_llama_json(&Json(&v), model_type)?,
            "gpt_neox" => Self::from_neox_json(&Json(&v))?,
            other => {
                return Err(Error::Config(format!("unsupported model_type {other:?} (this build reads gpt2, llama, qwen2 and gpt_neox)")));
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn from_llama_json(j: &Json<'_>, model_type: &str) -> Result<Config, Error> {
        let act = j.opt_str("hidden_act").unwrap_or("silu");
        if act != "silu" {
            return Err(Error::Config(format!("unsupported hidden_act {act:?} for {model_type} (expected silu)")));
        }
        if j.opt_bool("use_sliding_window") == Some(true) {
            return Err(Error::Config("sliding-window attention is not supported".into()));
        }
        j.check_rope_type()?;
        let d_model = j.usize("hidden_size")?;
        let n_heads = j.usize("num_attention_heads")?;
        if n_heads == 0 {
            return Err(Error::Config("num_attention_heads is 0".into()));
        }
        let d_head = j.opt_usize("head_dim")?.unwrap_or(d_model / n_heads);
        let d_vocab = j.usize("vocab_size")?;
        let qwen = model_type == "qwen2";
        let attention_bias = j.opt_bool("attention_bias").unwrap_or(false);
        Ok(Config {
            arch: Arch::Llama,
            n_layers: j.usize("num_hidden_layers")?,
            d_model,
            n_heads,
            n_kv_heads: j.opt_usize("num_key_value_heads")?.unwrap_or(n_heads),
            d_head,
            d_mlp: Some(j.usize("intermediate_size")?),
            d_vocab,
            d_vocab_out: d_vocab,
            n_ctx: j.usize("max_position_embeddings")?,
            eps: j.opt_f64("rms_norm_eps").unwrap_or(1e-6) as f32,
            tied_embeddings: j.opt_bool("tie_word_embeddings").unwrap_or(false),
            normalization: Normalization::RmsNorm,
            act_fn: ActFn::Silu,
            gated_mlp: true,
            parallel_attn_mlp: false,
            positional: Positional::Rotary { dim: d_head, base: j.rope(&["rope_theta"]).unwrap_or(10000.0) as f32 },
            // Qwen2 always has q, k, v biases and no output bias; Llama has all or none.
            attn_qkv_bias: qwen || attention_bias,
            attn_out_bias: !qwen && attention_bias,
            mlp_bias: j.opt_bool("mlp_bias").unwrap_or(false),
        })
    }

    fn from_neox_json(j: &Json<'_>) -> Result<Config, Error> {
        let act_fn = match j.opt_str("hidden_act").unwrap_or("gelu") {
            "gelu" => ActFn::Gelu,
            "gelu_new" => ActFn::GeluNew,
            other => return Err(Error::Config(format!("unsupported hidden_act {other:?} for gpt_neox (expected gelu)"))),
        };
        j.check_rope_type()?;
        let d_model = j.usize("hidden_size")?;
        let n_heads = j.usize("num_attention_heads")?;
        if n_heads == 0 || d_model % n_heads != 0 {
            return Err(Error::Config(format!("hidden_size {d_model} is not a multiple of num_attention_heads {n_heads}")));
        }
        let d_head = d_model / n_heads;
        let pct = j.rope(&["rotary_pct", "partial_rotary_factor"]).unwrap_or(1.0);
        let d_vocab = j.usize("vocab_size")?;
        let attention_bias = j.opt_bool("attention_bias").unwrap_or(true);
        Ok(Config {
            arch: Arch::NeoX,
            n_layers: j.usize("num_hidden_layers")?,
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            d_head,
            d_mlp: Some(j.usize("intermediate_size")?),
            d_vocab,
            d_vocab_out: d_vocab,
            n_ctx: j.usize("max_position_embeddings")?,
            eps: j.opt_f64("layer_norm_eps").unwrap_or(1e-5) as f32,
            tied_embeddings: j.opt_bool("tie_word_embeddings").unwrap_or(false),
            normalization: Normalization::LayerNorm,
            act_fn,
            gated_mlp: false,
            parallel_attn_mlp: j.opt_bool("use_parallel_residual").unwrap_or(true),
            positional: Positional::Rotary { dim: (d_head as f64 * pct) as usize, base: j.rope(&["rotary_emb_base", "rope_theta"]).unwrap_or(10000.0) as f32 },
            attn_qkv_bias: attention_bias,
            attn_out_bias: attention_bias,
            mlp_bias: true,
        })
    }

    fn from_gpt2_json(json: &str) -> Result<Config, Error> {
        #[derive(Deserialize)]
        struct Hf {
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
        if let Some(act) = &hf.activation_function {
            if act != "gelu_new" && !hf.attn_only {
                return Err(Error::Config(format!("unsupported activation_function {act:?} (expected gelu_new)")));
            }
        }
        if hf.n_head == 0 || !hf.n_embd.is_multiple_of(hf.n_head) {
            return Err(Error::Config(format!("n_embd {} is not a multiple of n_head {}", hf.n_embd, hf.n_head)));
        }
        let mut cfg = Config::gpt2(
            hf.n_layer,
            hf.n_embd,
            hf.n_head,
            // Saturating: an absurd n_embd is refused by `validate`, never overflows here.
            if hf.attn_only { None } else { Some(hf.n_inner.unwrap_or_else(|| hf.n_embd.saturating_mul(4))) },
            hf.vocab_size,
            hf.n_positions,
        );
        cfg.d_vocab_out = hf.d_vocab_out.unwrap_or(hf.vocab_size);
        cfg.eps = hf.layer_norm_epsilon.unwrap_or(1e-5);
        cfg.tied_embeddings = hf.tie_word_embeddings.unwrap_or(true);
        Ok(cfg)
    }

    /// Writes a GPT-2 config as a Hugging Face GPT-2 `config.json` (what the trainers export).
    pub fn to_hf_json(&self) -> String {
        assert_eq!(self.arch, Arch::Gpt2, "to_hf_json writes GPT-2 configs only");
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
        if self.d_head == 0 || self.d_head > 1024 {
            return Err(Error::Config(format!("d_head = {} is outside 1..=1024", self.d_head)));
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::Config(format!("{} attention heads do not share {} key/value heads evenly", self.n_heads, self.n_kv_heads)));
        }
        if let Positional::Rotary { dim, base } = self.positional {
            if dim == 0 || dim % 2 != 0 || dim > self.d_head || base.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
                return Err(Error::Config(format!("rotary dimension {dim} (base {base}) must be even, positive and at most d_head = {}", self.d_head)));
            }
        }
        if self.gated_mlp && self.d_mlp.is_none() {
            return Err(Error::Config("a gated MLP needs d_mlp".into()));
        }
        if self.arch == Arch::Gpt2 && self.n_heads * self.d_head != self.d_model {
            return Err(Error::Config("GPT-2: n_heads * d_head must equal d_model".into()));
        }
        Ok(())
    }
}
