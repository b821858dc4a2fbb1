//! The fused kernels (`norm_scale_shift`, `attention`, `linear_epilogue` on dense and quantized
//! weights) against their CPU references, and against the unfused GPU kernels they replace: the forward pass swaps one for
//! the other, so every output must equal the unfused kernels' bit for bit (the same sums in the
//! same order; see each WGSL header). Shapes include 1, odd sizes, sizes that are not multiples
//! of the workgroup / tile sizes, batches, and grouped-query heads.
//!
//! Run: `WGPU_BACKEND=vulkan cargo test -p glassbox-kernels` (lavapipe).

mod common;
use common::*;

use glassbox_kernels::cpu::*;
use glassbox_kernels::{Epilogue, GpuTensor, LinearKernel, NormKind, QuantFormat, Recorder};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// |got - want| <= atol + rtol * |want| everywhere; infinities must match exactly.
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() || g.is_infinite() {
            assert_eq!(g, w, "{what}: index {i}: got {g}, want {w}");
            continue;
        }
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}: index {i}: got {g}, want {w}");
    }
}

/// Bit-for-bit equality (so -inf matches -inf and 0.0 does not match -0.0).
#[track_caller]
fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g.to_bits() != w.to_bits()) {
        panic!("{what}: index {i}: fused {} vs unfused {}", got[i], want[i]);
    }
}

#[test]
fn norm_scale_shift_matches_cpu_and_the_unfused_kernels() {
    // CPU tolerance as layer_norm_matches_cpu (reductions in another order), plus the affine.
    let mut rng = StdRng::seed_from_u64(101);
    for &(rows, d) in &[(1, 1), (1, 7), (3, 17), (7, 33), (5, 65), (2, 129), (4, 257), (4, 768), (3, 1000), (70_000, 3)] {
        let x = rand_vec(&mut rng, rows * d, -3.0, 5.0);
        let w = rand_vec(&mut rng, d, 0.5, 1.5);
        let b = rand_vec(&mut rng, d, -0.5, 0.5);
        let c = ctx();
        let (tx, tw, tb) = (c.upload(&x, &[rows, d]), c.upload(&w, &[d]), c.upload(&b, &[d]));
        for kind in [NormKind::LayerNorm, NormKind::RmsNorm] {
            for bias in [false, true] {
                let what = format!("{kind:?} bias={bias} {rows}x{d}");
                let mut r = c.recorder();
                let (scale, normalized, out) = r.norm_scale_shift(kind, &tx, 1e-5, &tw, bias.then_some(&tb));
                let (s0, n0) = match kind {
                    NormKind::LayerNorm => r.layer_norm(&tx, 1e-5),
                    NormKind::RmsNorm => r.rms_norm(&tx, 1e-5),
                };
                let o0 = r.scale_shift(&n0, &tw, bias.then_some(&tb));
                r.submit();
                assert_eq!((scale.shape.clone(), normalized.shape.clone(), out.shape.clone()), (vec![rows, 1], vec![rows, d], vec![rows, d]));
                let got = read(&[&scale, &normalized, &out, &s0, &n0, &o0]);
                let (ws, wn, wo) = norm_scale_shift_cpu(kind, &x, 1e-5, &w, bias.then_some(&b[..]));
                assert_close(&got[0], &ws, 1e-5, 1e-4, &format!("{what} scale"));
                assert_close(&got[1], &wn, 1e-5, 1e-4, &format!("{what} normalized"));
                assert_close(&got[2], &wo, 2e-5, 1e-4, &format!("{what} out"));
                assert_same(&got[0], &got[3], &format!("{what} scale"));
                assert_same(&got[1], &got[4], &format!("{what} normalized"));
                assert_same(&got[2], &got[5], &format!("{what} out"));
            }
        }
    }
}

/// `got`: the fused kernel's scores, pattern and z, then the unfused kernels'. Close to the CPU
/// references `want` (tolerances as attention_chain_in_one_submission), equal to the unfused.
#[track_caller]
fn check_attention(what: &str, got: &[Vec<f32>], (ws, wp, wz): (Vec<f32>, Vec<f32>, Vec<f32>)) {
    assert_close(&got[0], &ws, 1e-5, 1e-4, &format!("{what} scores"));
    assert_close(&got[1], &wp, 1e-6, 1e-4, &format!("{what} pattern"));
    assert_close(&got[2], &wz, 1e-5, 1e-4, &format!("{what} z"));
    for (i, name) in ["scores", "pattern", "z"].into_iter().enumerate() {
        assert_same(&got[i], &got[i + 3], &format!("{what} {name}"));
    }
}

#[test]
fn attention_matches_cpu_and_the_unfused_kernels() {
    // (batch, heads, kv heads, pos, d_head): one of everything; pos past 64 (several blocks of
    // keys per row), past 256 (the softmax's 256 lanes wrap); d_head past 64 (several passes
    // for z); grouped-query heads. CPU tolerances as attention_chain_in_one_submission.
    let shapes =
        [(1, 1, 1, 1, 1), (1, 2, 2, 5, 3), (2, 4, 2, 17, 16), (1, 6, 3, 70, 33), (3, 2, 1, 130, 64), (1, 2, 2, 300, 8), (2, 4, 1, 9, 150), (1, 12, 12, 16, 64)];
    let mut rng = StdRng::seed_from_u64(102);
    for &(nb, nh, nkv, pos, dh) in &shapes {
        let what = format!("attention batch={nb} heads={nh}/{nkv} pos={pos} d_head={dh}");
        let rows = nb * pos;
        let q = rand_vec(&mut rng, rows * nh * dh, -1.0, 1.0);
        let k = rand_vec(&mut rng, rows * nkv * dh, -1.0, 1.0);
        let v = rand_vec(&mut rng, rows * nkv * dh, -1.0, 1.0);
        let c = ctx();
        let (tq, tk, tv) = (c.upload(&q, &[rows, nh * dh]), c.upload(&k, &[rows, nkv * dh]), c.upload(&v, &[rows, nkv * dh]));
        let mut r = c.recorder();
        let (s, p, z) = r.attention(&tq, &tk, &tv, nb, nh, nkv, dh);
        let s0 = r.attn_scores(&tq, &tk, nb, nh, nkv, dh);
        let p0 = r.softmax(&s0);
        let z0 = r.attn_z(&p0, &tv, nb, nh, nkv, dh);
        r.submit();
        let square = if nb == 1 { vec![nh, pos, pos] } else { vec![nb, nh, pos, pos] };
        assert_eq!((s.shape.clone(), p.shape.clone(), z.shape.clone()), (square.clone(), square, vec![rows, nh * dh]), "{what}");
        let got = read(&[&s, &p, &z, &s0, &p0, &z0]);
        check_attention(&what, &got, attention_cpu(&q, &k, &v, nb, nh, nkv, dh));
        for (idx, &sv) in got[0].iter().enumerate() {
            let (i, j) = ((idx / pos) % pos, idx % pos);
            if j > i {
                assert_eq!(sv.to_bits(), 0xff80_0000, "{what}: scores above the diagonal must be exactly -inf");
                assert_eq!(got[1][idx], 0.0, "{what}: the pattern above the diagonal must be exactly 0");
            }
        }
    }
}

#[test]
fn attention_cached_matches_cpu_and_the_unfused_cached_kernels() {
    // (heads, kv heads, n_q, n_k, d_head): one new query (a generation step) against few and many
    // keys (past 64 and 256: several blocks, the softmax's lanes wrap), several new queries (a
    // prompt after a cached prefix), no cache at all (n_q = n_k), grouped-query heads.
    let shapes = [(1, 1, 1, 1, 1), (2, 2, 1, 5, 3), (4, 2, 1, 70, 16), (6, 3, 3, 20, 33), (2, 1, 1, 300, 64), (4, 4, 7, 7, 8), (2, 1, 5, 130, 150)];
    let mut rng = StdRng::seed_from_u64(105);
    for &(nh, nkv, n_q, n_k, dh) in &shapes {
        let what = format!("attention_cached heads={nh}/{nkv} n_q={n_q} n_k={n_k} d_head={dh}");
        let q = rand_vec(&mut rng, n_q * nh * dh, -1.0, 1.0);
        let k = rand_vec(&mut rng, n_k * nkv * dh, -1.0, 1.0);
        let v = rand_vec(&mut rng, n_k * nkv * dh, -1.0, 1.0);
        let c = ctx();
        let (tq, tk, tv) = (c.upload(&q, &[n_q, nh * dh]), c.upload(&k, &[n_k, nkv * dh]), c.upload(&v, &[n_k, nkv * dh]));
        let mut r = c.recorder();
        let (s, p, z) = r.attention_cached(&tq, &tk, &tv, nh, nkv, dh);
        let s0 = r.attn_scores_cached(&tq, &tk, nh, nkv, dh);
        let p0 = r.softmax(&s0);
        let z0 = r.attn_z_cached(&p0, &tv, nh, nkv, dh);
        r.submit();
        assert_eq!((s.shape.clone(), p.shape.clone(), z.shape.clone()), (vec![nh, n_q, n_k], vec![nh, n_q, n_k], vec![n_q, nh * dh]), "{what}");
        let got = read(&[&s, &p, &z, &s0, &p0, &z0]);
        check_attention(&what, &got, attention_cached_cpu(&q, &k, &v, nh, nkv, dh));
        for (idx, &sv) in got[0].iter().enumerate() {
            let (i, j) = ((idx / n_k) % n_q, idx % n_k);
            assert_eq!(sv.to_bits() == 0xff80_0000, j > n_k - n_q + i, "{what}: -inf exactly past query {i}'s position");
        }
    }
}

/// Every epilogue, named, on the GPU and on the CPU; `other` (and its values `other_cpu`) is the
/// second operand of those that take one.
fn epilogues<'t>(other: &'t GpuTensor, other_cpu: &'t [f32]) -> [(&'static str, Epilogue<'t>, EpilogueCpu<'t>); 5] {
    [
        ("add", Epilogue::Add(other), EpilogueCpu::Add(other_cpu)),
        ("gelu_new", Epilogue::GeluNew, EpilogueCpu::GeluNew),
        ("gelu", Epilogue::Gelu, EpilogueCpu::Gelu),
        ("silu", Epilogue::Silu, EpilogueCpu::Silu),
        ("mul", Epilogue::Mul(other), EpilogueCpu::Mul(other_cpu)),
    ]
}

/// The unfused kernel an epilogue replaces, on the matmul's result y.
fn unfused(r: &mut Recorder<'_>, epilogue: Epilogue<'_>, y: &GpuTensor) -> GpuTensor {
    match epilogue {
        Epilogue::Add(t) => r.add(t, y),
        Epilogue::GeluNew => r.gelu_new(y),
        Epilogue::Gelu => r.gelu(y),
        Epilogue::Silu => r.silu(y),
        Epilogue::Mul(t) => r.mul(t, y),
    }
}

#[test]
fn linear_epilogue_matches_cpu_and_the_unfused_kernels() {
    // Both matmul kernels, every epilogue, with and without a bias. y must equal `linear` and
    // y2 the unfused op on linear's y, bit for bit; CPU tolerance as linear_matches_cpu (the
    // activations' own tolerance is far smaller than the matmul's).
    let shapes = [(1, 1, 1), (1, 7, 3), (3, 17, 33), (7, 33, 65), (65, 129, 17), (33, 300, 70), (129, 16, 63), (9, 40, 513), (70, 24, 300)];
    let mut rng = StdRng::seed_from_u64(103);
    for &(m, k, n) in &shapes {
        let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
        let w = rand_vec(&mut rng, k * n, -1.0, 1.0);
        let b = rand_vec(&mut rng, n, -1.0, 1.0);
        let resid = rand_vec(&mut rng, m * n, -5.0, 5.0);
        let c = ctx();
        let (tx, tw, tb, tr) = (c.upload(&x, &[m, k]), c.upload(&w, &[k, n]), c.upload(&b, &[n]), c.upload(&resid, &[m, n]));
        for bias in [false, true] {
            for kernel in [LinearKernel::Tiled, LinearKernel::RowBlock, LinearKernel::Auto] {
                for (name, epi, epi_cpu) in epilogues(&tr, &resid) {
                    let what = format!("linear_epilogue {name} {m}x{k}x{n} bias={bias} {kernel:?}");
                    let mut r = c.recorder();
                    let (y, y2) = r.linear_epilogue_with(&tx, &tw, bias.then_some(&tb), epi, kernel);
                    let y0 = r.linear_with(&tx, &tw, bias.then_some(&tb), kernel);
                    let y20 = unfused(&mut r, epi, &y0);
                    r.submit();
                    assert_eq!((y.shape.clone(), y2.shape.clone()), (vec![m, n], vec![m, n]), "{what}");
                    let got = read(&[&y, &y2, &y0, &y20]);
                    let (wy, wy2) = linear_epilogue_cpu(&x, &w, bias.then_some(&b[..]), m, k, n, epi_cpu);
                    assert_close(&got[0], &wy, 2e-6 * k as f32, 1e-4, &format!("{what} y"));
                    assert_close(&got[1], &wy2, 2e-6 * k as f32, 1e-4, &format!("{what} y2"));
                    assert_same(&got[0], &got[2], &format!("{what} y"));
                    assert_same(&got[1], &got[3], &format!("{what} y2"));
                }
            }
        }
    }
}

/// Random `W_t [n, k]` blocks of `format`: quantized random weights (Q8_0, Q4_0), or random
/// bytes with sane f16 scales (the K-quants, which have no host quantizer here).
fn quant_blocks(rng: &mut StdRng, format: QuantFormat, n: usize, k: usize) -> Vec<u8> {
    use rand::Rng;
    let f16 = |v: f32| glassbox_kernels::ops::linear_quant::f32_to_f16(v).to_le_bytes();
    match format {
        QuantFormat::Q4_K => {
            let mut bytes: Vec<u8> = (0..n * k / 256 * 144).map(|_| rng.gen_range(0u32..256) as u8).collect();
            for blk in bytes.chunks_exact_mut(144) {
                blk[0..2].copy_from_slice(&f16(rng.gen_range(0.001f32..0.03)));
                blk[2..4].copy_from_slice(&f16(rng.gen_range(0.001f32..0.03)));
            }
            bytes
        }
        QuantFormat::Q6_K => {
            let mut bytes: Vec<u8> = (0..n * k / 256 * 210).map(|_| rng.gen_range(0u32..256) as u8).collect();
            for blk in bytes.chunks_exact_mut(210) {
                blk[208..210].copy_from_slice(&f16(rng.gen_range(0.001f32..0.01)));
            }
            bytes
        }
        _ => quantize(format, &rand_vec(rng, n * k, -1.0, 1.0)),
    }
}

#[test]
fn linear_quant_epilogue_matches_cpu_and_the_unfused_kernels() {
    // Every quantized format with a kernel, every epilogue, with and without a bias; rows that
    // fill a row block, half of one (the kernel's `has_hi` branch) and one; columns that are not a
    // multiple of the kernel's 256 or of 64. y must equal `linear_quant`'s and y2 the unfused op
    // on it, bit for bit.
    let mut rng = StdRng::seed_from_u64(104);
    for format in [QuantFormat::Q8_0, QuantFormat::Q4_0, QuantFormat::Q4_K, QuantFormat::Q6_K] {
        let k_block = format.block_size();
        for &(m, k, n) in &[(1, k_block, 1), (3, 2 * k_block, 70), (9, k_block, 300), (20, 3 * k_block, 65)] {
            let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
            let bytes = quant_blocks(&mut rng, format, n, k);
            let b = rand_vec(&mut rng, n, -1.0, 1.0);
            let resid = rand_vec(&mut rng, m * n, -5.0, 5.0);
            let c = ctx();
            let w = c.upload_quant(format, &bytes, n, k);
            let (tx, tb, tr) = (c.upload(&x, &[m, k]), c.upload(&b, &[n]), c.upload(&resid, &[m, n]));
            for bias in [false, true] {
                let want_y = linear_quant_cpu(format, &x, &bytes, bias.then_some(&b[..]), m, k, n);
                for (name, epi, epi_cpu) in epilogues(&tr, &resid) {
                    let what = format!("linear_quant_epilogue {format} {name} {m}x{k}x{n} bias={bias}");
                    let mut r = c.recorder();
                    let (y, y2) = r.linear_quant_epilogue(&tx, &w, bias.then_some(&tb), epi);
                    let y0 = r.linear_quant(&tx, &w, bias.then_some(&tb));
                    let y20 = unfused(&mut r, epi, &y0);
                    r.submit();
                    assert_eq!((y.shape.clone(), y2.shape.clone()), (vec![m, n], vec![m, n]), "{what}");
                    let got = read(&[&y, &y2, &y0, &y20]);
                    let want_y2 = epi_cpu.apply(&want_y);
                    assert_close(&got[0], &want_y, 1e-4, 1e-4, &format!("{what} y"));
                    assert_close(&got[1], &want_y2, 1e-4, 1e-4, &format!("{what} y2"));
                    assert_same(&got[0], &got[2], &format!("{what} y"));
                    assert_same(&got[1], &got[3], &format!("{what} y2"));
                }
            }
        }
    }
}
