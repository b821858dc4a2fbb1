//! Loading the same tokenizer again and again leaves nothing behind (its own process, so that
//! the allocator's live count is this test's alone). tokenizers 0.23 keeps BPE words in a
//! thread-local cache keyed by model instance and never drops a dropped model's entries; the
//! fuzzer's memory cap found it (about 4 kB per GGUF model loaded). HfTokenizer turns that cache
//! off.

use std::path::PathBuf;

use glassbox_core::hf_tokenizer::HfTokenizer;
use glassbox_fuzz::alloc;

#[global_allocator]
static ALLOC: alloc::Capped = alloc::Capped;

#[test]
fn loading_tokenizers_repeatedly_keeps_memory_flat() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let json = std::fs::read(root.join("fixtures/tokenizers/llama-spm/tokenizer.json")).unwrap();
    let gguf = glassbox_core::gguf::parse(&std::fs::read(root.join("fixtures/tokenizers/gpt2-bpe.gguf")).unwrap()).unwrap();
    let text = "The quick brown fox jumps over the lazy dog; caf\u{e9}, \u{4e2d}\u{6587}, 12345 and again and again.";
    let round = |n: usize| {
        for _ in 0..n {
            let a = HfTokenizer::from_json(&json).unwrap();
            let b = HfTokenizer::from_gguf(&gguf).unwrap();
            assert!(!a.encode(text).unwrap().is_empty() && !b.encode(text).unwrap().is_empty());
        }
    };
    round(20); // warm-up: one-time statics (regexes, tables)
    let before = alloc::live_bytes();
    round(300);
    let grown = alloc::live_bytes() as i64 - before as i64;
    // With the crate's cache on, each pair of loads left about 10 kB behind (3 MB here).
    assert!(grown < 256 * 1024, "600 tokenizer loads left {grown} bytes allocated");
}
