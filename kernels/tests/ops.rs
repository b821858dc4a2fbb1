//! GPU kernels vs their CPU references, on random seeded inputs, over shapes that include 1,
//! odd sizes and sizes that are not multiples of the workgroup / tile sizes.
//!
//! Run: `WGPU_BACKEND=vulkan cargo test -p glassbox-kernels` (lavapipe). One GpuContext is
//! shared by all tests of this binary (creating devices on lavapipe is slow). If no adapter is
//! found every test FAILS with the reason: an adapter is expected wherever these tests run.

mod common;
use common::*;

use glassbox_kernels::cpu::*;
use glassbox_kernels::LinearKernel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// |got - want| <= atol + rtol * |want| everywhere; infinities must match exactly.
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() || g.is_infinite() {
            assert_eq!(g, w, "{what}: index {i}: got {g}, want {w}");
            continue;
        }
        assert!(g.is_finite(), "{what}: index {i}: got {g}, want {w}");
        let err = (g - w).abs();
        let excess = err - (atol + rtol * w.abs());
        assert!(excess <= 0.0, "{what}: index {i}: got {g}, want {w} (|err| {err:e} > {atol:e} + {rtol:e}*|want|)");
        if err > worst.0 {
            worst = (err, i);
        }
    }
    eprintln!("{what}: max abs err {:e} at {}", worst.0, worst.1);
}

#[test]
fn adapter_present() {
    let name = ctx().adapter_name();
    assert!(!name.is_empty());
}

#[test]
fn embed_and_pos_embed_match_cpu() {
    // Pure copies: exact equality.
    let mut rng = StdRng::seed_from_u64(1);
    for &(n_pos, d_vocab, d_model) in &[(1, 1, 1), (3, 7, 5), (17, 50, 33), (65, 100, 129), (7, 11, 768)] {
        let w_e = rand_vec(&mut rng, d_vocab * d_model, -1.0, 1.0);
        let w_pos = rand_vec(&mut rng, (n_pos + 3) * d_model, -1.0, 1.0);
        let mut tokens: Vec<u32> = (0..n_pos).map(|_| rng.gen_range(0..d_vocab as u32)).collect();
        if n_pos > 2 {
            tokens[1] = d_vocab as u32 + 5; // out of range: zero row, no out-of-bounds read
        }
        let c = ctx();
        let tok = c.upload_u32(&tokens);
        let te = c.upload(&w_e, &[d_vocab, d_model]);
        let tp = c.upload(&w_pos, &[n_pos + 3, d_model]);
        let mut r = c.recorder();
        let e = r.embed(&tok, n_pos, &te);
        let p = r.pos_embed(1, n_pos, &tp);
        r.submit();
        assert_eq!(e.shape, vec![n_pos, d_model]);
        assert_eq!(p.shape, vec![n_pos, d_model]);
        let out = read(&[&e, &p]);
        assert_eq!(out[0], embed_cpu(&tokens, &w_e, d_vocab, d_model), "embed {n_pos}x{d_model}");
        assert_eq!(out[1], pos_embed_cpu(1, n_pos, &w_pos, d_model), "pos_embed {n_pos}x{d_model}");
    }
}

#[test]
fn layer_norm_matches_cpu() {
    // Tolerance 1e-5 + 1e-4 rel: the mean and variance are reductions over d (up to 1000) done
    // in a different order (tree vs sequential); outputs are O(1) after normalization.
    let mut rng = StdRng::seed_from_u64(2);
    for &(rows, d) in &[(1, 1), (1, 7), (3, 17), (7, 33), (5, 65), (2, 129), (4, 768), (3, 1000)] {
        let x = rand_vec(&mut rng, rows * d, -3.0, 5.0);
        let c = ctx();
        let tx = c.upload(&x, &[rows, d]);
        let mut r = c.recorder();
        let (scale, norm) = r.layer_norm(&tx, 1e-5);
        r.submit();
        assert_eq!(scale.shape, vec![rows, 1]);
        assert_eq!(norm.shape, vec![rows, d]);
        let out = read(&[&scale, &norm]);
        let (want_scale, want_norm) = layer_norm_cpu(&x, d, 1e-5);
        assert_close(&out[0], &want_scale, 1e-5, 1e-4, &format!("ln scale {rows}x{d}"));
        assert_close(&out[1], &want_norm, 1e-5, 1e-4, &format!("ln normalized {rows}x{d}"));
    }
}

#[test]
fn scale_shift_matches_cpu() {
    // One multiply and one add per element (maybe fused): 1e-6 abs + 1e-6 rel.
    let mut rng = StdRng::seed_from_u64(21);
    for &(rows, d) in &[(1, 1), (3, 7), (5, 33), (2, 257), (70_000, 3)] {
        let x = rand_vec(&mut rng, rows * d, -3.0, 3.0);
        let w = rand_vec(&mut rng, d, 0.5, 1.5);
        let b = rand_vec(&mut rng, d, -0.5, 0.5);
        let c = ctx();
        let (tx, tw, tb) = (c.upload(&x, &[rows, d]), c.upload(&w, &[d]), c.upload(&b, &[d]));
        let mut r = c.recorder();
        let y = r.scale_shift(&tx, &tw, Some(&tb));
        r.submit();
        assert_eq!(y.shape, vec![rows, d]);
        assert_close(&read1(&y), &scale_shift_cpu(&x, &w, Some(&b)), 1e-6, 1e-6, &format!("scale_shift {rows}x{d}"));
    }
}

#[test]
fn row_kernels_beyond_65535_workgroups() {
    // 70_000 rows = 70_000 workgroups: exercises the 2D grid split of layer_norm and softmax.
    // d = 3: layer_norm tolerance as above; softmax of 3 entries 1e-6 abs (sum of 3 terms).
    let rows = 70_000;
    let d = 3;
    let mut rng = StdRng::seed_from_u64(3);
    let x = rand_vec(&mut rng, rows * d, -2.0, 2.0);
    let c = ctx();
    let tx = c.upload(&x, &[rows, d]);
    let mut r = c.recorder();
    let (scale, norm) = r.layer_norm(&tx, 1e-5);
    let sm = r.softmax(&tx);
    r.submit();
    let out = read(&[&scale, &norm, &sm]);
    let (ws, wn) = layer_norm_cpu(&x, d, 1e-5);
    assert_close(&out[0], &ws, 1e-5, 1e-4, "ln scale 70000 rows");
    assert_close(&out[1], &wn, 1e-5, 1e-4, "ln normalized 70000 rows");
    assert_close(&out[2], &softmax_cpu(&x, d), 1e-6, 1e-5, "softmax 70000 rows");
}

#[test]
fn linear_matches_cpu() {
    // Both kernels (tiled and row-block) and the automatic choice. Inputs in [-1, 1].
    // Tolerance 2e-6 * k abs + 1e-4 rel: each output is a k-term dot product; summation-order
    // and FMA differences grow about like sqrt(k) * eps * sum|terms|, so 2e-6 * k (2e-4 at
    // k = 100, 1.5e-3 at k = 768) is a generous bound. (On lavapipe the results are bit-exact.)
    let mut rng = StdRng::seed_from_u64(4);
    let shapes = [
        (1, 1, 1),
        (1, 7, 3),
        (3, 17, 33),
        (7, 33, 65),
        (17, 65, 129),
        (65, 129, 17),
        (33, 300, 70),
        (1, 768, 50),
        (64, 64, 64),
        (129, 16, 63),
        (9, 40, 513),
        (70, 24, 300),
    ];
    for &(m, k, n) in &shapes {
        let x = rand_vec(&mut rng, m * k, -1.0, 1.0);
        let w = rand_vec(&mut rng, k * n, -1.0, 1.0);
        let b = rand_vec(&mut rng, n, -1.0, 1.0);
        let c = ctx();
        let (tx, tw, tb) = (c.upload(&x, &[m, k]), c.upload(&w, &[k, n]), c.upload(&b, &[n]));
        for bias in [false, true] {
            let want = linear_cpu(&x, &w, bias.then_some(&b[..]), m, k, n);
            for kernel in [LinearKernel::Tiled, LinearKernel::RowBlock, LinearKernel::Auto] {
                let mut r = c.recorder();
                let y = r.linear_with(&tx, &tw, bias.then_some(&tb), kernel);
                r.submit();
                assert_eq!(y.shape, vec![m, n]);
                let what = format!("linear {m}x{k}x{n} bias={bias} {kernel:?}");
                assert_close(&read1(&y), &want, 2e-6 * k as f32, 1e-4, &what);
            }
        }
    }
}

#[test]
fn linear_keeps_leading_shape_and_chains_in_one_submission() {
    // Two linears and an add in ONE submission with different shapes: every dispatch must see
    // its own uniform parameters. Tolerance as in linear_matches_cpu (k <= 33).
    let mut rng = StdRng::seed_from_u64(5);
    let (a, p, k, n1, n2) = (2, 5, 33, 17, 33);
    let x = rand_vec(&mut rng, a * p * k, -1.0, 1.0);
    let w1 = rand_vec(&mut rng, k * n1, -1.0, 1.0);
    let w2 = rand_vec(&mut rng, n1 * n2, -1.0, 1.0);
    let b2 = rand_vec(&mut rng, n2, -1.0, 1.0);
    let c = ctx();
    let tx = c.upload(&x, &[a, p, k]);
    let (tw1, tw2, tb2) = (c.upload(&w1, &[k, n1]), c.upload(&w2, &[n1, n2]), c.upload(&b2, &[n2]));
    let mut r = c.recorder();
    let h = r.linear(&tx, &tw1, None);
    let y = r.linear(&h, &tw2, Some(&tb2));
    let s = r.add(&y, &tx); // n2 == k
    r.submit();
    assert_eq!(h.shape, vec![a, p, n1]);
    assert_eq!(y.shape, vec![a, p, n2]);
    let out = read(&[&h, &y, &s]);
    let wh = linear_cpu(&x, &w1, None, a * p, k, n1);
    let wy = linear_cpu(&wh, &w2, Some(&b2), a * p, n1, n2);
    assert_close(&out[0], &wh, 2e-6 * k as f32, 1e-4, "chained linear 1");
    assert_close(&out[1], &wy, 2e-6 * (k * n1) as f32, 1e-4, "chained linear 2");
    assert_close(&out[2], &add_cpu(&wy, &x), 2e-6 * (k * n1) as f32, 1e-4, "chained add");
}

#[test]
fn gelu_new_matches_cpu() {
    // Elementwise: 1e-5 abs + 1e-5 rel (the GPU tanh may differ from libm by a few ulp).
    // Includes |x| large enough that the tanh argument needs the clamp (no NaN allowed).
    let mut rng = StdRng::seed_from_u64(6);
    for &n in &[1usize, 3, 255, 256, 257, 1000, 4099] {
        let mut x = rand_vec(&mut rng, n, -8.0, 8.0);
        let specials = [-1e4f32, -100.0, -20.0, -0.0, 0.0, 20.0, 100.0, 1e4];
        for (slot, &v) in x.iter_mut().zip(specials.iter()) {
            if n >= 8 {
                *slot = v;
            }
        }
        let c = ctx();
        let tx = c.upload(&x, &[n]);
        let mut r = c.recorder();
        let y = r.gelu_new(&tx);
        r.submit();
        assert_close(&read1(&y), &gelu_new_cpu(&x), 1e-5, 1e-5, &format!("gelu_new n={n}"));
    }
}

#[test]
fn add_and_affine_match_cpu() {
    // Elementwise, one rounding each (affine may be fused into an FMA): 1e-6 abs + 1e-6 rel.
    let mut rng = StdRng::seed_from_u64(7);
    for &n in &[1usize, 3, 7, 255, 256, 257, 65537] {
        let a = rand_vec(&mut rng, n, -10.0, 10.0);
        let b = rand_vec(&mut rng, n, -10.0, 10.0);
        let m = rand_vec(&mut rng, n, -2.0, 2.0);
        let c = ctx();
        let (ta, tb, tm) = (c.upload(&a, &[n]), c.upload(&b, &[n]), c.upload(&m, &[n]));
        let mut r = c.recorder();
        let s = r.add(&ta, &tb);
        let f = r.affine(&ta, &tm, &tb);
        r.submit();
        let out = read(&[&s, &f]);
        assert_close(&out[0], &add_cpu(&a, &b), 1e-6, 1e-6, &format!("add n={n}"));
        assert_close(&out[1], &affine_cpu(&a, &m, &b), 1e-6, 1e-6, &format!("affine n={n}"));
    }
}

#[test]
fn affine_interventions_are_exact() {
    // zero / replace / add / scale masks: exact where the arithmetic is exact.
    let c = ctx();
    // The last two entries are masked attention scores (-inf): zeroing or replacing them must
    // give exactly the new value, not 0 * inf = NaN.
    let x = vec![1.5f32, -2.0, 3.25, 4.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
    let mul = vec![0.0f32, 0.0, 1.0, 2.0, 0.0, 0.0];
    let add = vec![0.0f32, 7.0, 0.5, 0.0, 0.0, 0.25];
    let (tx, tm, ta) = (c.upload(&x, &[3, 2]), c.upload(&mul, &[3, 2]), c.upload(&add, &[3, 2]));
    let mut r = c.recorder();
    let y = r.affine(&tx, &tm, &ta);
    r.submit();
    assert_eq!(y.shape, vec![3, 2]);
    let want = vec![0.0, 7.0, 3.75, 8.0, 0.0, 0.25];
    assert_eq!(read1(&y), want);
    assert_eq!(affine_cpu(&x, &mul, &add), want);
}

#[test]
fn elementwise_beyond_65535_workgroups() {
    // 65535 * 256 + 300 elements: more than 65535 workgroups of 256, so the 2D grid split of
    // the elementwise kernels is exercised. add is exact in each element up to one rounding.
    let n = 65535 * 256 + 300;
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| (i / 1000) as f32).collect();
    let c = ctx();
    let (ta, tb) = (c.upload(&a, &[n]), c.upload(&b, &[n]));
    let mut r = c.recorder();
    let s = r.add(&ta, &tb);
    r.submit();
    let got = read1(&s);
    assert_eq!(got, add_cpu(&a, &b), "add over {n} elements");
}

const ATTN_SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (3, 2, 5), (17, 3, 7), (33, 2, 64), (65, 1, 17), (16, 4, 16), (40, 12, 64)];

#[test]
fn attn_scores_match_cpu_and_mask_is_exactly_neg_inf() {
    // Dot products over d_head <= 64 of values in [-1, 1]: 1e-5 abs + 1e-4 rel.
    let mut rng = StdRng::seed_from_u64(8);
    for &(pos, nh, dh) in ATTN_SHAPES {
        let q = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
        let k = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
        let c = ctx();
        let (tq, tk) = (c.upload(&q, &[pos, nh * dh]), c.upload(&k, &[pos, nh * dh]));
        let mut r = c.recorder();
        let s = r.attn_scores(&tq, &tk, 1, nh, nh, dh);
        r.submit();
        assert_eq!(s.shape, vec![nh, pos, pos]);
        let got = read1(&s);
        for h in 0..nh {
            for i in 0..pos {
                for j in 0..pos {
                    let v = got[(h * pos + i) * pos + j];
                    if j > i {
                        assert_eq!(v.to_bits(), 0xff80_0000, "scores[{h},{i},{j}] = {v}, want exactly -inf");
                    } else {
                        assert!(v.is_finite(), "scores[{h},{i},{j}] = {v}, want finite");
                    }
                }
            }
        }
        assert_close(&got, &attn_scores_cpu(&q, &k, 1, nh, nh, dh), 1e-5, 1e-4, &format!("attn_scores {pos}x{nh}x{dh}"));
    }
}

#[test]
fn softmax_matches_cpu_with_masked_entries() {
    // exp and a sum over cols (up to 1000) in a different order: 1e-6 abs + 1e-4 rel
    // (probabilities are <= 1). Masked (-inf) entries must be exactly 0; rows sum to 1 within 1e-5.
    let mut rng = StdRng::seed_from_u64(9);
    for &(rows, cols) in &[(1, 1), (3, 7), (17, 33), (5, 257), (2, 1000), (12, 65)] {
        let mut x = rand_vec(&mut rng, rows * cols, -10.0, 10.0);
        for (idx, v) in x.iter_mut().enumerate() {
            let (r, col) = (idx / cols, idx % cols);
            if col > r % cols.max(1) && rng.gen_bool(0.7) {
                *v = f32::NEG_INFINITY;
            }
        }
        let c = ctx();
        let tx = c.upload(&x, &[rows, cols]);
        let mut r = c.recorder();
        let y = r.softmax(&tx);
        r.submit();
        let got = read1(&y);
        assert_close(&got, &softmax_cpu(&x, cols), 1e-6, 1e-4, &format!("softmax {rows}x{cols}"));
        for (row_x, row_y) in x.chunks(cols).zip(got.chunks(cols)) {
            for (&xv, &yv) in row_x.iter().zip(row_y) {
                if xv == f32::NEG_INFINITY {
                    assert_eq!(yv, 0.0, "masked entry must be exactly 0");
                }
            }
            let s: f32 = row_y.iter().sum();
            assert!((s - 1.0).abs() < 1e-5, "softmax row sums to {s}");
        }
    }
}

#[test]
fn softmax_fully_masked_row_gives_zeros_and_large_values_are_stable() {
    let c = ctx();
    let ninf = f32::NEG_INFINITY;
    let x = vec![ninf, ninf, ninf, 1000.0, 1000.0, -1000.0, 88.0, 89.0, ninf];
    let tx = c.upload(&x, &[3, 3]);
    let mut r = c.recorder();
    let y = r.softmax(&tx);
    r.submit();
    let got = read1(&y);
    assert_eq!(&got[0..3], &[0.0, 0.0, 0.0]);
    assert_close(&got[3..], &softmax_cpu(&x, 3)[3..], 1e-6, 1e-5, "softmax large values");
    assert_eq!(got[5], 0.0, "exp(-2000) underflows to 0");
    assert_eq!(got[8], 0.0);
}

#[test]
fn attn_z_matches_cpu() {
    // Sums over pos (<= 65) of pattern (in [0, 1]) times v (in [-1, 1]): 1e-5 abs + 1e-4 rel.
    // The pattern is NOT causal here: attn_z must sum over all keys.
    let mut rng = StdRng::seed_from_u64(10);
    for &(pos, nh, dh) in ATTN_SHAPES {
        let pattern = rand_vec(&mut rng, nh * pos * pos, 0.0, 1.0);
        let v = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
        let c = ctx();
        let (tp, tv) = (c.upload(&pattern, &[nh, pos, pos]), c.upload(&v, &[pos, nh * dh]));
        let mut r = c.recorder();
        let z = r.attn_z(&tp, &tv, 1, nh, nh, dh);
        r.submit();
        assert_eq!(z.shape, vec![pos, nh * dh]);
        assert_close(&read1(&z), &attn_z_cpu(&pattern, &v, 1, nh, nh, dh), 1e-5, 1e-4, &format!("attn_z {pos}x{nh}x{dh}"));
    }
}

#[test]
fn attention_chain_in_one_submission() {
    // scores -> softmax -> z in one encoder, against the CPU chain. Patterns: rows sum to 1,
    // masked entries exactly 0. Tolerances: as the single ops (errors compound only mildly).
    let mut rng = StdRng::seed_from_u64(11);
    let (pos, nh, dh) = (37, 3, 24);
    let q = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
    let k = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
    let v = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
    let c = ctx();
    let (tq, tk, tv) = (c.upload(&q, &[pos, nh * dh]), c.upload(&k, &[pos, nh * dh]), c.upload(&v, &[pos, nh * dh]));
    let mut r = c.recorder();
    let s = r.attn_scores(&tq, &tk, 1, nh, nh, dh);
    let p = r.softmax(&s);
    let z = r.attn_z(&p, &tv, 1, nh, nh, dh);
    r.submit();
    assert_eq!(p.shape, vec![nh, pos, pos]);
    let out = read(&[&s, &p, &z]);
    let ws = attn_scores_cpu(&q, &k, 1, nh, nh, dh);
    let wp = softmax_cpu(&ws, pos);
    let wz = attn_z_cpu(&wp, &v, 1, nh, nh, dh);
    assert_close(&out[0], &ws, 1e-5, 1e-4, "chain scores");
    assert_close(&out[1], &wp, 1e-6, 1e-4, "chain pattern");
    assert_close(&out[2], &wz, 1e-5, 1e-4, "chain z");
    for h in 0..nh {
        for i in 0..pos {
            let row = &out[1][(h * pos + i) * pos..(h * pos + i + 1) * pos];
            assert!(row[i + 1..].iter().all(|&x| x == 0.0), "pattern above the diagonal must be 0");
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "pattern row sums to {sum}");
        }
    }
}

#[test]
fn reshape_shares_the_buffer_and_empty_tensors_work() {
    let c = ctx();
    let t = c.upload(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let u = t.reshape(&[3, 2]);
    assert!(std::sync::Arc::ptr_eq(&t.buffer, &u.buffer));
    assert_eq!(u.len(), 6);
    let e = c.upload(&[], &[0, 4]);
    let mut r = c.recorder();
    let s = r.add(&e, &e);
    let g = r.gelu_new(&e);
    r.submit();
    let out = read(&[&s, &g, &u]);
    assert!(out[0].is_empty() && out[1].is_empty());
    assert_eq!(out[2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn batched_attention_and_pos_embed_keep_sequences_apart() {
    // Three sequences stacked: each sequence's scores, pattern and z must equal the
    // single-sequence CPU reference on that sequence alone (no attention across sequences),
    // and pos_embed must repeat rows 0..pos once per sequence. Tolerances as the single ops.
    let mut rng = StdRng::seed_from_u64(12);
    let (n_batch, pos, nh, dh, d_model) = (3, 19, 2, 20, 40);
    let width = nh * dh;
    let q = rand_vec(&mut rng, n_batch * pos * width, -1.0, 1.0);
    let k = rand_vec(&mut rng, n_batch * pos * width, -1.0, 1.0);
    let v = rand_vec(&mut rng, n_batch * pos * width, -1.0, 1.0);
    let w_pos = rand_vec(&mut rng, (pos + 5) * d_model, -1.0, 1.0);
    let c = ctx();
    let shape = [n_batch * pos, width];
    let (tq, tk, tv) = (c.upload(&q, &shape), c.upload(&k, &shape), c.upload(&v, &shape));
    let tw = c.upload(&w_pos, &[pos + 5, d_model]);
    let mut r = c.recorder();
    let s = r.attn_scores(&tq, &tk, n_batch, nh, nh, dh);
    let p = r.softmax(&s);
    let z = r.attn_z(&p, &tv, n_batch, nh, nh, dh);
    let pe = r.pos_embed(n_batch, pos, &tw);
    r.submit();
    assert_eq!(s.shape, vec![n_batch, nh, pos, pos]);
    assert_eq!(z.shape, vec![n_batch * pos, width]);
    assert_eq!(pe.shape, vec![n_batch * pos, d_model]);
    let out = read(&[&s, &p, &z, &pe]);
    let (seq, pat) = (pos * width, nh * pos * pos);
    for b in 0..n_batch {
        let sl = |x: &[f32], n: usize| x[b * n..(b + 1) * n].to_vec();
        let ws = attn_scores_cpu(&sl(&q, seq), &sl(&k, seq), 1, nh, nh, dh);
        let wp = softmax_cpu(&ws, pos);
        let wz = attn_z_cpu(&wp, &sl(&v, seq), 1, nh, nh, dh);
        assert_close(&sl(&out[0], pat), &ws, 1e-5, 1e-4, &format!("batched scores, sequence {b}"));
        assert_close(&sl(&out[1], pat), &wp, 1e-6, 1e-4, &format!("batched pattern, sequence {b}"));
        assert_close(&sl(&out[2], seq), &wz, 1e-5, 1e-4, &format!("batched z, sequence {b}"));
    }
    assert_close(&out[0], &attn_scores_cpu(&q, &k, n_batch, nh, nh, dh), 1e-5, 1e-4, "batched scores vs batched reference");
    assert_eq!(out[3], pos_embed_cpu(n_batch, pos, &w_pos, d_model), "batched pos_embed");
}
