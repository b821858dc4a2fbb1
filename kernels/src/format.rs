//! [`QuantFormat`]: every weight format glassbox reads, in one place: its GGUF type code, its
//! block geometry, its one dequantizer, its quantizer (where quantize-on-load has one) and the
//! kernels that read its blocks on the GPU.
//!
//! | format | GGUF type | values / block | bytes / block | GPU linear | GPU embedding |
//! | --- | --- | --- | --- | --- | --- |
//! | `f32`  | 0  | 1   | 4   | dense `linear` | dense `embed` |
//! | `f16`  | 1  | 1   | 2   | dequantized at upload | dequantized at upload |
//! | `q8_0` | 8  | 32  | 34  | `linear_q8_0` | `embed_q8_0` |
//! | `q4_0` | 2  | 32  | 18  | `linear_q4_0` | `embed_q4_0` |
//! | `q4_k` | 12 | 256 | 144 | `linear_q4_k` | dequantized at upload |
//! | `q6_k` | 14 | 256 | 210 | `linear_q6_k` | dequantized at upload |
//!
//! `"q8_0".parse::<QuantFormat>()` and `QuantFormat::Q8_0.to_string()` use the lowercase names.

use crate::ops::{self, KernelDef};

/// A weight format: how the values of a matrix are stored (GGUF's tensor types that glassbox
/// reads). The `Debug` form is GGUF's name ("Q8_0"), `Display` / `FromStr` the lowercase one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantFormat {
    /// Plain little-endian f32.
    F32,
    /// IEEE half, little-endian.
    F16,
    /// 34 bytes per 32 weights: f16 scale, 32 x i8.
    Q8_0,
    /// 18 bytes per 32 weights: f16 scale, 32 x 4-bit (offset 8).
    Q4_0,
    /// 144 bytes per 256 weights: f16 d and dmin, 8 packed 6-bit scales and mins, 4-bit values.
    Q4_K,
    /// 210 bytes per 256 weights: 4 low bits, 2 high bits, 16 x i8 scales, f16 d.
    Q6_K,
}

/// The error of parsing a [`QuantFormat`] from a name that is none of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown weight format {0:?} (f32, f16, q8_0, q4_0, q4_k or q6_k)")]
pub struct UnknownFormat(pub String);

impl QuantFormat {
    /// Every format, in the order of the table above.
    pub const ALL: [QuantFormat; 6] = [QuantFormat::F32, QuantFormat::F16, QuantFormat::Q8_0, QuantFormat::Q4_0, QuantFormat::Q4_K, QuantFormat::Q6_K];

    /// The lowercase name ("f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k").
    pub const fn name(self) -> &'static str {
        match self {
            QuantFormat::F32 => "f32",
            QuantFormat::F16 => "f16",
            QuantFormat::Q8_0 => "q8_0",
            QuantFormat::Q4_0 => "q4_0",
            QuantFormat::Q4_K => "q4_k",
            QuantFormat::Q6_K => "q6_k",
        }
    }

    /// GGUF's (ggml's) type code of the format.
    pub const fn ggml_type_id(self) -> u32 {
        match self {
            QuantFormat::F32 => 0,
            QuantFormat::F16 => 1,
            QuantFormat::Q4_0 => 2,
            QuantFormat::Q8_0 => 8,
            QuantFormat::Q4_K => 12,
            QuantFormat::Q6_K => 14,
        }
    }

    /// The format of GGUF type code `id`, if glassbox reads it.
    pub fn from_ggml_type_id(id: u32) -> Option<QuantFormat> {
        QuantFormat::ALL.into_iter().find(|f| f.ggml_type_id() == id)
    }

    /// Values per block (1 for f32 / f16).
    pub const fn block_size(self) -> usize {
        match self {
            QuantFormat::F32 | QuantFormat::F16 => 1,
            QuantFormat::Q8_0 | QuantFormat::Q4_0 => 32,
            QuantFormat::Q4_K | QuantFormat::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QuantFormat::F32 => 4,
            QuantFormat::F16 => 2,
            QuantFormat::Q8_0 => 34,
            QuantFormat::Q4_0 => 18,
            QuantFormat::Q4_K => 144,
            QuantFormat::Q6_K => 210,
        }
    }

    /// True for the block formats (everything but f32 and f16).
    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes of an `[n, k]` matrix stored in rows of k values. Panics unless k is a whole
    /// number of blocks.
    #[track_caller]
    pub fn matrix_bytes(self, n: usize, k: usize) -> usize {
        assert!(
            k.is_multiple_of(self.block_size()),
            "{}: k = {k} is not a multiple of {} (the block size); quantized weights need whole \
             blocks along k",
            self.name(),
            self.block_size(),
        );
        n * (k / self.block_size()) * self.block_bytes()
    }

    /// The kernels that compute `x @ W + b` reading this format's blocks of `W_t [n, k]` as
    /// they are, if there are: (alone, with an epilogue: `ops::linear_epilogue`).
    pub(crate) fn linear_kernels(self) -> Option<(KernelDef, KernelDef)> {
        use ops::linear_epilogue::{LINEAR_Q4_0_EPILOGUE, LINEAR_Q4_K_EPILOGUE, LINEAR_Q6_K_EPILOGUE, LINEAR_Q8_0_EPILOGUE};
        match self {
            QuantFormat::Q8_0 => Some((ops::linear_quant::LINEAR_Q8_0, LINEAR_Q8_0_EPILOGUE)),
            QuantFormat::Q4_0 => Some((ops::linear_quant::LINEAR_Q4_0, LINEAR_Q4_0_EPILOGUE)),
            QuantFormat::Q4_K => Some((ops::linear_q4_k::LINEAR_Q4_K, LINEAR_Q4_K_EPILOGUE)),
            QuantFormat::Q6_K => Some((ops::linear_q6_k::LINEAR_Q6_K, LINEAR_Q6_K_EPILOGUE)),
            QuantFormat::F32 | QuantFormat::F16 => None,
        }
    }

    /// The kernel that gathers embedding rows from this format's blocks, if there is one.
    pub(crate) fn embed_kernel(self) -> Option<KernelDef> {
        match self {
            QuantFormat::Q8_0 => Some(ops::embed_quant::EMBED_Q8_0),
            QuantFormat::Q4_0 => Some(ops::embed_quant::EMBED_Q4_0),
            _ => None,
        }
    }

    /// True when a GPU linear layer reads this format's blocks as they are
    /// ([`crate::Recorder::linear_quant`] of a [`crate::QuantTensor`]).
    pub fn has_linear_kernel(self) -> bool {
        self.linear_kernels().is_some()
    }

    /// True when a GPU embedding gathers from this format's blocks as they are
    /// ([`crate::Recorder::embed_quant`]).
    pub fn has_embed_kernel(self) -> bool {
        self.embed_kernel().is_some()
    }

    /// This format's bytes -> f32 (ggml's reference `dequantize_row_*`, bit-exact). Panics
    /// unless `bytes` is a whole number of blocks.
    #[track_caller]
    pub fn dequantize(self, bytes: &[u8]) -> Vec<f32> {
        let mut out = vec![0.0; bytes.len() / self.block_bytes() * self.block_size()];
        self.dequantize_into(bytes, &mut out);
        out
    }

    /// [`QuantFormat::dequantize`] into `out`. Panics unless `bytes` is a whole number of
    /// blocks holding exactly `out.len()` values.
    #[track_caller]
    pub fn dequantize_into(self, bytes: &[u8], out: &mut [f32]) {
        let (size, block) = (self.block_bytes(), self.block_size());
        assert!(
            bytes.len().is_multiple_of(size) && bytes.len() / size * block == out.len(),
            "dequantize {}: {} bytes of {size}-byte blocks do not hold {} values",
            self.name(),
            bytes.len(),
            out.len()
        );
        match self {
            QuantFormat::F32 => {
                for (y, x) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *y = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
                }
            }
            QuantFormat::F16 => {
                for (y, x) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *y = f16_le(x);
                }
            }
            QuantFormat::Q8_0 => ops::linear_quant::dequantize_q8_0_into(bytes, out),
            QuantFormat::Q4_0 => ops::linear_quant::dequantize_q4_0_into(bytes, out),
            QuantFormat::Q4_K => out.copy_from_slice(&ops::linear_q4_k::dequantize_q4_k(bytes)),
            QuantFormat::Q6_K => out.copy_from_slice(&ops::linear_q6_k::dequantize_q6_k(bytes)),
        }
    }

    /// f32 values -> this format's bytes, where glassbox has a quantizer: Q8_0 and Q4_0 (ggml's
    /// reference quantizers, byte for byte), F16 (round to nearest even) and F32. `None` for
    /// the K-quants. Panics unless `x.len()` is a whole number of blocks.
    #[track_caller]
    pub fn quantize(self, x: &[f32]) -> Option<Vec<u8>> {
        match self {
            QuantFormat::F32 => Some(x.iter().flat_map(|v| v.to_le_bytes()).collect()),
            QuantFormat::F16 => Some(x.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect()),
            QuantFormat::Q8_0 => Some(ops::linear_quant::quantize_q8_0(x)),
            QuantFormat::Q4_0 => Some(ops::linear_quant::quantize_q4_0(x)),
            QuantFormat::Q4_K | QuantFormat::Q6_K => None,
        }
    }
}

/// The little-endian IEEE half at the start of `b`, widened exactly.
pub(crate) fn f16_le(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

impl std::fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QuantFormat {
    type Err = UnknownFormat;

    /// The lowercase names of [`QuantFormat::name`]; GGUF's uppercase spellings too ("Q8_0").
    fn from_str(s: &str) -> Result<QuantFormat, UnknownFormat> {
        QuantFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in QuantFormat::ALL {
            assert_eq!(f.to_string().parse::<QuantFormat>(), Ok(f));
            assert_eq!(QuantFormat::from_ggml_type_id(f.ggml_type_id()), Some(f));
        }
        assert_eq!("Q4_K".parse::<QuantFormat>(), Ok(QuantFormat::Q4_K));
        assert!("q5_0".parse::<QuantFormat>().unwrap_err().to_string().contains("q8_0"));
    }

    #[test]
    fn kernels_read_the_formats_they_say() {
        for f in QuantFormat::ALL {
            assert_eq!(f.has_linear_kernel(), f.is_quantized(), "{f}");
        }
        assert!(QuantFormat::Q8_0.has_embed_kernel() && !QuantFormat::Q4_K.has_embed_kernel());
    }

    #[test]
    fn plain_formats_round_trip() {
        let x = [0.0f32, -1.5, 65504.0, 1e-3];
        for f in [QuantFormat::F32, QuantFormat::F16] {
            let back = f.dequantize(&f.quantize(&x).unwrap());
            assert_eq!(back[..3], x[..3], "{f}");
        }
    }
}
