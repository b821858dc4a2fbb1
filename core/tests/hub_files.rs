//! Models as the hub serves them, through `ModelBundle::from_files`: safetensors (one file or
//! sharded) with a tokenizer.json, GGUF files with their own vocabulary, quantize-on-load, and
//! bad input (a tokenizer that does not fit the model, missing files, arbitrary bytes).

mod common;
use common::*;

use glassbox_core::weights::HostMatrix;
use glassbox_core::{CpuBackend, HookedTransformer, HostTensor, ModelBundle, QuantizeOnLoad, RunRequest};
use proptest::prelude::*;

fn file(dir: &str, name: &str) -> (String, Vec<u8>) {
    (name.to_string(), std::fs::read(repo_root().join("fixtures").join(dir).join(name)).unwrap())
}

/// A word-level tokenizer.json naming the fixture vocabulary t0..t{n-1} (the family fixtures
/// are random models with a placeholder vocabulary).
fn word_tokenizer(n: usize) -> (String, Vec<u8>) {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..n).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    ("tokenizer.json".to_string(), serde_json::to_vec(&json).unwrap())
}

fn logits(b: &ModelBundle, tokens: &[u32]) -> HostTensor {
    let m = HookedTransformer::new(&CpuBackend, b.cfg.clone(), &b.weights).unwrap();
    pollster::block_on(m.run(&CpuBackend, &RunRequest::new(tokens.to_vec()))).unwrap().logits
}

#[test]
fn safetensors_repo_one_file_and_sharded() {
    let f = family_fixture("llama-tiny");
    let one = ModelBundle::from_files(&[file("llama-tiny", "config.json"), file("llama-tiny", "model.safetensors"), word_tokenizer(128)], None).unwrap();
    let ids = one.tokenizer.encode("t1 t5 t9").unwrap();
    assert_eq!(ids, vec![1, 5, 9]);
    let reference = logits(&one, &f.tokens);
    let sharded_dir = "llama-tiny/bf16-sharded";
    let index = file(sharded_dir, "model.safetensors.index.json");
    let mut files = vec![file(sharded_dir, "config.json"), index.clone(), word_tokenizer(128)];
    for shard in glassbox_core::weights::shard_files(&index.1).unwrap() {
        files.push(file(sharded_dir, &shard));
    }
    let sharded = ModelBundle::from_files(&files, None).unwrap();
    let d = logits(&sharded, &f.tokens).max_abs_diff(&reference);
    assert!(d < 0.1, "bf16 shards predict like f32 ({d})");
    // A missing shard is named.
    files.pop();
    let e = ModelBundle::from_files(&files, None).unwrap_err().to_string();
    assert!(e.contains("shard") && e.contains("missing"), "{e}");
}

#[test]
fn quantize_on_load_keeps_blocks_and_predicts_like_f32() {
    let f = family_fixture("pythia-tiny");
    let files = [file("pythia-tiny", "config.json"), file("pythia-tiny", "model.safetensors"), word_tokenizer(128)];
    let dense = ModelBundle::from_files(&files, None).unwrap();
    let reference = logits(&dense, &f.tokens);
    let scale = reference.data.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (q, tol) in [(QuantizeOnLoad::Q8_0, 0.05), (QuantizeOnLoad::Q4_0, 0.4)] {
        let b = ModelBundle::from_files(&files, Some(q)).unwrap();
        assert!(matches!(b.weights.blocks[0].W_Q, HostMatrix::Quant(_)), "{q:?}: W_Q stays quantized");
        assert!(b.weights.n_bytes() < dense.weights.n_bytes() / 3, "{q:?}: smaller");
        let d = logits(&b, &f.tokens).max_abs_diff(&reference);
        eprintln!("pythia-tiny quantized on load to {q:?}: logits move by {d:.4} (largest logit {scale:.2})");
        assert!(d < tol * scale, "{q:?}: logits move by {d}");
        // The GPU keeps the blocks and agrees with the CPU's dequantized reference.
        let _g = gpu_lock();
        let gpu = gpu();
        let m = HookedTransformer::new(gpu, b.cfg.clone(), &b.weights).unwrap();
        let g = pollster::block_on(m.run(gpu, &RunRequest::new(f.tokens.clone()))).unwrap().logits;
        assert!(g.max_abs_diff(&logits(&b, &f.tokens)) < 1e-4 + 1e-4 * scale);
    }
}

#[test]
fn gguf_with_its_vocabulary() {
    let b = ModelBundle::from_files(&[file("qwen2-tiny", "model-q4_0.gguf")], None).unwrap();
    assert_eq!(b.cfg.family(), "Llama");
    assert_eq!(b.tokenizer.vocab_size(), 128);
    assert!(b.card["format"].as_str().unwrap().contains("Q4_0"), "{}", b.card);
}

#[test]
fn mismatched_or_missing_files_are_named_errors() {
    // The tokenizer fixture has 1000 tokens; the model's embedding 128 rows.
    let big = ("tokenizer.json".to_string(), std::fs::read(repo_root().join("fixtures/tokenizers/gpt2-bpe/tokenizer.json")).unwrap());
    let e = ModelBundle::from_files(&[file("llama-tiny", "config.json"), file("llama-tiny", "model.safetensors"), big], None).unwrap_err().to_string();
    assert!(e.contains("1000") && e.contains("128"), "{e}");
    let e = ModelBundle::from_files(&[file("llama-tiny", "config.json"), file("llama-tiny", "model.safetensors")], None).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json"), "{e}");
    let e = ModelBundle::from_files(&[file("llama-tiny", "model.safetensors")], None).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    // Truncated safetensors.
    let (n, st) = file("llama-tiny", "model.safetensors");
    let e = ModelBundle::from_files(&[file("llama-tiny", "config.json"), (n, st[..st.len() / 2].to_vec()), word_tokenizer(128)], None).unwrap_err().to_string();
    assert!(e.contains("safetensors"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a safetensors file or a GGUF file: an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = glassbox_core::weights::read_safetensors(&bytes);
        let _ = glassbox_core::gguf_model::GgufModel::from_bytes(&bytes);
        let _ = ModelBundle::from_files(&[("config.json".into(), bytes.clone()), ("model.safetensors".into(), bytes.clone()), ("tokenizer.json".into(), bytes)], None);
    }

    /// A real safetensors file with header bytes (the first 8 + JSON) changed: no panic, and no
    /// allocation driven by a corrupted length (the parser checks every offset against the file).
    #[test]
    fn corrupted_safetensors_headers_never_panic(at in 0usize..400, value in any::<u8>()) {
        let (_, mut st) = file("llama-tiny", "model.safetensors");
        let at = at.min(st.len() - 1);
        st[at] = value;
        let _ = glassbox_core::weights::read_safetensors(&st);
    }

    /// A real GGUF model file with one metadata or tensor-info byte changed.
    #[test]
    fn corrupted_gguf_models_never_panic(at in 0usize..3000, value in any::<u8>()) {
        let (_, mut g) = file("llama-tiny", "model-q8_0.gguf");
        let at = at.min(g.len() - 1);
        g[at] = value;
        let _ = glassbox_core::gguf_model::GgufModel::from_bytes(&g);
    }
}
