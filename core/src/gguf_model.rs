//! A model from a GGUF file: the config from its metadata, the weights from its tensors (kept
//! in their GGUF blocks, as [`HostMatrix::Quant`], so that a backend can keep them quantized),
//! and the tokenizer from its vocabulary.
//!
//! Architectures, as llama.cpp's `convert_hf_to_gguf.py` writes them:
//! * `gpt2`: `token_embd`, `position_embd`, `blk.N.attn_qkv` (rows `[Q; K; V]`), `attn_output`,
//!   `attn_norm`, `ffn_norm`, `ffn_up`, `ffn_down`, `output_norm`, `output` (absent when tied).
//! * `llama`, `qwen2`: `attn_q`, `attn_k`, `attn_v` (Qwen2: with biases), `attn_output`,
//!   `attn_norm`, `ffn_norm`, `ffn_gate`, `ffn_up`, `ffn_down`. llama.cpp permutes the rows of a
//!   `llama` model's `attn_q` and `attn_k` for its interleaved rotary form; we undo that
//!   permutation, row by row, on the blocks (rows are independent), so that the rotate-half
//!   kernels apply. `qwen2` files are not permuted.
//! * `gptneox`: fused `attn_qkv` with rows `[Q; K; V]` (the converter un-interleaves NeoX's
//!   per-head layout), partial rotary (`rope.dimension_count`), `use_parallel_residual`.
//!
//! Norms, biases and learned positions are read as f32 tensors. Anything else (another
//! architecture, a ggml type we cannot read) is an error that names it.

use std::sync::Arc;

use crate::config::{ActFn, Arch, Config, Normalization, Positional};
use crate::gguf::{GgmlType, GgufFile};
use crate::hf_tokenizer::HfTokenizer;
use crate::tensor::HostTensor;
use crate::weights::{BlockWeights, HostMatrix, MlpWeights, ModelWeights, QuantMatrix};
use crate::{Error, Result};

/// The architectures this build reads from GGUF.
pub const GGUF_ARCHS: [&str; 4] = ["gpt2", "llama", "qwen2", "gptneox"];

/// A model read from a GGUF file.
pub struct GgufModel {
    pub cfg: Config,
    pub weights: ModelWeights<HostTensor, HostMatrix>,
    /// The embedded vocabulary, when the file has one.
    pub tokenizer: Option<HfTokenizer>,
    /// The file's `general.name`, if any.
    pub name: Option<String>,
    /// The ggml types of the matrices, most common first, for the page ("Q8_0").
    pub formats: Vec<(GgmlType, usize)>,
}

fn werr(msg: String) -> Error {
    Error::Weights(msg)
}

struct Reader<'a> {
    file: &'a GgufFile,
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }

    fn vector(&self, name: &str, len: usize) -> Result<HostTensor> {
        let t = self.file.tensor_f32(self.bytes, name)?;
        if t.len() != len {
            return Err(werr(format!("tensor '{name}' has {} values, the metadata implies {len}", t.len())));
        }
        Ok(HostTensor::new(vec![len], t.data))
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<HostTensor>> {
        self.has(name).then(|| self.vector(name, len)).transpose()
    }

    /// A 2-d tensor as GGUF stores it: `[rows, cols]` quantized along cols, checked against
    /// the shape the metadata implies.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<QuantMatrix> {
        let info = self.file.tensor(name).ok_or_else(|| werr(format!("tensor '{name}' is missing")))?;
        if info.shape() != [rows, cols] {
            return Err(werr(format!("tensor '{name}' has shape {:?}, the metadata implies {:?}", info.shape(), [rows, cols])));
        }
        if !info.ggml_type.is_supported() {
            let supported: Vec<&str> = crate::gguf::SUPPORTED_TYPES.iter().map(|t| t.name()).collect();
            return Err(werr(format!("tensor '{name}' is {}, which glassbox cannot read yet (supported: {})", info.ggml_type, supported.join(", "))));
        }
        let range = self.file.tensor_data_range(info, self.bytes.len())?;
        Ok(QuantMatrix { ggml_type: info.ggml_type, rows, cols, bytes: Arc::from(&self.bytes[range]) })
    }
}

/// Rows `[start, start + n)` of a GGUF matrix (rows are whole runs of blocks).
fn row_slice(m: &QuantMatrix, start: usize, n: usize) -> QuantMatrix {
    let row_bytes = m.bytes.len() / m.rows;
    QuantMatrix { ggml_type: m.ggml_type, rows: n, cols: m.cols, bytes: Arc::from(&m.bytes[start * row_bytes..(start + n) * row_bytes]) }
}

/// Undoes llama.cpp's `permute(w, n_head)` on the rows of `attn_q` / `attn_k`: within each head,
/// Hugging Face row `i * d_head/2 + j` (i = 0, 1) is GGUF row `2j + i`.
fn unpermute_rows(m: &QuantMatrix, n_heads: usize) -> QuantMatrix {
    let row_bytes = m.bytes.len() / m.rows;
    let d_head = m.rows / n_heads;
    let half = d_head / 2;
    let mut out = Vec::with_capacity(m.bytes.len());
    for h in 0..n_heads {
        for i in 0..2 {
            for j in 0..half {
                let src = h * d_head + 2 * j + i;
                out.extend_from_slice(&m.bytes[src * row_bytes..(src + 1) * row_bytes]);
            }
        }
    }
    QuantMatrix { ggml_type: m.ggml_type, rows: m.rows, cols: m.cols, bytes: Arc::from(out) }
}

/// F32 and F16 matrices become dense f32 (in the forward pass's orientation); quantized ones
/// stay in their blocks.
fn host(m: QuantMatrix, table: bool) -> Result<HostMatrix> {
    Ok(match m.ggml_type {
        GgmlType::F32 | GgmlType::F16 => {
            let t = m.dequantize()?;
            HostMatrix::Dense(if table { t } else { t.transpose2() })
        }
        _ => HostMatrix::Quant(m),
    })
}

impl GgufModel {
    /// Reads a whole GGUF file.
    pub fn from_bytes(bytes: &[u8]) -> Result<GgufModel> {
        let file = crate::gguf::parse(bytes)?;
        let arch_name = file.get_str("general.architecture")?.to_string();
        if !GGUF_ARCHS.contains(&arch_name.as_str()) {
            return Err(Error::Config(format!("unsupported GGUF architecture {arch_name:?} (this build reads {})", GGUF_ARCHS.join(", "))));
        }
        let mut cfg = config(&file, &arch_name)?;
        let r = Reader { file: &file, bytes };
        let weights = weights(&r, &cfg, &arch_name)?;
        if let Some(w_pos) = &weights.W_pos {
            cfg.n_ctx = w_pos.shape[0]; // the learned table decides the context length
        }
        let tokenizer = if file.get("tokenizer.ggml.model").is_some() { Some(HfTokenizer::from_gguf(&file)?) } else { None };
        if let Some(t) = &tokenizer {
            if t.vocab_size() != cfg.d_vocab {
                return Err(Error::Tokenizer(format!("the file's vocabulary has {} tokens but its embedding has {} rows", t.vocab_size(), cfg.d_vocab)));
            }
        }
        let mut formats: Vec<(GgmlType, usize)> = Vec::new();
        for t in file.tensors.iter().filter(|t| t.dims.len() == 2) {
            match formats.iter_mut().find(|(g, _)| *g == t.ggml_type) {
                Some((_, n)) => *n += 1,
                None => formats.push((t.ggml_type, 1)),
            }
        }
        formats.sort_by_key(|f| std::cmp::Reverse(f.1));
        let name = file.get("general.name").and_then(|v| v.as_str()).map(str::to_string);
        Ok(GgufModel { cfg, weights, tokenizer, name, formats })
    }
}

fn config(file: &GgufFile, arch: &str) -> Result<Config> {
    let key = |k: &str| format!("{arch}.{k}");
    let u = |k: &str| -> Result<usize> { Ok(file.get_u64(&key(k))? as usize) };
    let opt_u = |k: &str| file.get(&key(k)).map(|_| u(k)).transpose();
    let embd = file.tensor("token_embd.weight").ok_or_else(|| werr("tensor 'token_embd.weight' is missing".into()))?;
    let [d_vocab, d_model]: [usize; 2] = embd.shape().try_into().map_err(|_| werr("token_embd.weight is not a matrix".into()))?;
    if d_model != u("embedding_length")? {
        return Err(werr(format!("token_embd.weight is {d_vocab} x {d_model}, but embedding_length is {}", u("embedding_length")?)));
    }
    let n_heads = u("attention.head_count")?;
    if n_heads == 0 {
        return Err(Error::Config("attention.head_count is 0".into()));
    }
    let n_kv_heads = opt_u("attention.head_count_kv")?.unwrap_or(n_heads);
    let d_head = opt_u("attention.key_length")?.unwrap_or(d_model / n_heads);
    let tied = file.tensor("output.weight").is_none();
    let eps_key = if arch == "llama" || arch == "qwen2" { "attention.layer_norm_rms_epsilon" } else { "attention.layer_norm_epsilon" };
    let eps = file.get_f32(&key(eps_key)).unwrap_or(1e-5);
    let base = file.get_f32(&key("rope.freq_base")).unwrap_or(10000.0);
    let mut cfg = match arch {
        "gpt2" => {
            let mut c = Config::gpt2(u("block_count")?, d_model, n_heads, Some(u("feed_forward_length")?), d_vocab, u("context_length")?);
            c.eps = eps;
            c.tied_embeddings = tied;
            c
        }
        _ => {
            let llama = arch != "gptneox";
            let rot_dim = opt_u("rope.dimension_count")?.unwrap_or(d_head);
            Config {
                arch: if llama { Arch::Llama } else { Arch::NeoX },
                n_layers: u("block_count")?,
                d_model,
                n_heads,
                n_kv_heads,
                d_head,
                d_mlp: Some(u("feed_forward_length")?),
                d_vocab,
                d_vocab_out: d_vocab,
                n_ctx: u("context_length")?,
                eps,
                tied_embeddings: tied,
                normalization: if llama { Normalization::RmsNorm } else { Normalization::LayerNorm },
                act_fn: if llama { ActFn::Silu } else { ActFn::Gelu },
                gated_mlp: llama,
                parallel_attn_mlp: !llama && file.get_bool(&key("use_parallel_residual")).unwrap_or(true),
                positional: Positional::Rotary { dim: rot_dim, base },
                attn_qkv_bias: file.tensor(if llama { "blk.0.attn_q.bias" } else { "blk.0.attn_qkv.bias" }).is_some(),
                attn_out_bias: file.tensor("blk.0.attn_output.bias").is_some(),
                mlp_bias: file.tensor("blk.0.ffn_up.bias").is_some(),
            }
        }
    };
    if cfg.n_ctx == 0 {
        cfg.n_ctx = 2048;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn weights(r: &Reader<'_>, cfg: &Config, arch: &str) -> Result<ModelWeights<HostTensor, HostMatrix>> {
    let (d, v) = (cfg.d_model, cfg.d_vocab);
    let (hq, hkv) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
    let m = cfg.d_mlp.unwrap_or(0);
    let embed = r.matrix("token_embd.weight", v, d)?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    let ln_bias = cfg.normalization == Normalization::LayerNorm;
    for l in 0..cfg.n_layers {
        let p = |s: &str| format!("blk.{l}.{s}");
        let (w_q, w_k, w_v, b_q, b_k, b_v) = if arch == "llama" || arch == "qwen2" {
            let mut q = r.matrix(&p("attn_q.weight"), hq, d)?;
            let mut k = r.matrix(&p("attn_k.weight"), hkv, d)?;
            if arch == "llama" {
                q = unpermute_rows(&q, cfg.n_heads);
                k = unpermute_rows(&k, cfg.n_kv_heads);
            }
            let v = r.matrix(&p("attn_v.weight"), hkv, d)?;
            (q, k, v, r.opt_vector(&p("attn_q.bias"), hq)?, r.opt_vector(&p("attn_k.bias"), hkv)?, r.opt_vector(&p("attn_v.bias"), hkv)?)
        } else {
            let qkv = r.matrix(&p("attn_qkv.weight"), hq + 2 * hkv, d)?;
            let b = r.opt_vector(&p("attn_qkv.bias"), hq + 2 * hkv)?;
            let part = |s: usize, n: usize| b.as_ref().map(|b| HostTensor::new(vec![n], b.data[s..s + n].to_vec()));
            (row_slice(&qkv, 0, hq), row_slice(&qkv, hq, hkv), row_slice(&qkv, hq + hkv, hkv), part(0, hq), part(hq, hkv), part(hq + hkv, hkv))
        };
        let ffn_norm = "ffn_norm";
        blocks.push(BlockWeights {
            ln1_w: r.vector(&p("attn_norm.weight"), d)?,
            ln1_b: if ln_bias { Some(r.vector(&p("attn_norm.bias"), d)?) } else { None },
            W_Q: host(w_q, false)?,
            b_Q: b_q,
            W_K: host(w_k, false)?,
            b_K: b_k,
            W_V: host(w_v, false)?,
            b_V: b_v,
            W_O: host(r.matrix(&p("attn_output.weight"), d, hq)?, false)?,
            b_O: r.opt_vector(&p("attn_output.bias"), d)?,
            mlp: Some(MlpWeights {
                ln2_w: r.vector(&p(&format!("{ffn_norm}.weight")), d)?,
                ln2_b: if ln_bias { Some(r.vector(&p(&format!("{ffn_norm}.bias")), d)?) } else { None },
                W_gate: if cfg.gated_mlp { Some(host(r.matrix(&p("ffn_gate.weight"), m, d)?, false)?) } else { None },
                W_in: host(r.matrix(&p("ffn_up.weight"), m, d)?, false)?,
                b_in: r.opt_vector(&p("ffn_up.bias"), m)?,
                W_out: host(r.matrix(&p("ffn_down.weight"), d, m)?, false)?,
                b_out: r.opt_vector(&p("ffn_down.bias"), d)?,
            }),
        });
    }
    let w_pos = if cfg.rotary().is_none() {
        let t = r.file.tensor_f32(r.bytes, "position_embd.weight")?;
        if t.shape.len() != 2 || t.shape[1] != d {
            return Err(werr(format!("position_embd.weight has shape {:?}, expected [n_ctx, {d}]", t.shape)));
        }
        Some(t)
    } else {
        None
    };
    let w_u = if cfg.tied_embeddings {
        match host(embed.clone(), true)? {
            HostMatrix::Dense(t) => HostMatrix::Dense(t.transpose2()),
            q => q, // the same blocks, read as a linear layer [d_vocab (out), d_model (in)]
        }
    } else {
        host(r.matrix("output.weight", cfg.d_vocab_out, d)?, false)?
    };
    Ok(ModelWeights {
        W_E: host(embed, true)?,
        W_pos: w_pos,
        blocks,
        ln_final_w: r.vector("output_norm.weight", d)?,
        ln_final_b: if ln_bias { Some(r.vector("output_norm.bias", d)?) } else { None },
        W_U: w_u,
    })
}
