//! The GGUF reader and the CPU reference dequantization (`core/src/gguf.rs`).
//!
//! - Every tensor of every fixture (`fixtures/gguf/`, written by `python/make_gguf_fixtures.py`
//!   with the `gguf` Python package) dequantizes to exactly the values of the package's numpy
//!   reference `gguf.quants.dequantize`, **bit for bit**: both follow ggml's
//!   `dequantize_row_*` with the same f32 operations in the same order (f16 -> f32 widening is
//!   exact, Rust never fuses a multiply and an add on its own, numpy evaluates one ufunc at a
//!   time), so there is no rounding difference to tolerate. The one exception is NaN, where
//!   only "both are NaN" is asserted (a NaN's payload bits are not meaningful). candle's own
//!   GGUF reader, a third implementation, is held to the same standard.
//! - Shapes come back row-major (the reversed GGUF dims) and the metadata reads back value for
//!   value, type for type.
//! - Bad input is an error naming what is wrong, never a panic: wrong magic and version, every
//!   prefix of every fixture, absurd lengths and counts (checked with a counting allocator:
//!   no allocation larger than a small multiple of the input), unknown types, overflowing dims,
//!   data past the end; and two proptests of 2000 cases (arbitrary bytes, fixtures with bytes
//!   overwritten).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use glassbox_core::gguf::{self, GgmlType, GgufFile, MetaArray, MetaValue};
use glassbox_core::{Error, HostTensor};
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A counting allocator: the largest single allocation made by this thread inside a closure.
// ---------------------------------------------------------------------------------------------

struct Meter;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Runs `f` and returns its result with the largest single allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let out = f();
    (out, LARGEST.with(|largest| largest.get()))
}

#[test]
fn the_allocation_meter_sees_allocations() {
    let (v, largest) = largest_allocation(|| vec![1u8; 1 << 20]);
    assert_eq!((v.len(), largest), (1 << 20, 1 << 20));
}

/// What reading `len` bytes may allocate at once: the header's vectors hold at most a few
/// times the bytes they were read from, and a dequantized tensor at most 8 bytes of f32 per
/// byte of quantized data (Q4_K: 1024 bytes per 144).
fn allocation_bound(len: usize) -> usize {
    8 * len + 4096
}

/// `parse`, checked not to allocate more than `allocation_bound` of the input.
fn parse_metered(bytes: &[u8]) -> glassbox_core::Result<GgufFile> {
    let (result, largest) = largest_allocation(|| gguf::parse(bytes));
    assert!(largest <= allocation_bound(bytes.len()), "parse allocated {largest} bytes at once for {} bytes of input ({result:?})", bytes.len());
    result
}

fn message(result: glassbox_core::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(e @ Error::Weights(_)) => e.to_string(),
        Err(other) => panic!("expected a weights error, got {other:?}"),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/gguf")
}

fn index() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("index.json")).expect("fixtures/gguf/index.json");
    serde_json::from_str(&text).expect("index.json is JSON")
}

fn fixture_files() -> Vec<Value> {
    index()["files"].as_array().expect("index.json has files").clone()
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixtures/gguf/{name}: {e}"))
}

fn read_f32(name: &str) -> Vec<f32> {
    read_fixture(name).chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Bit-for-bit equality, where a NaN only has to meet a NaN.
fn assert_same_values(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let same = if a.is_nan() || b.is_nan() { a.is_nan() && b.is_nan() } else { a.to_bits() == b.to_bits() };
        assert!(same, "{what}[{i}]: ours {a:e} ({:#010x}), theirs {b:e} ({:#010x})", a.to_bits(), b.to_bits());
    }
}

fn shape_of(tensor: &Value) -> Vec<usize> {
    tensor["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

/// The end of the last tensor's data: every shorter prefix of the file is incomplete.
fn required_len(file: &GgufFile) -> usize {
    file.tensors.iter().map(|t| (file.data_offset() + t.offset + t.n_bytes().unwrap()) as usize).max().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: values, shapes, metadata
// ---------------------------------------------------------------------------------------------

#[test]
fn ggml_type_table_matches_the_gguf_package() {
    let theirs = index()["ggml_types"].as_array().unwrap().clone();
    for t in &theirs {
        let id = t["id"].as_u64().unwrap() as u32;
        let ours = GgmlType::from_id(id).unwrap_or_else(|| panic!("ggml type {t} is unknown to us"));
        assert_eq!(ours.name(), t["name"].as_str().unwrap(), "name of type {id}");
        assert_eq!(ours.block_size(), t["block_size"].as_u64().unwrap(), "block size of {ours}");
        assert_eq!(ours.type_size(), t["type_size"].as_u64().unwrap(), "type size of {ours}");
        assert_eq!(ours.id(), id);
    }
    assert_eq!(GgmlType::all().count(), theirs.len(), "we know types the gguf package does not");
    let supported: Vec<&str> = gguf::SUPPORTED_TYPES.iter().map(|t| t.name()).collect();
    assert_eq!(supported, ["F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"]);
}

#[test]
fn every_fixture_tensor_equals_the_numpy_dequantization() {
    let mut seen_types = std::collections::BTreeSet::new();
    for entry in fixture_files() {
        let file_name = entry["file"].as_str().unwrap();
        let bytes = read_fixture(file_name);
        assert_eq!(bytes.len() as u64, entry["size"].as_u64().unwrap(), "{file_name}: size");
        let file = parse_metered(&bytes).unwrap_or_else(|e| panic!("{file_name}: {e}"));
        assert_eq!(file.version, 3, "{file_name}");
        assert_eq!(file.alignment(), entry["alignment"].as_u64().unwrap(), "{file_name}: alignment");
        assert_eq!(file.data_offset() % file.alignment(), 0, "{file_name}: data offset");

        let expected = entry["tensors"].as_array().unwrap();
        let names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
        let expected_names: Vec<&str> = expected.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, expected_names, "{file_name}: tensor names in order");

        for t in expected {
            let name = t["name"].as_str().unwrap();
            let info = file.tensor(name).unwrap();
            assert_eq!(info.ggml_type.name(), t["type"].as_str().unwrap(), "{file_name}: {name} type");
            assert_eq!(info.ggml_type.id() as u64, t["type_id"].as_u64().unwrap());
            let shape = shape_of(t);
            assert_eq!(info.shape(), shape, "{file_name}: {name} shape");
            let reversed: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
            assert_eq!(info.dims, reversed, "{file_name}: {name} GGUF dims are fastest-varying first");

            let (tensor, largest) = largest_allocation(|| file.tensor_f32(&bytes, name));
            let tensor = tensor.unwrap_or_else(|e| panic!("{file_name}: {name}: {e}"));
            assert!(largest <= allocation_bound(bytes.len()), "{name}: allocated {largest}");
            assert_eq!(tensor.shape, shape, "{file_name}: {name} HostTensor shape is row-major");
            let theirs = read_f32(t["expected"].as_str().unwrap());
            assert_same_values(&format!("{file_name}: {name}"), &tensor.data, &theirs);
            seen_types.insert(info.ggml_type.name());
        }
    }
    assert_eq!(seen_types.into_iter().collect::<Vec<_>>(), ["F16", "F32", "Q4_0", "Q4_K", "Q6_K", "Q8_0"]);
}

#[test]
fn candle_reads_the_same_values() {
    // A third, independent reader (candle's gguf_file + k_quants, itself a port of ggml).
    use candle_core::quantized::gguf_file;
    let device = candle_core::Device::Cpu;
    for entry in fixture_files() {
        let file_name = entry["file"].as_str().unwrap();
        let bytes = read_fixture(file_name);
        let ours = gguf::parse(&bytes).unwrap();
        let mut cursor = std::io::Cursor::new(&bytes);
        let content = gguf_file::Content::read(&mut cursor).unwrap();
        assert_eq!(content.tensor_data_offset, ours.data_offset(), "{file_name}: data offset");
        for info in &ours.tensors {
            let q = content.tensor(&mut cursor, &info.name, &device).unwrap();
            let theirs: Vec<f32> = q.dequantize(&device).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let tensor = ours.tensor_f32(&bytes, &info.name).unwrap();
            assert_same_values(&format!("candle vs ours, {file_name}: {}", info.name), &tensor.data, &theirs);
        }
    }
}

fn meta_json(value: &MetaValue) -> Value {
    match value {
        MetaValue::U8(v) => json!(v),
        MetaValue::I8(v) => json!(v),
        MetaValue::U16(v) => json!(v),
        MetaValue::I16(v) => json!(v),
        MetaValue::U32(v) => json!(v),
        MetaValue::I32(v) => json!(v),
        MetaValue::U64(v) => json!(v),
        MetaValue::I64(v) => json!(v),
        MetaValue::F32(v) => json!(*v as f64),
        MetaValue::F64(v) => json!(v),
        MetaValue::Bool(v) => json!(v),
        MetaValue::String(v) => json!(v),
        MetaValue::Array(a) => array_json(a),
    }
}

fn array_json(array: &MetaArray) -> Value {
    match array {
        MetaArray::U8(v) => json!(v),
        MetaArray::I8(v) => json!(v),
        MetaArray::U16(v) => json!(v),
        MetaArray::I16(v) => json!(v),
        MetaArray::U32(v) => json!(v),
        MetaArray::I32(v) => json!(v),
        MetaArray::U64(v) => json!(v),
        MetaArray::I64(v) => json!(v),
        MetaArray::F32(v) => json!(v.iter().map(|&x| x as f64).collect::<Vec<_>>()),
        MetaArray::F64(v) => json!(v),
        MetaArray::Bool(v) => json!(v),
        MetaArray::String(v) => json!(v),
        MetaArray::Array(v) => Value::Array(v.iter().map(array_json).collect()),
    }
}

#[test]
fn metadata_reads_back() {
    for entry in fixture_files() {
        let file_name = entry["file"].as_str().unwrap();
        let file = gguf::parse(&read_fixture(file_name)).unwrap();
        let expected = entry["metadata"].as_array().unwrap();
        let keys: Vec<&str> = file.metadata.iter().map(|(k, _)| k.as_str()).collect();
        let expected_keys: Vec<&str> = expected.iter().map(|m| m["key"].as_str().unwrap()).collect();
        assert_eq!(keys, expected_keys, "{file_name}: metadata keys in file order");
        for m in expected {
            let key = m["key"].as_str().unwrap();
            let value = file.get(key).unwrap();
            assert_eq!(value.type_name(), m["type"].as_str().unwrap(), "{file_name}: type of {key}");
            assert_eq!(meta_json(value), m["value"], "{file_name}: value of {key}");
        }
    }

    let file = gguf::parse(&read_fixture("q4_k.gguf")).unwrap();
    assert_eq!(file.get_str("general.architecture").unwrap(), "gpt2");
    assert_eq!(file.get_u32("gpt2.context_length").unwrap(), 64);
    assert_eq!(file.get_u64("glassbox.u64").unwrap(), (1 << 40) + 3);
    assert_eq!(file.get_i64("glassbox.i8").unwrap(), -100);
    assert_eq!(file.get_u32("glassbox.u8").unwrap(), 200);
    assert_eq!(file.get_f32("glassbox.f32").unwrap(), 0.15625);
    assert_eq!(file.get_f32("glassbox.f64").unwrap(), 3.0 + 1.0 / 1024.0);
    assert!(file.get_bool("glassbox.bool").unwrap());
    assert_eq!(file.get_str_array("tokenizer.ggml.tokens").unwrap(), ["<|endoftext|>", "a", " the", "é", "日本", ""]);
    assert_eq!(file.get_f32_array("tokenizer.ggml.scores").unwrap(), [0.5, -1.25, 3.0]);
    assert_eq!(file.get_array("glassbox.nested").unwrap().len(), 2);

    let wrong_type = message(file.get_u32("general.name"));
    assert!(wrong_type.contains("'general.name' is a string, expected a u32"), "{wrong_type}");
    let missing = message(file.get_str("gpt2.block_count"));
    assert!(missing.contains("'gpt2.block_count' is missing"), "{missing}");
    let too_big = message(file.get_u32("glassbox.u64"));
    assert!(too_big.contains("1099511627779, which does not fit in a u32"), "{too_big}");
    let negative = message(file.get_u64("glassbox.i64"));
    assert!(negative.contains("does not fit in a u64"), "{negative}");
    let not_strings = message(file.get_str_array("tokenizer.ggml.scores"));
    assert!(not_strings.contains("is an array of f32, expected an array of strings"), "{not_strings}");
}

#[test]
fn tensor_f32_errors_name_the_problem() {
    let bytes = read_fixture("q8_0.gguf");
    let file = gguf::parse(&bytes).unwrap();
    let missing = message(file.tensor_f32(&bytes, "token_embd.weight"));
    assert!(missing.contains("no tensor named 'token_embd.weight'") && missing.contains("q8_0.smooth"), "{missing}");
    // The same header with the data cut off: the bytes given to tensor_f32 are checked again.
    let short = message(file.tensor_f32(&bytes[..bytes.len() - 1], "q8_0.blocks"));
    assert!(short.contains("'q8_0.blocks'") && short.contains("runs past the end of the file"), "{short}");
}

// ---------------------------------------------------------------------------------------------
// Hand-made files
// ---------------------------------------------------------------------------------------------

fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s);
}

/// The header up to the counts.
fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(version.to_le_bytes());
    out.extend(n_tensors.to_le_bytes());
    out.extend(n_kv.to_le_bytes());
    out
}

fn push_kv_u32(out: &mut Vec<u8>, key: &str, value: u32) {
    push_string(out, key.as_bytes());
    out.extend(4u32.to_le_bytes());
    out.extend(value.to_le_bytes());
}

fn push_kv_str(out: &mut Vec<u8>, key: &str, value: &str) {
    push_string(out, key.as_bytes());
    out.extend(8u32.to_le_bytes());
    push_string(out, value.as_bytes());
}

fn push_tensor_info(out: &mut Vec<u8>, name: &str, dims: &[u64], type_id: u32, offset: u64) {
    push_string(out, name.as_bytes());
    out.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend(d.to_le_bytes());
    }
    out.extend(type_id.to_le_bytes());
    out.extend(offset.to_le_bytes());
}

/// Pads to 32 and appends the data.
fn with_data(mut out: Vec<u8>, data: &[u8]) -> Vec<u8> {
    out.resize(out.len().div_ceil(32) * 32, 0);
    out.extend(data);
    out
}

/// A valid file: one metadata entry, one tensor of `type_id` with `dims` and `data`.
fn one_tensor(dims: &[u64], type_id: u32, data: &[u8]) -> Vec<u8> {
    let mut out = header(3, 1, 1);
    push_kv_str(&mut out, "general.architecture", "gpt2");
    push_tensor_info(&mut out, "w", dims, type_id, 0);
    with_data(out, data)
}

#[test]
fn hand_made_files_parse() {
    // The builder itself is right: a 2x3 F32 matrix, GGUF dims [3, 2].
    let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let bytes = one_tensor(&[3, 2], 0, &data);
    let file = parse_metered(&bytes).unwrap();
    let w = file.tensor_f32(&bytes, "w").unwrap();
    assert_eq!(w, HostTensor::new(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));

    // No tensors, no metadata, nothing after the header.
    let empty = header(2, 0, 0);
    let file = parse_metered(&empty).unwrap();
    assert_eq!((file.version, file.tensors.len(), file.metadata.len()), (2, 0, 0));

    // An empty array is legal.
    let mut bytes = header(3, 0, 1);
    push_string(&mut bytes, b"empty");
    bytes.extend(9u32.to_le_bytes());
    bytes.extend(8u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    let file = parse_metered(&bytes).unwrap();
    assert_eq!(file.get_str_array("empty").unwrap(), [] as [String; 0]);

    // A known type we cannot dequantize yet parses; tensor_f32 names it.
    let bytes = one_tensor(&[32], 3, &[0; 20]);
    let file = parse_metered(&bytes).unwrap();
    assert_eq!(file.tensors[0].ggml_type, GgmlType::Q4_1);
    let unsupported = message(file.tensor_f32(&bytes, "w"));
    assert!(unsupported.contains("ggml type 3 (Q4_1), which glassbox cannot dequantize yet"), "{unsupported}");

    // An empty tensor.
    let bytes = one_tensor(&[0, 4], 12, &[]);
    let file = parse_metered(&bytes).unwrap();
    assert_eq!(file.tensor_f32(&bytes, "w").unwrap().shape, [4, 0]);
}

#[test]
fn wrong_magic_and_version() {
    let mut bytes = read_fixture("f32.gguf");
    bytes[..4].copy_from_slice(b"GGML");
    let e = message(parse_metered(&bytes));
    assert!(e.contains("not a GGUF file") && e.contains("\"GGML\"") && e.contains("47 47 4d 4c"), "{e}");
    let e = message(parse_metered(b"\x89PNG\r\n\x1a\n"));
    assert!(e.contains("89 50 4e 47"), "{e}");

    for version in [0u32, 1, 4, u32::MAX] {
        let e = message(parse_metered(&header(version, 0, 0)));
        assert!(e.contains(&format!("unsupported GGUF version {version}")), "{e}");
    }
    let e = message(parse_metered(&header(3u32.swap_bytes(), 0, 0)));
    assert!(e.contains("big-endian"), "{e}");
}

#[test]
fn every_prefix_of_every_fixture_is_an_error() {
    for entry in fixture_files() {
        let file_name = entry["file"].as_str().unwrap();
        let bytes = read_fixture(file_name);
        let complete = gguf::parse(&bytes).unwrap();
        let required = required_len(&complete);
        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            let result = parse_metered(prefix);
            if len < required {
                let e = message(result);
                assert!(e.contains("truncated") || e.contains("runs past the end") || e.contains("bytes are left"), "{file_name}[..{len}]: {e}");
            } else {
                // Only the padding after the last tensor is missing: still a whole file.
                let file = result.unwrap_or_else(|e| panic!("{file_name}[..{len}]: {e}"));
                assert_eq!(file, complete);
            }
        }
        // The first fields are named.
        for (len, field) in [(0, "the magic"), (6, "the version"), (12, "the tensor count"), (20, "the metadata count")] {
            let e = message(parse_metered(&bytes[..len]));
            assert!(e.contains(&format!("truncated: the file ends at byte {len} while reading {field}")), "{e}");
        }
    }
}

#[test]
fn absurd_lengths_and_counts_are_errors_without_huge_allocations() {
    // A key claiming u64::MAX bytes, and one claiming one byte more than there is.
    for len in [u64::MAX, 1 << 40, 12] {
        let mut bytes = header(3, 0, 1);
        bytes.extend(len.to_le_bytes());
        bytes.extend(b"general.name");
        bytes.truncate(bytes.len() - 1);
        let e = message(parse_metered(&bytes));
        assert!(e.contains(&format!("the key of metadata entry 0 claims a length of {len} bytes")), "{e}");
    }
    // A string value claiming 2^62 bytes.
    let mut bytes = header(3, 0, 1);
    push_string(&mut bytes, b"general.name");
    bytes.extend(8u32.to_le_bytes());
    bytes.extend((1u64 << 62).to_le_bytes());
    bytes.extend(b"gpt2");
    let e = message(parse_metered(&bytes));
    assert!(e.contains("metadata 'general.name' claims a length of 4611686018427387904 bytes"), "{e}");

    // Arrays claiming more elements than fit: u32 elements (4 bytes each), strings (8 at least),
    // a count whose byte size overflows u64.
    for (element_type, count) in [(4u32, 1u64 << 40), (8, 1 << 20), (10, u64::MAX / 3), (9, 1 << 33)] {
        let mut bytes = header(3, 0, 1);
        push_string(&mut bytes, b"tokenizer.ggml.tokens");
        bytes.extend(9u32.to_le_bytes());
        bytes.extend(element_type.to_le_bytes());
        bytes.extend(count.to_le_bytes());
        bytes.extend([0u8; 64]);
        let e = message(parse_metered(&bytes));
        assert!(e.contains("metadata 'tokenizer.ggml.tokens' (an array of"), "{e}");
        assert!(e.contains(&format!("claims {count} entries")), "{e}");
    }

    // Tensor and metadata counts larger than the file could hold.
    for (n_tensors, n_kv, what) in [(u64::MAX, 0, "tensor count"), (0, u64::MAX, "metadata count"), (1 << 30, 0, "tensor count")] {
        let mut bytes = header(3, n_tensors, n_kv);
        bytes.extend([0u8; 100]);
        let e = message(parse_metered(&bytes));
        assert!(e.contains(&format!("the header's {what} claims")), "{e}");
    }

    // Arrays of arrays nested 100 000 deep: refused at depth 5, no stack overflow.
    let mut bytes = header(3, 0, 1);
    push_string(&mut bytes, b"deep");
    bytes.extend(9u32.to_le_bytes());
    for _ in 0..100_000 {
        bytes.extend(9u32.to_le_bytes());
        bytes.extend(1u64.to_le_bytes());
    }
    let e = message(parse_metered(&bytes));
    assert!(e.contains("nests arrays more than 4 deep"), "{e}");
}

#[test]
fn bad_tensor_infos_are_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (one_tensor(&[32], 99, &[0; 64]), "tensor 'w' has unknown ggml type id 99"),
        (one_tensor(&[32], 4, &[0; 64]), "ggml type 4 (Q4_2), a type ggml has removed"),
        (one_tensor(&[32], 36, &[0; 64]), "ggml type 36 (IQ4_NL_4_4)"),
        (one_tensor(&[1 << 32, 1 << 32, 1 << 32], 0, &[]), "the element count or byte size overflows 64 bits"),
        (one_tensor(&[1 << 62, 1 << 2], 0, &[]), "overflows 64 bits"),
        (one_tensor(&[1 << 63], 0, &[]), "dim 0 is 9223372036854775808, larger than ggml's limit"),
        (one_tensor(&[1, 1, 1, 1, 1], 0, &[0; 4]), "tensor 'w' has 5 dims; ggml allows at most 4"),
        (one_tensor(&[100], 12, &[0; 144]), "rows of 100 elements, not a whole number of Q4_K blocks"),
        (one_tensor(&[256, 2], 14, &[0; 210]), "tensor 'w' (420 bytes at offset 0"),
        (one_tensor(&[1 << 40], 0, &[0; 32]), "runs past the end of the file"),
    ];
    for (bytes, expected) in cases {
        let e = message(parse_metered(&bytes));
        assert!(e.contains(expected), "expected '{expected}' in: {e}");
    }

    // An offset past the end (aligned), and one that is not aligned.
    let mut bytes = header(3, 1, 0);
    push_tensor_info(&mut bytes, "w", &[8], 0, 1 << 50);
    let e = message(parse_metered(&with_data(bytes, &[0; 32])));
    assert!(e.contains("runs past the end of the file"), "{e}");
    let mut bytes = header(3, 1, 0);
    push_tensor_info(&mut bytes, "w", &[1], 0, 4);
    let e = message(parse_metered(&with_data(bytes, &[0; 32])));
    assert!(e.contains("data offset 4 is not a multiple of the alignment 32"), "{e}");
    // An offset that overflows when added to the data section's start.
    let mut bytes = header(3, 1, 0);
    push_tensor_info(&mut bytes, "w", &[1], 0, u64::MAX - 31);
    let e = message(parse_metered(&with_data(bytes, &[0; 32])));
    assert!(e.contains("runs past the end of the file"), "{e}");

    // Two tensors with one name.
    let mut bytes = header(3, 2, 0);
    push_tensor_info(&mut bytes, "w", &[8], 0, 0);
    push_tensor_info(&mut bytes, "w", &[8], 0, 32);
    let e = message(parse_metered(&with_data(bytes, &[0; 64])));
    assert!(e.contains("tensor name 'w' appears twice"), "{e}");
}

#[test]
fn bad_metadata_is_an_error() {
    let kv = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = header(3, 0, 1);
        f(&mut bytes);
        bytes
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            kv(&|b| {
                push_string(b, b"k");
                b.extend(13u32.to_le_bytes());
                b.extend([0; 8]);
            }),
            "metadata 'k' has unknown value type 13",
        ),
        (
            kv(&|b| {
                push_string(b, b"k");
                b.extend(7u32.to_le_bytes());
                b.push(2);
            }),
            "metadata 'k' is a bool stored as 2",
        ),
        (
            kv(&|b| {
                push_string(b, b"\xff\xfe");
                b.extend(0u32.to_le_bytes());
                b.push(0);
            }),
            "the key of metadata entry 0 is not valid UTF-8",
        ),
        (
            kv(&|b| {
                push_string(b, b"k");
                b.extend(9u32.to_le_bytes());
                b.extend(77u32.to_le_bytes());
                b.extend(1u64.to_le_bytes());
            }),
            "the elements of metadata 'k' has unknown value type 77",
        ),
        (kv(&|b| push_kv_u32(b, "general.alignment", 48)), "'general.alignment' must be a u32 power of two"),
        (kv(&|b| push_kv_str(b, "general.alignment", "32")), "'general.alignment' must be a u32 power of two"),
        (kv(&|b| push_kv_u32(b, "general.alignment", 0)), "'general.alignment' must be a u32 power of two"),
    ];
    for (bytes, expected) in cases {
        let e = message(parse_metered(&bytes));
        assert!(e.contains(expected), "expected '{expected}' in: {e}");
    }

    let mut bytes = header(3, 0, 2);
    push_kv_u32(&mut bytes, "gpt2.context_length", 64);
    push_kv_u32(&mut bytes, "gpt2.context_length", 128);
    let e = message(parse_metered(&bytes));
    assert!(e.contains("metadata key 'gpt2.context_length' appears twice"), "{e}");

    // A custom alignment moves the data section.
    let mut bytes = header(3, 1, 1);
    push_kv_u32(&mut bytes, "general.alignment", 256);
    push_tensor_info(&mut bytes, "w", &[1], 0, 0);
    let header_len = bytes.len();
    bytes.resize(256, 0);
    bytes.extend(7.5f32.to_le_bytes());
    let file = parse_metered(&bytes).unwrap();
    assert!(header_len < 256);
    assert_eq!((file.alignment(), file.data_offset()), (256, 256));
    assert_eq!(file.tensor_f32(&bytes, "w").unwrap().data, [7.5]);
}

// ---------------------------------------------------------------------------------------------
// Dequantizers on hand-made blocks: the layouts in the doc comments, value by value.
// ---------------------------------------------------------------------------------------------

fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

#[test]
fn block_layouts() {
    // Q8_0: d = 0.5, qs = -16..16.
    let mut block = f16_bytes(0.5).to_vec();
    block.extend((-16i8..16).map(|q| q as u8));
    let mut out = [0f32; 32];
    gguf::dequantize_q8_0(&block, &mut out);
    assert_eq!(out.to_vec(), (-16..16).map(|q| q as f32 * 0.5).collect::<Vec<_>>());

    // Q4_0: d = 2, qs[j] = j << 4 | (15 - j): element j = (15 - j - 8) * 2,
    // element j + 16 = (j - 8) * 2.
    let mut block = f16_bytes(2.0).to_vec();
    block.extend((0..16u8).map(|j| (j << 4) | (15 - j)));
    let mut out = [0f32; 32];
    gguf::dequantize_q4_0(&block, &mut out);
    for j in 0..16 {
        assert_eq!(out[j], (15 - j as i32 - 8) as f32 * 2.0, "low nibble {j}");
        assert_eq!(out[j + 16], (j as i32 - 8) as f32 * 2.0, "high nibble {j}");
    }

    // Q4_K: scales/mins packing (get_scale_min_k4): sub-block j has scale j + 1 (j < 4) or
    // 56 + j (j >= 4: 60..63, using the top bits), min 2j (j < 4) or 40 + j.
    let scales_for = |j: usize| if j < 4 { (j as u8 + 1, 2 * j as u8) } else { (56 + j as u8, 40 + j as u8) };
    let mut packed = [0u8; 12];
    for j in 0..4 {
        let (sc, m) = scales_for(j);
        let (sc_hi, m_hi) = scales_for(j + 4);
        packed[j] = sc | ((sc_hi >> 4) << 6);
        packed[j + 4] = m | ((m_hi >> 4) << 6);
        packed[j + 8] = (sc_hi & 0x0F) | ((m_hi & 0x0F) << 4);
    }
    for j in 0..8 {
        assert_eq!(gguf::get_scale_min_k4(j, &packed), scales_for(j), "sub-block {j}");
    }
    let mut block = f16_bytes(0.25).to_vec();
    block.extend(f16_bytes(0.125));
    block.extend(packed);
    block.extend((0..128u32).map(|i| ((i % 16) as u8) | (((i / 8) % 16) as u8) << 4));
    let mut out = [0f32; 256];
    gguf::dequantize_q4_k(&block, &mut out);
    for (k, &y) in out.iter().enumerate() {
        let (group, within) = (k / 64, k % 64);
        let (sub, l) = (2 * group + within / 32, within % 32);
        let byte = (32 * group + l) as u32;
        let q = if within < 32 { byte % 16 } else { (byte / 8) % 16 };
        let (sc, m) = scales_for(sub);
        assert_eq!(y, 0.25 * sc as f32 * q as f32 - 0.125 * m as f32, "Q4_K value {k}");
    }

    // Q6_K: value k of half h, position p = k % 128: quarter p / 32, l = p % 32; scale
    // per 16 values; choose q = (k * 7) % 64 and pack it as the doc comment says.
    let q_of = |k: usize| ((k * 7) % 64) as u8;
    let mut block = vec![0u8; 210];
    for k in 0..256 {
        let (h, p) = (k / 128, k % 128);
        let (quarter, l) = (p / 32, p % 32);
        let q = q_of(k);
        let ql_at = 64 * h + l + if quarter % 2 == 1 { 32 } else { 0 };
        block[ql_at] |= (q & 0x0F) << if quarter >= 2 { 4 } else { 0 };
        block[128 + 32 * h + l] |= (q >> 4) << (2 * quarter);
    }
    for s in 0..16 {
        block[192 + s] = (s as i32 * 9 - 70) as i8 as u8; // negative and positive scales
    }
    block[208..210].copy_from_slice(&f16_bytes(0.5));
    let mut out = [0f32; 256];
    gguf::dequantize_q6_k(&block, &mut out);
    for (k, &y) in out.iter().enumerate() {
        let scale = (k / 16) as i32 * 9 - 70;
        assert_eq!(y, 0.5 * scale as f32 * (q_of(k) as i32 - 32) as f32, "Q6_K value {k}");
    }
}

// ---------------------------------------------------------------------------------------------
// Proptests: parse never panics, whatever the bytes.
// ---------------------------------------------------------------------------------------------

/// Parses `bytes` and, if that works, dequantizes every supported tensor: neither may panic
/// or allocate beyond the bound.
fn parse_and_read_everything(bytes: &[u8]) {
    if let Ok(file) = parse_metered(bytes) {
        for info in &file.tensors {
            let (result, largest) = largest_allocation(|| file.tensor_f32(bytes, &info.name));
            assert!(largest <= allocation_bound(bytes.len()), "{}: allocated {largest} ({result:?})", info.name);
            if info.ggml_type.is_supported() {
                let tensor = result.unwrap();
                assert_eq!(tensor.shape, info.shape());
            }
        }
    }
}

const FLIP_FIXTURES: [&str; 3] = ["f32.gguf", "q4_k.gguf", "f16.gguf"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        parse_and_read_everything(&bytes);
    }

    #[test]
    fn parse_never_panics_on_a_valid_header_with_arbitrary_rest(
        version in prop::sample::select(vec![2u32, 3]),
        n_tensors in prop::sample::select(vec![0u64, 1, 2, 3, 1 << 40, u64::MAX]),
        n_kv in prop::sample::select(vec![0u64, 1, 2, 1 << 40, u64::MAX]),
        rest in prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 3, 4, 8, 9, 12, 32, 0x47, 0xff]), 0..400),
    ) {
        let mut bytes = header(version, n_tensors, n_kv);
        bytes.extend(rest);
        parse_and_read_everything(&bytes);
    }

    #[test]
    fn parse_never_panics_on_a_fixture_with_bytes_overwritten(
        which in 0..FLIP_FIXTURES.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..8),
    ) {
        let mut bytes = read_fixture(FLIP_FIXTURES[which]);
        let header_len = gguf::parse(&bytes).unwrap().data_offset() as usize;
        for (at, value, anywhere) in edits {
            // Mostly in the header, where a byte decides what the rest means.
            let at = if anywhere { at.index(bytes.len()) } else { at.index(header_len) };
            bytes[at] = value;
        }
        parse_and_read_everything(&bytes);
    }
}
