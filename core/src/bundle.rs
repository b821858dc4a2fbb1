//! A model as shipped or downloaded: config, weights, tokenizer and model card, read from the
//! bytes of their files (the app fetches them, the CLI and tests read them from disk).

use crate::config::Config;
use crate::tensor::HostTensor;
use crate::tokenizer::VocabTokenizer;
use crate::weights::{read_safetensors, ModelWeights};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct ModelBundle {
    pub cfg: Config,
    pub weights: ModelWeights<HostTensor>,
    pub tokenizer: VocabTokenizer,
    /// The model card (`card.json`), as written by the training command.
    pub card: serde_json::Value,
}

impl ModelBundle {
    /// Builds a bundle from `config.json`, `model.safetensors`, `vocab.json` and `card.json`.
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8], vocab_json: &[u8], card_json: &[u8]) -> Result<ModelBundle> {
        let text = |what: &str, b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::Config(format!("{what} is not UTF-8 text")));
        let cfg = Config::from_hf_json(&text("config.json", config_json)?)?;
        let weights = ModelWeights::from_hf_gpt2(&cfg, read_safetensors(safetensors)?)?;
        let tokenizer = VocabTokenizer::from_json(&text("vocab.json", vocab_json)?)?;
        if tokenizer.vocab_size() != cfg.d_vocab {
            return Err(Error::Tokenizer(format!("the vocabulary has {} tokens but the model expects {}", tokenizer.vocab_size(), cfg.d_vocab)));
        }
        if tokenizer.n_outputs() != cfg.d_vocab_out {
            return Err(Error::Tokenizer(format!("vocab.json names {} outputs but the model has {}", tokenizer.n_outputs(), cfg.d_vocab_out)));
        }
        let card = serde_json::from_slice(card_json).map_err(|e| Error::Config(format!("card.json: {e}")))?;
        Ok(ModelBundle { cfg, weights, tokenizer, card })
    }

    /// Reads the four files from a directory (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<ModelBundle> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| Error::Weights(format!("{}: {e}", dir.join(f).display())));
        ModelBundle::from_bytes(&read("config.json")?, &read("model.safetensors")?, &read("vocab.json")?, &read("card.json")?)
    }
}
