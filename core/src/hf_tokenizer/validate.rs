//! Checks a `tokenizer.json` before the `tokenizers` crate sees it.
//!
//! The crate trusts its files: a BPE merge shorter than the continuing-subword prefix, a
//! `Precompiled` normalizer without its charsmap, a template naming a special token the file
//! does not define, a truncation whose stride exceeds its length, a `Strip` decoder that cuts
//! past the token or a padding block that asks for a terabyte all panic (or allocate what the
//! file says) inside it, and in the browser a panic is a trap. So the file is read as JSON
//! first and checked here, field by field, against what the explorer supports; every refusal
//! names the field (`model.merges[12]`, `post_processor.single[0]`).
//!
//! What the explorer never uses is dropped after it is checked: `truncation` and `padding`
//! (a prompt is never padded or cut by the tokenizer).

use std::collections::HashSet;

use serde_json::{Map, Value};

/// The largest token id accepted (4,194,304 ids: about 16 times the largest vocabularies).
pub(super) const MAX_ID: u64 = 1 << 22;
/// The longest token accepted, in bytes.
pub(super) const MAX_TOKEN_BYTES: usize = 1 << 16;
/// The largest length a truncation or padding block may name.
const MAX_LENGTH: u64 = 1 << 20;
/// The longest regular expression accepted in a `Split` pre-tokenizer or a `Replace`.
const MAX_PATTERN: usize = 1 << 12;
/// How deep `Sequence`s may nest.
const MAX_DEPTH: usize = 8;

const NORMALIZERS: &[&str] =
    &["BertNormalizer", "Strip", "StripAccents", "NFC", "NFD", "NFKC", "NFKD", "Sequence", "Lowercase", "Nmt", "Replace", "Prepend", "ByteLevel"];
const PRE_TOKENIZERS: &[&str] = &[
    "BertPreTokenizer",
    "ByteLevel",
    "CharDelimiterSplit",
    "Metaspace",
    "Whitespace",
    "Sequence",
    "Split",
    "Punctuation",
    "WhitespaceSplit",
    "Digits",
    "UnicodeScripts",
    "FixedLength",
];
const DECODERS: &[&str] = &["BPEDecoder", "ByteLevel", "WordPiece", "Metaspace", "CTC", "Sequence", "Replace", "Fuse", "Strip", "ByteFallback"];
const PROCESSORS: &[&str] = &["RobertaProcessing", "BertProcessing", "ByteLevel", "TemplateProcessing", "Sequence"];

/// What the checks learnt about the file.
pub(super) struct Checked {
    /// One past the largest id the file uses (vocabulary and added tokens).
    pub ids_end: u64,
}

type R<T> = std::result::Result<T, String>;

fn fail<T>(field: &str, what: impl std::fmt::Display) -> R<T> {
    Err(format!("tokenizer.json: {field} {what}"))
}

/// A short, quoted form of a reader-controlled string for a message.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}... ({} bytes)", s.len())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn uint(field: &str, v: &Value, max: u64) -> R<u64> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(n),
        Some(n) => fail(field, format!("is {n}; glassbox accepts at most {max}")),
        None => fail(field, format!("should be a whole number, not {}", kind(v))),
    }
}

fn string<'a>(field: &str, v: &'a Value) -> R<&'a str> {
    v.as_str().map_or_else(|| fail(field, format!("should be a string, not {}", kind(v))), Ok)
}

fn opt_string<'a>(o: &'a Map<String, Value>, field: &str, key: &str) -> R<Option<&'a str>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(&format!("{field}.{key}"), v).map(Some),
    }
}

fn opt_bool(o: &Map<String, Value>, field: &str, key: &str) -> R<()> {
    match o.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(v) => fail(&format!("{field}.{key}"), format!("should be true or false, not {}", kind(v))),
    }
}

fn one_char(field: &str, v: Option<&Value>) -> R<()> {
    match v {
        None => Ok(()),
        Some(v) => {
            let s = string(field, v)?;
            if s.chars().count() == 1 {
                Ok(())
            } else {
                fail(field, format!("should be one character, not {}", quote(s)))
            }
        }
    }
}

fn object<'a>(field: &str, v: &'a Value) -> R<&'a Map<String, Value>> {
    v.as_object().map_or_else(|| fail(field, format!("should be an object, not {}", kind(v))), Ok)
}

fn array<'a>(field: &str, v: Option<&'a Value>) -> R<&'a Vec<Value>> {
    match v {
        Some(Value::Array(a)) => Ok(a),
        Some(v) => fail(field, format!("should be an array, not {}", kind(v))),
        None => fail(field, "is missing"),
    }
}

/// Checks the whole file and drops `truncation` and `padding`.
pub(super) fn check(root: &mut Map<String, Value>) -> R<Checked> {
    let model = match root.get("model") {
        Some(m @ Value::Object(_)) => m,
        _ => return Err("tokenizer.json has no \"model\" object".into()),
    };
    let vocab = check_model(object("model", model)?)?;
    let mut ids_end = vocab.ids_end;

    let mut added = HashSet::new();
    match root.get("added_tokens") {
        None | Some(Value::Null) => {}
        Some(v) => {
            for (i, t) in array("added_tokens", Some(v))?.iter().enumerate() {
                let field = format!("added_tokens[{i}]");
                let t = object(&field, t)?;
                let id = uint(&format!("{field}.id"), t.get("id").unwrap_or(&Value::Null), MAX_ID - 1)?;
                let content = string(&format!("{field}.content"), t.get("content").unwrap_or(&Value::Null))?;
                if content.is_empty() {
                    return fail(&format!("{field}.content"), "is empty");
                }
                if content.len() > MAX_TOKEN_BYTES {
                    return fail(&format!("{field}.content"), format!("is {} bytes long; glassbox accepts tokens up to {MAX_TOKEN_BYTES}", content.len()));
                }
                for key in ["special", "single_word", "lstrip", "rstrip", "normalized"] {
                    opt_bool(t, &field, key)?;
                }
                ids_end = ids_end.max(id + 1);
                added.insert(content.to_string());
            }
        }
    }
    let known = |s: &str| vocab.tokens.contains(s) || added.contains(s);

    check_truncation(root.get("truncation"))?;
    check_padding(root.get("padding"))?;

    if let Some(n) = root.get("normalizer").filter(|v| !v.is_null()) {
        check_component(n, "normalizer", 0, &Kind::Normalizer)?;
    }
    if let Some(p) = root.get("pre_tokenizer").filter(|v| !v.is_null()) {
        check_component(p, "pre_tokenizer", 0, &Kind::PreTokenizer)?;
    }
    if let Some(d) = root.get("decoder").filter(|v| !v.is_null()) {
        check_component(d, "decoder", 0, &Kind::Decoder)?;
    }
    if let Some(p) = root.get("post_processor").filter(|v| !v.is_null()) {
        check_component(p, "post_processor", 0, &Kind::Processor { ids_end, known: &known })?;
    }
    // The explorer tokenizes one prompt at a time and never pads or cuts it.
    root.insert("truncation".into(), Value::Null);
    root.insert("padding".into(), Value::Null);
    Ok(Checked { ids_end })
}

fn check_truncation(v: Option<&Value>) -> R<()> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(()) };
    let t = object("truncation", v)?;
    let max_length = uint("truncation.max_length", t.get("max_length").unwrap_or(&Value::Null), MAX_LENGTH)?;
    let stride = match t.get("stride") {
        None | Some(Value::Null) => 0,
        Some(s) => uint("truncation.stride", s, MAX_LENGTH)?,
    };
    if max_length > 0 && stride >= max_length {
        return fail("truncation.stride", format!("({stride}) must be smaller than truncation.max_length ({max_length})"));
    }
    Ok(())
}

fn check_padding(v: Option<&Value>) -> R<()> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(()) };
    let p = object("padding", v)?;
    if let Some(m) = p.get("pad_to_multiple_of").filter(|v| !v.is_null()) {
        uint("padding.pad_to_multiple_of", m, MAX_LENGTH)?;
    }
    if let Some(id) = p.get("pad_id") {
        uint("padding.pad_id", id, MAX_ID - 1)?;
    }
    if let Some(s) = p.get("strategy") {
        match s {
            Value::String(s) if s == "BatchLongest" => {}
            Value::Object(o) if o.len() == 1 && o.contains_key("Fixed") => {
                uint("padding.strategy.Fixed", &o["Fixed"], MAX_LENGTH)?;
            }
            other => return fail("padding.strategy", format!("should be \"BatchLongest\" or {{\"Fixed\": n}}, not {}", kind(other))),
        }
    }
    Ok(())
}

struct Vocab {
    tokens: HashSet<String>,
    ids_end: u64,
}

/// The model section: BPE (with its merges checked against the vocabulary), or the
/// WordLevel / WordPiece vocabularies; Unigram and others are refused by name.
fn check_model(m: &Map<String, Value>) -> R<Vocab> {
    let ty = match m.get("type") {
        Some(Value::String(t)) if ["BPE", "WordLevel", "WordPiece"].contains(&t.as_str()) => t.as_str(),
        None if m.contains_key("merges") => "BPE",
        Some(Value::String(t)) => {
            return fail(
                "model.type",
                format!("{} is not supported; glassbox reads BPE tokenizers (GPT-2, Llama, Qwen2, Pythia and their kin), WordLevel and WordPiece", quote(t)),
            )
        }
        Some(v) => return fail("model.type", format!("should be a string, not {}", kind(v))),
        None => return fail("model.type", "is missing"),
    };
    let vocab = match m.get("vocab") {
        Some(v) => object("model.vocab", v)?,
        None => return fail("model.vocab", "is missing"),
    };
    if vocab.is_empty() {
        return fail("model.vocab", "is empty (an empty vocabulary)");
    }
    let mut ids_end = 0;
    for (token, id) in vocab {
        let field = || format!("model.vocab[{}]", quote(token));
        let id = uint(&field(), id, MAX_ID - 1)?;
        if token.len() > MAX_TOKEN_BYTES {
            return fail(&field(), format!("is {} bytes long; glassbox accepts tokens up to {MAX_TOKEN_BYTES}", token.len()));
        }
        ids_end = ids_end.max(id + 1);
    }
    if ty != "BPE" {
        opt_string(m, "model", "unk_token")?;
        opt_string(m, "model", "continuing_subword_prefix")?;
        if let Some(n) = m.get("max_input_chars_per_word").filter(|v| !v.is_null()) {
            uint("model.max_input_chars_per_word", n, MAX_LENGTH)?;
        }
        return Ok(Vocab { tokens: vocab.keys().cloned().collect(), ids_end });
    }
    let tokens: HashSet<String> = vocab.keys().cloned().collect();
    let prefix = opt_string(m, "model", "continuing_subword_prefix")?.unwrap_or("");
    opt_string(m, "model", "end_of_word_suffix")?;
    opt_string(m, "model", "unk_token")?;
    for key in ["fuse_unk", "byte_fallback", "ignore_merges"] {
        opt_bool(m, "model", key)?;
    }
    match m.get("dropout") {
        None | Some(Value::Null) => {}
        Some(d) => match d.as_f64() {
            Some(0.0) => {}
            Some(p) if (0.0..=1.0).contains(&p) => {
                return fail("model.dropout", format!("is {p}: glassbox needs the same tokens for the same text (no dropout)"))
            }
            _ => return fail("model.dropout", "should be a number between 0 and 1"),
        },
    }
    let merges = array("model.merges", m.get("merges"))?;
    let mut merged = String::new();
    for (i, merge) in merges.iter().enumerate() {
        let field = format!("model.merges[{i}]");
        let (a, b) = match merge {
            Value::String(s) if s.starts_with("#version") => continue,
            Value::String(s) => {
                let mut parts = s.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) => (a, b),
                    _ => return fail(&field, format!("({}) is not two tokens separated by one space", quote(s))),
                }
            }
            Value::Array(pair) if pair.len() == 2 => (string(&format!("{field}[0]"), &pair[0])?, string(&format!("{field}[1]"), &pair[1])?),
            other => return fail(&field, format!("should be \"a b\" or [\"a\", \"b\"], not {}", kind(other))),
        };
        for part in [a, b] {
            if !tokens.contains(part) {
                return fail(&field, format!("names {}, which is not in model.vocab", quote(part)));
            }
        }
        let Some(rest) = b.strip_prefix(prefix) else {
            return fail(&field, format!("joins {}, which does not start with model.continuing_subword_prefix {}", quote(b), quote(prefix)));
        };
        merged.clear();
        merged.push_str(a);
        merged.push_str(rest);
        if !tokens.contains(&merged) {
            return fail(&field, format!("makes {}, which is not in model.vocab", quote(&merged)));
        }
    }
    Ok(Vocab { tokens, ids_end })
}

enum Kind<'a> {
    Normalizer,
    PreTokenizer,
    Decoder,
    Processor { ids_end: u64, known: &'a dyn Fn(&str) -> bool },
}

impl Kind<'_> {
    fn types(&self) -> &'static [&'static str] {
        match self {
            Kind::Normalizer => NORMALIZERS,
            Kind::PreTokenizer => PRE_TOKENIZERS,
            Kind::Decoder => DECODERS,
            Kind::Processor { .. } => PROCESSORS,
        }
    }

    /// The key of a `Sequence`'s list.
    fn children(&self) -> &'static str {
        match self {
            Kind::Normalizer => "normalizers",
            Kind::PreTokenizer => "pretokenizers",
            Kind::Decoder => "decoders",
            Kind::Processor { .. } => "processors",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Normalizer => "normalizer",
            Kind::PreTokenizer => "pre-tokenizer",
            Kind::Decoder => "decoder",
            Kind::Processor { .. } => "post-processor",
        }
    }
}

fn check_component(v: &Value, field: &str, depth: usize, kind: &Kind) -> R<()> {
    let o = object(field, v)?;
    let ty = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => return fail(&format!("{field}.type"), format!("should be a string, not {}", self::kind(other))),
        None => return fail(&format!("{field}.type"), "is missing"),
    };
    if !kind.types().contains(&ty) {
        return fail(&format!("{field}.type"), format!("{} is not a {} glassbox supports ({})", quote(ty), kind.name(), kind.types().join(", ")));
    }
    let sub = |k: &str| format!("{field}.{k}");
    match (kind, ty) {
        (_, "Sequence") => {
            if depth >= MAX_DEPTH {
                return fail(field, format!("nests Sequences more than {MAX_DEPTH} deep"));
            }
            let key = kind.children();
            for (i, c) in array(&sub(key), o.get(key))?.iter().enumerate() {
                check_component(c, &format!("{field}.{key}[{i}]"), depth + 1, kind)?;
            }
        }
        (Kind::Normalizer | Kind::Decoder, "Replace") => {
            check_pattern(&sub("pattern"), o.get("pattern"))?;
            string(&sub("content"), o.get("content").unwrap_or(&Value::Null))?;
        }
        (Kind::Normalizer, "Prepend") => {
            string(&sub("prepend"), o.get("prepend").unwrap_or(&Value::Null))?;
        }
        (Kind::PreTokenizer, "Split") => {
            check_pattern(&sub("pattern"), o.get("pattern"))?;
        }
        (Kind::PreTokenizer, "FixedLength") => {
            if let Some(l) = o.get("length") {
                if uint(&sub("length"), l, MAX_LENGTH)? == 0 {
                    return fail(&sub("length"), "is 0");
                }
            }
        }
        (Kind::PreTokenizer, "CharDelimiterSplit") => one_char(&sub("delimiter"), o.get("delimiter"))?,
        (Kind::PreTokenizer | Kind::Decoder, "Metaspace") => one_char(&sub("replacement"), o.get("replacement"))?,
        (Kind::Decoder, "Strip") => {
            one_char(&sub("content"), o.get("content"))?;
            uint(&sub("start"), o.get("start").unwrap_or(&Value::Null), MAX_LENGTH)?;
            // The crate's Strip cuts `stop` characters from the end without looking at the
            // token's length (it panics on a short token): only `stop` 0 is accepted.
            if uint(&sub("stop"), o.get("stop").unwrap_or(&Value::Null), MAX_LENGTH)? != 0 {
                return fail(&sub("stop"), "should be 0 (glassbox strips at the start of a token only)");
            }
        }
        (Kind::Processor { ids_end, known }, "TemplateProcessing") => check_template(o, field, *ids_end, known)?,
        (Kind::Processor { ids_end, known }, "RobertaProcessing" | "BertProcessing") => {
            for key in ["sep", "cls"] {
                let f = sub(key);
                let pair = array(&f, o.get(key))?;
                if pair.len() != 2 {
                    return fail(&f, "should be [token, id]");
                }
                let token = string(&format!("{f}[0]"), &pair[0])?;
                let id = uint(&format!("{f}[1]"), &pair[1], MAX_ID - 1)?;
                if id >= *ids_end || !known(token) {
                    return fail(&f, format!("names {} (id {id}), which the vocabulary does not have", quote(token)));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_pattern(field: &str, v: Option<&Value>) -> R<()> {
    let p = object(field, v.unwrap_or(&Value::Null))?;
    let (k, s) = match p.iter().next() {
        Some((k, s)) if p.len() == 1 && (k == "String" || k == "Regex") => (k, s),
        _ => return fail(field, "should be {\"String\": ...} or {\"Regex\": ...}"),
    };
    let s = string(&format!("{field}.{k}"), s)?;
    if s.len() > MAX_PATTERN {
        return fail(&format!("{field}.{k}"), format!("is {} bytes long; glassbox accepts patterns up to {MAX_PATTERN}", s.len()));
    }
    if k == "String" && s.is_empty() {
        return fail(&format!("{field}.{k}"), "is empty");
    }
    Ok(())
}

/// One piece of a template: a special token by name, or sequence A or B.
enum Piece {
    Special(String),
    SequenceA,
    SequenceB,
}

fn check_template(o: &Map<String, Value>, field: &str, ids_end: u64, known: &dyn Fn(&str) -> bool) -> R<()> {
    let specials_field = format!("{field}.special_tokens");
    let specials = match o.get("special_tokens") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => object(&specials_field, v)?.clone(),
    };
    for (name, s) in &specials {
        let f = format!("{specials_field}[{}]", quote(name));
        let s = object(&f, s)?;
        let ids = array(&format!("{f}.ids"), s.get("ids"))?;
        let tokens = array(&format!("{f}.tokens"), s.get("tokens"))?;
        if ids.len() != tokens.len() {
            return fail(&f, format!("has {} ids for {} tokens", ids.len(), tokens.len()));
        }
        for (i, (id, token)) in ids.iter().zip(tokens).enumerate() {
            let id = uint(&format!("{f}.ids[{i}]"), id, MAX_ID - 1)?;
            let token = string(&format!("{f}.tokens[{i}]"), token)?;
            if id >= ids_end || !known(token) {
                return fail(&format!("{f}.ids[{i}]"), format!("is {id} for {}, which the vocabulary does not have", quote(token)));
            }
        }
    }
    for key in ["single", "pair"] {
        let f = format!("{field}.{key}");
        let pieces: Vec<(String, Piece)> = match o.get(key) {
            None => continue,
            // "[CLS] $A [SEP]": a piece is $A, $B (with an optional :type_id) or a special token.
            Some(Value::String(s)) => s
                .split_whitespace()
                .enumerate()
                .map(|(i, p)| {
                    let name = p.split_once(':').map_or(p, |(n, _)| n);
                    let piece = match name.strip_prefix('$') {
                        Some("B" | "b") => Piece::SequenceB,
                        Some(_) => Piece::SequenceA,
                        None => Piece::Special(name.to_string()),
                    };
                    (format!("{f}[{i}]"), piece)
                })
                .collect(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, p) in a.iter().enumerate() {
                    let pf = format!("{f}[{i}]");
                    let p = object(&pf, p)?;
                    match p.iter().next() {
                        Some((k, v)) if p.len() == 1 && k == "SpecialToken" => {
                            let v = object(&format!("{pf}.SpecialToken"), v)?;
                            let id = string(&format!("{pf}.SpecialToken.id"), v.get("id").unwrap_or(&Value::Null))?;
                            out.push((pf, Piece::Special(id.to_string())));
                        }
                        Some((k, v)) if p.len() == 1 && k == "Sequence" => {
                            let id = v.get("id").and_then(Value::as_str);
                            out.push((pf, if id == Some("B") { Piece::SequenceB } else { Piece::SequenceA }));
                        }
                        _ => return fail(&pf, "should be {\"SpecialToken\": ...} or {\"Sequence\": ...}"),
                    }
                }
                out
            }
            Some(v) => return fail(&f, format!("should be an array or a string, not {}", kind(v))),
        };
        for (pf, piece) in pieces {
            match piece {
                Piece::Special(name) if !specials.contains_key(&name) => {
                    return fail(&pf, format!("names the special token {}, which {specials_field} does not define", quote(&name)));
                }
                // The crate indexes the second sequence of a single-sequence encoding.
                Piece::SequenceB if key == "single" => return fail(&pf, "is sequence B in the single-sequence template (only A exists there)"),
                _ => {}
            }
        }
    }
    Ok(())
}
