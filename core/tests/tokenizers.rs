//! HfTokenizer against the Python `tokenizers` package, on the fixtures written by
//! python/make_tokenizer_fixtures.py (fixtures/tokenizers/): the ids of every test text from
//! each tokenizer.json (`from_json`) and from the GGUF file carrying the same vocabulary
//! (`from_gguf`) must equal the ids Python gives for the tokenizer.json, in expected.json.

use std::path::PathBuf;

use glassbox_core::gguf::{self, GgufFile, MetaArray, MetaValue};
use glassbox_core::HfTokenizer;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tokenizers")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("fixtures/tokenizers/{name}: {e} (run python/make_tokenizer_fixtures.py)"))
}

fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).expect("expected.json parses")
}

fn texts(e: &Value) -> Vec<String> {
    e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

const NAMES: [&str; 2] = ["gpt2-bpe", "llama-spm"];

fn from_json(name: &str) -> HfTokenizer {
    let e = expected();
    HfTokenizer::from_json(&read(e["tokenizers"][name]["tokenizer_json"].as_str().unwrap())).unwrap()
}

fn gguf_file(name: &str) -> GgufFile {
    let e = expected();
    let file = e["tokenizers"][name]["gguf"].as_str().unwrap().to_string();
    gguf::parse(&read(&file)).unwrap()
}

fn from_gguf(name: &str) -> HfTokenizer {
    HfTokenizer::from_gguf(&gguf_file(name)).unwrap()
}

/// Compares the ids of every text; returns how many ids were compared. A mismatch reports the
/// text, the first differing position and the tokens there.
fn compare_ids(tok: &HfTokenizer, name: &str, source: &str) -> usize {
    let e = expected();
    let t = &e["tokenizers"][name];
    let mut n = 0;
    let mut failures = Vec::new();
    for (i, text) in texts(&e).iter().enumerate() {
        let want = ids_of(&t["ids"][i]);
        let got = tok.encode(text).unwrap();
        n += want.len();
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
            let show =
                |ids: &[u32]| ids.iter().skip(at.saturating_sub(2)).take(6).map(|&id| format!("{id}:{:?}", tok.token_str(id))).collect::<Vec<_>>().join(" ");
            failures.push(format!(
                "text {i} ({:?}...): {} ids, Python {}; first difference at {at}: ours [{}], Python [{}]",
                text.chars().take(30).collect::<String>(),
                got.len(),
                want.len(),
                show(&got),
                show(&want)
            ));
        }
    }
    assert!(failures.is_empty(), "{name} {source}: ids differ from Python's on {} texts:\n{}", failures.len(), failures.join("\n"));
    println!("{name} {source}: {n} ids over {} texts equal Python's", texts(&e).len());
    n
}

#[test]
fn ids_from_tokenizer_json_equal_python() {
    let total: usize = NAMES.iter().map(|n| compare_ids(&from_json(n), n, "tokenizer.json")).sum();
    assert!(total > 1000, "only {total} ids compared");
}

#[test]
fn ids_from_gguf_equal_python_on_the_tokenizer_json() {
    let total: usize = NAMES.iter().map(|n| compare_ids(&from_gguf(n), n, "GGUF")).sum();
    assert!(total > 1000, "only {total} ids compared");
}

#[test]
fn vocab_size_and_bos() {
    let e = expected();
    let texts = texts(&e);
    let empty = texts.iter().position(String::is_empty).expect("the texts include the empty string");
    for name in NAMES {
        let t = &e["tokenizers"][name];
        let size = t["vocab_size"].as_u64().unwrap() as usize;
        // What Python adds to the empty string is the BOS (nothing for GPT-2).
        let bos = ids_of(&t["ids"][empty]).first().copied();
        for (source, tok) in [("json", from_json(name)), ("gguf", from_gguf(name))] {
            assert_eq!(tok.vocab_size(), size, "{name} {source} vocab_size");
            assert_eq!(tok.bos, bos, "{name} {source} bos");
        }
    }
    // The GGUF's eos id is read from its metadata.
    let g = gguf_file("llama-spm");
    assert_eq!(from_gguf("llama-spm").eos, Some(g.get_u32("tokenizer.ggml.eos_token_id").unwrap()));
}

#[test]
fn decode_equals_python() {
    let e = expected();
    for name in NAMES {
        let t = &e["tokenizers"][name];
        for (source, tok) in [("json", from_json(name)), ("gguf", from_gguf(name))] {
            for (i, want) in t["decoded_texts"].as_array().unwrap().iter().enumerate() {
                let got = tok.decode(&ids_of(&t["ids"][i])).unwrap();
                assert_eq!(got, want.as_str().unwrap(), "{name} {source} decode of text {i}");
            }
        }
    }
}

#[test]
fn spans_cover_the_text() {
    let e = expected();
    for name in NAMES {
        for (source, tok) in [("json", from_json(name)), ("gguf", from_gguf(name))] {
            for text in texts(&e) {
                let spans = tok.encode_with_spans(&text).unwrap();
                let ids: Vec<u32> = spans.iter().map(|(id, _)| *id).collect();
                assert_eq!(ids, tok.encode(&text).unwrap());
                let mut covered = vec![false; text.len()];
                let mut last_start = 0;
                for (id, span) in &spans {
                    assert!(
                        span.end <= text.len() && text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
                        "{name} {source}: span {span:?} of {id}"
                    );
                    assert!(span.start >= last_start, "{name} {source}: spans go backwards at {span:?} in {text:?}");
                    last_start = span.start;
                    if span.is_empty() {
                        assert_eq!(Some(*id), tok.bos.or(tok.eos), "{name} {source}: empty span for a non-special token {id} in {text:?}");
                    }
                    covered[span.clone()].iter_mut().for_each(|c| *c = true);
                }
                if let Some(gap) = covered.iter().position(|c| !c) {
                    panic!("{name} {source}: byte {gap} of {text:?} is in no span: {spans:?}");
                }
            }
        }
    }
    // A BOS gets an empty span at 0, and the words their own bytes.
    let tok = from_json("llama-spm");
    let spans = tok.encode_with_spans("Hello world").unwrap();
    assert_eq!(spans[0], (tok.bos.unwrap(), 0..0));
    assert_eq!(spans.last().unwrap().1.end, "Hello world".len());
}

#[test]
fn token_str_is_readable() {
    let e = expected();
    for (source, tok) in [("json", from_json("gpt2-bpe")), ("gguf", from_gguf("gpt2-bpe"))] {
        assert_eq!(tok.token_str(tok.token_to_id("Ġthe").unwrap()), " the", "{source}");
        assert_eq!(tok.token_str(tok.token_to_id("Ċ").unwrap()), "\n", "{source}");
        assert_eq!(tok.token_str(tok.token_to_id("<|endoftext|>").unwrap()), "<|endoftext|>", "{source}");
        // Every shown id reads as Python decodes it alone (byte-level decoding keeps spaces).
        for (id, decoded) in e["tokenizers"]["gpt2-bpe"]["decoded"].as_object().unwrap() {
            assert_eq!(tok.token_str(id.parse().unwrap()), decoded.as_str().unwrap(), "{source} id {id}");
        }
    }
    for (source, tok) in [("json", from_json("llama-spm")), ("gguf", from_gguf("llama-spm"))] {
        assert_eq!(tok.token_str(tok.token_to_id("▁the").unwrap()), " the", "{source}");
        assert_eq!(tok.token_str(tok.token_to_id("<0x0A>").unwrap()), "\n", "{source}");
        assert_eq!(tok.token_str(tok.token_to_id("<0xE4>").unwrap()), "<0xE4>", "{source}");
        assert_eq!(tok.token_str(tok.bos.unwrap()), "<s>", "{source}");
        // Python's decoder strips the one leading space a lone "▁x" has; otherwise the same.
        for (id, token) in e["tokenizers"]["llama-spm"]["tokens"].as_object().unwrap() {
            let (id, token) = (id.parse::<u32>().unwrap(), token.as_str().unwrap());
            let decoded = e["tokenizers"]["llama-spm"]["decoded"][id.to_string()].as_str().unwrap();
            let want = if token.starts_with('▁') { format!(" {decoded}") } else { decoded.to_string() };
            if !want.contains('\u{FFFD}') {
                assert_eq!(tok.token_str(id), want, "{source} id {id} ({token})");
            }
        }
    }
    let tok = from_json("gpt2-bpe");
    let past = tok.vocab_size() as u32 + 7;
    assert!(tok.token_str(past).contains("not in the vocabulary"));
    assert!(tok.token_str(u32::MAX).contains("not in the vocabulary"));
    assert!(tok.decode(&[past]).unwrap_err().to_string().contains("past the vocabulary"));
}

fn err_of(r: glassbox_core::Result<HfTokenizer>) -> String {
    r.map(|_| ()).expect_err("expected an error").to_string()
}

#[test]
fn bad_tokenizer_json_is_a_clear_error() {
    let bytes = read("gpt2-bpe/tokenizer.json");
    let m = err_of(HfTokenizer::from_json(&bytes[..bytes.len() / 2]));
    assert!(m.contains("tokenizer") && m.contains("not valid JSON"), "{m}");
    let m = err_of(HfTokenizer::from_json(b""));
    assert!(m.contains("not valid JSON"), "{m}");
    let m = err_of(HfTokenizer::from_json(&read("gpt2-bpe.gguf")));
    assert!(m.contains("not valid JSON"), "{m}");
    let m = err_of(HfTokenizer::from_json(b"[1, 2]"));
    assert!(m.contains("not a JSON object"), "{m}");
    let m = err_of(HfTokenizer::from_json(b"{\"version\": \"1.0\"}"));
    assert!(m.contains("no \"model\""), "{m}");

    // A merge naming tokens that are not in the vocabulary.
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["model"]["merges"].as_array_mut().unwrap().push(serde_json::json!(["zzqq", "xxyy"]));
    let m = err_of(HfTokenizer::from_json(&serde_json::to_vec(&v).unwrap()));
    assert!(m.contains("zzqq") || m.contains("xxyy"), "{m}");

    // An empty vocabulary.
    let empty = br#"{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
        "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,
        "fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{},"merges":[]}}"#;
    let m = err_of(HfTokenizer::from_json(empty));
    assert!(m.contains("empty vocabulary"), "{m}");

    // A model type the library does not know.
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["model"]["type"] = "Magic".into();
    let m = err_of(HfTokenizer::from_json(&serde_json::to_vec(&v).unwrap()));
    assert!(m.starts_with("tokenizer: tokenizer.json"), "{m}");
}

fn set(file: &mut GgufFile, key: &str, value: MetaValue) {
    match file.metadata.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => file.metadata.push((key.to_string(), value)),
    }
}

fn remove(file: &mut GgufFile, key: &str) {
    file.metadata.retain(|(k, _)| k != key);
}

#[test]
fn bad_gguf_is_a_clear_error() {
    // The fixture file whose tokenizer.ggml.model is "bert".
    let bert = gguf::parse(&read("bert.gguf")).unwrap();
    let m = err_of(HfTokenizer::from_gguf(&bert));
    assert!(m.contains("'bert'") && m.contains("not supported"), "{m}");

    let gpt2 = gguf_file("gpt2-bpe");
    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.model", MetaValue::String("wordpiece".into()));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("'wordpiece'"));

    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.pre", MetaValue::String("llama-bpe".into()));
    let m = err_of(HfTokenizer::from_gguf(&g));
    assert!(m.contains("'llama-bpe'") && m.contains("not supported"), "{m}");

    let mut g = gpt2.clone();
    let MetaValue::Array(MetaArray::String(mut merges)) = g.get("tokenizer.ggml.merges").unwrap().clone() else { panic!("merges") };
    merges.push("zzqq xxyy".into());
    set(&mut g, "tokenizer.ggml.merges", MetaValue::Array(MetaArray::String(merges.clone())));
    let m = err_of(HfTokenizer::from_gguf(&g));
    assert!(m.contains("merges") && (m.contains("zzqq") || m.contains("xxyy")), "{m}");
    merges.pop();
    merges.push("nospace".into());
    set(&mut g, "tokenizer.ggml.merges", MetaValue::Array(MetaArray::String(merges)));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("\"nospace\""));

    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(vec![])));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("empty"));

    let mut g = gpt2.clone();
    remove(&mut g, "tokenizer.ggml.tokens");
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("tokenizer.ggml.tokens"));

    let mut g = gpt2.clone();
    remove(&mut g, "tokenizer.ggml.model");
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("tokenizer.ggml.model"));

    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.bos_token_id", MetaValue::U32(1_000_000));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("bos_token_id is 1000000"));

    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(vec![1, 1])));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("token_type has 2 entries"));

    let mut g = gpt2.clone();
    set(&mut g, "tokenizer.ggml.tokens", MetaValue::String("not an array".into()));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("tokenizer.ggml.tokens"));

    let llama = gguf_file("llama-spm");
    let mut g = llama.clone();
    remove(&mut g, "tokenizer.ggml.scores");
    let m = err_of(HfTokenizer::from_gguf(&g));
    assert!(m.contains("tokenizer.ggml.scores"), "{m}");
    let mut g = llama.clone();
    set(&mut g, "tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(vec![0.0; 3])));
    assert!(err_of(HfTokenizer::from_gguf(&g)).contains("scores has 3 entries"));
}

#[test]
fn gguf_flags_change_what_is_added() {
    // add_bos_token false: no BOS; add_eos_token true: EOS last.
    let mut g = gguf_file("llama-spm");
    set(&mut g, "tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
    set(&mut g, "tokenizer.ggml.add_eos_token", MetaValue::Bool(true));
    let tok = HfTokenizer::from_gguf(&g).unwrap();
    let with_bos = from_gguf("llama-spm").encode("Hello world").unwrap();
    let ids = tok.encode("Hello world").unwrap();
    assert_eq!(tok.bos, None);
    assert_eq!(&ids[..ids.len() - 1], &with_bos[1..]);
    assert_eq!(ids.last().copied(), tok.eos);
    // gpt2 with add_bos_token: the BOS id first.
    let mut g = gguf_file("gpt2-bpe");
    set(&mut g, "tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
    let tok = HfTokenizer::from_gguf(&g).unwrap();
    let bos = g.get_u32("tokenizer.ggml.bos_token_id").unwrap();
    assert_eq!(tok.bos, Some(bos));
    assert_eq!(tok.encode("Hello world").unwrap()[1..], from_gguf("gpt2-bpe").encode("Hello world").unwrap()[..]);
    assert_eq!(tok.encode("").unwrap(), vec![bos]);
}

#[test]
fn odd_text_does_not_panic() {
    let odd = ["\0", "\u{FFFD}\u{FEFF}", "\u{10FFFF}", "a\u{0301}\u{0301}\u{0301}", "<|endoftext", "<0x0A>", "▁▁▁", &"🏳️‍🌈".repeat(200), &" ".repeat(5000)];
    for name in NAMES {
        for tok in [from_json(name), from_gguf(name)] {
            for text in odd {
                let ids = tok.encode(text).unwrap();
                assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
                assert_eq!(tok.decode(&ids).map(|_| ()).ok(), Some(()));
            }
        }
    }
}
