//! Top-activating examples: run a model over a corpus and keep, for every neuron of a hook,
//! the positions where it fired most, to show each with its context. Pure logic: no DOM, no
//! backend.

/// The `k` largest activations of every neuron, each with the index of the corpus character
/// the model was reading there.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TopActivations {
    k: usize,
    /// Per neuron, (activation, character index), largest first, at most `k`.
    per_neuron: Vec<Vec<(f32, usize)>>,
}

impl TopActivations {
    pub fn new(n_neurons: usize, k: usize) -> TopActivations {
        TopActivations { k, per_neuron: vec![Vec::with_capacity(k + 1); n_neurons] }
    }

    pub fn n_neurons(&self) -> usize {
        self.per_neuron.len()
    }

    /// Adds one sequence's activations `acts` `[n_pos, n_neurons]`; `char_at(p)` is the corpus
    /// character read at position `p`, or `None` for positions that read none (BOS).
    pub fn add(&mut self, acts: &[f32], char_at: impl Fn(usize) -> Option<usize>) {
        let n = self.per_neuron.len();
        for (p, row) in acts.chunks_exact(n).enumerate() {
            let Some(c) = char_at(p) else { continue };
            for (list, &v) in self.per_neuron.iter_mut().zip(row) {
                if list.len() == self.k && list.last().is_some_and(|&(last, _)| v <= last) {
                    continue;
                }
                let at = list.partition_point(|&(x, _)| x >= v);
                list.insert(at, (v, c));
                list.truncate(self.k);
            }
        }
    }

    /// Neuron `n`'s top activations, largest first.
    pub fn top(&self, n: usize) -> &[(f32, usize)] {
        self.per_neuron.get(n).map_or(&[], Vec::as_slice)
    }
}

/// The context of character `at`: up to `before` characters before it, the character, and up
/// to `after` characters after it.
pub fn snippet(chars: &[char], at: usize, before: usize, after: usize) -> (String, String, String) {
    let start = at.saturating_sub(before);
    let end = (at + 1 + after).min(chars.len());
    (chars[start..at].iter().collect(), chars[at..at + 1].iter().collect(), chars[at + 1..end].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_largest_per_neuron_in_order() {
        let mut t = TopActivations::new(2, 3);
        // 5 positions x 2 neurons; position 0 reads no character.
        let acts = [9.0, 0.0, 1.0, 5.0, 4.0, 4.0, 2.0, 3.0, 3.0, 6.0];
        t.add(&acts, |p| (p > 0).then(|| 100 + p));
        assert_eq!(t.top(0), &[(4.0, 102), (3.0, 104), (2.0, 103)]);
        assert_eq!(t.top(1), &[(6.0, 104), (5.0, 101), (4.0, 102)]);
        t.add(&[0.0, 0.0, 10.0, -1.0], |p| Some(7 + p));
        assert_eq!(t.top(0)[0], (10.0, 8));
        assert_eq!(t.top(1).len(), 3);
    }

    #[test]
    fn snippets_stop_at_the_ends() {
        let chars: Vec<char> = "the whale".chars().collect();
        assert_eq!(snippet(&chars, 4, 10, 2), ("the ".into(), "w".into(), "ha".into()));
        assert_eq!(snippet(&chars, 8, 2, 5), ("al".into(), "e".into(), "".into()));
    }
}
