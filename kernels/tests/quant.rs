//! Quantized linear (GGUF Q8_0 / Q4_0 weights dequantized inside the matmul): the GPU kernels
//! against their CPU references, the host quantizers against ggml's reference (through gguf-py's
//! bytes), hand-made blocks, and the k % 32 check.
//!
//! Run: `WGPU_BACKEND=vulkan cargo test -p glassbox-kernels --test quant` (lavapipe). As in
//! tests/ops.rs, one GpuContext is shared and a missing adapter FAILS every GPU test.

mod common;
use common::*;

use glassbox_kernels::cpu::*;
use glassbox_kernels::ops::linear_quant::{f16_to_f32, f32_to_f16};
use glassbox_kernels::QuantFormat;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// |got - want| <= atol + rtol * |want| everywhere. Returns the largest |got - want|.
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}: index {i}: got {g}, want {w}");
        let err = (g - w).abs();
        assert!(err <= atol + rtol * w.abs(), "{what}: index {i}: got {g}, want {w} (|err| {err:e} > {atol:e} + {rtol:e}*|want|)");
        if err > worst.0 {
            worst = (err, i);
        }
    }
    eprintln!("{what}: max abs err {:e} at {}", worst.0, worst.1);
    worst.0
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// ---- host side ------------------------------------------------------------------------------

#[test]
fn f16_conversions() {
    for (h, v) in [
        (0x0000u16, 0.0f32),
        (0x3c00, 1.0),
        (0xc000, -2.0),
        (0x3800, 0.5),
        (0x7bff, 65504.0),
        (0x0400, 2f32.powi(-14)),          // smallest normal
        (0x0001, 2f32.powi(-24)),          // smallest subnormal
        (0x03ff, 1023.0 * 2f32.powi(-24)), // largest subnormal
        (0x2e66, 1638.0 / 16384.0),        // nearest half to 0.1
        (0x7c00, f32::INFINITY),
        (0xfc00, f32::NEG_INFINITY),
    ] {
        assert_eq!(f16_to_f32(h), v, "f16_to_f32({h:#06x})");
        assert_eq!(f32_to_f16(v), h, "f32_to_f16({v:e})");
    }
    assert_eq!(f32_to_f16(-0.0), 0x8000);
    assert!(f16_to_f32(0x7e00).is_nan());
    assert_eq!(f32_to_f16(f32::NAN) & 0x7c00, 0x7c00);
    assert_ne!(f32_to_f16(f32::NAN) & 0x03ff, 0);
    assert_eq!(f32_to_f16(0.1), 0x2e66);
    assert_eq!(f32_to_f16(1e6), 0x7c00, "overflow -> inf");
    assert_eq!(f32_to_f16(65520.0), 0x7c00, "rounds up past 65504 -> inf");
    assert_eq!(f32_to_f16(65519.0), 0x7bff);
    assert_eq!(f32_to_f16(1e-9), 0x0000, "underflow -> 0");
    // Ties to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
    assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
    // Subnormal ties: 1.5 * 2^-24 -> 2 (even), 0.5 * 2^-24 -> 0.
    assert_eq!(f32_to_f16(1.5 * 2f32.powi(-24)), 0x0002);
    assert_eq!(f32_to_f16(0.5 * 2f32.powi(-24)), 0x0000);
    // Every finite half survives the round trip.
    for h in 0..=0xffffu16 {
        if h & 0x7c00 != 0x7c00 {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "round trip {h:#06x}");
        }
    }
}

/// 5 blocks of 32: scales 1, 0.01, -3, 0 (an all-zero block) and 7e-4 (a subnormal half scale
/// for Q8_0), exactly as computed (in f32) by the Python lines below.
fn golden_input() -> Vec<f32> {
    let scales = [1.0f32, 0.01, -3.0, 0.0, 7e-4];
    (0..160usize).map(|i| ((i * 37 % 101) as f32 - 50.0) / 16.0 * scales[i / 32]).collect()
}

#[test]
fn quantizers_match_gguf_py_byte_for_byte() {
    // Bytes written by gguf-py 0.x (`gguf.quants.quantize`, numpy ports of ggml's
    // quantize_row_q8_0_ref / quantize_row_q4_0_ref):
    //   i = np.arange(160); scales = np.array([1, .01, -3, 0, 7e-4], dtype=np.float32)
    //   x = ((i*37 % 101) - 50).astype(np.float32) / np.float32(16) * scales[i // 32]
    //   quantize(x.reshape(1, -1), GGMLQuantizationType.Q8_0 / Q4_0).tobytes().hex()
    let x = golden_input();
    let q8 = hex("4d2681df3d9af856b41270cd2b89e745a2005ebb1977d53390ee4caa0866c3217fdce70b3c96f656b0106f\
         ca2984e3439efd5db71777d1318beb4ba50565bf1f7fd93993a12c0dad53f39339d97f1fbf6505a54beb8b\
         31d17717b75dfd9e43e38429ca6f10b0000000000000000000000000000000000000000000000000000000\
         00000000000000210166c3217fdc3a98f654b10f6dcb2986e4429ffd5bb91775d2308eec4aa70563c0");
    let q4 = hex("4036e046acf258bd1379df358be046acf268d79b740fb953fd9731eb852fca640ea842fd98bc57bd0379df\
         248ae046acf258be1379df0000888888888888888888888888888888887b8c42ec8620ca741fb953fd9731\
         eb852fca");
    assert_eq!(q8.len(), 5 * 34);
    assert_eq!(q4.len(), 5 * 18);
    // One deliberate difference: the all-zero block's Q4_0 scale. ggml's C reference starts
    // from max = +0.0 and keeps it (no |v| > 0), so d = +0.0 / -8 = -0.0 (f16 0x8000); gguf-py
    // takes the first element's zero, here -0.0, so d = +0.0 (0x0000). We follow ggml.
    let mut q4 = q4;
    assert_eq!(q4[3 * 18..3 * 18 + 2], [0x00, 0x00]);
    q4[3 * 18 + 1] = 0x80;
    assert_eq!(quantize_q8_0(&x), q8, "Q8_0 bytes differ from gguf-py's");
    assert_eq!(quantize_q4_0(&x), q4, "Q4_0 bytes differ from gguf-py's");
    // The all-zero block: scale 0, q = 0 (Q8_0) / nibble 8 (Q4_0): dequantizes to exact zeros.
    assert!(dequantize_q8_0(&q8)[96..128].iter().all(|&v| v == 0.0));
    assert!(dequantize_q4_0(&q4)[96..128].iter().all(|&v| v == 0.0));
}

/// Hand-made Q8_0 blocks and their values, worked out by hand from the format.
fn hand_q8_0() -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    // Block 0: d = 0.5 (f16 0x3800).
    let mut q = [0i8; 32];
    q[..8].copy_from_slice(&[1, -1, 127, -128, 0, 2, -2, 10]);
    let mut v = [0.0f32; 32];
    v[..8].copy_from_slice(&[0.5, -0.5, 63.5, -64.0, 0.0, 1.0, -1.0, 5.0]);
    bytes.extend_from_slice(&[0x00, 0x38]);
    bytes.extend(q.iter().map(|&q| q as u8));
    want.extend_from_slice(&v);
    // Block 1: d = -1 (0xbc00).
    let mut q = [0i8; 32];
    q[0] = 3;
    q[1] = -3;
    q[31] = 100;
    let mut v = [0.0f32; 32];
    v[0] = -3.0;
    v[1] = 3.0;
    v[31] = -100.0;
    bytes.extend_from_slice(&[0x00, 0xbc]);
    bytes.extend(q.iter().map(|&q| q as u8));
    want.extend_from_slice(&v);
    // Block 2: d = 65504 (0x7bff, the largest half): 127 * 65504 = 8319008, -128 * 65504 =
    // -8384512 (both exact in f32).
    let mut q = [0i8; 32];
    q[0] = 127;
    q[1] = -128;
    q[31] = 1;
    let mut v = [0.0f32; 32];
    v[0] = 8_319_008.0;
    v[1] = -8_384_512.0;
    v[31] = 65504.0;
    bytes.extend_from_slice(&[0xff, 0x7b]);
    bytes.extend(q.iter().map(|&q| q as u8));
    want.extend_from_slice(&v);
    // Block 3: d = 0x2e66 = 1638 / 16384 = 0.0999755859375; q[5] = 10, q[6] = -7.
    let mut q = [0i8; 32];
    q[5] = 10;
    q[6] = -7;
    let mut v = [0.0f32; 32];
    v[5] = 10.0 * 1638.0 / 16384.0; // 0.999755859375
    v[6] = -7.0 * 1638.0 / 16384.0; // -0.6998291015625
    bytes.extend_from_slice(&[0x66, 0x2e]);
    bytes.extend(q.iter().map(|&q| q as u8));
    want.extend_from_slice(&v);
    (bytes, want)
}

/// Hand-made Q4_0 blocks (bytes 0x88 = nibbles 8, 8 = value 0) and their values.
fn hand_q4_0() -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    // Block 0: d = 0.5. Byte 0 = 0x80: element 0 = (0 - 8) * 0.5 = -4, element 16 = 0.
    // Byte 1 = 0xf7: element 1 = (7 - 8) * 0.5 = -0.5, element 17 = (15 - 8) * 0.5 = 3.5.
    // Byte 15 = 0x1e: element 15 = (14 - 8) * 0.5 = 3, element 31 = (1 - 8) * 0.5 = -3.5.
    let mut qs = [0x88u8; 16];
    qs[0] = 0x80;
    qs[1] = 0xf7;
    qs[15] = 0x1e;
    let mut v = [0.0f32; 32];
    v[0] = -4.0;
    v[1] = -0.5;
    v[17] = 3.5;
    v[15] = 3.0;
    v[31] = -3.5;
    bytes.extend_from_slice(&[0x00, 0x38]);
    bytes.extend_from_slice(&qs);
    want.extend_from_slice(&v);
    // Block 1: d = -2 (0xc000). Byte 2 = 0x0f: element 2 = 7 * -2 = -14, element 18 =
    // -8 * -2 = 16. Byte 9 = 0x5a: element 9 = 2 * -2 = -4, element 25 = -3 * -2 = 6.
    let mut qs = [0x88u8; 16];
    qs[2] = 0x0f;
    qs[9] = 0x5a;
    let mut v = [0.0f32; 32];
    v[2] = -14.0;
    v[18] = 16.0;
    v[9] = -4.0;
    v[25] = 6.0;
    bytes.extend_from_slice(&[0x00, 0xc0]);
    bytes.extend_from_slice(&qs);
    want.extend_from_slice(&v);
    // Block 2: d = 0.25 (0x3400), every element distinct: byte j = j | (15 - j) << 4, so
    // element j = (j - 8) / 4 and element 16 + j = (7 - j) / 4.
    let qs: Vec<u8> = (0..16u8).map(|j| j | ((15 - j) << 4)).collect();
    let v: Vec<f32> = [
        -2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0, -0.25,
        -0.5, -0.75, -1.0, -1.25, -1.5, -1.75, -2.0,
    ]
    .to_vec();
    bytes.extend_from_slice(&[0x00, 0x34]);
    bytes.extend_from_slice(&qs);
    want.extend_from_slice(&v);
    (bytes, want)
}

#[test]
fn hand_made_blocks_dequantize_to_hand_values() {
    let (q8, want8) = hand_q8_0();
    assert_eq!(dequantize_q8_0(&q8), want8, "Q8_0 hand blocks");
    let (q4, want4) = hand_q4_0();
    assert_eq!(dequantize_q4_0(&q4), want4, "Q4_0 hand blocks");
}

#[test]
fn hand_made_blocks_on_the_gpu() {
    // x = the k x k identity picks out every weight: y[j, c] = W_t[c, j], exactly (one product
    // of an exact weight with 1.0, plus zeros). Q8_0: W_t [2, 64] = 4 blocks (bytes 0, 34, 68,
    // 102: word-aligned and not, in turn). Q4_0: W_t [3, 32] = 3 blocks (bytes 0, 18, 36);
    // 54 bytes, so the upload pads. Then with a bias, [1, k] x.
    let c = ctx();
    for (format, (bytes, wt), n, k) in [(QuantFormat::Q8_0, hand_q8_0(), 2usize, 64usize), (QuantFormat::Q4_0, hand_q4_0(), 3, 32)] {
        let mut eye = vec![0.0f32; k * k];
        for j in 0..k {
            eye[j * k + j] = 1.0;
        }
        let w = c.upload_quant(format, &bytes, n, k);
        let tx = c.upload(&eye, &[k, k]);
        let bias: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        let tb = c.upload(&bias, &[n]);
        let ones = vec![1.0f32; k];
        let t1 = c.upload(&ones, &[1, k]);
        let mut r = c.recorder();
        let y = r.linear_quant(&tx, &w, None);
        let y1 = r.linear_quant(&t1, &w, Some(&tb));
        r.submit();
        let out = read(&[&y, &y1]);
        let mut want = vec![0.0f32; k * n];
        for j in 0..k {
            for col in 0..n {
                want[j * n + col] = wt[col * k + j];
            }
        }
        assert_eq!(out[0], want, "{format:?}: identity @ W_t^T");
        let want1 = linear_quant_cpu(format, &ones, &bytes, Some(&bias), 1, k, n);
        assert_eq!(out[1], want1, "{format:?}: ones @ W + bias");
    }
}

#[test]
fn quantizers_round_trip_within_the_format_bound() {
    // Per block, with d the f32 scale the quantizer computes and d16 the f16 it stores:
    //   Q8_0: d = amax / 127, |x - d16 * q| <= d / 2 + 127 * |d16 - d|
    //   Q4_0: d = max / -8,   |x - d16 * (nib - 8)| <= |d| + 8 * |d16 - d|
    //         (|d| / 2 except where the nibble clamps at 15: x near -max, rounded to 7 * d),
    //         and the largest-magnitude value itself comes back as -8 * d16.
    // plus 1e-6 relative slack for the rounding of x * (1 / d).
    let mut rng = StdRng::seed_from_u64(31);
    let mut x = Vec::new();
    for &scale in &[1.0f32, 0.01, 0.02, 0.3, 7.0, 1000.0] {
        for _ in 0..20 {
            x.extend(rand_vec(&mut rng, 32, -scale, scale));
        }
    }
    x.extend([0.0f32; 32]); // d = 0
    let mut spike = vec![0.001f32; 32];
    spike[7] = -5.0; // one outlier, negative
    x.extend(spike);
    // -16, -14, .., 14 twice, but 16 last: max = -16 (the first of largest magnitude), d = 2.
    let mut ramp: Vec<f32> = (0..32).map(|i| ((i % 16) as f32 - 8.0) * 2.0).collect();
    ramp[31] = 16.0;
    x.extend(ramp);

    let q8 = quantize_q8_0(&x);
    let q4 = quantize_q4_0(&x);
    assert_eq!(q8.len(), x.len() / 32 * 34);
    assert_eq!(q4.len(), x.len() / 32 * 18);
    let (d8, d4) = (dequantize_q8_0(&q8), dequantize_q4_0(&q4));
    let (mut worst8, mut worst4) = (0.0f32, 0.0f32);
    for (bi, block) in x.chunks_exact(32).enumerate() {
        let amax = block.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let slack = 1e-6 * amax;
        // Q8_0
        let d = amax / 127.0;
        let d16 = f16_to_f32(f32_to_f16(d));
        let bound8 = d / 2.0 + 127.0 * (d16 - d).abs() + slack;
        for (j, &v) in block.iter().enumerate() {
            let err = (v - d8[bi * 32 + j]).abs();
            assert!(err <= bound8, "Q8_0 block {bi} [{j}]: {v} -> {} (err {err:e} > {bound8:e})", d8[bi * 32 + j]);
            if amax > 0.0 {
                worst8 = worst8.max(err / amax);
            }
        }
        // Q4_0
        let max = block.iter().copied().fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let d16 = f16_to_f32(f32_to_f16(d));
        let bound4 = d.abs() + 8.0 * (d16 - d).abs() + slack;
        for (j, &v) in block.iter().enumerate() {
            let err = (v - d4[bi * 32 + j]).abs();
            assert!(err <= bound4, "Q4_0 block {bi} [{j}]: {v} -> {} (err {err:e} > {bound4:e})", d4[bi * 32 + j]);
            if amax > 0.0 {
                worst4 = worst4.max(err / amax);
            }
        }
        let jmax = block.iter().position(|&v| v == max).unwrap();
        assert_eq!(d4[bi * 32 + jmax], -8.0 * d16, "Q4_0 block {bi}: the max maps to nibble 0");
    }
    // The ramp: d = 2 exactly, so every value is exact but the last, 16, which needs nibble 16
    // and is clamped to nibble 15: 7 * d = 14.
    let ramp4 = &d4[d4.len() - 32..];
    for (i, &v) in ramp4.iter().enumerate() {
        let want = if i == 31 { 14.0 } else { ((i % 16) as f32 - 8.0) * 2.0 };
        assert_eq!(v, want, "Q4_0 ramp [{i}]");
    }
    eprintln!("round trip: worst |err| / amax: Q8_0 {worst8:e}, Q4_0 {worst4:e}");
    assert!(worst8 <= 0.5 / 127.0 + 1e-3, "Q8_0 worst relative error {worst8}");
    assert!(worst4 <= 1.0 / 8.0 + 1e-3, "Q4_0 worst relative error {worst4}");
}

#[test]
#[should_panic(expected = "not a multiple of 32")]
fn quantize_needs_whole_blocks() {
    quantize_q4_0(&[0.0; 48]);
}

// ---- GPU vs CPU -----------------------------------------------------------------------------

/// Random `W_t [n, k]` at the scale of GPT-2's weights (uniform in +-0.25: std 0.14), with a
/// per-row factor between 0.05 and 2 so block scales vary, and row 0 all zeros when n > 2.
fn random_weights(rng: &mut StdRng, n: usize, k: usize) -> Vec<f32> {
    let mut wt = rand_vec(rng, n * k, -0.25, 0.25);
    for row in wt.chunks_exact_mut(k) {
        let f = rng.gen_range(0.05f32..2.0);
        row.iter_mut().for_each(|v| *v *= f);
    }
    if n > 2 {
        wt[..k].iter_mut().for_each(|v| *v = 0.0);
    }
    wt
}

#[test]
fn linear_q8_0_and_q4_0_match_cpu() {
    // Tolerance 1e-5 abs + 1e-4 rel. Both sides compute the same float operations in the same
    // order: every dequantized weight is exact in f32 (an f16 scale times an integer of at most
    // 8 bits has at most 19 significant bits) and each output is summed over j = 0, 1, .. then
    // the bias is added. So the only difference a driver may introduce is fusing the
    // multiply-adds, which changes each step by at most half an ulp of a product. With x in
    // [-1, 1] and weights at GPT-2 scale (|w| <= 0.5 here) partial sums stay around 1, and
    // over k = 768 steps such differences add up to a few 1e-7, well inside 1e-5 (+ 1e-4 rel
    // for the larger outputs). On lavapipe the results are bit-exact.
    let mut rng = StdRng::seed_from_u64(41);
    let shapes = [
        // (m, k, n)
        (1, 32, 1),
        (1, 32, 70),
        (1, 768, 3072),
        (2, 64, 3),
        (3, 96, 257),
        (5, 768, 50),
        (7, 32, 513),
        (8, 128, 256),
        (9, 160, 300),
        (16, 768, 769),
        (33, 768, 3072),
        (64, 96, 65),
        (65, 32, 17),
    ];
    let c = ctx();
    for &(m, k, n) in &shapes {
        let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
        let wt = random_weights(&mut rng, n, k);
        let b = rand_vec(&mut rng, n, -1.0, 1.0);
        let tx = c.upload(&x, &[m, k]);
        let tb = c.upload(&b, &[n]);
        for format in [QuantFormat::Q8_0, QuantFormat::Q4_0] {
            let bytes = quantize(format, &wt);
            let w = c.upload_quant(format, &bytes, n, k);
            for bias in [false, true] {
                let want = linear_quant_cpu(format, &x, &bytes, bias.then_some(&b[..]), m, k, n);
                let mut r = c.recorder();
                let y = match format {
                    QuantFormat::Q8_0 => r.linear_q8_0(&tx, &w.buffer, n, k, bias.then_some(&tb)),
                    QuantFormat::Q4_0 => r.linear_q4_0(&tx, &w.buffer, n, k, bias.then_some(&tb)),
                    other => unreachable!("{other} is not tested here"),
                };
                r.submit();
                assert_eq!(y.shape, vec![m, n]);
                let what = format!("linear_{} {m}x{k}x{n} bias={bias}", format.name());
                assert_close(&read1(&y), &want, 1e-5, 1e-4, &what);
            }
        }
    }
}

#[test]
fn quantized_linear_is_close_to_the_f32_linear() {
    // The quantization error itself, against the unquantized weights (f32 `linear_cpu` on
    // W = W_t^T): bounded by sum_j |x_j| * (per-weight bound of the round-trip test).
    let mut rng = StdRng::seed_from_u64(42);
    let (m, k, n) = (3, 768, 96);
    let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
    let wt = random_weights(&mut rng, n, k);
    let mut w = vec![0.0f32; k * n];
    for col in 0..n {
        for j in 0..k {
            w[j * n + col] = wt[col * k + j];
        }
    }
    let exact = linear_cpu(&x, &w, None, m, k, n);
    let c = ctx();
    let tx = c.upload(&x, &[m, k]);
    for (format, rel) in [(QuantFormat::Q8_0, 0.5 / 127.0 + 1e-3), (QuantFormat::Q4_0, 1.0 / 8.0 + 1e-3)] {
        let bytes = quantize(format, &wt);
        let tw = c.upload_quant(format, &bytes, n, k);
        let mut r = c.recorder();
        let y = r.linear_quant(&tx, &tw, None);
        r.submit();
        let got = read1(&y);
        let wmax = wt.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let mut worst = 0.0f32;
        for row in 0..m {
            let l1: f32 = x[row * k..(row + 1) * k].iter().map(|v| v.abs()).sum();
            for col in 0..n {
                let err = (got[row * n + col] - exact[row * n + col]).abs();
                assert!(err <= rel * wmax * l1, "{format:?} [{row}, {col}]: err {err}");
                worst = worst.max(err);
            }
        }
        eprintln!("{format:?} vs f32 weights: max abs err {worst:e}");
    }
}

#[test]
fn quantized_linear_keeps_leading_shape_and_chains_in_one_submission() {
    // x [2, 3, 64] -> Q8_0 [64 -> 96] -> Q4_0 [96 -> 32] + bias -> f32 linear [32 -> 5], all in
    // ONE submission: every dispatch must see its own uniform parameters. Tolerance as in
    // linear_q8_0_and_q4_0_match_cpu; the f32 linear (k = 32) as in tests/ops.rs.
    let mut rng = StdRng::seed_from_u64(43);
    let (a, p, k, n1, n2, n3) = (2, 3, 64, 96, 32, 5);
    let x = rand_vec(&mut rng, a * p * k, -1.0, 1.0);
    let w1 = quantize_q8_0(&random_weights(&mut rng, n1, k));
    let w2 = quantize_q4_0(&random_weights(&mut rng, n2, n1));
    let b2 = rand_vec(&mut rng, n2, -1.0, 1.0);
    let w3 = rand_vec(&mut rng, n2 * n3, -1.0, 1.0);
    let c = ctx();
    let tx = c.upload(&x, &[a, p, k]);
    let tw1 = c.upload_quant(QuantFormat::Q8_0, &w1, n1, k);
    let tw2 = c.upload_quant(QuantFormat::Q4_0, &w2, n2, n1);
    let (tb2, tw3) = (c.upload(&b2, &[n2]), c.upload(&w3, &[n2, n3]));
    let mut r = c.recorder();
    let h1 = r.linear_quant(&tx, &tw1, None);
    let h2 = r.linear_quant(&h1, &tw2, Some(&tb2));
    let h3 = r.linear(&h2, &tw3, None);
    r.submit();
    assert_eq!(h1.shape, vec![a, p, n1]);
    assert_eq!(h2.shape, vec![a, p, n2]);
    assert_eq!(h3.shape, vec![a, p, n3]);
    let out = read(&[&h1, &h2, &h3]);
    let m = a * p;
    let want1 = linear_q8_0_cpu(&x, &w1, None, m, k, n1);
    let want2 = linear_q4_0_cpu(&want1, &w2, Some(&b2), m, n1, n2);
    let want3 = linear_cpu(&want2, &w3, None, m, n2, n3);
    assert_close(&out[0], &want1, 1e-5, 1e-4, "chain: q8_0");
    assert_close(&out[1], &want2, 1e-5, 1e-4, "chain: q4_0 + bias");
    assert_close(&out[2], &want3, 2e-6 * n2 as f32, 1e-4, "chain: f32 linear");
}

#[test]
fn quantized_linear_beyond_65535_row_groups() {
    // m = 65535 * 8 + 9 rows = 65537 row groups of 8: the grid splits them over (x, y).
    let mut rng = StdRng::seed_from_u64(44);
    let (m, k, n) = (65535 * 8 + 9, 32, 3);
    let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
    let wt = random_weights(&mut rng, n, k);
    let b = rand_vec(&mut rng, n, -1.0, 1.0);
    let c = ctx();
    let tx = c.upload(&x, &[m, k]);
    let tb = c.upload(&b, &[n]);
    for format in [QuantFormat::Q8_0, QuantFormat::Q4_0] {
        let bytes = quantize(format, &wt);
        let tw = c.upload_quant(format, &bytes, n, k);
        let mut r = c.recorder();
        let y = r.linear_quant(&tx, &tw, Some(&tb));
        r.submit();
        let want = linear_quant_cpu(format, &x, &bytes, Some(&b), m, k, n);
        assert_close(&read1(&y), &want, 1e-5, 1e-4, &format!("linear_{} m = {m}", format.name()));
    }
}

#[test]
#[should_panic(expected = "k = 48 is not a multiple of 32")]
fn linear_q8_0_rejects_k_not_a_multiple_of_32() {
    let c = ctx();
    let x = c.upload(&[0.0; 2 * 48], &[2, 48]);
    let w = c.upload_bytes(&[0u8; 3 * 34 * 2]);
    let mut r = c.recorder();
    r.linear_q8_0(&x, &w, 3, 48, None);
}

#[test]
#[should_panic(expected = "k = 40 is not a multiple of 32")]
fn linear_q4_0_rejects_k_not_a_multiple_of_32() {
    let c = ctx();
    let x = c.upload(&[0.0; 40], &[1, 40]);
    let w = c.upload_bytes(&[0u8; 18 * 2]);
    let mut r = c.recorder();
    r.linear_q4_0(&x, &w, 1, 40, None);
}

#[test]
#[should_panic(expected = "w_q holds")]
fn linear_q8_0_rejects_a_buffer_of_the_wrong_size() {
    let c = ctx();
    let x = c.upload(&[0.0; 64], &[1, 64]);
    let w = c.upload_bytes(&quantize_q4_0(&[0.0; 4 * 64])); // Q4_0 bytes of [4, 64]
    let mut r = c.recorder();
    r.linear_q8_0(&x, &w, 4, 64, None);
}
