//! The kernels that Llama-family and GPT-NeoX blocks add (RMSNorm, rotary embeddings, exact
//! GELU, SiLU, elementwise product, grouped-query attention, quantized embedding gathers), on
//! lavapipe, against their CPU references, and the references against independent formulas.

mod common;
use common::*;

use glassbox_kernels::cpu::*;
use glassbox_kernels::QuantFormat;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]: want {w}, got {g}");
            continue;
        }
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}[{i}]: got {g}, want {w}");
    }
}

/// erf in f64 by its Taylor series (|x| <= 5; the terms peak near 1e9, so about 1e-7 relative
/// to 1 is lost at worst: enough to check an f32 approximation), +-1 beyond.
fn erf64(x: f64) -> f64 {
    if x.abs() > 5.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn rms_norm_matches_cpu_and_definition() {
    let mut rng = StdRng::seed_from_u64(21);
    for &(rows, d) in &[(1usize, 1usize), (3, 32), (7, 257), (2, 896)] {
        let x = rand_vec(&mut rng, rows * d, -3.0, 3.0);
        let (scale, norm) = rms_norm_cpu(&x, d, 1e-6);
        for r in 0..rows {
            let ms: f64 = x[r * d..(r + 1) * d].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
            assert!(((ms + 1e-6).sqrt() - scale[r] as f64).abs() < 1e-5, "rms_norm_cpu scale row {r}");
        }
        let c = ctx();
        let tx = c.upload(&x, &[rows, d]);
        let mut r = c.recorder();
        let (s, n) = r.rms_norm(&tx, 1e-6);
        r.submit();
        let out = read(&[&s, &n]);
        assert_eq!(s.shape, vec![rows, 1]);
        assert_close(&out[0], &scale, 1e-5, 1e-5, &format!("rms scale {rows}x{d}"));
        assert_close(&out[1], &norm, 1e-5, 1e-5, &format!("rms normalized {rows}x{d}"));
    }
}

#[test]
fn scale_shift_without_bias_is_a_plain_scale() {
    let mut rng = StdRng::seed_from_u64(22);
    let (rows, d) = (5, 33);
    let x = rand_vec(&mut rng, rows * d, -2.0, 2.0);
    let w = rand_vec(&mut rng, d, -2.0, 2.0);
    let want: Vec<f32> = x.iter().enumerate().map(|(i, v)| v * w[i % d]).collect();
    assert_eq!(scale_shift_cpu(&x, &w, None), want);
    let c = ctx();
    let (tx, tw) = (c.upload(&x, &[rows, d]), c.upload(&w, &[d]));
    let mut r = c.recorder();
    let y = r.scale_shift(&tx, &tw, None);
    r.submit();
    assert_close(&read1(&y), &want, 0.0, 0.0, "scale without bias");
}

#[test]
fn rotary_matches_cpu_and_rotates_pairs() {
    let mut rng = StdRng::seed_from_u64(23);
    // (batch, pos, heads, d_head, rot_dim): full rotary, partial (NeoX), odd positions.
    for &(nb, pos, nh, dh, rot) in &[(1usize, 1usize, 1usize, 2usize, 2usize), (1, 13, 4, 16, 16), (2, 9, 3, 16, 4), (3, 40, 2, 64, 64)] {
        let x = rand_vec(&mut rng, nb * pos * nh * dh, -2.0, 2.0);
        let (cos, sin) = rotary_tables(pos, rot, 10000.0);
        let want = rotary_cpu(&x, &cos, &sin, nh, dh, rot);
        // Independent check of the reference: a rotation keeps each pair's norm, position 0 is
        // the identity, and the features past rot_dim are untouched.
        let half = rot / 2;
        for row in 0..nb * pos {
            for h in 0..nh {
                let o = (row * nh + h) * dh;
                for e in 0..half {
                    let before = x[o + e].hypot(x[o + e + half]);
                    let after = want[o + e].hypot(want[o + e + half]);
                    assert!((before - after).abs() < 1e-5, "rotation keeps norms");
                }
                assert_eq!(&want[o + rot..o + dh], &x[o + rot..o + dh], "pass-through features");
                if row % pos == 0 {
                    assert_eq!(&want[o..o + dh], &x[o..o + dh], "position 0 is not rotated");
                }
            }
        }
        let c = ctx();
        let (tx, tc, ts) = (c.upload(&x, &[nb * pos, nh * dh]), c.upload(&cos, &[pos, half]), c.upload(&sin, &[pos, half]));
        let mut r = c.recorder();
        let y = r.rotary(&tx, &tc, &ts, nh, dh, rot);
        r.submit();
        assert_close(&read1(&y), &want, 1e-6, 1e-6, &format!("rotary {nb}x{pos}x{nh}x{dh} rot {rot}"));
    }
}

#[test]
fn rotary_tables_match_the_definition() {
    let (cos, sin) = rotary_tables(50, 8, 10000.0);
    for p in [0usize, 1, 7, 49] {
        for i in 0..4 {
            let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / 8.0);
            assert!((cos[p * 4 + i] as f64 - angle.cos()).abs() < 2e-5, "cos p={p} i={i}");
            assert!((sin[p * 4 + i] as f64 - angle.sin()).abs() < 2e-5, "sin p={p} i={i}");
        }
    }
}

#[test]
fn gelu_exact_matches_erf_on_cpu_and_gpu() {
    let mut rng = StdRng::seed_from_u64(24);
    let mut x = rand_vec(&mut rng, 1000, -8.0, 8.0);
    x.extend([-1e4f32, -100.0, -20.0, -5.5, -0.0, 0.0, 1e-7, 5.5, 20.0, 100.0, 1e4]);
    let want: Vec<f32> = x.iter().map(|&v| (0.5 * v as f64 * (1.0 + erf64(v as f64 / 2f64.sqrt()))) as f32).collect();
    let cpu = gelu_cpu(&x);
    assert_close(&cpu, &want, 1e-6, 1e-6, "gelu_cpu vs erf");
    let c = ctx();
    let tx = c.upload(&x, &[x.len()]);
    let mut r = c.recorder();
    let y = r.gelu(&tx);
    r.submit();
    let got = read1(&y);
    assert!(got.iter().all(|v| v.is_finite()), "no NaN or inf from gelu");
    assert_close(&got, &cpu, 1e-6, 1e-5, "gelu GPU vs CPU");
}

#[test]
fn silu_and_mul_match_cpu() {
    let mut rng = StdRng::seed_from_u64(25);
    let mut x = rand_vec(&mut rng, 777, -10.0, 10.0);
    x.extend([-200.0f32, -90.0, 0.0, 90.0, 200.0]);
    let b = rand_vec(&mut rng, x.len(), -2.0, 2.0);
    let want: Vec<f32> = x.iter().map(|&v| (v as f64 / (1.0 + (-v as f64).exp())) as f32).collect();
    assert_close(&silu_cpu(&x), &want, 1e-6, 1e-6, "silu_cpu vs definition");
    let c = ctx();
    let (tx, tb) = (c.upload(&x, &[x.len()]), c.upload(&b, &[b.len()]));
    let mut r = c.recorder();
    let s = r.silu(&tx);
    let m = r.mul(&s, &tb);
    r.submit();
    let out = read(&[&s, &m]);
    assert_close(&out[0], &silu_cpu(&x), 1e-6, 1e-5, "silu GPU");
    assert_close(&out[1], &mul_cpu(&silu_cpu(&x), &b), 1e-6, 1e-5, "mul GPU");
}

#[test]
fn grouped_query_attention_equals_repeated_key_heads() {
    let mut rng = StdRng::seed_from_u64(26);
    for &(nb, pos, nh, nkv, dh) in &[(1usize, 7usize, 4usize, 2usize, 8usize), (2, 19, 6, 2, 16), (1, 5, 4, 1, 32)] {
        let q = rand_vec(&mut rng, nb * pos * nh * dh, -1.0, 1.0);
        let k = rand_vec(&mut rng, nb * pos * nkv * dh, -1.0, 1.0);
        let v = rand_vec(&mut rng, nb * pos * nkv * dh, -1.0, 1.0);
        // Independent reference: repeat each key / value head n_heads / n_kv_heads times and use
        // plain multi-head attention.
        let repeat = |t: &[f32]| -> Vec<f32> {
            t.chunks_exact(nkv * dh).flat_map(|row| (0..nh).flat_map(move |h| row[(h / (nh / nkv)) * dh..][..dh].to_vec())).collect()
        };
        let (kr, vr) = (repeat(&k), repeat(&v));
        let scores = attn_scores_cpu(&q, &k, nb, nh, nkv, dh);
        assert_eq!(scores, attn_scores_cpu(&q, &kr, nb, nh, nh, dh), "GQA scores == repeated heads");
        let pattern = softmax_cpu(&scores, pos);
        let z = attn_z_cpu(&pattern, &v, nb, nh, nkv, dh);
        assert_eq!(z, attn_z_cpu(&pattern, &vr, nb, nh, nh, dh), "GQA z == repeated heads");

        let c = ctx();
        let (tq, tk, tv) = (c.upload(&q, &[nb * pos, nh * dh]), c.upload(&k, &[nb * pos, nkv * dh]), c.upload(&v, &[nb * pos, nkv * dh]));
        let mut r = c.recorder();
        let s = r.attn_scores(&tq, &tk, nb, nh, nkv, dh);
        let p = r.softmax(&s);
        let tz = r.attn_z(&p, &tv, nb, nh, nkv, dh);
        r.submit();
        let out = read(&[&s, &tz]);
        assert_close(&out[0], &scores, 1e-5, 1e-5, &format!("GQA scores {nb}x{pos} {nh}/{nkv}"));
        assert_close(&out[1], &z, 1e-5, 1e-5, &format!("GQA z {nb}x{pos} {nh}/{nkv}"));
        assert_eq!(tz.shape, vec![nb * pos, nh * dh]);
    }
}

#[test]
fn quantized_embedding_gathers_are_exact() {
    let mut rng = StdRng::seed_from_u64(27);
    for format in [QuantFormat::Q8_0, QuantFormat::Q4_0] {
        for &(n_rows, d) in &[(1usize, 32usize), (37, 64), (300, 96)] {
            let table = rand_vec(&mut rng, n_rows * d, -1.0, 1.0);
            let bytes = quantize(format, &table);
            let tokens: Vec<u32> = vec![0, (n_rows - 1) as u32, (n_rows / 2) as u32, n_rows as u32 + 5, 0];
            let want = embed_quant_cpu(&tokens, format, &bytes, n_rows, d);
            // Out-of-range ids give zero rows; in-range rows are the dequantized table's.
            assert!(want[3 * d..4 * d].iter().all(|&v| v == 0.0));
            let deq = match format {
                QuantFormat::Q8_0 => dequantize_q8_0(&bytes),
                QuantFormat::Q4_0 => dequantize_q4_0(&bytes),
                other => unreachable!("{other} is not tested here"),
            };
            assert_eq!(&want[d..2 * d], &deq[(n_rows - 1) * d..n_rows * d]);
            let c = ctx();
            let qt = c.upload_quant(format, &bytes, n_rows, d);
            let ids = c.upload_u32(&tokens);
            let mut r = c.recorder();
            let y = r.embed_quant(&ids, tokens.len(), &qt);
            r.submit();
            assert_eq!(read1(&y), want, "embed_{} {n_rows}x{d}", format.name());
        }
    }
}

#[test]
fn concat_cols_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(28);
    for &(rows, na, nb) in &[(1usize, 1usize, 1usize), (3, 5, 7), (16, 300, 257)] {
        let a = rand_vec(&mut rng, rows * na, -1.0, 1.0);
        let b = rand_vec(&mut rng, rows * nb, -1.0, 1.0);
        let want = concat_cols_cpu(&a, na, &b, nb);
        assert_eq!(&want[..na], &a[..na]);
        assert_eq!(&want[na..na + nb], &b[..nb]);
        let c = ctx();
        let (ta, tb) = (c.upload(&a, &[rows, na]), c.upload(&b, &[rows, nb]));
        let mut r = c.recorder();
        let y = r.concat_cols(&ta, &tb);
        r.submit();
        assert_eq!(y.shape, vec![rows, na + nb]);
        assert_eq!(read1(&y), want);
    }
}

#[test]
fn linear_q4_k_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(29);
    for &(m, n, k, with_bias) in &[(1usize, 1usize, 256usize, false), (3, 70, 512, true), (16, 33, 256, true)] {
        // Random blocks with sane scales: d, dmin in [0.001, 0.03) as f16, random scale bytes
        // and nibbles.
        let nb = n * k / 256;
        let mut bytes = vec![0u8; nb * 144];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (rng.gen_range(0u32..256) ^ (i as u32 * 7)) as u8;
        }
        for blk in bytes.chunks_exact_mut(144) {
            for off in [0, 2] {
                let h = glassbox_kernels::ops::linear_quant::f32_to_f16(rng.gen_range(0.001f32..0.03));
                blk[off..off + 2].copy_from_slice(&h.to_le_bytes());
            }
        }
        let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
        let b = rand_vec(&mut rng, n, -1.0, 1.0);
        let want = linear_q4_k_cpu(&x, &bytes, n, k, with_bias.then_some(b.as_slice()));
        let c = ctx();
        let tx = c.upload(&x, &[m, k]);
        let tb = c.upload(&b, &[n]);
        let wq = c.upload_bytes(&bytes);
        let mut r = c.recorder();
        let y = r.linear_q4_k(&tx, &wq, n, k, with_bias.then_some(&tb));
        r.submit();
        assert_close(&read1(&y), &want, 1e-4, 1e-4, &format!("linear_q4_k {m}x{k}x{n}"));
    }
}

#[test]
fn linear_q6_k_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(30);
    for &(m, n, k, with_bias) in &[(1usize, 1usize, 256usize, false), (3, 70, 512, true), (16, 33, 256, true)] {
        // Random blocks (any byte is valid in ql, qh and the signed scales) with d in [0.001, 0.01).
        let mut bytes: Vec<u8> = (0..n * k / 256 * 210).map(|_| rng.gen_range(0u32..256) as u8).collect();
        for blk in bytes.chunks_exact_mut(210) {
            let h = glassbox_kernels::ops::linear_quant::f32_to_f16(rng.gen_range(0.001f32..0.01));
            blk[208..210].copy_from_slice(&h.to_le_bytes());
        }
        let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
        let b = rand_vec(&mut rng, n, -1.0, 1.0);
        let want = linear_q6_k_cpu(&x, &bytes, n, k, with_bias.then_some(b.as_slice()));
        let c = ctx();
        let (tx, tb, wq) = (c.upload(&x, &[m, k]), c.upload(&b, &[n]), c.upload_bytes(&bytes));
        let mut r = c.recorder();
        let y = r.linear_q6_k(&tx, &wq, n, k, with_bias.then_some(&tb));
        r.submit();
        assert_close(&read1(&y), &want, 1e-4, 1e-4, &format!("linear_q6_k {m}x{k}x{n}"));
    }
}
