//! Fourier analysis of the modular-addition model, as in Nanda et al. 2023 ("Progress
//! measures for grokking via mechanistic interpretability"): the embedding of the numbers
//! 0..p-1 lives on a few key frequencies, and each MLP neuron at `=` responds periodically to
//! a and b, mostly at one of those frequencies. Pure logic: no DOM, no backend.
//!
//! Frequency k (1 <= k <= p/2) means the pair of functions cos(2 pi k x / p), sin(2 pi k x / p);
//! k = 0 is the constant.

use std::f64::consts::PI;

/// The norm of the embedding's component along each frequency: `w_e` holds at least `p` rows
/// of `d_model` (row x embeds the number x). Entry k is the norm of the projection of the
/// `[p, d_model]` matrix onto the orthonormal basis vectors of frequency k (cos and sin
/// together for k >= 1), so the squares of all entries sum to the matrix's squared norm.
pub fn embedding_frequency_norms(w_e: &[f32], p: usize, d_model: usize) -> Vec<f32> {
    assert!(w_e.len() >= p * d_model, "W_E has fewer than {p} rows of {d_model}");
    (0..=p / 2)
        .map(|k| {
            let basis = basis_vectors(p, k);
            let sq: f64 = basis
                .iter()
                .map(|v| {
                    (0..d_model)
                        .map(|d| {
                            let c: f64 = (0..p).map(|x| v[x] * w_e[x * d_model + d] as f64).sum();
                            c * c
                        })
                        .sum::<f64>()
                })
                .sum();
            sq.sqrt() as f32
        })
        .collect()
}

/// The orthonormal basis vectors (over x = 0..p) of frequency k: the constant for k = 0; cos
/// and sin for 1 <= k < p/2; only cos for k = p/2 when p is even (sin vanishes there).
fn basis_vectors(p: usize, k: usize) -> Vec<Vec<f64>> {
    let wave = |f: fn(f64) -> f64| -> Vec<f64> {
        let v: Vec<f64> = (0..p).map(|x| f(2.0 * PI * (k * x) as f64 / p as f64)).collect();
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.into_iter().map(|a| a / n).collect()
    };
    if k == 0 {
        vec![vec![1.0 / (p as f64).sqrt(); p]]
    } else if 2 * k == p {
        vec![wave(f64::cos)]
    } else {
        vec![wave(f64::cos), wave(f64::sin)]
    }
}

/// How a function of (a, b) on a `p x p` grid (`grid[a * p + b]`) splits over frequencies:
/// entry k (1 <= k <= p/2) is the fraction of its variance in the 2D Fourier components
/// (k, 0), (0, k), (k, k) and (k, -k) and their mirror images: cos and sin of ka, kb, k(a+b)
/// and k(a-b). Entry 0 is unused (0). Each of those components is a 1D transform of sums of
/// the grid along rows, columns, anti-diagonals (a + b = s) or diagonals (a - b = s), so this
/// costs O(p^2), not a full 2D transform; the variance comes from Parseval.
pub fn grid_frequency_fractions(grid: &[f32], p: usize) -> Vec<f32> {
    assert_eq!(grid.len(), p * p, "the grid must be p x p");
    let (mut rows, mut cols, mut sums, mut diffs) = (vec![0f64; p], vec![0f64; p], vec![0f64; p], vec![0f64; p]);
    let (mut total, mut total_sq) = (0f64, 0f64);
    for a in 0..p {
        for b in 0..p {
            let g = grid[a * p + b] as f64;
            rows[a] += g;
            cols[b] += g;
            sums[(a + b) % p] += g;
            diffs[(a + p - b) % p] += g;
            total += g;
            total_sq += g * g;
        }
    }
    // Sum over all (k1, k2) != (0, 0) of |F|^2 = p^2 * sum g^2 - (sum g)^2.
    let variance_power = (p * p) as f64 * total_sq - total * total;
    let mut out = vec![0f32; p / 2 + 1];
    if variance_power <= 1e-12 * (p * p) as f64 * total_sq.max(1e-30) {
        return out;
    }
    let dft_power = |v: &[f64], k: usize| {
        let (mut re, mut im) = (0f64, 0f64);
        for (x, &val) in v.iter().enumerate() {
            let t = -2.0 * PI * ((k * x) % p) as f64 / p as f64;
            re += val * t.cos();
            im += val * t.sin();
        }
        re * re + im * im
    };
    for (k, o) in out.iter_mut().enumerate().skip(1) {
        // F(k, 0) = DFT of the row sums at k, F(0, k) of the column sums, F(k, k) of the
        // anti-diagonal sums, F(k, -k) of the diagonal sums; (-k, ...) mirror them.
        let mirror = if 2 * k == p { 1.0 } else { 2.0 };
        let power = dft_power(&rows, k) + dft_power(&cols, k) + dft_power(&sums, k) + dft_power(&diffs, k);
        *o = (mirror * power / variance_power) as f32;
    }
    out
}

/// Indices of the `n` largest values, largest first (entry 0, the constant, excluded).
pub fn top_frequencies(values: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (1..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(n);
    idx
}

/// The share of the squared embedding norm (constant excluded) held by its `n` largest
/// frequencies.
pub fn top_share(norms: &[f32], n: usize) -> f32 {
    let sq = |k: &usize| (norms[*k] as f64).powi(2);
    let total: f64 = (1..norms.len()).map(|k| sq(&k)).sum();
    (top_frequencies(norms, n).iter().map(sq).sum::<f64>() / total) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_wave_embedding_sits_on_its_frequency() {
        let (p, d) = (113, 4);
        let mut w = vec![0f32; p * d];
        for x in 0..p {
            let t = 2.0 * PI * (14 * x) as f64 / p as f64;
            w[x * d] = t.cos() as f32;
            w[x * d + 1] = t.sin() as f32 * 0.5;
            w[x * d + 2] = 3.0; // constant
        }
        let norms = embedding_frequency_norms(&w, p, d);
        assert_eq!(top_frequencies(&norms, 1), vec![14]);
        assert!(top_share(&norms, 1) > 0.999);
        // Parseval: the squares sum to the squared Frobenius norm.
        let total: f64 = w.iter().map(|&v| (v as f64).powi(2)).sum();
        let parts: f64 = norms.iter().map(|&n| (n as f64).powi(2)).sum();
        assert!((total - parts).abs() < 1e-3 * total, "{total} vs {parts}");
    }

    #[test]
    fn a_neuron_of_a_plus_b_is_found_at_its_frequency() {
        let p = 113;
        let grid: Vec<f32> = (0..p * p)
            .map(|i| {
                let (a, b) = (i / p, i % p);
                let t = 2.0 * PI * (35 * (a + b)) as f64 / p as f64;
                (t.cos() + 0.3 * (2.0 * PI * (35 * a) as f64 / p as f64).sin() + 1.0) as f32
            })
            .collect();
        let f = grid_frequency_fractions(&grid, p);
        assert_eq!(top_frequencies(&f, 1), vec![35]);
        assert!(f[35] > 0.999, "{}", f[35]);
    }

    #[test]
    fn the_shipped_model_embeds_on_a_few_key_frequencies() {
        // The grokked model's embedding is sparse in the Fourier basis: a handful of the 56
        // frequencies hold most of its norm (a random embedding spreads evenly: 6/56 = 11%).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../public/models/modular-addition");
        let bundle = glassbox_core::ModelBundle::from_dir(&root).expect("the shipped model loads");
        let d = bundle.cfg.d_model;
        let norms = embedding_frequency_norms(&bundle.weights.W_E.dense(glassbox_core::weights::MatrixRole::Table).unwrap().data, 113, d);
        let share = top_share(&norms, 6);
        assert!(share > 0.5, "the top 6 frequencies hold only {share:.2} of the embedding");
    }
}
