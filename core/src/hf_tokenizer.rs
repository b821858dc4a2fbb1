//! Real-model tokenizers: a Hugging Face `tokenizer.json`, or the vocabulary a GGUF file carries
//! in its metadata, both run by the `tokenizers` crate (the Rust core of the Python package, built
//! with fancy-regex so that it also compiles for wasm32).
//!
//! [`HfTokenizer::from_json`] reads a `tokenizer.json` as the Python `tokenizers` package does.
//! [`HfTokenizer::from_gguf`] rebuilds the tokenizer from llama.cpp's `tokenizer.ggml.*` keys:
//!
//! * `tokenizer.ggml.model` = `"gpt2"`: byte-level BPE. `tokens` (in the byte-level spelling,
//!   `Ġthe`), `merges` (`"Ġ t"`), GPT-2's pre-tokenizer regex (`tokenizer.ggml.pre` absent,
//!   `"default"` or `"gpt-2"`; other pre-tokenizers are refused by name), ByteLevel decoder.
//! * `tokenizer.ggml.model` = `"llama"`: sentencepiece BPE with byte fallback. `tokens`, `scores`
//!   (merges rebuilt from the vocabulary and the scores as transformers' `generate_merges` does,
//!   unless the file lists `merges`), the `<0xXX>` byte tokens, and sentencepiece's dummy prefix:
//!   a normalizer that prepends `▁` and writes spaces as `▁` (transformers' `LlamaConverter` in
//!   its legacy form, which is Llama-2's published tokenizer.json and what sentencepiece and
//!   llama.cpp do; `tokenizer.ggml.add_space_prefix` = false drops the prepend).
//!
//! In both, tokens typed CONTROL (3) are special added tokens and USER_DEFINED (4) plain added
//! tokens (matched whole in the text); `tokenizer.ggml.add_bos_token` / `add_eos_token` (default:
//! BOS for llama, nothing for gpt2) decide what the post-processor adds.
//!
//! Nothing here panics on bad input: every problem is an [`Error::Tokenizer`] sentence.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer};

use crate::gguf::{GgufFile, MetaArray};
use crate::{Error, Result};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The `tokenizer.ggml.pre` values that mean GPT-2's own pre-tokenizer.
const GPT2_PRE: [&str; 3] = ["default", "gpt-2", "gpt2"];

fn err(message: impl Into<String>) -> Error {
    Error::Tokenizer(message.into())
}

/// How a token's string is spelled, for [`HfTokenizer::token_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spelling {
    /// GPT-2's byte-level alphabet: each char stands for one byte (`Ġ` is a space).
    ByteLevel,
    /// Sentencepiece: `▁` is a space, `<0x0A>` a byte.
    Metaspace,
    /// Anything else: shown as stored.
    Plain,
}

/// A Hugging Face tokenizer (from a `tokenizer.json` or a GGUF file's metadata).
#[derive(Clone)]
pub struct HfTokenizer {
    inner: Tokenizer,
    /// The beginning-of-sequence token [`HfTokenizer::encode`] puts first, if it adds one.
    pub bos: Option<u32>,
    /// The end-of-sequence token, when known: GGUF's `tokenizer.ggml.eos_token_id`, or the token
    /// a tokenizer.json's post-processor appends.
    pub eos: Option<u32>,
    spelling: Spelling,
    /// Ids of the added tokens (`<|endoftext|>`, `<s>`): shown as stored.
    added: HashSet<u32>,
    vocab_size: usize,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("spelling", &self.spelling)
            .finish_non_exhaustive()
    }
}

mod validate;

/// Panics of the `tokenizers` crate that [`guarded`] turned into errors since the process
/// started (natively). Each one is a file the checks before the crate let through, which in the
/// browser would have been a trap: the fuzzing harness counts them as findings.
/// How [`guarded`] words a contained panic.
const LIBRARY_FAILED: &str = "the tokenizers library failed";

static CONTAINED_PANICS: AtomicUsize = AtomicUsize::new(0);

/// How many panics of the `tokenizers` crate were contained so far (see [`guarded`]).
#[doc(hidden)]
pub fn contained_panics() -> usize {
    CONTAINED_PANICS.load(Ordering::Relaxed)
}

/// Runs `f`, turning a panic inside the `tokenizers` crate into an error (natively; on wasm32 a
/// panic aborts, so the checks before each call are what keep it from happening).
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            CONTAINED_PANICS.fetch_add(1, Ordering::Relaxed);
            let why = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
            Err(err(format!("{what}: {LIBRARY_FAILED} on this input ({})", validate::quote(&why))))
        }
    }
}

/// Strings encoded (and decoded back) at load, so that a tokenizer that would fail on a prompt
/// fails while loading instead: ASCII, punctuation and digits, whitespace runs, accents, CJK,
/// an emoji, bytes that need byte fallback, and the usual special-token spellings.
const PROBES: &[&str] = &[
    "",
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "  two  spaces,\ttab\nnewline\r\n 12345 3.14 -7",
    "caf\u{e9} na\u{ef}ve \u{4e2d}\u{6587} \u{1f642} \u{0}\u{7f}\u{ff}",
    "<s></s><unk><|endoftext|>[CLS][SEP]</w>##\u{2581}\u{120}",
];

impl HfTokenizer {
    /// A Hugging Face `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<HfTokenizer> {
        let mut value: Value = serde_json::from_slice(bytes).map_err(|e| err(format!("tokenizer.json is not valid JSON: {e}")))?;
        let Some(object) = value.as_object_mut() else {
            return Err(err("tokenizer.json is not a JSON object"));
        };
        let checked = validate::check(object).map_err(err)?;
        // Offsets only: a ByteLevel post-processor that trims offsets would leave the spaces
        // of "Ġthe" outside every span; the ids are the same either way.
        if let Some(pp) = object.get_mut("post_processor") {
            untrim_offsets(pp);
        }
        let inner = guarded("tokenizer.json", || serde_json::from_value::<Tokenizer>(value).map_err(|e| err(format!("tokenizer.json: {e}"))))?;
        let spelling = match inner.get_decoder().map(|d| serde_json::to_value(d).unwrap_or(Value::Null)) {
            Some(d) if has_type(&d, "ByteLevel") => Spelling::ByteLevel,
            Some(d) if has_type(&d, "Metaspace") || has_type(&d, "ByteFallback") || has_type(&d, "Replace") => Spelling::Metaspace,
            _ => Spelling::Plain,
        };
        let mut t = HfTokenizer::wrap(inner, spelling, Some(checked.ids_end as usize))?;
        t.probe("tokenizer.json")?;
        // What the post-processor adds around the text is the BOS and EOS.
        let empty = t.encode_raw("")?;
        let (ids, mask) = (empty.get_ids(), empty.get_special_tokens_mask());
        if ids.len() == mask.len() && mask.iter().all(|&m| m == 1) {
            t.bos = ids.first().copied();
            t.eos = if ids.len() > 1 { ids.last().copied() } else { None };
        }
        Ok(t)
    }

    /// Encodes and decodes [`PROBES`]: a tokenizer that panics on them, or gives ids past its
    /// vocabulary, is refused at load. (An error for a probe is no reason to refuse: a prompt
    /// that gives it is reported when it is run.)
    fn probe(&self, what: &str) -> Result<()> {
        let panicked = |e: &Error| matches!(e, Error::Tokenizer(m) if m.contains(LIBRARY_FAILED));
        for probe in PROBES {
            let ids = match self.encode_raw(probe) {
                Ok(e) => e.get_ids().to_vec(),
                Err(e) if panicked(&e) => return Err(err(format!("{what}: encoding the test text {} failed: {e}", validate::quote(probe)))),
                Err(_) => continue,
            };
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
                return Err(err(format!(
                    "{what}: the test text {} encodes to token id {bad}, past the vocabulary ({} ids)",
                    validate::quote(probe),
                    self.vocab_size
                )));
            }
            for r in [self.decode(&ids).map(drop), self.encode_with_spans(probe).map(drop)] {
                match r {
                    Err(e) if panicked(&e) => return Err(err(format!("{what}: the test text {}: {e}", validate::quote(probe)))),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The tokenizer a GGUF file's metadata describes (`tokenizer.ggml.*`): `gpt2` (byte-level
    /// BPE) and `llama` (sentencepiece BPE with byte fallback).
    pub fn from_gguf(file: &GgufFile) -> Result<HfTokenizer> {
        let t = guarded("the GGUF vocabulary", || Self::from_gguf_unchecked(file))?;
        t.probe("the GGUF vocabulary")?;
        Ok(t)
    }

    fn from_gguf_unchecked(file: &GgufFile) -> Result<HfTokenizer> {
        let gguf_err = |e: Error| match e {
            Error::Weights(m) | Error::Tokenizer(m) => err(m),
            other => err(other.to_string()),
        };
        let model = file.get_str("tokenizer.ggml.model").map_err(gguf_err)?;
        if model != "gpt2" && model != "llama" {
            return Err(err(format!(
                "GGUF tokenizer model '{model}' (tokenizer.ggml.model) is not supported; glassbox reads 'gpt2' (byte-level BPE) and 'llama' (sentencepiece BPE)"
            )));
        }
        let tokens = file.get_str_array("tokenizer.ggml.tokens").map_err(gguf_err)?;
        if tokens.is_empty() {
            return Err(err("GGUF tokenizer: tokenizer.ggml.tokens is empty"));
        }
        if tokens.len() > u32::MAX as usize {
            return Err(err("GGUF tokenizer: tokenizer.ggml.tokens has more tokens than u32 ids"));
        }
        let types = match file.get("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(_) => {
                let t = int_array(file.get_array("tokenizer.ggml.token_type").map_err(gguf_err)?)
                    .ok_or_else(|| err("GGUF tokenizer: tokenizer.ggml.token_type is not an array of integers"))?;
                if t.len() != tokens.len() {
                    return Err(err(format!("GGUF tokenizer: tokenizer.ggml.token_type has {} entries for {} tokens", t.len(), tokens.len())));
                }
                t
            }
        };
        let id_key = |key: &str| -> Result<Option<u32>> {
            if file.get(key).is_none() {
                return Ok(None);
            }
            let id = file.get_u32(key).map_err(gguf_err)?;
            if id as usize >= tokens.len() {
                return Err(err(format!("GGUF tokenizer: {key} is {id}, past the {} tokens", tokens.len())));
            }
            Ok(Some(id))
        };
        let bool_key = |key: &str, default: bool| -> Result<bool> {
            if file.get(key).is_none() {
                return Ok(default);
            }
            file.get_bool(key).map_err(gguf_err)
        };
        let bos = id_key("tokenizer.ggml.bos_token_id")?;
        let eos = id_key("tokenizer.ggml.eos_token_id")?;
        let unk = id_key("tokenizer.ggml.unknown_token_id")?;
        let merges_given = match file.get("tokenizer.ggml.merges") {
            None => None,
            Some(_) => Some(file.get_str_array("tokenizer.ggml.merges").map_err(gguf_err)?),
        };
        let parse_merges = |merges: &[String]| -> Result<Vec<(String, String)>> {
            merges
                .iter()
                .enumerate()
                .map(|(i, m)| match m.split_once(' ') {
                    Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => Ok((a.to_string(), b.to_string())),
                    _ => Err(err(format!("GGUF tokenizer: merge {i} ({}) is not two tokens separated by one space", validate::quote(m)))),
                })
                .collect()
        };

        let (spelling, tokens, model, add_bos) = if model == "gpt2" {
            let pre = match file.get("tokenizer.ggml.pre") {
                None => "default",
                Some(_) => file.get_str("tokenizer.ggml.pre").map_err(gguf_err)?,
            };
            if !GPT2_PRE.contains(&pre) {
                return Err(err(format!(
                    "GGUF tokenizer pre-tokenizer '{pre}' (tokenizer.ggml.pre) is not supported; glassbox reads GPT-2's ('default', 'gpt-2')"
                )));
            }
            // Tokens outside the byte-level alphabet are respelled in it (transformers does too).
            let alphabet = bytes_to_unicode();
            let spelled: HashSet<char> = alphabet.iter().copied().collect();
            let tokens: Vec<String> = tokens
                .iter()
                .map(|t| if t.chars().all(|c| spelled.contains(&c)) { t.clone() } else { t.bytes().map(|b| alphabet[b as usize]).collect() })
                .collect();
            let vocab = vocab_map(&tokens);
            let merges = match merges_given {
                Some(m) => check_merges(parse_merges(m)?, &vocab)?,
                None => generate_merges(&tokens, &vocab, None),
            };
            let bpe = BPE::builder()
                .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
                .build()
                .map_err(|e| err(format!("GGUF tokenizer: the merges do not fit the vocabulary: {e}")))?;
            (Spelling::ByteLevel, tokens, bpe, bool_key("tokenizer.ggml.add_bos_token", false)?)
        } else {
            let tokens = tokens.to_vec();
            let vocab = vocab_map(&tokens);
            let merges = match merges_given {
                Some(m) => check_merges(parse_merges(m)?, &vocab)?,
                None => {
                    let scores = file
                        .get_f32_array("tokenizer.ggml.scores")
                        .map_err(|e| err(format!("{} (a sentencepiece vocabulary without merges needs its scores)", gguf_err(e))))?;
                    if scores.len() != tokens.len() {
                        return Err(err(format!("GGUF tokenizer: tokenizer.ggml.scores has {} entries for {} tokens", scores.len(), tokens.len())));
                    }
                    generate_merges(&tokens, &vocab, Some(scores))
                }
            };
            let unk_token = match unk {
                Some(id) => Some(tokens[id as usize].clone()),
                None => vocab.contains_key("<unk>").then(|| "<unk>".to_string()),
            };
            let mut builder = BPE::builder().vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges).byte_fallback(true).fuse_unk(true);
            if let Some(u) = unk_token {
                builder = builder.unk_token(u);
            }
            let bpe = builder.build().map_err(|e| err(format!("GGUF tokenizer: the merges do not fit the vocabulary: {e}")))?;
            (Spelling::Metaspace, tokens, bpe, bool_key("tokenizer.ggml.add_bos_token", true)?)
        };
        let add_eos = bool_key("tokenizer.ggml.add_eos_token", false)?;
        let add_space_prefix = bool_key("tokenizer.ggml.add_space_prefix", true)?;

        let mut inner = Tokenizer::new(model);
        let (normalizer, pre_tokenizer, decoder) = match spelling {
            Spelling::ByteLevel => (
                None,
                Some(json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true})),
                json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}),
            ),
            _ => {
                let mut norms = Vec::new();
                let mut decoders =
                    vec![json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}), json!({"type": "ByteFallback"}), json!({"type": "Fuse"})];
                if add_space_prefix {
                    norms.push(json!({"type": "Prepend", "prepend": "▁"}));
                    decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
                }
                norms.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
                (Some(json!({"type": "Sequence", "normalizers": norms})), None, json!({"type": "Sequence", "decoders": decoders}))
            }
        };
        if let Some(n) = normalizer {
            let n: NormalizerWrapper = serde_json::from_value(n).map_err(|e| err(format!("building the normalizer: {e}")))?;
            inner.with_normalizer(Some(n)).map_err(|e| err(format!("building the normalizer: {e}")))?;
        }
        if let Some(p) = pre_tokenizer {
            let p: PreTokenizerWrapper = serde_json::from_value(p).map_err(|e| err(format!("building the pre-tokenizer: {e}")))?;
            inner.with_pre_tokenizer(Some(p));
        }
        let d: DecoderWrapper = serde_json::from_value(decoder).map_err(|e| err(format!("building the decoder: {e}")))?;
        inner.with_decoder(Some(d));

        // Added tokens: CONTROL ones are special, USER_DEFINED ones plain; both match whole.
        let control: Vec<AddedToken> =
            tokens.iter().zip(&types).filter(|(_, &t)| t == TOKEN_TYPE_CONTROL).map(|(s, _)| AddedToken::from(s.clone(), true).normalized(false)).collect();
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_USER_DEFINED)
            .map(|(s, _)| AddedToken::from(s.clone(), false).normalized(false))
            .collect();
        if !control.is_empty() {
            inner.add_special_tokens(control).map_err(|e| err(format!("adding the control tokens: {e}")))?;
        }
        if !user.is_empty() {
            inner.add_tokens(user).map_err(|e| err(format!("adding the user-defined tokens: {e}")))?;
        }

        // The post-processor: BOS / EOS around the text as the file says, else nothing.
        let bos_added = if add_bos { bos } else { None };
        let eos_added = if add_eos { eos } else { None };
        let post = if bos_added.is_none() && eos_added.is_none() {
            match spelling {
                Spelling::ByteLevel => {
                    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true})
                }
                _ => Value::Null,
            }
        } else {
            let special = |id: u32, type_id: u32| json!({"SpecialToken": {"id": tokens[id as usize], "type_id": type_id}});
            let piece = |seq: &str, type_id: u32| -> Vec<Value> {
                let mut out: Vec<Value> = bos_added.map(|b| special(b, type_id)).into_iter().collect();
                out.push(json!({"Sequence": {"id": seq, "type_id": type_id}}));
                out.extend(eos_added.map(|e| special(e, type_id)));
                out
            };
            let single = piece("A", 0);
            let pair: Vec<Value> = piece("A", 0).into_iter().chain(piece("B", 1)).collect();
            let mut specials = serde_json::Map::new();
            for id in bos_added.into_iter().chain(eos_added) {
                let s = &tokens[id as usize];
                specials.insert(s.clone(), json!({"id": s, "ids": [id], "tokens": [s]}));
            }
            json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
        };
        if !post.is_null() {
            let p: PostProcessorWrapper = serde_json::from_value(post).map_err(|e| err(format!("building the post-processor: {e}")))?;
            inner.with_post_processor(Some(p));
        }
        let mut t = HfTokenizer::wrap(inner, spelling, Some(tokens.len()))?;
        t.bos = bos_added;
        t.eos = eos;
        Ok(t)
    }

    fn wrap(mut inner: Tokenizer, spelling: Spelling, n_tokens: Option<usize>) -> Result<HfTokenizer> {
        // tokenizers 0.23 caches BPE words in a thread-local map keyed by model instance and
        // never drops a dropped model's entries: every tokenizer built on a thread would leak
        // up to 10,000 cached words for the thread's lifetime (found by the fuzzer's memory cap:
        // about 4 kB per GGUF loaded). Prompts are short; the cache is off.
        if let ModelWrapper::BPE(bpe) = inner.get_model() {
            let mut bpe = bpe.clone();
            bpe.resize_cache(0);
            inner.with_model(ModelWrapper::BPE(bpe));
        }
        let added: HashSet<u32> = inner.get_added_tokens_decoder().keys().copied().collect();
        let vocab_size = inner.get_vocab_size(true).max(n_tokens.unwrap_or(0));
        if vocab_size == 0 {
            return Err(err("the tokenizer has an empty vocabulary"));
        }
        Ok(HfTokenizer { inner, bos: None, eos: None, spelling, added, vocab_size })
    }

    fn encode_raw(&self, text: &str) -> Result<tokenizers::Encoding> {
        guarded("encoding", || self.inner.encode(text, true).map_err(|e| err(format!("could not encode the text: {e}"))))
    }

    /// Token ids of `text`, with the special tokens the tokenizer adds (Python's
    /// `tokenizer.encode(text).ids`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode_raw(text)?.get_ids().to_vec())
    }

    /// As [`HfTokenizer::encode`], with the byte range of `text` each token covers (an empty range
    /// for an added BOS/EOS; tokens that share a character, like the bytes of one Chinese
    /// character, share its range).
    pub fn encode_with_spans(&self, text: &str) -> Result<Vec<(u32, Range<usize>)>> {
        let e = self.encode_raw(text)?;
        let (ids, offsets, mask) = (e.get_ids(), e.get_offsets(), e.get_special_tokens_mask());
        let mut out = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let (mut a, mut b) = offsets.get(i).copied().unwrap_or((0, 0));
            if mask.get(i) == Some(&1) && a == b {
                out.push((id, a.min(text.len())..a.min(text.len())));
                continue;
            }
            // Keep the range inside the text and on character boundaries.
            b = b.min(text.len());
            a = a.min(b);
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            while !text.is_char_boundary(b) {
                b += 1;
            }
            out.push((id, a..b));
        }
        Ok(out)
    }

    /// Decodes ids to text as the tokenizer's decoder does (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(err(format!("token id {bad} is past the vocabulary ({} tokens)", self.vocab_size)));
        }
        guarded("decoding", || self.inner.decode(ids, false).map_err(|e| err(format!("could not decode: {e}"))))
    }

    /// One token for display: `Ġthe` and `▁the` read " the", `<0x0A>` reads "\n"; bytes that are
    /// not a whole UTF-8 character read `<0xE4>`; added tokens read as stored.
    pub fn token_str(&self, id: u32) -> String {
        let Some(token) = self.inner.id_to_token(id) else {
            return format!("<token {id} not in the vocabulary>");
        };
        if self.added.contains(&id) {
            return token;
        }
        match self.spelling {
            Spelling::ByteLevel => {
                let back = unicode_to_bytes();
                if token.chars().all(|c| back.contains_key(&c)) {
                    show_bytes(&token.chars().map(|c| back[&c]).collect::<Vec<u8>>())
                } else {
                    token
                }
            }
            Spelling::Metaspace => match byte_token(&token) {
                Some(b) => show_bytes(&[b]),
                None => token.replace('▁', " "),
            },
            Spelling::Plain => token,
        }
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Whether a serialized component is, or contains, one of `type` `name`.
fn has_type(v: &Value, name: &str) -> bool {
    match v {
        Value::Object(m) => m.get("type").and_then(Value::as_str) == Some(name) || m.values().any(|x| has_type(x, name)),
        Value::Array(a) => a.iter().any(|x| has_type(x, name)),
        _ => false,
    }
}

/// Sets `trim_offsets` false on every ByteLevel post-processor in `v`.
fn untrim_offsets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("ByteLevel") && m.contains_key("trim_offsets") {
                m.insert("trim_offsets".into(), Value::Bool(false));
            }
            m.values_mut().for_each(untrim_offsets);
        }
        Value::Array(a) => a.iter_mut().for_each(untrim_offsets),
        _ => {}
    }
}

/// Token string -> id; a repeated string keeps its last id (as a Python dict does).
fn vocab_map(tokens: &[String]) -> HashMap<String, u32> {
    tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect()
}

/// Checks that both halves of every merge, and what they make, are tokens (the crate slices a
/// buffer as long as the longest token by the merged length before it looks the result up).
fn check_merges(merges: Vec<(String, String)>, vocab: &HashMap<String, u32>) -> Result<Vec<(String, String)>> {
    let mut joined = String::new();
    for (i, (a, b)) in merges.iter().enumerate() {
        joined.clear();
        joined.push_str(a);
        joined.push_str(b);
        for t in [a, b, &joined] {
            if !vocab.contains_key(t.as_str()) {
                return Err(err(format!(
                    "GGUF tokenizer: merge {i} ({} {}) of tokenizer.ggml.merges needs the token {}, which is not in tokenizer.ggml.tokens",
                    validate::quote(a),
                    validate::quote(b),
                    validate::quote(t)
                )));
            }
        }
    }
    Ok(merges)
}

/// The integers of an integer array (token types are i32 in llama.cpp's files).
fn int_array(a: &MetaArray) -> Option<Vec<i64>> {
    Some(match a {
        MetaArray::I32(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::U32(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::I8(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::U8(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::I16(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::U16(v) => v.iter().map(|&x| x as i64).collect(),
        MetaArray::I64(v) => v.clone(),
        MetaArray::U64(v) => v.iter().map(|&x| x.min(i64::MAX as u64) as i64).collect(),
        _ => return None,
    })
}

/// A byte trie of a vocabulary: the id of each token at the node its bytes lead to.
struct Trie {
    edges: HashMap<(u32, u8), u32>,
    ids: Vec<Option<u32>>,
}

impl Trie {
    fn new(tokens: impl Iterator<Item = (Vec<u8>, u32)>) -> Trie {
        let mut t = Trie { edges: HashMap::new(), ids: vec![None] };
        for (bytes, id) in tokens {
            let mut node = 0u32;
            for b in bytes {
                let next = t.ids.len() as u32;
                node = *t.edges.entry((node, b)).or_insert(next);
                if node == next {
                    t.ids.push(None);
                }
            }
            t.ids[node as usize] = Some(id);
        }
        t
    }

    /// `out[k]`: the id of the first `k` bytes of `bytes` when they are a token (`out[0]` is
    /// unused). The walk stops where no token continues.
    fn walk(&self, bytes: impl ExactSizeIterator<Item = u8>, out: &mut Vec<Option<u32>>) {
        out.clear();
        out.resize(bytes.len() + 1, None);
        let mut node = 0u32;
        for (k, b) in bytes.enumerate() {
            match self.edges.get(&(node, b)) {
                Some(&next) => node = next,
                None => break,
            }
            out[k + 1] = self.ids[node as usize];
        }
    }
}

/// transformers' `generate_merges`: every split of every token into two tokens of the
/// vocabulary is a merge, ordered by the token's score (highest first), then by the lengths of
/// the two halves (longest first); without scores, by token id (lowest first).
fn generate_merges(tokens: &[String], vocab: &HashMap<String, u32>, scores: Option<&[f32]>) -> Vec<(String, String)> {
    struct Merge {
        left: String,
        right: String,
        score: f64,
        len_l: usize,
        len_r: usize,
    }
    let mut merges: Vec<Merge> = Vec::new();
    let forward = Trie::new(vocab.iter().map(|(t, &id)| (t.as_bytes().to_vec(), id)));
    let backward = Trie::new(vocab.iter().map(|(t, &id)| (t.bytes().rev().collect(), id)));
    let (mut prefix, mut suffix) = (Vec::new(), Vec::new());
    // Python iterates a dict built from the tokens: a repeated token keeps its first position
    // and its last value.
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, token) in tokens.iter().enumerate() {
        if !seen.insert(token.as_str()) {
            continue;
        }
        let score = match scores {
            // The dict's value for a repeated token is the last one's score.
            Some(s) => s[vocab[token] as usize] as f64,
            None => vocab.get(token).copied().unwrap_or(i as u32) as f64,
        };
        let mut local: Vec<(u32, u32, Merge)> = Vec::new();
        // The ids of the token's prefixes and suffixes that are tokens, from one walk of each
        // trie: linear in the token (hashing every prefix and suffix would be quadratic, and a
        // GGUF file can hold a token of a million characters).
        let bytes = token.as_bytes();
        forward.walk(bytes.iter().copied(), &mut prefix);
        backward.walk(bytes.iter().rev().copied(), &mut suffix);
        let n_chars = token.chars().count();
        for (n_left, (idx, _)) in token.char_indices().enumerate().skip(1) {
            if let (Some(il), Some(ir)) = (prefix[idx], suffix[bytes.len() - idx]) {
                let (l, r) = token.split_at(idx);
                let m = Merge { left: l.to_string(), right: r.to_string(), score, len_l: n_left, len_r: n_chars - n_left };
                local.push((il, ir, m));
            }
        }
        local.sort_by_key(|(il, ir, _)| (*il, *ir));
        merges.extend(local.into_iter().map(|(_, _, m)| m));
    }
    let key = |m: &Merge| (m.score, m.len_l, m.len_r);
    if scores.is_some() {
        // sorted(..., reverse=True) is stable: equal keys keep their order.
        merges.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            kb.0.total_cmp(&ka.0).then(kb.1.cmp(&ka.1)).then(kb.2.cmp(&ka.2))
        });
    } else {
        merges.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1)).then(ka.2.cmp(&kb.2))
        });
    }
    merges.into_iter().map(|m| (m.left, m.right)).collect()
}

/// GPT-2's `bytes_to_unicode`: the char that spells each byte in a byte-level vocabulary.
fn bytes_to_unicode() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        out[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    out
}

fn unicode_to_bytes() -> HashMap<char, u8> {
    bytes_to_unicode().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect()
}

/// `<0x0A>` -> 0x0A.
fn byte_token(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Bytes for display: whole UTF-8 characters as themselves, stray bytes as `<0xE4>`.
fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("<0x{b:02X}>"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_unicode_is_gpt2s() {
        let m = bytes_to_unicode();
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'a' as usize], 'a');
        assert_eq!(unicode_to_bytes().len(), 256);
    }

    #[test]
    fn show_bytes_marks_partial_characters() {
        assert_eq!(show_bytes("中".as_bytes()), "中");
        assert_eq!(show_bytes(&"中".as_bytes()[..2]), "<0xE4><0xB8>");
        assert_eq!(byte_token("<0x0A>"), Some(b'\n'));
        assert_eq!(byte_token("<0x0A"), None);
    }

    #[test]
    fn generate_merges_orders_by_score_then_length() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"].iter().map(|s| s.to_string()).collect();
        let vocab = vocab_map(&tokens);
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0];
        let m = generate_merges(&tokens, &vocab, Some(&scores));
        let m: Vec<String> = m.into_iter().map(|(a, b)| format!("{a} {b}")).collect();
        assert_eq!(m, ["a b", "b c", "ab c", "a bc"]);
    }
}
