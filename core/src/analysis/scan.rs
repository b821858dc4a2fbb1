//! Top-activating examples: run a model over a corpus (in windows, batch by batch) and keep,
//! for every neuron of a hook, the places where it fired most, each with the activations of
//! the tokens around it so that an example can be shown shaded without running it again.
//!
//! TransformerLens has no single call for this; it is the loop every neuron page runs (as in
//! Neuroscope): `run_with_cache` over the corpus and a running top-k per neuron.

use serde::{Deserialize, Serialize};

/// One example: where a neuron fired, and its activations around that token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub act: f32,
    /// The window of the corpus (see [`crate::experiment::corpus_windows`]) and the position in it.
    pub window: u32,
    pub pos: u32,
    /// The first position of `context` in the window.
    pub start: u32,
    /// The neuron's activation at positions `start..start + context.len()`.
    pub context: Vec<f32>,
}

/// The `k` largest activations of every neuron of one hook over the windows added so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopActivations {
    pub k: usize,
    /// Context kept before and after each example's token.
    pub before: usize,
    pub after: usize,
    /// Per neuron, largest first, at most `k`.
    per_neuron: Vec<Vec<Example>>,
    /// Tokens read so far (positions that count, over all windows).
    pub tokens_scanned: usize,
}

impl TopActivations {
    pub fn new(n_neurons: usize, k: usize, before: usize, after: usize) -> TopActivations {
        TopActivations { k, before, after, per_neuron: vec![Vec::with_capacity(k + 1); n_neurons], tokens_scanned: 0 }
    }

    pub fn n_neurons(&self) -> usize {
        self.per_neuron.len()
    }

    /// Adds one window's activations `acts` `[n_pos, n_neurons]`; positions `p` with
    /// `counts(p) == false` (a BOS token) are skipped.
    pub fn add(&mut self, window: u32, acts: &[f32], counts: impl Fn(usize) -> bool) {
        let n = self.per_neuron.len();
        let n_pos = acts.len() / n.max(1);
        for p in 0..n_pos {
            if !counts(p) {
                continue;
            }
            self.tokens_scanned += 1;
            for (neuron, list) in self.per_neuron.iter_mut().enumerate() {
                let v = acts[p * n + neuron];
                if v.is_nan() || (list.len() == self.k && list.last().is_some_and(|e| v <= e.act)) {
                    continue;
                }
                let start = p.saturating_sub(self.before);
                let end = (p + 1 + self.after).min(n_pos);
                let context = (start..end).map(|q| acts[q * n + neuron]).collect();
                let at = list.partition_point(|e| e.act >= v);
                list.insert(at, Example { act: v, window, pos: p as u32, start: start as u32, context });
                list.truncate(self.k);
            }
        }
    }

    /// Neuron `n`'s examples, largest first.
    pub fn top(&self, n: usize) -> &[Example] {
        self.per_neuron.get(n).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_largest_per_neuron_in_order_with_their_context() {
        let mut t = TopActivations::new(2, 3, 1, 1);
        // 5 positions x 2 neurons; position 0 (BOS) does not count.
        let acts = [9.0, 0.0, 1.0, 5.0, 4.0, 4.0, 2.0, 3.0, 3.0, 6.0];
        t.add(7, &acts, |p| p > 0);
        let top0: Vec<(f32, u32)> = t.top(0).iter().map(|e| (e.act, e.pos)).collect();
        assert_eq!(top0, [(4.0, 2), (3.0, 4), (2.0, 3)]);
        assert_eq!(t.top(0)[0].context, [1.0, 4.0, 2.0]);
        assert_eq!((t.top(0)[0].start, t.top(0)[0].window), (1, 7));
        // The last position has no token after it.
        assert_eq!(t.top(1)[0].context, [3.0, 6.0]);
        assert_eq!(t.tokens_scanned, 4);
        t.add(8, &[0.0, 0.0, 10.0, -1.0], |_| true);
        assert_eq!((t.top(0)[0].act, t.top(0)[0].window), (10.0, 8));
        assert_eq!(t.top(1).len(), 3);
    }
}
