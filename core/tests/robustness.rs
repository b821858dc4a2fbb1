//! Files that crashed the loaders under mutation fuzzing (`fixtures/robustness/`, each with the
//! panic it caused in `panic.txt`): every one now loads to an error that names the file and the
//! field, with no panic contained on the way (a contained panic would have been a trap in the
//! browser, where nothing catches it).

use std::path::PathBuf;

use glassbox_core::hf_tokenizer::{contained_panics, HfTokenizer};
use glassbox_core::{ModelBundle, QuantizeOnLoad};

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/robustness").join(name)
}

fn read(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(dir(name).join(file)).unwrap_or_else(|e| panic!("{name}/{file}: {e}"))
}

/// Loads `name`'s tokenizer.json and returns the error message; fails if it loads, or if the
/// `tokenizers` crate panicked on the way (even contained).
fn tokenizer_error(name: &str) -> String {
    let before = contained_panics();
    let result = HfTokenizer::from_json(&read(name, "tokenizer.json"));
    let msg = match result {
        Ok(_) => panic!("{name}: the tokenizer loaded"),
        Err(e) => e.to_string(),
    };
    // Tests run in parallel threads: only an increase while nothing else loads tokenizers is
    // certain, so this file's tests load one at a time (see `serial`).
    assert_eq!(contained_panics(), before, "{name}: the tokenizers crate panicked (contained): {msg}");
    msg
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn expect(name: &str, needles: &[&str]) {
    let _guard = serial();
    let msg = tokenizer_error(name);
    assert!(msg.contains("tokenizer.json"), "{name}: the message does not name the file: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{name}: expected {n:?} in: {msg}");
    }
    assert!(msg.len() < 400, "{name}: the message is {} bytes long: {msg}", msg.len());
}

#[test]
fn bpe_merges_shorter_than_the_subword_prefix() {
    // "range end index 18446744073709551610 out of range" / "slice index starts at 4 but ends
    // at 1" in models/bpe/model.rs:267: a continuing_subword_prefix longer than a merge's half.
    for name in ["tokenizer-1-1116-0", "tokenizer-1-1420-1", "tokenizer-7-1196-2", "tokenizer-7-601-1"] {
        expect(name, &["model.merges[0]", "continuing_subword_prefix"]);
    }
}

#[test]
fn truncation_stride_not_below_max_length() {
    // "`stride` must be strictly less than `max_len`" in tokenizer/encoding.rs:319.
    expect("tokenizer-1-1998-2", &["truncation.stride", "(5)", "truncation.max_length (2)"]);
    expect("tokenizer-7-5434-4", &["truncation.stride", "truncation.max_length (1)"]);
}

#[test]
fn precompiled_normalizer_is_refused_by_name() {
    // "Precompiled: missing field `precompiled_charsmap`" (an `expect`) in normalizers/mod.rs.
    expect("tokenizer-7-58-0", &["normalizer.type", "\"Precompiled\"", "not a normalizer glassbox supports"]);
}

#[test]
fn template_naming_an_undefined_special_token() {
    // "no entry found for key" in processors/template.rs:563.
    expect("tokenizer-1-2381-3", &["post_processor.single[0]", "\"<s>\"", "does not define"]);
    expect("tokenizer-7-1838-3", &["post_processor.single[0]", "\"<s>\"", "does not define"]);
}

#[test]
fn padding_that_asks_for_a_terabyte() {
    // pad_to_multiple_of 2^40: the crate would allocate what the file says.
    expect("tokenizer-huge-padding", &["padding.pad_to_multiple_of", "1099511627776", "at most"]);
}

#[test]
fn safetensors_bundle_with_a_precompiled_tokenizer() {
    let _guard = serial();
    let name = "safetensors-7-6144-0";
    let files: Vec<(String, Vec<u8>)> = ["config.json", "model.safetensors", "tokenizer.json"].iter().map(|f| (f.to_string(), read(name, f))).collect();
    let before = contained_panics();
    let q: QuantizeOnLoad = "q8_0".parse().unwrap();
    let err = ModelBundle::from_files(&files, Some(q)).expect_err("the bundle loaded").to_string();
    assert_eq!(contained_panics(), before, "the tokenizers crate panicked (contained): {err}");
    assert!(err.contains("tokenizer.json") && err.contains("normalizer") && err.contains("Precompiled"), "{err}");
}

#[test]
fn every_reproduction_is_covered() {
    // A new reproduction added to fixtures/robustness/ must be named by a test above.
    let covered = [
        "safetensors-7-6144-0",
        "tokenizer-1-1116-0",
        "tokenizer-1-1420-1",
        "tokenizer-1-1998-2",
        "tokenizer-1-2381-3",
        "tokenizer-7-1196-2",
        "tokenizer-7-1838-3",
        "tokenizer-7-5434-4",
        "tokenizer-7-58-0",
        "tokenizer-7-601-1",
        "tokenizer-huge-padding",
    ];
    let mut found: Vec<String> = std::fs::read_dir(dir("")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    found.retain(|n| n != "README.md" && !n.starts_with("fuzz-"));
    found.sort();
    assert_eq!(found, covered);
}

#[test]
fn valid_tokenizers_still_load_with_truncation_and_padding_dropped() {
    let _guard = serial();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tokenizers/gpt2-bpe/tokenizer.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let plain = HfTokenizer::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    v["truncation"] = serde_json::json!({"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0});
    v["padding"] =
        serde_json::json!({"direction": "Right", "pad_id": 0, "pad_to_multiple_of": 64, "pad_token": "<pad>", "pad_type_id": 0, "strategy": "BatchLongest"});
    let t = HfTokenizer::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    let text = "The quick brown fox jumps over the lazy dog, again and again.";
    assert_eq!(t.encode(text).unwrap(), plain.encode(text).unwrap());
    assert!(t.encode(text).unwrap().len() > 3, "the prompt was cut by the file's truncation");
}

fn set(file: &mut glassbox_core::gguf::GgufFile, key: &str, value: glassbox_core::gguf::MetaValue) {
    match file.metadata.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => file.metadata.push((key.to_string(), value)),
    }
}

#[test]
fn a_gguf_vocabulary_with_a_giant_token_loads_in_linear_time() {
    use glassbox_core::gguf::{MetaArray, MetaValue};
    // The issue measured 18.5 s for one 200,000-character token (merges generated by hashing
    // every prefix and suffix); the tries make it one pass over the token.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tokenizers/llama-spm.gguf");
    let mut file = glassbox_core::gguf::parse(&std::fs::read(path).unwrap()).unwrap();
    let MetaValue::Array(MetaArray::String(mut tokens)) = file.get("tokenizer.ggml.tokens").unwrap().clone() else { panic!("tokens") };
    let MetaValue::Array(MetaArray::F32(mut scores)) = file.get("tokenizer.ggml.scores").unwrap().clone() else { panic!("scores") };
    let MetaValue::Array(MetaArray::I32(mut types)) = file.get("tokenizer.ggml.token_type").unwrap().clone() else { panic!("types") };
    let plain = HfTokenizer::from_gguf(&file).unwrap();
    for giant in ["a".repeat(200_000), "\u{4e2d}".repeat(70_000)] {
        tokens.push(giant);
        scores.push(-1e6);
        types.push(1);
    }
    set(&mut file, "tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(tokens)));
    set(&mut file, "tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(scores)));
    set(&mut file, "tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(types)));
    let t0 = std::time::Instant::now();
    let t = HfTokenizer::from_gguf(&file).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    // Quadratic, this was about 18 s for the first token alone; linear, well under a second each.
    assert!(secs < 5.0, "loading took {secs:.1} s");
    // The giant tokens do not change how ordinary text is cut.
    let text = "The quick brown fox, caf\u{e9}.";
    assert_eq!(t.encode(text).unwrap(), plain.encode(text).unwrap());
}

#[test]
fn unknown_characters_are_reported_in_linear_time_with_a_capped_message() {
    // The issue: 100,000 distinct characters the vocabulary lacks took 16.6 s and printed a
    // 775,480-character message.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/models/induction-2l");
    let vocab = glassbox_core::tokenizer::VocabTokenizer::from_json(&std::fs::read_to_string(dir.join("vocab.json")).unwrap()).unwrap();
    let text: String = (0..100_000u32).filter_map(|i| char::from_u32(0x4e00 + i)).collect();
    let t0 = std::time::Instant::now();
    let msg = vocab.encode(&text).unwrap_err().to_string();
    let secs = t0.elapsed().as_secs_f64();
    assert!(secs < 2.0, "took {secs:.1} s");
    assert!(msg.len() < 1000, "the message is {} bytes", msg.len());
    assert!(msg.contains("not in the vocabulary") && msg.contains("more"), "{msg}");
}

#[test]
fn single_template_naming_sequence_b() {
    // Found by the long fuzz run: "index out of bounds: the len is 1 but the index is 1" in
    // processors/template.rs:556 (a single-sequence template with a `$B` piece).
    expect("fuzz-tokenizer-20261201-802545", &["post_processor.single[3]", "sequence B"]);
}
