//! `linear_q8_0` / `linear_q4_0`: a dense layer `y = x @ W + b` whose weights stay in GGUF's
//! Q8_0 or Q4_0 block format on the GPU and are dequantized inside the matmul.
//!
//! x `[m, k]` f32 (any leading shape, flattened to m rows), W given as GGUF stores an
//! nn.Linear weight: `W_t [n, k]`, n rows (output features) of k elements, each row quantized
//! in blocks of 32 along k (so W = W_t transposed is TransformerLens's `[k, n]`), b `[n]`
//! optional -> y `[m, n]` (leading shape of x kept). k must be a multiple of 32.
//!
//! | format | block (32 weights) | weight |
//! | --- | --- | --- |
//! | Q8_0 | 34 bytes: f16 `d`, 32 x i8 `q` | `d * q` |
//! | Q4_0 | 18 bytes: f16 `d`, 16 x u8 | `d * (nibble - 8)`; element j < 16 = low nibble of byte j, j + 16 = its high nibble |
//!
//! On the GPU the bytes live unchanged (padded to a multiple of 4) in a u32 storage buffer
//! ([`GpuContext::upload_bytes`], or [`GpuContext::upload_quant`], which also checks the size
//! and keeps format and shape in a [`QuantTensor`]). The kernel (linear_quant.wgsl) is the
//! row-block design of `linear_rows`: 8 rows x 256 columns per workgroup, summing over k in
//! order; every dequantized weight is exact in f32, so the result equals the CPU reference
//! (`dequantize`, then a plain f32 matmul summing in order) up to a driver's multiply-add fusion.
//!
//! Also here: the host quantizers [`quantize_q8_0`] / [`quantize_q4_0`] (ggml's reference
//! `quantize_row_q8_0_ref` / `quantize_row_q4_0_ref`, byte for byte), the one Q8_0 / Q4_0
//! dequantizer (behind [`QuantFormat::dequantize`]), and f16 <-> f32 (the `half` crate's).
//! The format itself ([`QuantFormat`]: block sizes, GGUF codes, kernels) is in `format.rs`.
//! Every quantized matmul, the K-quants' (linear_q4_k.rs, linear_q6_k.rs) and the epilogue
//! renderings (linear_epilogue.rs) included, records through `Recorder::linear_quantized` here:
//! one set of checks, the format's kernel and grid.
//!
//! Not: a tiled kernel for large m (every m uses the row block), activations quantized too
//! (unlike ggml's CPU path, x stays f32), other formats (Q4_1, Q5_*; the K-quants have their own kernels).

use crate::ops::KernelDef;
use crate::format::f16_le;
use crate::{Epilogue, GpuBuffer, GpuContext, GpuTensor, Recorder};

const WGSL: &str = include_str!("linear_quant.wgsl");
pub(crate) const LINEAR_Q8_0: KernelDef = KernelDef::new("linear_q8_0", WGSL, 3, 1);
pub(crate) const LINEAR_Q4_0: KernelDef = KernelDef::new("linear_q4_0", WGSL, 3, 1);
/// Every entry point of this op (compiled by `GpuContext::new`).
pub(crate) const KERNELS: &[KernelDef] = &[LINEAR_Q8_0, LINEAR_Q4_0];

/// Weights per block in both formats (QK8_0 = QK4_0 = 32).
pub const QK: usize = 32;
/// Rows / columns of y per workgroup (ROWS_R / COLS_PER_WG in linear_quant.wgsl).
const ROWS_R: u32 = 8;
const COLS_PER_WG: u32 = 256;

pub use crate::format::QuantFormat;

#[track_caller]
fn check_k(format: QuantFormat, k: usize) {
    assert!(
        k.is_multiple_of(format.block_size()),
        "linear_{}: k = {k} is not a multiple of {} (the {format:?} block size); \
         quantized weights need whole blocks along k",
        format.name(),
        format.block_size(),
    );
}

/// A quantized weight matrix on the GPU: GGUF blocks of `W_t [n, k]` (n output rows of k
/// elements), as uploaded by [`GpuContext::upload_quant`].
#[derive(Clone, Debug)]
pub struct QuantTensor {
    pub buffer: GpuBuffer,
    pub format: QuantFormat,
    /// Output features (rows of `W_t`).
    pub n: usize,
    /// Input features (elements per row; a multiple of 32).
    pub k: usize,
}

impl GpuContext {
    /// Uploads the GGUF bytes of a `W_t [n, k]` matrix in `format` (one whose blocks a linear
    /// kernel reads: [`QuantFormat::has_linear_kernel`]). Panics unless k is a whole number of
    /// blocks and `bytes` has exactly `n * k / block_size * block_bytes` bytes.
    pub fn upload_quant(
        &self,
        format: QuantFormat,
        bytes: &[u8],
        n: usize,
        k: usize,
    ) -> QuantTensor {
        assert!(format.has_linear_kernel(), "upload_quant: no kernel reads {format} blocks; upload it dense");
        check_k(format, k);
        let want = format.matrix_bytes(n, k);
        assert_eq!(
            bytes.len(),
            want,
            "upload_quant: {} [n = {n}, k = {k}] needs {want} bytes, got {}",
            format.name(),
            bytes.len()
        );
        QuantTensor {
            buffer: self.upload_bytes(bytes),
            format,
            n,
            k,
        }
    }
}

impl Recorder<'_> {
    /// x `[.., k]` @ W (Q8_0 blocks of `W_t [n, k]` in `w_q`) + bias `[n]` -> `[.., n]`.
    /// Panics unless k is a multiple of 32 and the shapes and the buffer size agree.
    #[track_caller]
    pub fn linear_q8_0(
        &mut self,
        x: &GpuTensor,
        w_q: &GpuBuffer,
        n: usize,
        k: usize,
        bias: Option<&GpuTensor>,
    ) -> GpuTensor {
        self.linear_quantized(QuantFormat::Q8_0, x, w_q, n, k, bias, None).0
    }

    /// x `[.., k]` @ W (Q4_0 blocks of `W_t [n, k]` in `w_q`) + bias `[n]` -> `[.., n]`.
    /// Panics unless k is a multiple of 32 and the shapes and the buffer size agree.
    #[track_caller]
    pub fn linear_q4_0(
        &mut self,
        x: &GpuTensor,
        w_q: &GpuBuffer,
        n: usize,
        k: usize,
        bias: Option<&GpuTensor>,
    ) -> GpuTensor {
        self.linear_quantized(QuantFormat::Q4_0, x, w_q, n, k, bias, None).0
    }

    /// x `[.., k]` @ W (`w`'s blocks) + bias `[n]` -> `[.., n]`, by `w.format`:
    /// [`Recorder::linear_q8_0`], [`Recorder::linear_q4_0`], [`Recorder::linear_q4_k`] or
    /// [`Recorder::linear_q6_k`].
    #[track_caller]
    pub fn linear_quant(&mut self, x: &GpuTensor, w: &QuantTensor, bias: Option<&GpuTensor>) -> GpuTensor {
        self.linear_quant_with(x, w, bias, None).0
    }

    /// [`Recorder::linear_quant`], and `epilogue` of its result in the same dispatch: (y, y2),
    /// each equal to the unfused ops' (see `linear_epilogue.rs`).
    #[track_caller]
    pub fn linear_quant_epilogue(&mut self, x: &GpuTensor, w: &QuantTensor, bias: Option<&GpuTensor>, epilogue: Epilogue<'_>) -> (GpuTensor, GpuTensor) {
        let (y, y2) = self.linear_quant_with(x, w, bias, Some(epilogue));
        (y, y2.expect("an epilogue writes y2"))
    }

    #[track_caller]
    fn linear_quant_with(&mut self, x: &GpuTensor, w: &QuantTensor, bias: Option<&GpuTensor>, epilogue: Option<Epilogue<'_>>) -> (GpuTensor, Option<GpuTensor>) {
        self.linear_quantized(w.format, x, &w.buffer, w.n, w.k, bias, epilogue)
    }

    /// Every quantized matmul's checks and dispatch: `format`'s kernel, or its epilogue
    /// rendering when there is an epilogue.
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn linear_quantized(
        &mut self,
        format: QuantFormat,
        x: &GpuTensor,
        w_q: &GpuBuffer,
        n: usize,
        k: usize,
        bias: Option<&GpuTensor>,
        epilogue: Option<Epilogue<'_>>,
    ) -> (GpuTensor, Option<GpuTensor>) {
        let (plain, fused) = format.linear_kernels().unwrap_or_else(|| panic!("linear_quant: no kernel reads {format} blocks"));
        let op = format.name();
        check_k(format, k);
        assert_eq!(
            x.last_dim(),
            k,
            "linear_{op}: x {:?} does not end in k = {k}",
            x.shape
        );
        let bytes = format.matrix_bytes(n, k);
        assert_eq!(
            w_q.len,
            bytes.div_ceil(4),
            "linear_{op}: w_q holds {} u32 words, but [n = {n}, k = {k}] in {} is {bytes} bytes \
             = {} words",
            w_q.len,
            op.to_uppercase(),
            bytes.div_ceil(4)
        );
        if let Some(b) = bias {
            assert_eq!(
                b.len(),
                n,
                "linear_{op}: bias has {} values, n = {n}",
                b.len()
            );
        }
        let m: usize = x.shape[..x.shape.len().saturating_sub(1)].iter().product();
        let grid = match format {
            // Row groups over (x, y) (past 65535 workgroups), column blocks over z.
            QuantFormat::Q8_0 | QuantFormat::Q4_0 => {
                let [gx, gy, _] = self.ctx.grid_1d(super::groups_for(m, ROWS_R));
                [gx, gy, super::groups_for(n, COLS_PER_WG)]
            }
            // The K-quant kernels: one invocation per output, 64 per workgroup.
            _ => self.ctx.grid_1d(super::groups_for(m * n, 64)),
        };
        let kernel = if epilogue.is_some() { fused } else { plain };
        self.dispatch_linear(kernel, [m, k, n], x, &w_q.buffer, bias, epilogue, grid)
    }
}

// ---- f16 ------------------------------------------------------------------------------------

/// IEEE half -> f32 (exact; subnormals, infinities and NaN included). The `half` crate's.
pub fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// f32 -> IEEE half, rounding to nearest, ties to even (like ggml's GGML_FP32_TO_FP16 and
/// numpy's `astype(float16)`); overflow gives infinity, tiny values subnormals or zero. The
/// `half` crate's.
pub fn f32_to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

// ---- host quantizers and dequantizers -------------------------------------------------------

#[track_caller]
fn check_len(format: QuantFormat, len: usize) {
    assert!(
        len.is_multiple_of(QK),
        "quantize_{}: {len} values is not a multiple of 32 (the block size)",
        format.name()
    );
}

/// ggml's `quantize_row_q8_0_ref`: per block of 32, `d = max|x| / 127`, `q = round(x / d)`
/// (computed as `x * (1/d)`, rounding half away from zero), d stored as f16.
/// `x.len()` must be a multiple of 32; a row-major `W_t [n, k]` gives GGUF's tensor bytes.
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    check_len(QuantFormat::Q8_0, x.len());
    let mut out = Vec::with_capacity(x.len() / QK * 34);
    for block in x.chunks_exact(QK) {
        let amax = block.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        for &v in block {
            out.push(((v * id).round() as i8) as u8);
        }
    }
    out
}

/// ggml's `quantize_row_q4_0_ref`: per block of 32, `max` = the value of largest magnitude
/// (the first one on ties), `d = max / -8`, nibble = `min(15, trunc(x * (1/d) + 8.5))`
/// (so `max` itself maps to nibble 0 = -8 * d), d stored as f16; byte j holds element j in its
/// low nibble and element j + 16 in its high nibble.
pub fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    check_len(QuantFormat::Q4_0, x.len());
    let mut out = Vec::with_capacity(x.len() / QK * 18);
    for block in x.chunks_exact(QK) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in block {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        // (int8_t)(v * id + 8.5): a truncation; the argument lies in [0.5, 16.5].
        let nibble = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        for j in 0..QK / 2 {
            out.push(nibble(block[j]) | (nibble(block[j + QK / 2]) << 4));
        }
    }
    out
}

#[track_caller]
fn check_bytes(format: QuantFormat, len: usize) {
    assert!(
        len.is_multiple_of(format.block_bytes()),
        "dequantize_{}: {len} bytes is not a whole number of {}-byte blocks",
        format.name(),
        format.block_bytes()
    );
}

/// [`QuantFormat::quantize`]; panics for a format without a quantizer (the K-quants).
#[track_caller]
pub fn quantize(format: QuantFormat, x: &[f32]) -> Vec<u8> {
    format
        .quantize(x)
        .unwrap_or_else(|| panic!("quantize: no quantizer for {format}"))
}

/// Q8_0 bytes -> f32 (32 values per 34-byte block): `d * q`.
#[track_caller]
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    check_bytes(QuantFormat::Q8_0, bytes.len());
    QuantFormat::Q8_0.dequantize(bytes)
}

/// Q4_0 bytes -> f32 (32 values per 18-byte block): `d * (nibble - 8)`, low nibbles first.
#[track_caller]
pub fn dequantize_q4_0(bytes: &[u8]) -> Vec<f32> {
    check_bytes(QuantFormat::Q4_0, bytes.len());
    QuantFormat::Q4_0.dequantize(bytes)
}

/// The one Q8_0 dequantizer ([`QuantFormat::dequantize_into`] checks the sizes).
pub(crate) fn dequantize_q8_0_into(bytes: &[u8], out: &mut [f32]) {
    for (block, y) in bytes.chunks_exact(34).zip(out.chunks_exact_mut(QK)) {
        let d = f16_le(block);
        for (y, &q) in y.iter_mut().zip(&block[2..]) {
            *y = d * (q as i8) as f32;
        }
    }
}

/// The one Q4_0 dequantizer ([`QuantFormat::dequantize_into`] checks the sizes).
pub(crate) fn dequantize_q4_0_into(bytes: &[u8], out: &mut [f32]) {
    for (block, y) in bytes.chunks_exact(18).zip(out.chunks_exact_mut(QK)) {
        let d = f16_le(block);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&block[2..]) {
            *l = d * ((q & 0x0f) as i32 - 8) as f32;
            *h = d * ((q >> 4) as i32 - 8) as f32;
        }
    }
}

/// `format`'s bytes -> f32 ([`QuantFormat::dequantize`]).
#[track_caller]
pub fn dequantize(format: QuantFormat, bytes: &[u8]) -> Vec<f32> {
    format.dequantize(bytes)
}

// ---- CPU references -------------------------------------------------------------------------

/// CPU reference of [`Recorder::linear_q8_0`]: x `[m, k]`, Q8_0 bytes of `W_t [n, k]`,
/// b `[n]` -> `[m, n]`. Dequantizes, then sums `x[r, j] * W_t[c, j]` over j in order, then
/// adds b.
#[track_caller]
pub fn linear_q8_0_cpu(
    x: &[f32],
    w_q: &[u8],
    b: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    linear_quant_cpu(QuantFormat::Q8_0, x, w_q, b, m, k, n)
}

/// CPU reference of [`Recorder::linear_q4_0`]; as [`linear_q8_0_cpu`].
#[track_caller]
pub fn linear_q4_0_cpu(
    x: &[f32],
    w_q: &[u8],
    b: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    linear_quant_cpu(QuantFormat::Q4_0, x, w_q, b, m, k, n)
}

/// CPU reference of [`Recorder::linear_quant`]: [`linear_q8_0_cpu`] or [`linear_q4_0_cpu`] by format.
#[track_caller]
pub fn linear_quant_cpu(
    format: QuantFormat,
    x: &[f32],
    w_q: &[u8],
    b: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    check_k(format, k);
    let bytes = format.matrix_bytes(n, k);
    assert_eq!(x.len(), m * k, "linear_{}_cpu: x", format.name());
    assert_eq!(w_q.len(), bytes, "linear_{}_cpu: w_q", format.name());
    if let Some(b) = b {
        assert_eq!(b.len(), n, "linear_{}_cpu: bias", format.name());
    }
    matmul_t_cpu(x, &dequantize(format, w_q), b, m, k, n)
}

/// `y [m, n] = x [m, k] @ wt [n, k]^T (+ b [n])`, each output summed over j in order, then the
/// bias: the CPU reference of every quantized matmul once its weights are dequantized.
pub fn matmul_t_cpu(x: &[f32], wt: &[f32], b: Option<&[f32]>, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0.0; m * n];
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for c in 0..n {
            let wc = &wt[c * k..(c + 1) * k];
            let mut s = 0.0f32;
            for j in 0..k {
                s += xr[j] * wc[j];
            }
            if let Some(b) = b {
                s += b[c];
            }
            y[r * n + c] = s;
        }
    }
    y
}
