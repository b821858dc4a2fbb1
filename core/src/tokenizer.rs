//! The tokenizer of the shipped toy models: a fixed vocabulary list stored beside the weights
//! (`vocab.json`), split into characters or into words.
//!
//! `{"tokens": ["<bos>", "a", ...], "bos": 0}` is the whole file for the induction model: one
//! character per token, whitespace skipped, so "ab cd" and "abcd" are the same prompt. The
//! optional keys describe the other organisms:
//! * `"split": "words"`: a token is a maximal run of letters and digits, or one other character
//!   ("37 + 85 =" is `37`, `+`, `85`, `=`).
//! * `"separators": "+"`: characters that only separate tokens, dropped like whitespace.
//! * `"skip_whitespace": false`: whitespace is a token (every whitespace character reads as " ").
//! * `"pad_to": 41, "pad": 3`: prompts are padded to a fixed length (a readout at a fixed position).
//! * `"outputs": [...]`: names of the model's outputs when they are not the vocabulary (the
//!   classes of a classifier, the answers of modular addition).
//! * `"help"`: one sentence for the prompt box saying what the vocabulary accepts.
//!
//! Real BPE tokenizers (GPT-2, Llama) come with the real-model loaders, not here.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How text splits into pieces before each piece is looked up in the vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// One character, one token.
    #[default]
    Chars,
    /// Runs of letters and digits, and single other characters.
    Words,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VocabTokenizer {
    /// Token strings by id.
    pub tokens: Vec<String>,
    /// The beginning-of-sequence token, prepended to every prompt.
    pub bos: Option<u32>,
    #[serde(default)]
    pub split: Split,
    /// Characters that separate tokens and are dropped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub separators: String,
    /// Whether whitespace is dropped (true) or is the token " " (false).
    #[serde(default = "yes")]
    pub skip_whitespace: bool,
    /// Pad prompts with `pad` up to this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<u32>,
    /// Names of the model's outputs when they differ from the vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<String>>,
    /// What the vocabulary accepts, in one sentence, for the prompt box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// The most tokens a vocabulary may pad a prompt to.
const MAX_PAD_TO: usize = 1 << 16;
/// How many unknown pieces a message names.
const MAX_NAMED: usize = 20;

impl VocabTokenizer {
    /// One character per token, whitespace skipped, no padding: the induction model's tokenizer.
    pub fn chars(tokens: Vec<String>, bos: Option<u32>) -> VocabTokenizer {
        VocabTokenizer {
            tokens,
            bos,
            split: Split::Chars,
            separators: String::new(),
            skip_whitespace: true,
            pad_to: None,
            pad: None,
            outputs: None,
            help: None,
        }
    }

    pub fn from_json(json: &str) -> Result<VocabTokenizer> {
        let t: VocabTokenizer = serde_json::from_str(json).map_err(|e| Error::Tokenizer(format!("vocab.json: {e}")))?;
        if t.tokens.is_empty() {
            return Err(Error::Tokenizer("vocab.json lists no tokens".into()));
        }
        if t.bos.is_some_and(|b| b as usize >= t.tokens.len()) {
            return Err(Error::Tokenizer("vocab.json: bos is not a token".into()));
        }
        if t.pad.is_some_and(|p| p as usize >= t.tokens.len()) || (t.pad_to.is_some() != t.pad.is_some()) {
            return Err(Error::Tokenizer("vocab.json: pad_to needs a pad token from the vocabulary".into()));
        }
        if t.outputs.as_ref().is_some_and(|o| o.is_empty()) {
            return Err(Error::Tokenizer("vocab.json: outputs is empty".into()));
        }
        // Padding allocates what the file says: cap it (the shipped models pad to a few tokens).
        if let Some(n) = t.pad_to.filter(|&n| n > MAX_PAD_TO) {
            return Err(Error::Tokenizer(format!("vocab.json: pad_to is {n}; glassbox pads to at most {MAX_PAD_TO} tokens")));
        }
        Ok(t)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a tokenizer serializes")
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// How many outputs the model's readout has: the named outputs, or the vocabulary.
    pub fn n_outputs(&self) -> usize {
        self.outputs.as_ref().map_or(self.tokens.len(), Vec::len)
    }

    /// Encodes `text`, with the BOS token first when the vocabulary has one (no padding; see
    /// [`VocabTokenizer::pad`]). Pieces the vocabulary lacks are an error that names them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode_with_spans(text)?.into_iter().map(|(id, _)| id).collect())
    }

    /// As [`VocabTokenizer::encode`], with the byte range of `text` each token came from (an
    /// empty range at 0 for BOS).
    pub fn encode_with_spans(&self, text: &str) -> Result<Vec<(u32, Range<usize>)>> {
        let mut out: Vec<(u32, Range<usize>)> = self.bos.map(|b| (b, 0..0)).into_iter().collect();
        // Linear in the text however many pieces are unknown: a set of those seen, and only the
        // first few named in the message.
        let mut unknown: Vec<&str> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for span in self.pieces(text) {
            let piece = &text[span.clone()];
            let key = if piece.chars().all(char::is_whitespace) { " " } else { piece };
            match self.tokens.iter().position(|t| t == key) {
                Some(id) => out.push((id as u32, span)),
                None => {
                    if seen.insert(piece) {
                        unknown.push(piece);
                    }
                }
            }
        }
        if !unknown.is_empty() {
            let shown = unknown.iter().take(MAX_NAMED).map(|p| format!("{:?}", p.chars().take(40).collect::<String>())).collect::<Vec<_>>().join(", ");
            let more = match unknown.len().saturating_sub(MAX_NAMED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            return Err(Error::Tokenizer(format!("not in the vocabulary: {shown}{more}")));
        }
        Ok(out)
    }

    /// The byte ranges of the pieces of `text`, before lookup.
    fn pieces(&self, text: &str) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut word: Option<usize> = None; // start of the current run of letters and digits
        for (i, c) in text.char_indices() {
            let end = i + c.len_utf8();
            let dropped = self.separators.contains(c) || (c.is_whitespace() && self.skip_whitespace);
            if self.split == Split::Words && c.is_alphanumeric() {
                word.get_or_insert(i);
                continue;
            }
            if let Some(start) = word.take() {
                out.push(start..i);
            }
            if !dropped {
                out.push(i..end);
            }
        }
        if let Some(start) = word {
            out.push(start..text.len());
        }
        out
    }

    /// Appends the pad token up to `pad_to` tokens (no-op for vocabularies without padding).
    pub fn pad(&self, ids: &mut Vec<u32>) {
        if let (Some(n), Some(p)) = (self.pad_to, self.pad) {
            while ids.len() < n {
                ids.push(p);
            }
        }
    }

    /// The string of one token id (`"<unk>"` for ids past the vocabulary).
    pub fn token_str(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map(String::as_str).unwrap_or("<unk>")
    }

    /// The name of one output of the readout: the named output, or the token.
    pub fn output_str(&self, id: u32) -> &str {
        match &self.outputs {
            Some(o) => o.get(id as usize).map(String::as_str).unwrap_or("<unk>"),
            None => self.token_str(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> VocabTokenizer {
        let mut tokens: Vec<String> = (0..113).map(|i| i.to_string()).collect();
        tokens.push("=".into());
        VocabTokenizer { split: Split::Words, separators: "+".into(), ..VocabTokenizer::chars(tokens, None) }
    }

    #[test]
    fn chars_skip_whitespace_and_name_unknown_characters() {
        let t = VocabTokenizer::chars(vec!["<bos>".into(), "a".into(), "b".into()], Some(0));
        assert_eq!(t.encode("a b\nab").unwrap(), vec![0, 1, 2, 1, 2]);
        let err = t.encode("abc!c").unwrap_err().to_string();
        assert!(err.contains("\"c\"") && err.contains("\"!\""), "{err}");
    }

    #[test]
    fn words_split_runs_of_digits_and_drop_separators() {
        let t = words();
        assert_eq!(t.encode("37 + 85 =").unwrap(), vec![37, 85, 113]);
        assert_eq!(t.encode("37+85=").unwrap(), vec![37, 85, 113]);
        let spans: Vec<_> = t.encode_with_spans("1 + 22 =").unwrap().into_iter().map(|(_, s)| s).collect();
        assert_eq!(spans, vec![0..1, 4..6, 7..8]);
        let err = t.encode("200 + x =").unwrap_err().to_string();
        assert!(err.contains("\"200\"") && err.contains("\"x\""), "{err}");
    }

    #[test]
    fn whitespace_can_be_a_token() {
        let t = VocabTokenizer { skip_whitespace: false, ..VocabTokenizer::chars(vec![" ".into(), "a".into()], None) };
        assert_eq!(t.encode("a a\na").unwrap(), vec![1, 0, 1, 0, 1]);
    }

    #[test]
    fn padding_and_outputs() {
        let t = VocabTokenizer {
            pad_to: Some(5),
            pad: Some(3),
            outputs: Some(vec!["unbalanced".into(), "balanced".into()]),
            ..VocabTokenizer::chars(vec!["<bos>".into(), "(".into(), ")".into(), "<pad>".into()], Some(0))
        };
        let mut ids = t.encode("()").unwrap();
        t.pad(&mut ids);
        assert_eq!(ids, vec![0, 1, 2, 3, 3]);
        assert_eq!((t.n_outputs(), t.output_str(1)), (2, "balanced"));
        let back = VocabTokenizer::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
        assert!(VocabTokenizer::from_json(r#"{"tokens":["a"],"bos":null,"pad_to":3}"#).is_err());
    }

    #[test]
    fn the_induction_vocab_json_still_reads() {
        let t = VocabTokenizer::from_json(r#"{"tokens":["<bos>","a"],"bos":0}"#).unwrap();
        assert_eq!(t, VocabTokenizer::chars(vec!["<bos>".into(), "a".into()], Some(0)));
    }
}
