//! GGUF files: the header reader and the CPU reference dequantization, the first step of
//! loading real quantized models.
//!
//! A GGUF file (versions 2 and 3, little-endian) is, in order:
//!
//! 1. the magic `GGUF`, the version (`u32`), the tensor count (`u64`) and the metadata
//!    key/value count (`u64`);
//! 2. the metadata: each a key (a string: `u64` length + UTF-8 bytes), a value type (`u32`)
//!    and a value (`u8`..`f64`, `bool`, a string, or an array: element type `u32`,
//!    count `u64`, the elements);
//! 3. the tensor infos: name (string), `n_dims` (`u32`), the dims (`u64` each, **fastest-varying
//!    first**: a row-major `[rows, cols]` matrix is listed as `[cols, rows]`), the ggml type
//!    (`u32`) and the offset of its data within the data section (`u64`);
//! 4. padding to `general.alignment` (default 32), then the data section.
//!
//! [`parse`] reads the header only and never panics: every count and length read from the
//! file is checked against the bytes that remain before anything is allocated, so a hostile
//! file cannot make it allocate more than the file's own size justifies. [`GgufFile::tensor_f32`]
//! dequantizes one tensor to a row-major [`HostTensor`], following ggml's reference
//! `dequantize_row_*` functions (ggml-quants.c) operation for operation, so the results are the
//! same f32 values ggml's CPU reference and the `gguf` Python package compute.

use std::collections::HashSet;

use glassbox_kernels::QuantFormat;

use crate::{Error, HostTensor, Result};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The data alignment when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml's `GGML_MAX_DIMS`: a tensor has at most this many dims.
pub const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal GGUF; deeper nesting than this is refused (it bounds recursion).
pub const MAX_ARRAY_NESTING: usize = 4;

/// Elements per Q8_0 / Q4_0 block (ggml's `QK8_0`, `QK4_0`).
pub const QK: usize = QuantFormat::Q8_0.block_size();
/// Elements per K-quant super-block (ggml's `QK_K`).
pub const QK_K: usize = QuantFormat::Q4_K.block_size();
/// Bytes per Q8_0 block: `f16 d` + 32 × `i8`.
pub const Q8_0_BLOCK_BYTES: usize = QuantFormat::Q8_0.block_bytes();
/// Bytes per Q4_0 block: `f16 d` + 16 bytes of nibbles.
pub const Q4_0_BLOCK_BYTES: usize = QuantFormat::Q4_0.block_bytes();
/// Bytes per Q4_K super-block: `f16 d`, `f16 dmin`, 12 bytes of scales/mins, 128 bytes of nibbles.
pub const Q4_K_BLOCK_BYTES: usize = QuantFormat::Q4_K.block_bytes();
/// Bytes per Q6_K super-block: 128 bytes `ql`, 64 bytes `qh`, 16 × `i8` scales, `f16 d`.
pub const Q6_K_BLOCK_BYTES: usize = QuantFormat::Q6_K.block_bytes();

fn weights_error(message: String) -> Error {
    Error::Weights(format!("GGUF: {message}"))
}

// ---------------------------------------------------------------------------------------------
// ggml types
// ---------------------------------------------------------------------------------------------

/// A ggml tensor type, as numbered in ggml.h's `enum ggml_type` (and `gguf.GGMLQuantizationType`).
///
/// Every live type is known, so that a file holding tensors we cannot dequantize yet still
/// parses (its metadata and the sizes of all its tensors are checked); [`GgmlType::is_supported`]
/// says which ones [`GgufFile::tensor_f32`] can dequantize.
#[allow(non_camel_case_types)] // ggml's own names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
}

/// `(type, id, name, elements per block, bytes per block)`, from ggml's type traits
/// (the same table as `gguf.GGML_QUANT_SIZES`; `core/tests/gguf.rs` compares them).
const GGML_TYPES: [(GgmlType, u32, &str, u64, u64); 34] = [
    (GgmlType::F32, 0, "F32", 1, 4),
    (GgmlType::F16, 1, "F16", 1, 2),
    (GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "Q8_1", 32, 40),
    (GgmlType::Q2_K, 10, "Q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "Q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "Q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "Q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "Q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "Q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (GgmlType::IQ2_XS, 17, "IQ2_XS", 256, 74),
    (GgmlType::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (GgmlType::IQ1_S, 19, "IQ1_S", 256, 50),
    (GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 18),
    (GgmlType::IQ3_S, 21, "IQ3_S", 256, 110),
    (GgmlType::IQ2_S, 22, "IQ2_S", 256, 82),
    (GgmlType::IQ4_XS, 23, "IQ4_XS", 256, 136),
    (GgmlType::I8, 24, "I8", 1, 1),
    (GgmlType::I16, 25, "I16", 1, 2),
    (GgmlType::I32, 26, "I32", 1, 4),
    (GgmlType::I64, 27, "I64", 1, 8),
    (GgmlType::F64, 28, "F64", 1, 8),
    (GgmlType::IQ1_M, 29, "IQ1_M", 256, 56),
    (GgmlType::BF16, 30, "BF16", 1, 2),
    (GgmlType::TQ1_0, 34, "TQ1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "TQ2_0", 256, 66),
    (GgmlType::MXFP4, 39, "MXFP4", 32, 17),
    (GgmlType::NVFP4, 40, "NVFP4", 64, 36),
    (GgmlType::Q1_0, 41, "Q1_0", 128, 18),
];

/// Type ids ggml used once and removed (their layouts are gone, so such tensors cannot be sized).
const REMOVED_GGML_TYPES: [(u32, &str); 8] =
    [(4, "Q4_2"), (5, "Q4_3"), (31, "Q4_0_4_4"), (32, "Q4_0_4_8"), (33, "Q4_0_8_8"), (36, "IQ4_NL_4_4"), (37, "IQ4_NL_4_8"), (38, "IQ4_NL_8_8")];

/// The types [`GgufFile::tensor_f32`] dequantizes: those of [`QuantFormat::ALL`], in its order
/// (a unit test keeps the two equal).
pub const SUPPORTED_TYPES: [GgmlType; 6] = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K];

impl GgmlType {
    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        GGML_TYPES.iter().find(|row| row.0 == self).expect("every GgmlType has a row in GGML_TYPES")
    }

    /// The type with ggml id `id`, if ggml has one.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GGML_TYPES.iter().find(|row| row.1 == id).map(|row| row.0)
    }

    /// Every type ggml currently defines.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        GGML_TYPES.iter().map(|row| row.0)
    }

    /// ggml's numeric id (the `u32` stored in a tensor info).
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// ggml's name: `"Q4_K"`.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The weight format of this type, for the types glassbox reads (block geometry, the
    /// dequantizer and the GPU kernels are [`QuantFormat`]'s).
    pub fn format(self) -> Option<QuantFormat> {
        QuantFormat::from_ggml_type_id(self.id())
    }

    /// The GGUF type of a weight format.
    pub fn of_format(format: QuantFormat) -> GgmlType {
        GgmlType::from_id(format.ggml_type_id()).expect("every QuantFormat is a ggml type")
    }

    /// Elements per block (1 for the plain types, 32 for Q8_0/Q4_0, 256 for K-quants).
    pub fn block_size(self) -> u64 {
        self.format().map_or(self.row().3, |f| f.block_size() as u64)
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.format().map_or(self.row().4, |f| f.block_bytes() as u64)
    }

    /// Whether [`GgufFile::tensor_f32`] can dequantize this type.
    pub fn is_supported(self) -> bool {
        self.format().is_some()
    }
}

impl From<QuantFormat> for GgmlType {
    fn from(format: QuantFormat) -> GgmlType {
        GgmlType::of_format(format)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata values
// ---------------------------------------------------------------------------------------------

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(MetaArray),
}

/// A metadata array: all elements have one type, stored unboxed (a vocabulary is a
/// `Vec<String>`, its scores a `Vec<f32>`).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetaArray>),
}

/// GGUF's value type ids (`gguf_type`).
mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;

    /// The name of a value type, for messages.
    pub fn name(id: u32) -> &'static str {
        match id {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            BOOL => "bool",
            STRING => "string",
            ARRAY => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
            _ => "unknown",
        }
    }

    /// The fewest bytes one value of this type takes in the file (a string: its length,
    /// an array: its element type and count), or `None` for an unknown type.
    pub fn min_size(id: u32) -> Option<u64> {
        Some(match id {
            U8 | I8 | BOOL => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | STRING => 8,
            ARRAY => 12,
            _ => return None,
        })
    }
}

impl MetaValue {
    /// The GGUF name of the value's type (`"u32"`, `"string"`, `"array of f32"`...).
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::U8(_) => "u8".into(),
            MetaValue::I8(_) => "i8".into(),
            MetaValue::U16(_) => "u16".into(),
            MetaValue::I16(_) => "i16".into(),
            MetaValue::U32(_) => "u32".into(),
            MetaValue::I32(_) => "i32".into(),
            MetaValue::U64(_) => "u64".into(),
            MetaValue::I64(_) => "i64".into(),
            MetaValue::F32(_) => "f32".into(),
            MetaValue::F64(_) => "f64".into(),
            MetaValue::Bool(_) => "bool".into(),
            MetaValue::String(_) => "string".into(),
            MetaValue::Array(a) => format!("array of {}", a.element_type_name()),
        }
    }

    /// The value as an integer, whatever its integer type; `None` for non-integers.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl MetaArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::F64(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::String(v) => v.len(),
            MetaArray::Array(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The GGUF name of the element type.
    pub fn element_type_name(&self) -> &'static str {
        match self {
            MetaArray::U8(_) => "u8",
            MetaArray::I8(_) => "i8",
            MetaArray::U16(_) => "u16",
            MetaArray::I16(_) => "i16",
            MetaArray::U32(_) => "u32",
            MetaArray::I32(_) => "i32",
            MetaArray::U64(_) => "u64",
            MetaArray::I64(_) => "i64",
            MetaArray::F32(_) => "f32",
            MetaArray::F64(_) => "f64",
            MetaArray::Bool(_) => "bool",
            MetaArray::String(_) => "string",
            MetaArray::Array(_) => "array",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parsed file
// ---------------------------------------------------------------------------------------------

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name (`"blk.0.attn_qkv.weight"`).
    pub name: String,
    /// The dims as GGUF lists them, **fastest-varying first** (ggml's `ne`): a row-major
    /// `[rows, cols]` matrix has `dims == [cols, rows]`. See [`TensorInfo::shape`].
    pub dims: Vec<u64>,
    /// How the data are stored.
    pub ggml_type: GgmlType,
    /// Where the data start, in bytes from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The shape in row-major order (slowest-varying first), i.e. `dims` reversed: what
    /// [`HostTensor::shape`] holds.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect()
    }

    /// Number of elements (the product of the dims), or `None` if it overflows `u64`.
    pub fn n_elements(&self) -> Option<u64> {
        self.dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
    }

    /// Size of the data in bytes, or `None` if it overflows or the fastest dim is not a
    /// whole number of blocks.
    pub fn n_bytes(&self) -> Option<u64> {
        let block = self.ggml_type.block_size();
        if !self.dims.first().copied().unwrap_or(1).is_multiple_of(block) {
            return None;
        }
        (self.n_elements()? / block).checked_mul(self.ggml_type.type_size())
    }
}

/// A parsed GGUF header: metadata and tensor infos. The tensor data stay in the caller's bytes;
/// [`GgufFile::tensor_f32`] reads them from there.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufFile {
    /// The format version (2 or 3).
    pub version: u32,
    /// The metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    /// The tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    alignment: u64,
    /// Byte offset of the data section from the start of the file.
    data_offset: u64,
}

impl GgufFile {
    /// Byte offset of the data section from the start of the file (tensor offsets count from here).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The data alignment: `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The value of metadata key `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.get(key).ok_or_else(|| weights_error(format!("metadata key '{key}' is missing")))
    }

    fn wrong_type(key: &str, value: &MetaValue, wanted: &str) -> Error {
        weights_error(format!("metadata key '{key}' is a {}, expected {wanted}", value.type_name()))
    }

    /// The string at `key`.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let value = self.require(key)?;
        value.as_str().ok_or_else(|| Self::wrong_type(key, value, "a string"))
    }

    fn get_int<T: TryFrom<i128>>(&self, key: &str, wanted: &str) -> Result<T> {
        let value = self.require(key)?;
        let n = value.as_i128().ok_or_else(|| Self::wrong_type(key, value, wanted))?;
        T::try_from(n).map_err(|_| weights_error(format!("metadata key '{key}' is {n}, which does not fit in {wanted}")))
    }

    /// The integer at `key` as a `u32`: any integer type is accepted if the value fits.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_int(key, "a u32")
    }

    /// The integer at `key` as a `u64`: any integer type is accepted if the value fits.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_int(key, "a u64")
    }

    /// The integer at `key` as an `i64`: any integer type is accepted if the value fits.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.get_int(key, "an i64")
    }

    /// The float at `key` (an `f32`, or an `f64` rounded to `f32`).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        match self.require(key)? {
            MetaValue::F32(v) => Ok(*v),
            MetaValue::F64(v) => Ok(*v as f32),
            other => Err(Self::wrong_type(key, other, "a float")),
        }
    }

    /// The bool at `key`.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            MetaValue::Bool(v) => Ok(*v),
            other => Err(Self::wrong_type(key, other, "a bool")),
        }
    }

    /// The array at `key`.
    pub fn get_array(&self, key: &str) -> Result<&MetaArray> {
        match self.require(key)? {
            MetaValue::Array(a) => Ok(a),
            other => Err(Self::wrong_type(key, other, "an array")),
        }
    }

    /// The array of strings at `key` (a vocabulary, merges).
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            MetaArray::String(v) => Ok(v),
            other => Err(weights_error(format!("metadata key '{key}' is an array of {}, expected an array of strings", other.element_type_name()))),
        }
    }

    /// The array of f32 at `key` (token scores).
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get_array(key)? {
            MetaArray::F32(v) => Ok(v),
            other => Err(weights_error(format!("metadata key '{key}' is an array of {}, expected an array of f32", other.element_type_name()))),
        }
    }

    /// The tensor info named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The byte range of tensor `info`'s data within the file, checked against `file_len`.
    pub fn tensor_data_range(&self, info: &TensorInfo, file_len: usize) -> Result<std::ops::Range<usize>> {
        let n_bytes = tensor_n_bytes(info)?;
        let past_end = || {
            weights_error(format!(
                "tensor '{}' ({} bytes at offset {} of the data section, which starts at byte {}) runs past the end of the file ({file_len} bytes)",
                info.name, n_bytes, info.offset, self.data_offset
            ))
        };
        let start = self.data_offset.checked_add(info.offset).ok_or_else(past_end)?;
        let end = start.checked_add(n_bytes).ok_or_else(past_end)?;
        if end > file_len as u64 {
            return Err(past_end());
        }
        // Both fit in usize: they are at most file_len.
        Ok(start as usize..end as usize)
    }

    /// Tensor `name` dequantized to f32, with its row-major shape (the reversed GGUF dims).
    /// `bytes` is the whole file, as given to [`parse`].
    pub fn tensor_f32(&self, bytes: &[u8], name: &str) -> Result<HostTensor> {
        let info = self.tensor(name).ok_or_else(|| {
            let mut names: Vec<&str> = self.tensors.iter().take(8).map(|t| t.name.as_str()).collect();
            if self.tensors.len() > 8 {
                names.push("...");
            }
            weights_error(format!("no tensor named '{name}' (the file has {} tensors: {})", self.tensors.len(), names.join(", ")))
        })?;
        if !info.ggml_type.is_supported() {
            let supported: Vec<&str> = SUPPORTED_TYPES.iter().map(|t| t.name()).collect();
            return Err(weights_error(format!(
                "tensor '{}' has ggml type {} ({}), which glassbox cannot dequantize yet (supported: {})",
                info.name,
                info.ggml_type.id(),
                info.ggml_type.name(),
                supported.join(", ")
            )));
        }
        let range = self.tensor_data_range(info, bytes.len())?;
        let data = &bytes[range];
        // The element count is at most 2 per byte of data present (F16 has 1 per 2 bytes,
        // Q4_K 256 per 144), so this allocation is bounded by the file's size.
        let n = usize::try_from(info.n_elements().unwrap_or(u64::MAX))
            .map_err(|_| weights_error(format!("tensor '{}' has too many elements for this machine", info.name)))?;
        let mut out = vec![0f32; n];
        dequantize(info.ggml_type, data, &mut out)?;
        Ok(HostTensor { shape: info.shape(), data: out })
    }
}

/// Dequantizes `data` (whole blocks of `ty`) into `out`: an error, not a panic, when the type
/// is not supported or the sizes do not agree.
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) -> Result<()> {
    let (block, size) = (ty.block_size() as usize, ty.type_size() as usize);
    if !ty.is_supported() {
        return Err(weights_error(format!("ggml type {ty} cannot be dequantized yet")));
    }
    if !out.len().is_multiple_of(block) || data.len() != out.len() / block * size {
        return Err(weights_error(format!("{} bytes of {ty} do not hold {} values", data.len(), out.len())));
    }
    let format = ty.format().expect("is_supported: a QuantFormat");
    format.dequantize_into(data, out);
    Ok(())
}

/// The data size of `info`, or an error naming what is wrong with its dims.
fn tensor_n_bytes(info: &TensorInfo) -> Result<u64> {
    let block = info.ggml_type.block_size();
    let row = info.dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block) {
        return Err(weights_error(format!(
            "tensor '{}' has rows of {row} elements, not a whole number of {} blocks ({block} elements each)",
            info.name, info.ggml_type
        )));
    }
    info.n_bytes().ok_or_else(|| weights_error(format!("tensor '{}' dims {:?}: the element count or byte size overflows 64 bits", info.name, info.dims)))
}

// ---------------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------------

/// A cursor over the file. Every read names what it reads (`what`, built only on error) so a
/// truncated file says which field it ends in.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(weights_error(format!(
                "truncated: the file ends at byte {} while reading {} ({n} bytes needed at byte {}, {} left)",
                self.bytes.len(),
                what(),
                self.pos,
                self.remaining()
            )));
        }
        let n = n as usize; // n <= remaining, which fits in usize.
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string: `u64` length + UTF-8 bytes. The length is checked against the bytes
    /// left before anything is allocated.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let len = self.u64(|| format!("the length of {}", what()))?;
        if len > self.remaining() {
            return Err(weights_error(format!(
                "{} claims a length of {len} bytes, but only {} bytes are left in the file (at byte {})",
                what(),
                self.remaining(),
                self.pos
            )));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| weights_error(format!("{} is not valid UTF-8 ({e})", what())))
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit in what is left,
    /// so that `count` may be used as a capacity.
    fn check_count(&self, count: u64, min_size: u64, what: &dyn Fn() -> String) -> Result<usize> {
        let need = count.checked_mul(min_size);
        match need {
            Some(need) if need <= self.remaining() => Ok(count as usize), // <= remaining: fits in usize.
            _ => Err(weights_error(format!(
                "{} claims {count} entries of at least {min_size} bytes each, but only {} bytes are left in the file (at byte {})",
                what(),
                self.remaining(),
                self.pos
            ))),
        }
    }

    /// One metadata value of value type `type_id`.
    fn value(&mut self, type_id: u32, depth: usize, what: &dyn Fn() -> String) -> Result<MetaValue> {
        use value_type as t;
        Ok(match type_id {
            t::U8 => MetaValue::U8(u8::from_le_bytes(self.array(what)?)),
            t::I8 => MetaValue::I8(i8::from_le_bytes(self.array(what)?)),
            t::U16 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            t::I16 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            t::U32 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            t::I32 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            t::U64 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            t::I64 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            t::F32 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            t::F64 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            t::BOOL => MetaValue::Bool(self.bool(what)?),
            t::STRING => MetaValue::String(self.string(what)?),
            t::ARRAY => MetaValue::Array(self.meta_array(depth + 1, what)?),
            other => return Err(unknown_value_type(other, what)),
        })
    }

    fn bool(&mut self, what: &dyn Fn() -> String) -> Result<bool> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(weights_error(format!("{} is a bool stored as {b}; only 0 and 1 are valid", what()))),
        }
    }

    /// An array: element type, count, elements. `depth` counts enclosing arrays.
    fn meta_array(&mut self, depth: usize, what: &dyn Fn() -> String) -> Result<MetaArray> {
        use value_type as t;
        if depth > MAX_ARRAY_NESTING {
            return Err(weights_error(format!("{} nests arrays more than {MAX_ARRAY_NESTING} deep", what())));
        }
        let element_type = self.u32(|| format!("the element type of {}", what()))?;
        let count = self.u64(|| format!("the element count of {}", what()))?;
        let min_size = t::min_size(element_type).ok_or_else(|| unknown_value_type(element_type, &|| format!("the elements of {}", what())))?;
        let n = self.check_count(count, min_size, &|| format!("{} (an array of {})", what(), t::name(element_type)))?;

        macro_rules! numbers {
            ($variant:ident, $ty:ty) => {{
                let size = std::mem::size_of::<$ty>();
                let bytes = self.take((n * size) as u64, what)?;
                MetaArray::$variant(bytes.chunks_exact(size).map(|c| <$ty>::from_le_bytes(c.try_into().unwrap())).collect())
            }};
        }
        Ok(match element_type {
            t::U8 => numbers!(U8, u8),
            t::I8 => numbers!(I8, i8),
            t::U16 => numbers!(U16, u16),
            t::I16 => numbers!(I16, i16),
            t::U32 => numbers!(U32, u32),
            t::I32 => numbers!(I32, i32),
            t::U64 => numbers!(U64, u64),
            t::I64 => numbers!(I64, i64),
            t::F32 => numbers!(F32, f32),
            t::F64 => numbers!(F64, f64),
            t::BOOL => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(self.bool(&|| format!("element {i} of {}", what()))?);
                }
                MetaArray::Bool(out)
            }
            t::STRING => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(self.string(&|| format!("string {i} of {}", what()))?);
                }
                MetaArray::String(out)
            }
            t::ARRAY => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(self.meta_array(depth + 1, &|| format!("element {i} of {}", what()))?);
                }
                MetaArray::Array(out)
            }
            other => return Err(unknown_value_type(other, what)),
        })
    }
}

fn unknown_value_type(id: u32, what: &dyn Fn() -> String) -> Error {
    weights_error(format!("{} has unknown value type {id} (GGUF defines 0..=12)", what()))
}

/// Parses a GGUF file's header (metadata and tensor infos) and checks that every tensor's data
/// lie inside `bytes`. Never panics; every error names what is wrong and where.
pub fn parse(bytes: &[u8]) -> Result<GgufFile> {
    let mut r = Reader { bytes, pos: 0 };

    let magic: [u8; 4] = r.array(|| "the magic (the first 4 bytes, \"GGUF\")".into())?;
    if magic != MAGIC {
        return Err(weights_error(format!(
            "not a GGUF file: the first 4 bytes are {:?} ({}), expected \"GGUF\"",
            String::from_utf8_lossy(&magic),
            magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        )));
    }
    let version = r.u32(|| "the version".into())?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            " (this looks like a big-endian GGUF file; only little-endian files are read)"
        } else {
            ""
        };
        return Err(weights_error(format!("unsupported GGUF version {version}{hint}; glassbox reads versions 2 and 3")));
    }
    let tensor_count = r.u64(|| "the tensor count".into())?;
    let kv_count = r.u64(|| "the metadata count".into())?;

    // A metadata entry takes at least 13 bytes (key length 8, value type 4, value 1) and a
    // tensor info at least 24 (name length 8, n_dims 4, type 4, offset 8): the counts must fit.
    let kv_count = r.check_count(kv_count, 13, &|| "the header's metadata count".into())?;
    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(kv_count);
    let mut keys = HashSet::with_capacity(kv_count);
    for i in 0..kv_count {
        let key = r.string(&|| format!("the key of metadata entry {i}"))?;
        let what = || format!("metadata '{key}'");
        let type_id = r.u32(|| format!("the value type of {}", what()))?;
        let value = r.value(type_id, 0, &what)?;
        if !keys.insert(key.clone()) {
            return Err(weights_error(format!("metadata key '{key}' appears twice")));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some((_, MetaValue::U32(a))) if a.is_power_of_two() => u64::from(*a),
        Some((_, value)) => return Err(weights_error(format!("'{ALIGNMENT_KEY}' must be a u32 power of two, found {} {value:?}", value.type_name()))),
    };

    let tensor_count = r.check_count(tensor_count, 24, &|| "the header's tensor count".into())?;
    let mut tensors = Vec::with_capacity(tensor_count);
    let mut names = HashSet::with_capacity(tensor_count);
    for i in 0..tensor_count {
        let name = r.string(&|| format!("the name of tensor {i}"))?;
        let what = |field: &str| format!("{field} of tensor {i} ('{name}')");
        let n_dims = r.u32(|| what("the number of dims"))?;
        if n_dims > MAX_DIMS {
            return Err(weights_error(format!("tensor '{name}' has {n_dims} dims; ggml allows at most {MAX_DIMS}")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            let dim = r.u64(|| what(&format!("dim {d}")))?;
            if dim > i64::MAX as u64 {
                return Err(weights_error(format!("tensor '{name}' dim {d} is {dim}, larger than ggml's limit of 2^63 - 1")));
            }
            dims.push(dim);
        }
        let type_id = r.u32(|| what("the ggml type"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| match REMOVED_GGML_TYPES.iter().find(|(id, _)| *id == type_id) {
            Some((_, old)) => weights_error(format!("tensor '{name}' has ggml type {type_id} ({old}), a type ggml has removed; re-quantize the model")),
            None => weights_error(format!("tensor '{name}' has unknown ggml type id {type_id}")),
        })?;
        let offset = r.u64(|| what("the data offset"))?;
        if !offset.is_multiple_of(alignment) {
            return Err(weights_error(format!("tensor '{name}' data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        if !names.insert(name.clone()) {
            return Err(weights_error(format!("tensor name '{name}' appears twice")));
        }
        let info = TensorInfo { name, dims, ggml_type, offset };
        tensor_n_bytes(&info)?; // Reports bad rows and overflowing dims now.
        tensors.push(info);
    }

    let header_end = r.pos as u64;
    let data_offset = header_end.div_ceil(alignment) * alignment; // header_end <= len: no overflow.
    let file = GgufFile { version, metadata, tensors, alignment, data_offset };
    for info in &file.tensors {
        file.tensor_data_range(info, bytes.len())?;
    }
    Ok(file)
}

// ---------------------------------------------------------------------------------------------
// Dequantization: ggml's reference dequantize_row_* (ggml-quants.c), operation for operation.
// One implementation per format, `QuantFormat::dequantize_into` (glassbox-kernels, where the
// GPU kernels' CPU references use it too); these name it per format.
// ---------------------------------------------------------------------------------------------

fn check_lengths(name: &str, blocks: &[u8], block_bytes: usize, out: &[f32], block_size: usize) {
    assert!(
        blocks.len().is_multiple_of(block_bytes) && blocks.len() / block_bytes * block_size == out.len(),
        "{name}: {} bytes of {block_bytes}-byte blocks do not hold {} values",
        blocks.len(),
        out.len()
    );
}

/// F32: little-endian `f32`, 4 bytes per value.
///
/// # Panics
/// If `data.len() != 4 * out.len()`.
pub fn dequantize_f32(data: &[u8], out: &mut [f32]) {
    check_lengths("F32", data, 4, out, 1);
    QuantFormat::F32.dequantize_into(data, out);
}

/// F16: little-endian IEEE half, 2 bytes per value, widened exactly.
///
/// # Panics
/// If `data.len() != 2 * out.len()`.
pub fn dequantize_f16(data: &[u8], out: &mut [f32]) {
    check_lengths("F16", data, 2, out, 1);
    QuantFormat::F16.dequantize_into(data, out);
}

/// Q8_0: blocks of 32 values, 34 bytes each:
///
/// | bytes  | field | meaning                  |
/// |--------|-------|--------------------------|
/// | 0..2   | `d`   | f16 scale                |
/// | 2..34  | `qs`  | 32 × i8, value `j` = `qs[j] * d` |
///
/// # Panics
/// If `blocks.len() / 34 * 32 != out.len()` or `blocks.len()` is not a multiple of 34.
pub fn dequantize_q8_0(blocks: &[u8], out: &mut [f32]) {
    check_lengths("Q8_0", blocks, Q8_0_BLOCK_BYTES, out, QK);
    QuantFormat::Q8_0.dequantize_into(blocks, out);
}

/// Q4_0: blocks of 32 values, 18 bytes each:
///
/// | bytes  | field | meaning |
/// |--------|-------|---------|
/// | 0..2   | `d`   | f16 scale |
/// | 2..18  | `qs`  | 16 bytes of nibbles: the low nibble of `qs[j]` is value `j`, the high nibble value `j + 16` |
///
/// value = `(nibble - 8) * d`.
///
/// # Panics
/// If `blocks.len() / 18 * 32 != out.len()` or `blocks.len()` is not a multiple of 18.
pub fn dequantize_q4_0(blocks: &[u8], out: &mut [f32]) {
    check_lengths("Q4_0", blocks, Q4_0_BLOCK_BYTES, out, QK);
    QuantFormat::Q4_0.dequantize_into(blocks, out);
}

/// Q4_K's packed sub-block scales and mins (ggml's `get_scale_min_k4`).
pub use glassbox_kernels::ops::linear_q4_k::scale_min_k4 as get_scale_min_k4;

/// Q4_K: super-blocks of 256 values, 144 bytes each, in 8 sub-blocks of 32:
///
/// | bytes   | field    | meaning |
/// |---------|----------|---------|
/// | 0..2    | `d`      | f16 super-block scale for the sub-block scales |
/// | 2..4    | `dmin`   | f16 super-block scale for the sub-block mins |
/// | 4..16   | `scales` | 8 × (6-bit scale, 6-bit min), packed (ggml's `get_scale_min_k4`) |
/// | 16..144 | `qs`     | 128 bytes of nibbles |
///
/// Each 64 values use 32 bytes of `qs`: the low nibbles are the first 32 values (sub-block
/// `2i`), the high nibbles the next 32 (sub-block `2i + 1`). value =
/// `(d * scale) * nibble - (dmin * min)`.
///
/// # Panics
/// If `blocks.len() / 144 * 256 != out.len()` or `blocks.len()` is not a multiple of 144.
pub fn dequantize_q4_k(blocks: &[u8], out: &mut [f32]) {
    check_lengths("Q4_K", blocks, Q4_K_BLOCK_BYTES, out, QK_K);
    QuantFormat::Q4_K.dequantize_into(blocks, out);
}

/// Q6_K: super-blocks of 256 values, 210 bytes each, in 16 sub-blocks of 16:
///
/// | bytes    | field    | meaning |
/// |----------|----------|---------|
/// | 0..128   | `ql`     | low 4 bits of each value |
/// | 128..192 | `qh`     | high 2 bits of each value |
/// | 192..208 | `scales` | 16 × i8, one per 16 consecutive values |
/// | 208..210 | `d`      | f16 super-block scale |
///
/// Each half (128 values) uses 64 bytes of `ql` and 32 of `qh`: for `l` in 0..32, values
/// `l`, `l + 32`, `l + 64`, `l + 96` take their low 4 bits from the low nibble of `ql[l]`,
/// the low nibble of `ql[l + 32]`, the high nibble of `ql[l]`, the high nibble of `ql[l + 32]`,
/// and their high 2 bits from bits 0-1, 2-3, 4-5, 6-7 of `qh[l]`.
/// value = `(d * scale) * (q - 32)` with `q` in 0..64.
///
/// # Panics
/// If `blocks.len() / 210 * 256 != out.len()` or `blocks.len()` is not a multiple of 210.
pub fn dequantize_q6_k(blocks: &[u8], out: &mut [f32]) {
    check_lengths("Q6_K", blocks, Q6_K_BLOCK_BYTES, out, QK_K);
    QuantFormat::Q6_K.dequantize_into(blocks, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_types_are_the_weight_formats() {
        let formats: Vec<Option<QuantFormat>> = SUPPORTED_TYPES.iter().map(|t| t.format()).collect();
        assert_eq!(formats, QuantFormat::ALL.map(Some).to_vec());
        for f in QuantFormat::ALL {
            let t = GgmlType::of_format(f);
            assert_eq!(t.name().to_ascii_lowercase(), f.name());
            // ggml's table agrees with the format's own geometry.
            assert_eq!((t.row().3, t.row().4), (f.block_size() as u64, f.block_bytes() as u64), "{t}");
        }
        assert_eq!(GgmlType::Q4_1.format(), None);
    }
}
