//! Structure-aware mutation fuzzing of every loader a reader's file reaches, on stable Rust.
//!
//! No cargo-fuzz, no nightly: each target takes the committed fixtures and shipped models as
//! seeds, mutates them the way a hostile file would differ (JSON nodes replaced, removed,
//! renamed, spliced and wrapped; numbers pushed to boundaries; safetensors headers rewritten with
//! their length; GGUF headers with lengths and counts overwritten; bit flips, truncation, huge
//! values) and runs the loader, then what the page does with a loaded model (encode, decode,
//! build the model, one forward pass on the CPU). A finding is any panic: one that escapes, and
//! one that [`glassbox_core::hf_tokenizer`] contained natively (in the browser it would have
//! been a trap). Every input is derived from (seed, target, index) alone, so a finding is
//! replayed with `--only`.
//!
//! Targets: `gguf`, `safetensors` (+ index and shards, with quantize-on-load), `config`
//! (config.json), `tokenizer` (tokenizer.json), `vocab` (vocab.json), `experiment` (the
//! versioned experiment JSON a share link carries) and `link` (a share link's URL fragment,
//! `glassbox_core::share::parse_fragment`: the committed `fixtures/links/v1/` links and encoded
//! experiments as seeds; byte flips, truncations, base64 character swaps, mutated DEFLATE
//! streams, parameters and prefixes, and mutated JSON encoded again so that mutations reach
//! the JSON decoder and the limits).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use base64::Engine as _;
use glassbox_core::hf_tokenizer::HfTokenizer;
use glassbox_core::share::{fragment, parse_fragment, Widget};
use glassbox_core::tokenizer::VocabTokenizer;
use glassbox_core::{CacheSpec, Config, CpuBackend, Experiment, HookedTransformer, ModelBundle, ModelRef, QuantizeOnLoad, RunRequest};
use serde_json::{json, Map, Value};

pub mod alloc;

/// A file set: what one input to a target is (one file for most targets).
pub type Files = Vec<(String, Vec<u8>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Gguf,
    Safetensors,
    Config,
    Tokenizer,
    Vocab,
    Experiment,
    Link,
}

impl Target {
    pub const ALL: [Target; 7] = [Target::Gguf, Target::Safetensors, Target::Config, Target::Tokenizer, Target::Vocab, Target::Experiment, Target::Link];

    pub fn name(self) -> &'static str {
        match self {
            Target::Gguf => "gguf",
            Target::Safetensors => "safetensors",
            Target::Config => "config",
            Target::Tokenizer => "tokenizer",
            Target::Vocab => "vocab",
            Target::Experiment => "experiment",
            Target::Link => "link",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// The campaign's generator: the core's SplitMix64 (`glassbox_core::tasks::Rng`, the same on
/// every platform), with the draws the mutators need.
#[derive(Clone)]
pub struct Rng(glassbox_core::tasks::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(glassbox_core::tasks::Rng::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The generator of input `index` of `target` in the campaign seeded `seed`.
pub fn input_rng(seed: u64, target: Target, index: u64) -> Rng {
    let mut r = Rng::new(seed ^ (target as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407) ^ index.wrapping_mul(0x9FB2_1C65_1E98_DF25));
    r.next_u64();
    r
}

/// One seed: files, and for safetensors bundles the quantize-on-load option.
#[derive(Clone, Debug)]
pub struct Seed {
    pub name: String,
    pub files: Files,
    pub quantize: Option<QuantizeOnLoad>,
    /// A file that loads (most inputs start from one); the others are earlier findings.
    pub primary: bool,
}

/// A seed with its JSON files parsed once (mutating a parsed tree is much cheaper than parsing
/// the file again for every input).
#[derive(Clone, Debug)]
pub struct Prepared {
    pub seed: Seed,
    /// For each file, its JSON tree when it is a JSON file.
    pub json: Vec<Option<std::sync::Arc<Value>>>,
}

/// Parses the JSON files of `seeds`.
pub fn prepare(seeds: Vec<Seed>) -> Vec<Prepared> {
    seeds
        .into_iter()
        .map(|seed| {
            let json =
                seed.files.iter().map(|(n, b)| if n.ends_with(".json") { serde_json::from_slice(b).ok().map(std::sync::Arc::new) } else { None }).collect();
            Prepared { seed, json }
        })
        .collect()
}

/// The seeds of every target, read from the repository (fixtures, shipped models, e2e hub).
pub fn seeds(root: &Path, target: Target) -> Vec<Seed> {
    let read = |p: &str| std::fs::read(root.join(p)).ok();
    let one = |p: &str, name: &str| read(p).map(|b| Seed { name: p.to_string(), files: vec![(name.to_string(), b)], quantize: None, primary: true });
    let mut out: Vec<Seed> = Vec::new();
    let models = ["induction-2l", "modular-addition", "balanced-parens", "english-char-3l"];
    let families = ["gpt2-tiny", "llama-tiny", "qwen2-tiny", "pythia-tiny"];
    match target {
        Target::Gguf => {
            for f in families {
                for q in ["q8_0", "q4_0", "q4_k", "f16"] {
                    out.extend(one(&format!("fixtures/{f}/model-{q}.gguf"), "model.gguf"));
                }
            }
            for t in ["gpt2-bpe", "llama-spm", "bert"] {
                out.extend(one(&format!("fixtures/tokenizers/{t}.gguf"), "model.gguf"));
            }
            out.extend(one("e2e/hub/glassbox-test/tiny-gpt2-gguf/model-q8_0.gguf", "model.gguf"));
        }
        Target::Safetensors => {
            // A word-level tokenizer.json over t0..t127 for the family fixtures (random
            // models with a placeholder vocabulary), as core/tests/hub_files.rs builds it.
            let vocab: Map<String, Value> = (0..128).map(|i| (format!("t{i}"), json!(i))).collect();
            let word = serde_json::to_vec(&json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
                "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
                "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
            }))
            .unwrap_or_default();
            for f in ["llama-tiny", "qwen2-tiny", "pythia-tiny", "gpt2-tiny"] {
                if let (Some(c), Some(m)) = (read(&format!("fixtures/{f}/config.json")), read(&format!("fixtures/{f}/model.safetensors"))) {
                    let files = vec![("config.json".into(), c), ("model.safetensors".into(), m), ("tokenizer.json".into(), word.clone())];
                    out.push(Seed { name: format!("fixtures/{f}"), files, quantize: None, primary: true });
                }
            }
            let dir = "fixtures/llama-tiny/bf16-sharded";
            if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
                let mut files: Files = entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
                    .collect();
                files.sort();
                files.push(("tokenizer.json".into(), word.clone()));
                out.push(Seed { name: dir.into(), files, quantize: None, primary: true });
            }
            let hub = "e2e/hub/glassbox-test/tiny-llama";
            let files: Option<Files> =
                ["config.json", "model.safetensors", "tokenizer.json"].iter().map(|f| Some((f.to_string(), read(&format!("{hub}/{f}"))?))).collect();
            out.extend(files.map(|files| Seed { name: hub.into(), files, quantize: None, primary: true }));
            for m in models {
                let files: Option<Files> = ["config.json", "model.safetensors", "vocab.json", "card.json"]
                    .iter()
                    .map(|f| Some((f.to_string(), read(&format!("public/models/{m}/{f}"))?)))
                    .collect();
                out.extend(files.map(|files| Seed { name: format!("public/models/{m}"), files, quantize: None, primary: true }));
            }
        }
        Target::Config => {
            for f in families.iter().chain(["attn-only-tiny"].iter()) {
                out.extend(one(&format!("fixtures/{f}/config.json"), "config.json"));
            }
            for m in models {
                out.extend(one(&format!("public/models/{m}/config.json"), "config.json"));
            }
        }
        Target::Tokenizer => {
            for p in [
                "fixtures/tokenizers/gpt2-bpe/tokenizer.json",
                "fixtures/tokenizers/llama-spm/tokenizer.json",
                "e2e/hub/glassbox-test/tiny-llama/tokenizer.json",
            ] {
                out.extend(one(p, "tokenizer.json"));
            }
            // The reproductions are seeds too: their neighbourhoods are where the crate breaks.
            if let Ok(entries) = std::fs::read_dir(root.join("fixtures/robustness")) {
                let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
                dirs.sort();
                for d in dirs {
                    if let Ok(b) = std::fs::read(d.join("tokenizer.json")) {
                        let name = d.strip_prefix(root).unwrap_or(&d).display().to_string();
                        out.push(Seed { name, files: vec![("tokenizer.json".into(), b)], quantize: None, primary: false });
                    }
                }
            }
        }
        Target::Vocab => {
            for m in models {
                out.extend(one(&format!("public/models/{m}/vocab.json"), "vocab.json"));
            }
        }
        Target::Experiment => {
            let mut a = Experiment::new(ModelRef::shipped("induction-2l"), "xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ");
            let b = Experiment::new(ModelRef::shipped("modular-addition"), "3 + 4 =");
            let mut v: Value = serde_json::from_str(&a.to_json()).unwrap_or(Value::Null);
            out.push(Seed {
                name: "experiment induction".into(),
                files: vec![("experiment.json".into(), a.to_json().into_bytes())],
                quantize: None,
                primary: true,
            });
            out.push(Seed {
                name: "experiment modular".into(),
                files: vec![("experiment.json".into(), b.to_json().into_bytes())],
                quantize: None,
                primary: true,
            });
            // With a corrupted prompt and interventions of every op.
            v["corrupted"] = json!("xQ7bLm2Rk9pZ vT3nW8cY aaaaaaaaaaaa");
            v["interventions"] = json!([
                {"hook": "blocks.0.attn.hook_pattern", "layer": 0, "head": 1, "pos": 3, "neuron": null, "op": "zero"},
                {"hook": "blocks.1.hook_resid_post", "layer": 1, "head": null, "pos": null, "neuron": 2, "op": {"scale": 2.0}},
                {"hook": "blocks.1.hook_resid_pre", "layer": 1, "head": null, "pos": 2, "neuron": null, "op": {"patch_from": "clean"}}
            ]);
            if let Ok(e) = serde_json::from_value::<Experiment>(v.clone()) {
                a = e;
            }
            out.push(Seed {
                name: "experiment interventions".into(),
                files: vec![("experiment.json".into(), a.to_json().into_bytes())],
                quantize: None,
                primary: true,
            });
        }
        Target::Link => {
            // The committed links (each with its experiment's JSON), then the experiment
            // target's seeds as links, with parameters.
            let dir = root.join("fixtures/links/v1");
            let mut txts: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect())
                .unwrap_or_default();
            txts.sort();
            for t in txts {
                let (Ok(text), Ok(json)) = (std::fs::read_to_string(&t), std::fs::read(t.with_extension("json"))) else { continue };
                let link = text.lines().next().unwrap_or_default().as_bytes().to_vec();
                let name = t.strip_prefix(root).unwrap_or(&t).display().to_string();
                out.push(Seed { name, files: vec![("fragment.txt".into(), link), ("experiment.json".into(), json)], quantize: None, primary: true });
            }
            for (i, s) in seeds(root, Target::Experiment).into_iter().enumerate() {
                let Some(e) = s.files.first().and_then(|f| Experiment::from_json(std::str::from_utf8(&f.1).ok()?).ok()) else { continue };
                let link = fragment(&e, Widget::ALL.get(i).copied(), i % 2 == 1);
                out.push(Seed {
                    name: format!("link of {}", s.name),
                    files: vec![("fragment.txt".into(), link.into_bytes()), ("experiment.json".into(), e.to_json().into_bytes())],
                    quantize: None,
                    primary: true,
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Mutations.

const INTERESTING_U64: [u64; 22] = [
    0,
    1,
    2,
    3,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 1,
    u64::MAX - 7,
];

/// One byte-level mutation.
fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng, focus: usize) {
    if b.is_empty() {
        b.extend((0..rng.below(16) + 1).map(|_| rng.next_u64() as u8));
        return;
    }
    // Most mutations land in the first `focus` bytes (a header), the rest anywhere.
    let span = if rng.chance(0.75) { focus.clamp(1, b.len()) } else { b.len() };
    let at = rng.below(span);
    match rng.below(10) {
        0 => b[at] ^= 1 << rng.below(8),
        1 => b[at] = rng.next_u64() as u8,
        2 => b[at] = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'[', b'0', b' ']),
        3 | 4 => {
            let v = *rng.pick(&INTERESTING_U64);
            let width = *rng.pick(&[4usize, 8]);
            // Lengths and counts in GGUF and safetensors are 8-byte (and 4-byte) aligned often.
            let at = if rng.chance(0.5) { at & !(width - 1) } else { at };
            for (i, byte) in v.to_le_bytes().iter().take(width).enumerate() {
                if let Some(x) = b.get_mut(at + i) {
                    *x = *byte;
                }
            }
        }
        5 => b.truncate(at),
        6 => {
            let n = rng.below(64).min(b.len() - at);
            b.drain(at..at + n);
        }
        7 => {
            let n = rng.below(64).min(b.len() - at);
            let chunk: Vec<u8> = b[at..at + n].to_vec();
            let to = rng.below(b.len());
            b.splice(to..to, chunk);
        }
        8 => {
            let n = rng.below(16) + 1;
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, bytes);
        }
        _ => {
            let from = rng.below(b.len());
            let n = rng.below(32).min(b.len() - from).min(b.len() - at);
            let chunk: Vec<u8> = b[from..from + n].to_vec();
            b[at..at + n].copy_from_slice(&chunk);
        }
    }
}

/// Keys and type names from the formats, for renames, insertions and replacements.
const KEYS: &[&str] = &[
    "type",
    "model",
    "vocab",
    "merges",
    "added_tokens",
    "normalizer",
    "pre_tokenizer",
    "post_processor",
    "decoder",
    "truncation",
    "padding",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "unk_token",
    "byte_fallback",
    "fuse_unk",
    "dropout",
    "ignore_merges",
    "special_tokens",
    "single",
    "pair",
    "ids",
    "tokens",
    "id",
    "content",
    "special",
    "pattern",
    "replacement",
    "prepend_scheme",
    "add_prefix_space",
    "stride",
    "max_length",
    "pad_to_multiple_of",
    "pad_id",
    "length",
    "start",
    "stop",
    "model_type",
    "n_layer",
    "n_head",
    "n_embd",
    "n_inner",
    "n_positions",
    "n_ctx",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "head_dim",
    "max_position_embeddings",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "partial_rotary_factor",
    "rotary_pct",
    "tie_word_embeddings",
    "attn_only",
    "d_vocab_out",
    "use_parallel_residual",
    "hidden_act",
    "activation_function",
    "layer_norm_epsilon",
    "rms_norm_eps",
    "sliding_window",
    "dtype",
    "shape",
    "data_offsets",
    "__metadata__",
    "weight_map",
    "chars",
    "words",
    "outputs",
    "separator",
    "pad_to",
    "readout",
    "v",
    "prompt",
    "corrupted",
    "interventions",
    "hook",
    "layer",
    "head",
    "pos",
    "neuron",
    "op",
    "analysis",
    "view",
    "backend",
];
const TYPES: &[&str] = &[
    "BPE",
    "WordLevel",
    "WordPiece",
    "Unigram",
    "Sequence",
    "ByteLevel",
    "Metaspace",
    "Precompiled",
    "Replace",
    "Prepend",
    "Strip",
    "StripAccents",
    "NFC",
    "NFKC",
    "Lowercase",
    "Nmt",
    "BertNormalizer",
    "Split",
    "Whitespace",
    "WhitespaceSplit",
    "Punctuation",
    "Digits",
    "UnicodeScripts",
    "FixedLength",
    "CharDelimiterSplit",
    "BertPreTokenizer",
    "ByteFallback",
    "Fuse",
    "CTC",
    "BPEDecoder",
    "TemplateProcessing",
    "RobertaProcessing",
    "BertProcessing",
    "gpt2",
    "llama",
    "qwen2",
    "gpt_neox",
    "mistral",
    "F32",
    "F16",
    "BF16",
    "I64",
    "U8",
    "F64",
];

fn interesting_value(rng: &mut Rng) -> Value {
    match rng.below(24) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(1),
        5 => json!(-1),
        6 => json!(*rng.pick(&INTERESTING_U64)),
        7 => json!(-(rng.below(1 << 20) as i64) - 2),
        8 => json!(1e308),
        9 => json!(-1e308),
        10 => json!(0.5),
        11 => json!(1e-30),
        12 => json!(""),
        13 => json!(*rng.pick(&["a", "\u{120}", "\u{2581}", "<s>", "</s>", "<unk>", "<|endoftext|>", "##", " ", "  ", "$A", "$B", "[CLS]", "\u{0}"])),
        14 => json!("x".repeat(rng.below(5000) + 100)),
        15 => json!({}),
        16 => json!([]),
        17 => json!({"type": *rng.pick(TYPES)}),
        18 => json!(*rng.pick(TYPES)),
        19 => json!([*rng.pick(&INTERESTING_U64), *rng.pick(&INTERESTING_U64)]),
        20 => json!({"String": *rng.pick(&["", " ", "\u{2581}", "a"])}),
        21 => json!({"Regex": *rng.pick(&["", "(", ".*", "(a*)*b", "\\s+", "[", "\\p{L}+", "(?=a)"])}),
        22 => json!({"direction": "Right", "max_length": rng.below(8), "strategy": "LongestFirst", "stride": rng.below(8)}),
        _ => json!({"SpecialToken": {"id": *rng.pick(&["<s>", "</s>", "[CLS]", "x"]), "type_id": 0}}),
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Which nodes a pick draws from: all, those near the top, or those whose parent is small
/// (not an entry of a vocabulary or a merge list: the components and their fields).
#[derive(Clone, Copy)]
enum Pick {
    All,
    Top,
    SmallParent,
}

impl Pick {
    /// `big`: whether the node is inside a container of 40 or more entries.
    fn takes(self, depth: usize, big: bool) -> bool {
        match self {
            Pick::All => true,
            Pick::Top => depth <= 2,
            Pick::SmallParent => !big,
        }
    }
}

/// Counts the nodes `pick` takes.
fn count(v: &Value, pick: Pick) -> usize {
    fn walk(v: &Value, depth: usize, big: bool, pick: Pick, n: &mut usize) {
        if pick.takes(depth, big) {
            *n += 1;
        } else if matches!(pick, Pick::SmallParent) || (matches!(pick, Pick::Top) && depth > 2) {
            return; // nothing below is taken either
        }
        match v {
            Value::Object(m) => m.values().for_each(|c| walk(c, depth + 1, big || m.len() >= 40, pick, n)),
            Value::Array(a) => a.iter().for_each(|c| walk(c, depth + 1, big || a.len() >= 40, pick, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(v, 0, false, pick, &mut n);
    n
}

/// The path of the `k`-th node `pick` takes, in depth-first order.
fn nth_path(v: &Value, k: usize, pick: Pick) -> Vec<Step> {
    fn walk(v: &Value, big: bool, k: &mut usize, pick: Pick, path: &mut Vec<Step>) -> bool {
        if pick.takes(path.len(), big) {
            if *k == 0 {
                return true;
            }
            *k -= 1;
        } else if matches!(pick, Pick::SmallParent) || (matches!(pick, Pick::Top) && path.len() > 2) {
            return false;
        }
        match v {
            Value::Object(m) => {
                for (key, c) in m {
                    path.push(Step::Key(key.clone()));
                    if walk(c, big || m.len() >= 40, k, pick, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    path.push(Step::Index(i));
                    if walk(c, big || a.len() >= 40, k, pick, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            _ => {}
        }
        false
    }
    let mut path = Vec::new();
    let mut k = k;
    walk(v, false, &mut k, pick, &mut path);
    path
}

/// A random node's path: a quarter near the top, half outside large containers, a quarter
/// anywhere.
fn random_path(v: &Value, rng: &mut Rng) -> Vec<Step> {
    let pick = *rng.pick(&[Pick::Top, Pick::SmallParent, Pick::SmallParent, Pick::All]);
    let n = count(v, pick);
    if n == 0 {
        return Vec::new();
    }
    nth_path(v, rng.below(n), pick)
}

fn node_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn node<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One structural mutation of a JSON document.
pub fn mutate_json(v: &mut Value, rng: &mut Rng) {
    let path = random_path(v, rng);
    let op = rng.below(12);
    let splice = if op == 4 {
        let from = random_path(v, rng);
        node(v, &from).cloned()
    } else {
        None
    };
    // Operations on the node's parent: remove it, rename its key.
    if (op == 0 || op == 1) && !path.is_empty() {
        let (last, parent_path) = path.split_last().unwrap_or((&Step::Index(0), &[]));
        if let Some(parent) = node_mut(v, parent_path) {
            match (last, parent) {
                (Step::Key(k), Value::Object(m)) => {
                    if let Some(child) = m.remove(k) {
                        if op == 1 {
                            let new = if rng.chance(0.5) { rng.pick(KEYS).to_string() } else { format!("{k}x") };
                            m.insert(new, child);
                        }
                    }
                }
                (Step::Index(i), Value::Array(a)) if *i < a.len() => {
                    if op == 0 {
                        a.remove(*i);
                    } else {
                        let c = a[*i].clone();
                        a.insert(*i, c);
                    }
                }
                _ => {}
            }
        }
        return;
    }
    let Some(n) = node_mut(v, &path) else { return };
    match op {
        2 | 3 => *n = interesting_value(rng),
        4 => {
            if let Some(s) = splice {
                *n = s;
            }
        }
        5 => match n {
            Value::Number(x) => {
                let f = x.as_f64().unwrap_or(0.0);
                let i = x.as_i64().unwrap_or(0);
                *n = match rng.below(6) {
                    0 => json!(i.wrapping_add(1)),
                    1 => json!(i.wrapping_sub(1)),
                    2 => json!(i.wrapping_mul(2)),
                    3 => json!(i.wrapping_neg()),
                    4 => json!(f * 1e6),
                    _ => json!(0),
                };
            }
            Value::String(s) => {
                *s = match rng.below(5) {
                    0 => s.chars().take(rng.below(s.chars().count().max(1))).collect(),
                    1 => s.repeat(2),
                    2 => format!("{}{s}", rng.pick(&["\u{120}", "\u{2581}", "##", "<", " "])),
                    3 => s.chars().rev().collect(),
                    _ => rng.pick(TYPES).to_string(),
                };
            }
            Value::Bool(b) => *b = !*b,
            _ => *n = interesting_value(rng),
        },
        6 | 7 => match n {
            Value::Array(a) if !a.is_empty() => match rng.below(5) {
                0 => a.reverse(),
                1 => a.truncate(rng.below(a.len())),
                2 => a.clear(),
                3 => {
                    let i = rng.below(a.len());
                    let j = rng.below(a.len());
                    a.swap(i, j);
                }
                _ => {
                    let i = rng.below(a.len());
                    let c = a[i].clone();
                    a.push(c);
                }
            },
            Value::Object(m) => {
                if rng.chance(0.6) {
                    m.insert(rng.pick(KEYS).to_string(), interesting_value(rng));
                } else if !m.is_empty() {
                    let k = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
                    m.remove(&k);
                }
            }
            _ => *n = interesting_value(rng),
        },
        8 => {
            let inner = std::mem::take(n);
            *n = if rng.chance(0.5) { json!([inner]) } else { json!({ (*rng.pick(KEYS)): inner }) };
        }
        _ => *n = interesting_value(rng),
    }
}

/// Mutates a JSON file (`parsed`: its tree, when already parsed): 1-4 structural mutations,
/// sometimes followed by a byte-level one.
fn mutate_json_file(bytes: &[u8], parsed: Option<&Value>, rng: &mut Rng) -> Vec<u8> {
    let tree = match parsed {
        Some(v) => Ok(v.clone()),
        None => serde_json::from_slice::<Value>(bytes),
    };
    let mut out = match tree {
        Ok(mut v) => {
            for _ in 0..rng.below(4) + 1 {
                mutate_json(&mut v, rng);
            }
            if rng.chance(0.3) {
                serde_json::to_vec_pretty(&v).unwrap_or_default()
            } else {
                serde_json::to_vec(&v).unwrap_or_default()
            }
        }
        Err(_) => bytes.to_vec(),
    };
    if rng.chance(0.1) || out.is_empty() {
        let focus = out.len();
        mutate_bytes(&mut out, rng, focus);
    }
    out
}

/// Mutates a safetensors file: its header JSON (rewritten with a matching, or lying, length
/// prefix), or its bytes.
fn mutate_safetensors(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let header_len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize).unwrap_or(0);
    let header = bytes.get(8..8usize.saturating_add(header_len)).and_then(|h| serde_json::from_slice::<Value>(h).ok());
    match header {
        Some(mut h) if rng.chance(0.6) => {
            for _ in 0..rng.below(3) + 1 {
                mutate_json(&mut h, rng);
            }
            let text = serde_json::to_vec(&h).unwrap_or_default();
            let mut len = text.len() as u64;
            if rng.chance(0.1) {
                len = *rng.pick(&INTERESTING_U64);
            }
            let mut out = len.to_le_bytes().to_vec();
            out.extend_from_slice(&text);
            out.extend_from_slice(&bytes[8 + header_len..]);
            out
        }
        _ => {
            let mut out = bytes.to_vec();
            for _ in 0..rng.below(3) + 1 {
                mutate_bytes(&mut out, rng, header_len.saturating_add(8));
            }
            out
        }
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const B64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `v1/` + base64url(raw DEFLATE(`bytes`)) at `level` (0: stored blocks).
fn pack(bytes: &[u8], level: u8) -> String {
    format!("v1/{}", B64.encode(miniz_oxide::deflate::compress_to_vec(bytes, level)))
}

/// Mutates a share link (`json`: its experiment's JSON, `tree` parsed). The input is the
/// fragment alone.
fn mutate_link(link: &[u8], json: &[u8], tree: Option<&Value>, rng: &mut Rng) -> Vec<u8> {
    let text = String::from_utf8_lossy(link).into_owned();
    let (head, params) = match text.find('&') {
        Some(i) => (text[..i].to_string(), text[i..].to_string()),
        None => (text.clone(), String::new()),
    };
    let payload = head.strip_prefix("v1/").unwrap_or(&head).to_string();
    let mut out: Vec<u8> = match rng.below(20) {
        // The experiment's JSON mutated, packed again: reaches the JSON decoder and the limits.
        0..=7 => {
            let mutated = mutate_json_file(json, tree, rng);
            format!("{}{params}", pack(&mutated, *rng.pick(&[1u8, 1, 1, 6, 0, 10]))).into_bytes()
        }
        // The DEFLATE stream mutated, valid base64: reaches the inflater.
        8 | 9 => {
            let mut z = B64.decode(payload.as_bytes()).unwrap_or_default();
            for _ in 0..rng.below(3) + 1 {
                let focus = z.len();
                mutate_bytes(&mut z, rng, focus);
            }
            format!("v1/{}{params}", B64.encode(z)).into_bytes()
        }
        // base64 characters swapped for others of the alphabet (or, rarely, not).
        10 | 11 => {
            let mut b = text.into_bytes();
            for _ in 0..rng.below(4) + 1 {
                if b.len() > 3 {
                    let at = 3 + rng.below(b.len() - 3);
                    b[at] = if rng.chance(0.9) { *rng.pick(B64_ALPHABET) } else { *rng.pick(b"+/=%.# \n&") };
                }
            }
            b
        }
        // Cut off.
        12 | 13 => {
            let mut b = text.into_bytes();
            let at = rng.below(b.len() + 1);
            b.truncate(at);
            b
        }
        // Parameters and prefixes.
        14 | 15 => {
            let value = match rng.below(6) {
                0 => Widget::ALL[rng.below(Widget::ALL.len())].name().to_string(),
                1 => rng.pick(&["", "1", "0", "true", "false", "Attention", "attention ", "lens&static", "=", "%41"]).to_string(),
                2 => "w".repeat(rng.below(70_000)),
                _ => String::from_utf8_lossy(&(0..rng.below(8)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()).into_owned(),
            };
            let key = rng.pick(&["widget", "static", "theme", "", "v", "widget=lens&widget"]);
            let lead = rng.pick(&["", "", "#", "##", "https://glassbox.example/?a=1#", " \n", "v1/"]);
            let head = match rng.below(6) {
                0 => head.replacen("v1", &format!("v{}", rng.pick(&INTERESTING_U64)), 1),
                1 => head.replacen("v1/", "", 1),
                2 => head.replacen('/', "", 1),
                _ => head,
            };
            format!("{lead}{head}{params}&{key}={value}").into_bytes()
        }
        // Limits: a prompt just under or over 20,000 characters, a bomb near the inflate limit.
        16 => {
            let mut v = tree.cloned().unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                let n = 20_000 + rng.below(8) - 4;
                m.insert(rng.pick(&["prompt", "corrupted"]).to_string(), json!(rng.pick(&["x", "\u{e9}", "\u{1f642}", "<"]).repeat(n)));
            }
            pack(&serde_json::to_vec(&v).unwrap_or_default(), 1).into_bytes()
        }
        17 => {
            let n = 256 * 1024 + rng.below(64) - 32;
            let mut bomb = json.to_vec();
            bomb.resize(n, *rng.pick(&[b' ', 0, b'x']));
            pack(&bomb, 1).into_bytes()
        }
        // Anything else, byte by byte.
        _ => {
            let mut b = text.into_bytes();
            for _ in 0..rng.below(4) + 1 {
                let focus = b.len();
                mutate_bytes(&mut b, rng, focus);
            }
            b
        }
    };
    if rng.chance(0.05) {
        let focus = out.len();
        mutate_bytes(&mut out, rng, focus);
    }
    out
}

/// Input `index` of `target`: a seed, mutated.
pub fn make_input(target: Target, seeds: &[Prepared], seed: u64, index: u64) -> Seed {
    let mut rng = input_rng(seed, target, index);
    let primary: Vec<&Prepared> = seeds.iter().filter(|s| s.seed.primary).collect();
    let p = if !primary.is_empty() && rng.chance(0.75) { *rng.pick(&primary) } else { rng.pick(seeds) };
    let mut s = p.seed.clone();
    // The parsed tree of file `i`, while that file is still the seed's.
    let mut parsed: Vec<Option<&Value>> = p.json.iter().map(|j| j.as_deref()).collect();
    s.name = format!("{} (mutated: {} #{index}, seed {seed})", s.name, target.name());
    match target {
        Target::Gguf => {
            let b = &mut s.files[0].1;
            // The metadata and tensor infos sit in the first few kB of these files.
            let focus = (b.len() / 4).clamp(64, 8192);
            for _ in 0..rng.below(4) + 1 {
                mutate_bytes(b, &mut rng, focus);
            }
        }
        Target::Safetensors => {
            if rng.chance(0.3) {
                s.quantize = match rng.below(5) {
                    0 => None,
                    1 => Some(QuantizeOnLoad::Q8_0),
                    2 => Some(QuantizeOnLoad::Q4_0),
                    3 => Some(QuantizeOnLoad::F32),
                    _ => Some(QuantizeOnLoad::Q4_K),
                };
            }
            for _ in 0..rng.below(2) + 1 {
                let i = rng.below(s.files.len());
                let tree = parsed[i].take();
                let (name, bytes) = &mut s.files[i];
                *bytes = if name.ends_with(".safetensors") { mutate_safetensors(bytes, &mut rng) } else { mutate_json_file(bytes, tree, &mut rng) };
            }
            if rng.chance(0.05) && s.files.len() > 1 {
                let i = rng.below(s.files.len());
                s.files.remove(i);
            }
        }
        Target::Config | Target::Tokenizer | Target::Vocab | Target::Experiment => {
            let tree = parsed[0].take();
            let b = &mut s.files[0].1;
            *b = mutate_json_file(b, tree, &mut rng);
        }
        Target::Link => {
            let tree = parsed.get(1).copied().flatten();
            let json = s.files.get(1).map(|f| f.1.clone()).unwrap_or_default();
            let link = mutate_link(s.files.first().map_or(&[][..], |f| &f.1), &json, tree, &mut rng);
            s.files = vec![("fragment.txt".into(), link)];
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Running the targets.

const TEXTS: &[&str] =
    &["", "Hello, world!", "xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ", "3 + 4 =", "(()())", "t1 t5 t9", "caf\u{e9} \u{4e2d}\u{6587} \u{1f642}\n\t"];

/// What the page does with a loaded model: tokenize, name tokens, build the model and run it
/// once on the CPU (a few tokens).
fn exercise(b: &ModelBundle) -> Result<(), String> {
    let t = &b.tokenizer;
    let mut ids = Vec::new();
    for text in TEXTS {
        if let Ok(mut v) = t.encode(text) {
            t.pad(&mut v);
            let _ = t.encode_with_spans(text);
            ids = v;
        }
    }
    for id in (0..t.vocab_size().min(16) as u32).chain([t.vocab_size() as u32, u32::MAX]) {
        let _ = t.token_str(id);
        let _ = t.output_str(id);
    }
    let m = HookedTransformer::new(&CpuBackend, b.cfg.clone(), &b.weights).map_err(|e| e.to_string())?;
    ids.truncate(b.cfg.n_ctx.min(8));
    if ids.is_empty() {
        ids.push(0);
    }
    let mut req = RunRequest::new(ids);
    req.cache = CacheSpec::All;
    pollster::block_on(m.run(&CpuBackend, &req)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs `target` on one input. Errors are fine (they are messages); panics are findings.
pub fn execute(target: Target, input: &Seed) -> Result<(), String> {
    let file = |i: usize| input.files.get(i).map(|f| f.1.as_slice()).unwrap_or(&[]);
    let text = |i: usize| std::str::from_utf8(file(i)).map_err(|e| e.to_string());
    match target {
        Target::Gguf | Target::Safetensors => {
            let b = ModelBundle::from_files(&input.files, input.quantize).map_err(|e| e.to_string())?;
            exercise(&b)
        }
        Target::Config => {
            let c = Config::from_hf_json(text(0)?).map_err(|e| e.to_string())?;
            let _ = c.family();
            Ok(())
        }
        Target::Tokenizer => {
            let t = HfTokenizer::from_json(file(0)).map_err(|e| e.to_string())?;
            for s in TEXTS {
                if let Ok(ids) = t.encode(s) {
                    let _ = t.decode(&ids);
                }
                let _ = t.encode_with_spans(s);
            }
            for id in (0..t.vocab_size().min(64) as u32).chain([t.vocab_size() as u32 - 1, t.vocab_size() as u32, u32::MAX]) {
                let _ = t.token_str(id);
            }
            let _ = t.token_to_id("the");
            Ok(())
        }
        Target::Vocab => {
            let t = VocabTokenizer::from_json(text(0)?).map_err(|e| e.to_string())?;
            for s in TEXTS {
                if let Ok(mut ids) = t.encode(s) {
                    t.pad(&mut ids);
                }
                let _ = t.encode_with_spans(s);
            }
            for id in (0..t.vocab_size().min(64) as u32).chain([t.vocab_size() as u32, u32::MAX]) {
                let _ = t.token_str(id);
                let _ = t.output_str(id);
            }
            Ok(())
        }
        Target::Experiment => {
            let e = Experiment::from_json(text(0)?).map_err(|e| e.to_string())?;
            let again = Experiment::from_json(&e.to_json()).map_err(|e| format!("the round trip failed: {e}"))?;
            if again != e {
                return Err("the round trip changed the experiment".into());
            }
            let _ = e.run_prompt();
            let _ = e.patch_sources();
            for n_pos in [1, 4, 40] {
                let _ = e.lower_interventions(n_pos, |_, _| None);
                let _ = e.lower_run((0..n_pos as u32).collect(), CacheSpec::All, |_, _| None);
            }
            Ok(())
        }
        Target::Link => {
            // The page reads the fragment (a string: lossy for bytes that are not UTF-8), writes
            // it back to the address bar and may read that again. An error starts with the
            // error's kind; "round trip" is a bug even though it is not a panic.
            let f = parse_fragment(&String::from_utf8_lossy(file(0))).map_err(|e| format!("{}: {e}", e.kind()))?;
            let again =
                parse_fragment(&fragment(&f.experiment, f.widget, f.frozen)).map_err(|e| format!("round trip: the link written back does not open: {e}"))?;
            if again != f {
                return Err("round trip: the link written back opens to something else".into());
            }
            let e = &f.experiment;
            let _ = e.run_prompt();
            let _ = e.patch_sources();
            for n_pos in [1, 4] {
                let _ = e.lower_interventions(n_pos, |_, _| None);
            }
            Ok(())
        }
    }
}

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static PANICS: Cell<usize> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs (once) a panic hook that, on fuzzing threads, records panics instead of printing
/// them (contained ones included); other threads keep the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(|f| f.get()) {
                PANICS.with(|p| p.set(p.get() + 1));
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
                LAST_PANIC.with(|l| *l.borrow_mut() = format!("panic at {at}: {msg}"));
            } else {
                previous(info);
            }
        }));
    });
}

/// A panic found: the input and what happened.
#[derive(Clone, Debug)]
pub struct Finding {
    pub target: Target,
    pub index: u64,
    pub input: Seed,
    /// "panic at file:line: message", and whether it was contained (caught natively).
    pub message: String,
    pub contained: bool,
}

/// Runs one input, catching and recording panics.
pub fn run_input(target: Target, input: &Seed, index: u64) -> (Result<(), String>, Option<Finding>) {
    install_hook();
    FUZZING.with(|f| f.set(true));
    PANICS.with(|p| p.set(0));
    alloc::set_current(target as u64, index);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(target, input)));
    FUZZING.with(|f| f.set(false));
    let panics = PANICS.with(|p| p.get());
    let message = LAST_PANIC.with(|l| l.borrow().clone());
    match r {
        Err(_) => (Err(message.clone()), Some(Finding { target, index, input: input.clone(), message, contained: false })),
        Ok(res) if panics > 0 => (res, Some(Finding { target, index, input: input.clone(), message, contained: true })),
        Ok(res) => (res, None),
    }
}

/// What a campaign on one target did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub inputs: u64,
    pub loaded: u64,
    pub refused: u64,
    pub findings: Vec<Finding>,
    pub seconds: f64,
    pub slowest_ms: f64,
    pub slowest_index: u64,
}

/// Runs inputs `range` of `target`.
pub fn campaign(target: Target, seeds: &[Prepared], seed: u64, range: std::ops::Range<u64>, mut on_finding: impl FnMut(&Finding)) -> Report {
    let mut report = Report::default();
    let t0 = Instant::now();
    for index in range {
        let input = make_input(target, seeds, seed, index);
        let t = Instant::now();
        let (r, finding) = run_input(target, &input, index);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms > report.slowest_ms {
            report.slowest_ms = ms;
            report.slowest_index = index;
        }
        report.inputs += 1;
        match r {
            Ok(()) => report.loaded += 1,
            Err(_) => report.refused += 1,
        }
        if let Some(f) = finding {
            on_finding(&f);
            report.findings.push(f);
        }
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report
}

/// Writes a finding as a folder of fixtures/robustness/ (the input's files, `quantize.txt` for
/// a bundle, `panic.txt` with the message and how to replay it).
pub fn save_finding(dir: &Path, f: &Finding, seed: u64) -> std::io::Result<PathBuf> {
    let out = dir.join(format!("fuzz-{}-{seed}-{}", f.target.name(), f.index));
    std::fs::create_dir_all(&out)?;
    for (name, bytes) in &f.input.files {
        std::fs::write(out.join(name.rsplit('/').next().unwrap_or(name)), bytes)?;
    }
    if let Some(q) = f.input.quantize {
        std::fs::write(out.join("quantize.txt"), q.to_string())?;
    }
    let how = if f.contained {
        "contained natively (a trap in the browser)"
    } else if f.message.starts_with("memory cap") {
        "aborted under the memory cap"
    } else {
        "escaped"
    };
    std::fs::write(
        out.join("panic.txt"),
        format!(
            "{}\n{how}\ninput: {}\nreplay: cargo run -p glassbox-fuzz --release -- --target {} --seed {seed} --only {}\n",
            f.message,
            f.input.name,
            f.target.name(),
            f.index
        ),
    )?;
    Ok(out)
}

/// Reads a saved finding back: its files (without panic.txt) and its quantize option.
pub fn load_finding(dir: &Path) -> std::io::Result<(Target, Seed)> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = name.strip_prefix("fuzz-").and_then(|r| r.split('-').next()).and_then(Target::parse).unwrap_or(Target::Tokenizer);
    let mut files = Vec::new();
    let mut quantize = None;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name().to_string_lossy().into_owned();
        match n.as_str() {
            "panic.txt" => {}
            "quantize.txt" => quantize = std::fs::read_to_string(e.path())?.trim().parse().ok(),
            _ => files.push((n, std::fs::read(e.path())?)),
        }
    }
    files.sort();
    Ok((target, Seed { name, files, quantize, primary: false }))
}
