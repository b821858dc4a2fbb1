//! A model as shipped or downloaded: config, weights, tokenizer and model card, read from the
//! bytes of their files (the app fetches them, the CLI and tests read them from disk).
//!
//! Three layouts are recognised by file name ([`ModelBundle::from_files`]):
//! * a GGUF file (`*.gguf`): everything from the one file (tokenizer from its vocabulary, or a
//!   `tokenizer.json` given beside it);
//! * Hugging Face safetensors: `config.json`, `model.safetensors` (or
//!   `model.safetensors.index.json` and its shards), `tokenizer.json`;
//! * the site's own small models: `config.json`, `model.safetensors`, `vocab.json`, `card.json`.
//!
//! A `quantize` option turns the dense matrices of a safetensors model into Q8_0 or Q4_0 blocks
//! at load (quantize-on-load), so that the GPU keeps them quantized.

use std::ops::Range;

use crate::config::Config;
use glassbox_kernels::QuantFormat;

use crate::gguf::GgmlType;
use crate::gguf_model::GgufModel;
use crate::hf_tokenizer::HfTokenizer;
use crate::tensor::HostTensor;
use crate::tokenizer::VocabTokenizer;
use crate::weights::{from_hf_tensors, matrix_role, read_safetensors, read_safetensors_shards, shard_files, HostMatrix, MatrixRole, ModelWeights, QuantMatrix};
use crate::{Error, Result};

/// The tokenizer of a model: the small models' own vocabularies, or a Hugging Face / GGUF one.
#[derive(Clone, Debug)]
pub enum Tokenizer {
    Vocab(VocabTokenizer),
    /// Boxed: a Hugging Face tokenizer is large, and a bundle holds one tokenizer.
    Hf(Box<HfTokenizer>),
}

impl Tokenizer {
    /// Token ids of `text`, with the BOS token the model expects.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Vocab(t) => t.encode(text),
            Tokenizer::Hf(t) => t.encode(text),
        }
    }

    /// Token ids with the byte range of `text` each came from (empty for an added BOS).
    pub fn encode_with_spans(&self, text: &str) -> Result<Vec<(u32, Range<usize>)>> {
        match self {
            Tokenizer::Vocab(t) => t.encode_with_spans(text),
            Tokenizer::Hf(t) => t.encode_with_spans(text),
        }
    }

    /// A readable form of one token.
    pub fn token_str(&self, id: u32) -> String {
        match self {
            Tokenizer::Vocab(t) => t.token_str(id).to_string(),
            Tokenizer::Hf(t) => t.token_str(id),
        }
    }

    /// The text of `ids` (generated tokens): the Hugging Face decoder, or the vocabulary's
    /// tokens joined.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Hf(t) => t.decode(ids).unwrap_or_else(|_| ids.iter().map(|&i| t.token_str(i)).collect()),
            Tokenizer::Vocab(t) => ids.iter().map(|&i| t.token_str(i)).collect(),
        }
    }

    /// The name of output `id` of the unembedding (a token, or a readout's class).
    pub fn output_str(&self, id: u32) -> String {
        match self {
            Tokenizer::Vocab(t) => t.output_str(id).to_string(),
            Tokenizer::Hf(t) => t.token_str(id),
        }
    }

    /// The BOS token the tokenizer adds, if any.
    pub fn bos(&self) -> Option<u32> {
        match self {
            Tokenizer::Vocab(t) => t.bos,
            Tokenizer::Hf(t) => t.bos,
        }
    }

    /// A sentence on what the tokenizer accepts, when it has one.
    pub fn help(&self) -> Option<&str> {
        match self {
            Tokenizer::Vocab(t) => t.help.as_deref(),
            Tokenizer::Hf(_) => None,
        }
    }

    /// The named outputs of a readout model.
    pub fn outputs(&self) -> Option<&[String]> {
        match self {
            Tokenizer::Vocab(t) => t.outputs.as_deref(),
            Tokenizer::Hf(_) => None,
        }
    }

    /// The token prompts are padded with, for a model that reads a fixed length.
    pub fn pad_id(&self) -> Option<u32> {
        match self {
            Tokenizer::Vocab(t) => t.pad_to.and(t.pad),
            Tokenizer::Hf(_) => None,
        }
    }

    /// Pads ids to the fixed length a readout model reads (no-op otherwise).
    pub fn pad(&self, ids: &mut Vec<u32>) {
        if let Tokenizer::Vocab(t) = self {
            t.pad(ids);
        }
    }

    /// The number of outputs the tokenizer names (`d_vocab_out`).
    pub fn n_outputs(&self) -> usize {
        match self {
            Tokenizer::Vocab(t) => t.n_outputs(),
            Tokenizer::Hf(t) => t.vocab_size(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Vocab(t) => t.vocab_size(),
            Tokenizer::Hf(t) => t.vocab_size(),
        }
    }
}

/// Quantize-on-load: the format dense matrices are turned into. One of the weight formats
/// ([`QuantFormat`]); [`quantize_matrices`] takes Q8_0 and Q4_0 (and F32, which keeps the
/// matrices as they are) and refuses the others with a message.
pub type QuantizeOnLoad = QuantFormat;

#[derive(Clone, Debug)]
pub struct ModelBundle {
    pub cfg: Config,
    pub weights: ModelWeights<HostTensor, HostMatrix>,
    pub tokenizer: Tokenizer,
    /// The model card (`card.json`) of a shipped model; for a downloaded one, what the loader
    /// knows (`name`, `format`).
    pub card: serde_json::Value,
}

/// Finds file `name` among `files` (by its last path component).
fn find<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    files.iter().find(|(n, _)| n.rsplit('/').next() == Some(name)).map(|(_, b)| b.as_slice())
}

fn text<'a>(what: &str, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::Config(format!("{what} is not UTF-8 text")))
}

impl ModelBundle {
    /// Builds a bundle from `config.json`, `model.safetensors`, `vocab.json` and `card.json`.
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8], vocab_json: &[u8], card_json: &[u8]) -> Result<ModelBundle> {
        let cfg = Config::from_hf_json(text("config.json", config_json)?)?;
        let weights = ModelWeights::from_hf_gpt2(&cfg, read_safetensors(safetensors)?)?.map_matrices(|t| HostMatrix::Dense(t.clone()));
        let tokenizer = VocabTokenizer::from_json(text("vocab.json", vocab_json)?)?;
        if tokenizer.vocab_size() != cfg.d_vocab {
            return Err(Error::Tokenizer(format!("the vocabulary has {} tokens but the model expects {}", tokenizer.vocab_size(), cfg.d_vocab)));
        }
        if tokenizer.n_outputs() != cfg.d_vocab_out {
            return Err(Error::Tokenizer(format!("vocab.json names {} outputs but the model has {}", tokenizer.n_outputs(), cfg.d_vocab_out)));
        }
        let card = serde_json::from_slice(card_json).map_err(|e| Error::Config(format!("card.json: {e}")))?;
        Ok(ModelBundle { cfg, weights, tokenizer: Tokenizer::Vocab(tokenizer), card })
    }

    /// Builds a bundle from the files of any supported layout (see the module doc), named as
    /// on the hub. `quantize` applies to safetensors models only (GGUF files keep their types).
    pub fn from_files(files: &[(String, Vec<u8>)], quantize: Option<QuantizeOnLoad>) -> Result<ModelBundle> {
        if let Some((name, bytes)) = files.iter().find(|(n, _)| n.to_ascii_lowercase().ends_with(".gguf")) {
            let m = GgufModel::from_bytes(bytes)?;
            let tokenizer = match (find(files, "tokenizer.json"), m.tokenizer) {
                (Some(json), _) => HfTokenizer::from_json(json)?,
                (None, Some(t)) => t,
                (None, None) => return Err(Error::Tokenizer("the GGUF file has no vocabulary and no tokenizer.json was given".into())),
            };
            let formats: Vec<String> = m.formats.iter().map(|(t, n)| format!("{n} x {t}")).collect();
            let card = serde_json::json!({ "name": m.name.unwrap_or_else(|| name.clone()), "format": format!("GGUF ({})", formats.join(", ")) });
            return Self::checked(m.cfg, m.weights, Tokenizer::Hf(Box::new(tokenizer)), card);
        }
        let config = find(files, "config.json").ok_or_else(|| Error::Config("config.json is missing".into()))?;
        let cfg = Config::from_hf_json(text("config.json", config)?)?;
        if let (Some(vocab), Some(st)) = (find(files, "vocab.json"), find(files, "model.safetensors")) {
            let card = find(files, "card.json").unwrap_or(b"{}");
            return Self::from_bytes(config, st, vocab, card);
        }
        let tensors = match (find(files, "model.safetensors"), find(files, "model.safetensors.index.json")) {
            (Some(st), _) => read_safetensors(st)?,
            (None, Some(index)) => {
                let names = shard_files(index)?;
                let shards = names.iter().map(|n| find(files, n).ok_or_else(|| Error::Weights(format!("shard {n} is missing")))).collect::<Result<Vec<_>>>()?;
                read_safetensors_shards(&shards)?
            }
            (None, None) => return Err(Error::Weights("model.safetensors (or model.safetensors.index.json) is missing".into())),
        };
        let mut weights = from_hf_tensors(&cfg, tensors)?;
        if let Some(q) = quantize {
            weights = quantize_matrices(&weights, q)?;
        }
        let json = find(files, "tokenizer.json").ok_or_else(|| Error::Tokenizer("tokenizer.json is missing".into()))?;
        let tokenizer = HfTokenizer::from_json(json)?;
        let format = match quantize {
            None => "safetensors".to_string(),
            Some(q) => format!("safetensors, quantized to {q:?} on load"),
        };
        Self::checked(cfg, weights, Tokenizer::Hf(Box::new(tokenizer)), serde_json::json!({ "format": format }))
    }

    fn checked(cfg: Config, weights: ModelWeights<HostTensor, HostMatrix>, tokenizer: Tokenizer, card: serde_json::Value) -> Result<ModelBundle> {
        // A tokenizer may have fewer tokens than the embedding has rows (padded vocabularies,
        // as Pythia's and Qwen's), never more.
        if tokenizer.vocab_size() > cfg.d_vocab {
            return Err(Error::Tokenizer(format!(
                "the tokenizer has {} tokens but the model's embedding has only {} rows: they do not belong together",
                tokenizer.vocab_size(),
                cfg.d_vocab
            )));
        }
        Ok(ModelBundle { cfg, weights, tokenizer, card })
    }

    /// Reads the four files from a directory (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<ModelBundle> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| Error::Weights(format!("{}: {e}", dir.join(f).display())));
        ModelBundle::from_bytes(&read("config.json")?, &read("model.safetensors")?, &read("vocab.json")?, &read("card.json")?)
    }
}

/// Quantize-on-load: every dense matrix whose input width is a multiple of 32 becomes Q8_0 or
/// Q4_0 blocks in GGUF's layout (ggml's reference quantizers, byte-equal to gguf-py's). `F32`
/// returns the weights as they are; the other formats have no quantize-on-load and are an error.
pub fn quantize_matrices(weights: &ModelWeights<HostTensor, HostMatrix>, format: QuantizeOnLoad) -> Result<ModelWeights<HostTensor, HostMatrix>> {
    match format {
        QuantFormat::F32 => return Ok(weights.clone()),
        QuantFormat::Q8_0 | QuantFormat::Q4_0 => {}
        other => return Err(Error::Weights(format!("quantize-on-load to {other} is not supported (q8_0 or q4_0)"))),
    }
    let ggml_type = GgmlType::of_format(format);
    let block = format.block_size();
    let mut out = weights
        .try_map(
            |_, t| Ok::<_, std::convert::Infallible>(t.clone()),
            |name, m| {
                let HostMatrix::Dense(t) = m else { return Ok(m.clone()) };
                // GGUF's layout: rows quantized along the input axis. A table is [vocab, d]
                // already; a linear weight [in, out] is transposed to [out, in].
                let rows_major = match matrix_role(name) {
                    MatrixRole::Table => t.clone(),
                    MatrixRole::Linear => t.transpose2(),
                };
                let (rows, cols) = (rows_major.shape[0], rows_major.shape[1]);
                if cols % block != 0 {
                    return Ok(m.clone());
                }
                let Some(bytes) = format.quantize(&rows_major.data) else { return Ok(m.clone()) };
                Ok(HostMatrix::Quant(QuantMatrix { ggml_type, rows, cols, bytes: bytes.into() }))
            },
        )
        .unwrap_or_else(|e| match e {});
    // A tied unembedding quantizes to W_E's very blocks: share them, so that a backend can
    // keep one copy.
    if let (HostMatrix::Quant(e), HostMatrix::Quant(u)) = (&out.W_E, &mut out.W_U) {
        if e.bytes == u.bytes && e.rows == u.rows {
            u.bytes = e.bytes.clone();
        }
    }
    Ok(out)
}
