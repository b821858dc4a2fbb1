//! Head scores: how much each attention head attends where a previous-token, duplicate-token
//! or induction head would.
//!
//! TransformerLens: `head_detector.detect_head(model, seq, detection_pattern, exclude_bos=False,
//! exclude_current_token=False, error_measure="mul")`: the detection pattern is a 0/1 matrix
//! over (query, key) built from the tokens, and a head's score is
//! `sum(pattern * detection) / sum(pattern)`, the share of its attention that lands where the
//! detection pattern says. The patterns (`get_previous_token_head_detection_pattern`,
//! `get_duplicate_token_head_detection_pattern`, `get_induction_head_detection_pattern`) are
//! rebuilt here exactly; the standard input for induction is a random sequence repeated twice.

use serde::{Deserialize, Serialize};

use super::cached;
use crate::config::Config;
use crate::run::RunOutput;
use crate::tasks::Rng;
use crate::{Error, Result};

/// The kinds of head TransformerLens's detector knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// Query `i` attends to key `i - 1`.
    PreviousToken,
    /// Query `i` attends to earlier keys holding the same token.
    DuplicateToken,
    /// Query `i` attends to the key just after an earlier occurrence of its token.
    Induction,
}

impl HeadKind {
    pub const ALL: [HeadKind; 3] = [HeadKind::PreviousToken, HeadKind::DuplicateToken, HeadKind::Induction];

    pub fn label(self) -> &'static str {
        match self {
            HeadKind::PreviousToken => "previous token",
            HeadKind::DuplicateToken => "duplicate token",
            HeadKind::Induction => "induction",
        }
    }
}

/// The detection pattern of `kind` for `tokens`, `[n, n]` row-major (query, key), lower
/// triangular, as TransformerLens builds it.
pub fn detection_pattern(kind: HeadKind, tokens: &[u32]) -> Vec<f32> {
    let n = tokens.len();
    let mut p = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..=i {
            let hit = match kind {
                HeadKind::PreviousToken => j + 1 == i,
                HeadKind::DuplicateToken => j < i && tokens[j] == tokens[i],
                // The duplicate pattern shifted one key to the right, first column zero.
                HeadKind::Induction => j >= 1 && tokens[j - 1] == tokens[i] && j - 1 < i,
            };
            if hit {
                p[i * n + j] = 1.0;
            }
        }
    }
    p
}

/// `compute_head_attention_similarity_score` with `error_measure="mul"`: the share of the
/// pattern's mass on the detection pattern. `pattern` and `detection` are `[n, n]`.
pub fn similarity_score(pattern: &[f32], detection: &[f32], n: usize, exclude_bos: bool, exclude_current_token: bool) -> f32 {
    let (mut hit, mut total) = (0f64, 0f64);
    for i in 0..n {
        for j in 0..n {
            if (exclude_bos && j == 0) || (exclude_current_token && i == j) {
                continue;
            }
            let a = pattern[i * n + j] as f64;
            hit += a * detection[i * n + j] as f64;
            total += a;
        }
    }
    if total == 0.0 {
        0.0
    } else {
        (hit / total) as f32
    }
}

/// Every head's score for each kind on one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadScores {
    pub n_layers: usize,
    pub n_heads: usize,
    /// The tokens the scores were computed on.
    pub tokens: Vec<u32>,
    /// `(kind, scores [layer * n_heads + head])`, one entry per [`HeadKind::ALL`].
    pub scores: Vec<(HeadKind, Vec<f32>)>,
}

impl HeadScores {
    pub fn get(&self, kind: HeadKind) -> &[f32] {
        self.scores.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, s)| s.as_slice())
    }

    /// `(layer, head, score)` for `kind`, highest first.
    pub fn ranked(&self, kind: HeadKind) -> Vec<(usize, usize, f32)> {
        let mut v: Vec<_> = self.get(kind).iter().enumerate().map(|(i, &s)| (i / self.n_heads, i % self.n_heads, s)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }
}

/// Scores every head of `out` (a run on `tokens` that cached every `attn.hook_pattern`).
pub fn head_scores(cfg: &Config, out: &RunOutput, tokens: &[u32]) -> Result<HeadScores> {
    let n = tokens.len();
    if out.logits.shape[0] != n {
        return Err(Error::Request(format!("the run read {} tokens, not the {n} given", out.logits.shape[0])));
    }
    let detections: Vec<_> = HeadKind::ALL.iter().map(|&k| (k, detection_pattern(k, tokens))).collect();
    let mut scores: Vec<(HeadKind, Vec<f32>)> = HeadKind::ALL.iter().map(|&k| (k, Vec::with_capacity(cfg.n_layers * cfg.n_heads))).collect();
    for l in 0..cfg.n_layers {
        let pattern = cached(out, &format!("blocks.{l}.attn.hook_pattern"))?; // [head, query, key]
        for h in 0..cfg.n_heads {
            let p = &pattern.data[h * n * n..(h + 1) * n * n];
            for ((_, det), (_, s)) in detections.iter().zip(scores.iter_mut()) {
                s.push(similarity_score(p, det, n, false, false));
            }
        }
    }
    Ok(HeadScores { n_layers: cfg.n_layers, n_heads: cfg.n_heads, tokens: tokens.to_vec(), scores })
}

/// The detector's standard input: `bos` (if the model has one), then `half` random tokens from
/// `lo..hi`, seeded, repeated twice. Induction heads light up on the second half.
pub fn repeated_random_tokens(seed: u64, half: usize, lo: u32, hi: u32, bos: Option<u32>) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let body: Vec<u32> = (0..half).map(|_| rng.range(lo as usize, hi.max(lo + 1) as usize) as u32).collect();
    bos.into_iter().chain(body.iter().copied()).chain(body.iter().copied()).collect()
}

/// Length of the random half of [`detector_input`].
pub const DETECTOR_HALF: usize = 20;

/// The head detector's standard input for a model, as the explorer uses it: BOS (if any),
/// then [`DETECTOR_HALF`] random tokens (seed 0; ids above BOS, within the vocabulary and half
/// the context) repeated twice.
pub fn detector_input(cfg: &Config, bos: Option<u32>) -> Vec<u32> {
    let lo = bos.map_or(0, |b| b + 1).min(cfg.d_vocab as u32 - 1);
    let half = DETECTOR_HALF.min(cfg.n_ctx.saturating_sub(1) / 2).max(1);
    repeated_random_tokens(0, half, lo, cfg.d_vocab as u32, bos)
}
