//! The tokenizer of the shipped toy models: one character, one token, from a vocabulary list
//! stored beside the weights (`vocab.json`: `{"tokens": ["<bos>", "a", ...], "bos": 0}`).
//!
//! Whitespace separates nothing and is skipped, so "ab cd" and "abcd" are the same prompt.
//! Real BPE tokenizers (GPT-2, Llama) come with the real-model loaders, not here.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CharTokenizer {
    /// Token strings by id.
    pub tokens: Vec<String>,
    /// The beginning-of-sequence token, prepended to every prompt.
    pub bos: Option<u32>,
}

impl CharTokenizer {
    pub fn from_json(json: &str) -> Result<CharTokenizer> {
        let t: CharTokenizer = serde_json::from_str(json).map_err(|e| Error::Tokenizer(format!("vocab.json: {e}")))?;
        if t.tokens.is_empty() {
            return Err(Error::Tokenizer("vocab.json lists no tokens".into()));
        }
        if t.bos.is_some_and(|b| b as usize >= t.tokens.len()) {
            return Err(Error::Tokenizer("vocab.json: bos is not a token".into()));
        }
        Ok(t)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a tokenizer serializes")
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Encodes `text`, with the BOS token first when the vocabulary has one. Characters the
    /// vocabulary lacks are an error that names them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self.bos.into_iter().collect();
        let mut unknown: Vec<char> = Vec::new();
        for c in text.chars().filter(|c| !c.is_whitespace()) {
            let mut buf = [0u8; 4];
            match self.tokens.iter().position(|t| t == c.encode_utf8(&mut buf)) {
                Some(id) => ids.push(id as u32),
                None if !unknown.contains(&c) => unknown.push(c),
                None => {}
            }
        }
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|c| format!("{c:?}")).collect();
            return Err(Error::Tokenizer(format!("not in the vocabulary: {}", list.join(", "))));
        }
        Ok(ids)
    }

    /// The string of one token id (`"<unk>"` for ids past the vocabulary).
    pub fn token_str(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map(String::as_str).unwrap_or("<unk>")
    }
}
