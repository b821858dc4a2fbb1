//! The KV-cache attention kernels (`attn_scores_cached`, `attn_z_cached`) against their CPU
//! references, and against the full-sequence kernels: new queries at an offset must see exactly
//! the rows of the full causal computation. Shapes include one new query (a decoding step),
//! blocks of several, grouped-query heads, and sizes that are not multiples of the tile.

mod common;
use common::*;

use glassbox_kernels::cpu::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// (n_q, n_k, n_heads, n_kv_heads, d_head)
const SHAPES: &[(usize, usize, usize, usize, usize)] =
    &[(1, 1, 1, 1, 1), (1, 17, 4, 4, 16), (1, 40, 4, 2, 24), (3, 3, 2, 2, 5), (5, 37, 6, 3, 7), (17, 33, 2, 1, 64), (1, 65, 12, 12, 64), (16, 48, 4, 4, 16)];

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() || g.is_infinite() {
            assert_eq!(g.to_bits(), w.to_bits(), "{what}: index {i}: got {g}, want {w}");
            continue;
        }
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}: index {i}: got {g}, want {w}");
    }
}

#[test]
fn attn_scores_cached_matches_cpu_and_masks_past_the_offset() {
    let mut rng = StdRng::seed_from_u64(40);
    for &(n_q, n_k, nh, nkv, dh) in SHAPES {
        let q = rand_vec(&mut rng, n_q * nh * dh, -1.0, 1.0);
        let k = rand_vec(&mut rng, n_k * nkv * dh, -1.0, 1.0);
        let c = ctx();
        let (tq, tk) = (c.upload(&q, &[n_q, nh * dh]), c.upload(&k, &[n_k, nkv * dh]));
        let mut r = c.recorder();
        let s = r.attn_scores_cached(&tq, &tk, nh, nkv, dh);
        r.submit();
        assert_eq!(s.shape, vec![nh, n_q, n_k]);
        let got = read1(&s);
        let want = attn_scores_cached_cpu(&q, &k, nh, nkv, dh);
        let offset = n_k - n_q;
        for h in 0..nh {
            for i in 0..n_q {
                for j in 0..n_k {
                    let v = got[(h * n_q + i) * n_k + j];
                    assert_eq!(j > offset + i, v == f32::NEG_INFINITY, "scores[{h},{i},{j}] = {v} (offset {offset})");
                }
            }
        }
        assert_close(&got, &want, 1e-5, 1e-4, &format!("attn_scores_cached {n_q}x{n_k}x{nh}/{nkv}x{dh}"));
    }
}

#[test]
fn attn_z_cached_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(41);
    for &(n_q, n_k, nh, nkv, dh) in SHAPES {
        let pattern = rand_vec(&mut rng, nh * n_q * n_k, 0.0, 1.0);
        let v = rand_vec(&mut rng, n_k * nkv * dh, -1.0, 1.0);
        let c = ctx();
        let (tp, tv) = (c.upload(&pattern, &[nh, n_q, n_k]), c.upload(&v, &[n_k, nkv * dh]));
        let mut r = c.recorder();
        let z = r.attn_z_cached(&tp, &tv, nh, nkv, dh);
        r.submit();
        assert_eq!(z.shape, vec![n_q, nh * dh]);
        assert_close(&read1(&z), &attn_z_cached_cpu(&pattern, &v, nh, nkv, dh), 1e-5, 1e-4, &format!("attn_z_cached {n_q}x{n_k}x{nh}/{nkv}x{dh}"));
    }
}

#[test]
fn cached_references_are_the_last_rows_of_the_full_ones() {
    // The last n_q queries of a full causal pass against all keys: the cached ops' rows equal
    // the full ops' last rows exactly (the same sums in the same order).
    let mut rng = StdRng::seed_from_u64(42);
    let (pos, nh, nkv, dh, n_q) = (23, 4, 2, 8, 5);
    let q = rand_vec(&mut rng, pos * nh * dh, -1.0, 1.0);
    let k = rand_vec(&mut rng, pos * nkv * dh, -1.0, 1.0);
    let v = rand_vec(&mut rng, pos * nkv * dh, -1.0, 1.0);
    let full = attn_scores_cpu(&q, &k, 1, nh, nkv, dh);
    let pattern = softmax_cpu(&full, pos);
    let z = attn_z_cpu(&pattern, &v, 1, nh, nkv, dh);
    let new_q = &q[(pos - n_q) * nh * dh..];
    let s = attn_scores_cached_cpu(new_q, &k, nh, nkv, dh);
    let p = softmax_cpu(&s, pos);
    let zc = attn_z_cached_cpu(&p, &v, nh, nkv, dh);
    for h in 0..nh {
        for i in 0..n_q {
            let row = |x: &[f32], n: usize, r: usize| x[(h * n + r) * pos..(h * n + r + 1) * pos].to_vec();
            assert_eq!(row(&s, n_q, i), row(&full, pos, pos - n_q + i));
        }
    }
    assert_eq!(zc, z[(pos - n_q) * nh * dh..].to_vec());
}
