//! What the views show, computed from one run's output: token strings, top-5 predictions at
//! every position, attention patterns per layer, and per-head scores that point a reader at
//! the interesting heads. Pure logic: no DOM, no backend.

use glassbox_core::{RunOutput, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::engine::protocol::f32s;

/// The attention-pattern hook of layer `l`: `[head, query, key]`.
pub fn pattern_hook(l: usize) -> String {
    format!("blocks.{l}.attn.hook_pattern")
}

/// The positions a view draws: every position, or with `pad` (a padded model's padding token)
/// every position but the padding, keeping the last one (where such a model's readout is).
pub fn shown_positions(ids: &[u32], pad: Option<u32>) -> Vec<usize> {
    let last = ids.len().saturating_sub(1);
    (0..ids.len()).filter(|&p| pad != Some(ids[p]) || p == last).collect()
}

/// The rows and columns `shown` of an `n x n` pattern, row-major; empty when it is not `n x n`.
pub fn sub_pattern(pattern: &[f32], n: usize, shown: &[usize]) -> Vec<f32> {
    if pattern.len() != n * n || shown.iter().any(|&p| p >= n) {
        return Vec::new();
    }
    if shown.len() == n {
        return pattern.to_vec();
    }
    shown.iter().flat_map(|&q| shown.iter().map(move |&k| pattern[q * n + k])).collect()
}

/// The columns of a positions grid of `n_pos` columns: the `shown` positions in range, or every
/// position when none is given (or when `shown` is of another prompt and keeps none).
pub fn columns(shown: &[usize], n_pos: usize) -> Vec<usize> {
    let cols: Vec<usize> = shown.iter().copied().filter(|&p| p < n_pos).collect();
    if cols.is_empty() {
        (0..n_pos).collect()
    } else {
        cols
    }
}

/// Where position `pos` is among `shown`; a hidden position maps to the last shown one before it.
pub fn shown_index(shown: &[usize], pos: usize) -> usize {
    shown.iter().rposition(|&p| p <= pos).unwrap_or(0)
}

/// One layer's attention pattern `[head, query, key]`, row-major.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Pattern {
    pub n_heads: usize,
    #[serde(with = "f32s")]
    pub data: Vec<f32>,
}

/// One finished run, as the views need it. Computed in the engine's worker; this is what
/// crosses to the page (not the run's whole cache).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunView {
    /// The prompt text that was submitted (before any cut).
    pub prompt: String,
    /// Token ids run, the BOS token first.
    pub ids: Vec<u32>,
    /// Token strings, one per id.
    pub tokens: Vec<String>,
    /// The 5 most likely outputs at each position (next tokens, or the named outputs of a
    /// readout such as a classifier's classes): (name, probability).
    pub top5: Vec<Vec<(String, f32)>>,
    /// Attention patterns, one per layer.
    pub patterns: Vec<Pattern>,
    /// Per-token loss (surprise): `loss[p] = -ln P(ids[p + 1] | ids[..=p])`, nats; empty for a
    /// readout model, whose outputs are not next tokens.
    pub loss: Vec<f32>,
    /// Wall time of the forward pass and read-back, in milliseconds.
    pub elapsed_ms: f64,
}

impl RunView {
    /// The views of one run (the worker keeps `out` for the other views).
    pub fn from_output(prompt: &str, ids: Vec<u32>, out: &RunOutput, n_layers: usize, tokenizer: &Tokenizer, elapsed_ms: f64) -> RunView {
        let tokens = ids.iter().map(|&id| tokenizer.token_str(id)).collect();
        let top5 = (0..ids.len()).map(|p| out.top_k(p, 5).into_iter().map(|(id, prob)| (tokenizer.output_str(id), prob)).collect()).collect();
        let patterns = (0..n_layers)
            .map(|l| out.get(&pattern_hook(l)).map(|t| Pattern { n_heads: t.shape.first().copied().unwrap_or(0), data: t.data.clone() }).unwrap_or_default())
            .collect();
        let loss = if tokenizer.outputs().is_some() { Vec::new() } else { token_loss(&out.logits.data, &ids) };
        RunView { prompt: prompt.to_string(), ids, tokens, top5, patterns, loss, elapsed_ms }
    }

    pub fn n_tokens(&self) -> usize {
        self.ids.len()
    }

    /// The pattern of one head, `[query, key]` row-major, or `None` when out of range.
    pub fn head_pattern(&self, layer: usize, head: usize) -> Option<&[f32]> {
        let t = self.patterns.get(layer)?;
        let n = self.n_tokens();
        (head < t.n_heads && t.data.len() >= t.n_heads * n * n).then(|| &t.data[head * n * n..(head + 1) * n * n])
    }

    pub fn n_heads(&self, layer: usize) -> usize {
        self.patterns.get(layer).map_or(0, |t| t.n_heads)
    }

    /// The head of `layer` with the highest induction score, when the prompt repeats a token.
    pub fn strongest_induction_head(&self, layer: usize) -> Option<usize> {
        let targets = induction_targets(&self.ids);
        (0..self.n_heads(layer))
            .filter_map(|h| Some((h, induction_score(self.head_pattern(layer, h)?, self.n_tokens(), &targets)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(h, _)| h)
    }
}

/// `-ln P(ids[p + 1])` under the logits at every position but the last (`logits` `[pos, vocab]`).
pub fn token_loss(logits: &[f32], ids: &[u32]) -> Vec<f32> {
    let n = ids.len();
    if n < 2 {
        return Vec::new();
    }
    let v = logits.len() / n;
    (0..n - 1)
        .map(|p| {
            let row = &logits[p * v..(p + 1) * v];
            let next = ids[p + 1] as usize;
            if next >= v {
                return f32::NAN;
            }
            -glassbox_core::analysis::log_softmax(row)[next]
        })
        .collect()
}

/// For every query whose token occurred before, the key just after that token's most recent
/// earlier occurrence: where an induction head looks (A B ... A -> attends to B).
pub fn induction_targets(ids: &[u32]) -> Vec<(usize, usize)> {
    (1..ids.len()).filter_map(|q| (1..q).rev().find(|&j| ids[j] == ids[q]).map(|j| (q, j + 1))).collect()
}

/// Mean attention from each such query to its induction target, per head; `None` when the
/// prompt repeats no token (so no head can show induction).
pub fn induction_score(pattern: &[f32], n: usize, targets: &[(usize, usize)]) -> Option<f32> {
    (!targets.is_empty()).then(|| targets.iter().map(|&(q, k)| pattern[q * n + k]).sum::<f32>() / targets.len() as f32)
}

/// Mean attention from each query to the token just before it: high for previous-token heads.
pub fn prev_token_score(pattern: &[f32], n: usize) -> Option<f32> {
    (n > 1).then(|| (1..n).map(|q| pattern[q * n + q - 1]).sum::<f32>() / (n - 1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_hidden_but_the_readout_position_stays() {
        // <bos> ( ) <pad> <pad> <pad>, pad = 9
        let ids = [0, 1, 2, 9, 9, 9];
        assert_eq!(shown_positions(&ids, Some(9)), vec![0, 1, 2, 5]);
        assert_eq!(shown_positions(&ids, None), (0..6).collect::<Vec<_>>());
        let pattern: Vec<f32> = (0..36).map(|i| i as f32).collect();
        // rows 0, 1, 2, 5 x the same columns
        assert_eq!(sub_pattern(&pattern, 6, &[0, 2, 5]), vec![0.0, 2.0, 5.0, 12.0, 14.0, 17.0, 30.0, 32.0, 35.0]);
        assert_eq!(sub_pattern(&pattern, 6, &(0..6).collect::<Vec<_>>()), pattern);
        assert!(sub_pattern(&pattern, 5, &[0]).is_empty());
        assert_eq!(shown_index(&[0, 1, 2, 5], 5), 3);
        assert_eq!(shown_index(&[0, 1, 2, 5], 4), 2); // a hidden pad: the last shown before it
        assert_eq!(shown_index(&[0, 1, 2, 5], 0), 0);
        // A grid's columns: the shown positions it has, or all of them.
        assert_eq!(columns(&[0, 1, 2, 5], 6), vec![0, 1, 2, 5]);
        assert_eq!(columns(&[0, 1, 2, 5], 3), vec![0, 1, 2]);
        assert_eq!(columns(&[], 3), vec![0, 1, 2]);
        assert_eq!(columns(&[7, 8], 3), vec![0, 1, 2]);
    }

    #[test]
    fn induction_targets_follow_the_most_recent_earlier_occurrence() {
        // <bos> a b c a b a
        let ids = [0, 1, 2, 3, 1, 2, 1];
        assert_eq!(induction_targets(&ids), vec![(4, 2), (5, 3), (6, 5)]);
    }

    #[test]
    fn token_loss_is_the_surprise_of_the_next_token() {
        // Two positions, a vocabulary of 2: uniform, then certain of token 1.
        let loss = token_loss(&[0.0, 0.0, -100.0, 100.0, 0.0, 0.0], &[0, 1, 0]);
        assert!((loss[0] - std::f32::consts::LN_2).abs() < 1e-6);
        assert!(loss[1] > 150.0);
        assert_eq!(token_loss(&[0.0, 0.0], &[0]), Vec::<f32>::new());
    }

    #[test]
    fn scores_average_the_selected_entries() {
        // 3 tokens; query 2 puts 0.75 on key 1 (its target) and query 1 puts 1.0 on key 0.
        let p = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.25, 0.75, 0.0];
        assert_eq!(induction_score(&p, 3, &[(2, 1)]), Some(0.75));
        assert_eq!(induction_score(&p, 3, &[]), None);
        assert_eq!(prev_token_score(&p, 3), Some((1.0 + 0.75) / 2.0));
    }
}
