//! Synthetic tasks for the shipped toy models: their data generators and held-out metrics.
//! They live in the core (not the CLI) so that training, the tests that check a shipped
//! model's card, and the app's examples all use the very same definitions.

/// SplitMix64: a tiny deterministic generator, the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

/// The induction task: random tokens in which one random segment occurs twice. After the
/// first token of the second occurrence, each next token is predictable by induction
/// ("A B ... A -> B") and by nothing else.
pub mod induction {
    use super::Rng;

    /// The vocabulary: BOS, then a-z, A-Z, 0-9 (one character per token).
    pub fn vocab() -> Vec<String> {
        let mut v = vec!["<bos>".to_string()];
        v.extend(('a'..='z').chain('A'..='Z').chain('0'..='9').map(String::from));
        v
    }
    pub const BOS: u32 = 0;
    /// Tokens per sequence, BOS included.
    pub const SEQ_LEN: usize = 48;

    /// One sequence and the positions whose next token is an induction continuation.
    #[derive(Clone, Debug)]
    pub struct Example {
        pub tokens: Vec<u32>,
        /// Positions p (inside the second occurrence) where `tokens[p + 1]` is predictable.
        pub predictable: Vec<usize>,
    }

    pub fn example(rng: &mut Rng) -> Example {
        let n_vocab = vocab().len();
        let body = SEQ_LEN - 1;
        let seg = rng.range(8, 24);
        let gap = rng.range(0, body - 2 * seg + 1);
        let start1 = rng.range(0, body - 2 * seg - gap + 1);
        let start2 = start1 + seg + gap;
        let mut t: Vec<u32> = (0..body).map(|_| rng.range(1, n_vocab) as u32).collect();
        for i in 0..seg {
            t[start2 + i] = t[start1 + i];
        }
        let mut tokens = vec![BOS];
        tokens.extend(t);
        // Token positions shift by one for BOS. Predicting tokens[start2+1+i+1] from
        // position start2+1+i, for i in 0..seg-1.
        let predictable = (0..seg - 1).map(|i| start2 + 1 + i).collect();
        Example { tokens, predictable }
    }
}

impl induction::Example {
    /// How many of the predictable positions the logits `[pos, d_vocab]` get right (argmax).
    pub fn correct(&self, logits: &crate::HostTensor) -> usize {
        self.predictable
            .iter()
            .filter(|&&p| {
                let row = logits.row(p);
                let argmax = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                argmax as u32 == self.tokens[p + 1]
            })
            .count()
    }
}

/// Held-out accuracy of a model on the repeated half of `n` fresh induction sequences drawn
/// with `seed` (training uses other seeds).
pub async fn induction_heldout_accuracy<B: crate::Backend>(model: &crate::HookedTransformer<B>, backend: &B, seed: u64, n: usize) -> crate::Result<f32> {
    induction_heldout_accuracy_with(model, backend, seed, n, &[]).await
}

/// [`induction_heldout_accuracy`] with `interventions` applied to every sequence (an ablation:
/// `analysis::patching::zero_ablation` of the induction heads).
pub async fn induction_heldout_accuracy_with<B: crate::Backend>(
    model: &crate::HookedTransformer<B>,
    backend: &B,
    seed: u64,
    n: usize,
    interventions: &[crate::Intervention],
) -> crate::Result<f32> {
    let mut rng = Rng::new(seed);
    let (mut right, mut total) = (0, 0);
    for _ in 0..n {
        let ex = induction::example(&mut rng);
        let mut req = crate::RunRequest::new(ex.tokens.clone());
        req.interventions = interventions.to_vec();
        let out = model.run(backend, &req).await?;
        right += ex.correct(&out.logits);
        total += ex.predictable.len();
    }
    Ok(right as f32 / total as f32)
}

/// Argmax of the readout at the last position of each of `n_batch` equal-length sequences
/// (`tokens` holds them one after another), in batches of at most `chunk` sequences.
pub async fn predict_last<B: crate::Backend>(
    model: &crate::HookedTransformer<B>,
    backend: &B,
    tokens: &[u32],
    n_batch: usize,
    chunk: usize,
) -> crate::Result<Vec<u32>> {
    let n_pos = tokens.len() / n_batch;
    let n_out = model.cfg.d_vocab_out;
    let mut out = Vec::with_capacity(n_batch);
    for start in (0..n_batch).step_by(chunk.max(1)) {
        let n = chunk.min(n_batch - start);
        let logits = model.forward_batch(backend, &tokens[start * n_pos..(start + n) * n_pos], n)?;
        let data = backend.read(&[&logits]).await?.remove(0);
        for b in 0..n {
            let row = &data[((b + 1) * n_pos - 1) * n_out..(b + 1) * n_pos * n_out];
            out.push((0..n_out).max_by(|&i, &j| row[i].total_cmp(&row[j])).expect("a readout has outputs") as u32);
        }
    }
    Ok(out)
}

/// Modular addition, `a + b mod 113`, as in the grokking literature (Power et al. 2022; Nanda
/// et al. 2023): the prompt is the three tokens `a b =`, the answer is read at `=`.
pub mod modular {
    use super::Rng;

    pub const P: usize = 113;
    /// The `=` token; the numbers 0..P are tokens 0..P.
    pub const EQ: u32 = P as u32;
    pub const N_POS: usize = 3;
    /// The share of all pairs that trains (python/train_organisms.py MOD_FRACTION).
    pub const TRAIN_FRACTION: f64 = 0.3;

    pub fn tokens(a: usize, b: usize) -> [u32; N_POS] {
        [a as u32, b as u32, EQ]
    }

    /// Pairs (a, b).
    pub type Pairs = Vec<(usize, usize)>;

    /// Every pair (a, b), shuffled with `seed`; the first `train_fraction` of them train.
    pub fn split(seed: u64, train_fraction: f64) -> (Pairs, Pairs) {
        let mut pairs: Vec<(usize, usize)> = (0..P).flat_map(|a| (0..P).map(move |b| (a, b))).collect();
        let mut rng = Rng::new(seed);
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, rng.range(0, i + 1));
        }
        let n_train = (pairs.len() as f64 * train_fraction).round() as usize;
        let test = pairs.split_off(n_train);
        (pairs, test)
    }

    /// Accuracy of the answers at `=` on `pairs`.
    pub async fn accuracy<B: crate::Backend>(model: &crate::HookedTransformer<B>, backend: &B, pairs: &[(usize, usize)]) -> crate::Result<f32> {
        let tokens: Vec<u32> = pairs.iter().flat_map(|&(a, b)| tokens(a, b)).collect();
        let answers = super::predict_last(model, backend, &tokens, pairs.len(), 2048).await?;
        let right = pairs.iter().zip(&answers).filter(|(&(a, b), &y)| (a + b) % P == y as usize).count();
        Ok(right as f32 / pairs.len() as f32)
    }
}

/// Balanced parentheses: is a string of `(` and `)` (length 1 to 40) balanced? The answer is
/// read at the last position of the padded sequence `<bos> s <pad>...` (41 tokens).
pub mod parens {
    use super::Rng;

    pub const MAX_LEN: usize = 40;
    pub const N_POS: usize = MAX_LEN + 1;
    pub const BOS: u32 = 0;
    pub const PAD: u32 = 3;
    /// Output 1 is "balanced", output 0 "unbalanced".
    pub const OUTPUTS: [&str; 2] = ["unbalanced", "balanced"];

    pub fn is_balanced(s: &str) -> bool {
        let mut depth = 0i32;
        for c in s.chars() {
            depth += if c == '(' { 1 } else { -1 };
            if depth < 0 {
                return false;
            }
        }
        depth == 0
    }

    /// `<bos> s <pad>...`, `N_POS` tokens.
    pub fn tokens(s: &str) -> Vec<u32> {
        let mut t = vec![BOS];
        t.extend(s.chars().map(|c| if c == '(' { 1 } else { 2 }));
        t.resize(N_POS, PAD);
        t
    }

    /// What kind of string an example is; `EqualCountsNegativePrefix` is the hard case: the
    /// counts match but some prefix closes more than it opened.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        Balanced,
        EqualCountsNegativePrefix,
        OneFlipped,
        Random,
    }

    fn balanced(rng: &mut Rng, len: usize) -> String {
        let (mut s, mut depth) = (String::with_capacity(len), 0usize);
        for i in 0..len {
            let left = len - i;
            let open = depth == 0 || (depth < left && rng.range(0, 2) == 0);
            s.push(if open { '(' } else { ')' });
            if open {
                depth += 1
            } else {
                depth -= 1
            }
        }
        s
    }

    /// One example: half balanced, 20% the hard case, 15% a balanced string with one character
    /// flipped, 15% uniformly random.
    pub fn example(rng: &mut Rng) -> (String, Kind) {
        let even_len = 2 * rng.range(1, MAX_LEN / 2 + 1);
        match rng.range(0, 20) {
            0..=9 => (balanced(rng, even_len), Kind::Balanced),
            10..=13 => {
                let len = 2 * rng.range(1, MAX_LEN / 2 + 1);
                loop {
                    let mut c: Vec<char> = "(".repeat(len / 2).chars().chain(")".repeat(len / 2).chars()).collect();
                    for i in (1..c.len()).rev() {
                        c.swap(i, rng.range(0, i + 1));
                    }
                    let s: String = c.into_iter().collect();
                    if !is_balanced(&s) {
                        return (s, Kind::EqualCountsNegativePrefix);
                    }
                }
            }
            14..=16 => {
                let mut c: Vec<char> = balanced(rng, even_len).chars().collect();
                let i = rng.range(0, c.len());
                c[i] = if c[i] == '(' { ')' } else { '(' };
                (c.into_iter().collect(), Kind::OneFlipped)
            }
            _ => {
                let len = rng.range(1, MAX_LEN + 1);
                ((0..len).map(|_| if rng.range(0, 2) == 0 { '(' } else { ')' }).collect(), Kind::Random)
            }
        }
    }

    pub fn dataset(seed: u64, n: usize) -> Vec<(String, Kind)> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| example(&mut rng)).collect()
    }

    /// (accuracy on all `examples`, accuracy on the hard case alone).
    pub async fn accuracy<B: crate::Backend>(model: &crate::HookedTransformer<B>, backend: &B, examples: &[(String, Kind)]) -> crate::Result<(f32, f32)> {
        let tokens: Vec<u32> = examples.iter().flat_map(|(s, _)| tokens(s)).collect();
        let answers = super::predict_last(model, backend, &tokens, examples.len(), 512).await?;
        let (mut right, mut hard, mut hard_right) = (0, 0, 0);
        for ((s, kind), &y) in examples.iter().zip(&answers) {
            let ok = (y == 1) == is_balanced(s);
            right += usize::from(ok);
            if *kind == Kind::EqualCountsNegativePrefix {
                hard += 1;
                hard_right += usize::from(ok);
            }
        }
        Ok((right as f32 / examples.len() as f32, hard_right as f32 / hard.max(1) as f32))
    }
}

/// The small English language model: characters of public-domain English prose (Moby-Dick),
/// whitespace runs read as one space. Its held-out slice ships in `public/corpus/`.
pub mod english {
    pub const BOS: u32 = 0;

    /// Mean loss in nats per character of the model on `ids` (the normalized text's token ids,
    /// without BOS), read in windows of `<bos>` + `n_ctx - 1` characters; each character is
    /// predicted once, from the characters before it in its window.
    pub async fn heldout_loss<B: crate::Backend>(model: &crate::HookedTransformer<B>, backend: &B, ids: &[u32]) -> crate::Result<f64> {
        let body = model.cfg.n_ctx - 1;
        let n_out = model.cfg.d_vocab_out;
        let (mut total, mut count) = (0f64, 0usize);
        for window in ids.chunks(body) {
            let mut tokens = vec![BOS];
            tokens.extend_from_slice(window);
            let logits = model.forward_batch(backend, &tokens, 1)?;
            let data = backend.read(&[&logits]).await?.remove(0);
            for (p, &target) in window.iter().enumerate() {
                let row = &data[p * n_out..(p + 1) * n_out];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
                total += lse - row[target as usize] as f64;
                count += 1;
            }
        }
        Ok(total / count as f64)
    }
}

/// Each held-out metric of a shipped organism's card, recomputed with `model` on `backend`:
/// (metric name, value now, value on the card). `dir` is the model's folder (the English
/// model's held-out slice is read from `dir/../../corpus/`).
#[cfg(not(target_arch = "wasm32"))]
pub async fn card_metrics<B: crate::Backend>(
    bundle: &crate::ModelBundle,
    model: &crate::HookedTransformer<B>,
    backend: &B,
    dir: &std::path::Path,
) -> crate::Result<Vec<(String, f64, f64)>> {
    let card = |k: &str| bundle.card["metrics"][k].as_f64().ok_or_else(|| crate::Error::Config(format!("card.json has no metrics.{k}")));
    let name = bundle.card["name"].as_str().unwrap_or_default();
    Ok(match name {
        "induction-2l" => {
            let seed = card("eval_seed")? as u64;
            let n = card("eval_sequences")? as usize;
            vec![("heldout_induction_accuracy".into(), induction_heldout_accuracy(model, backend, seed, n).await? as f64, card("heldout_induction_accuracy")?)]
        }
        "modular-addition" => {
            let (_, test) = modular::split(card("split_seed")? as u64, modular::TRAIN_FRACTION);
            vec![("heldout_accuracy".into(), modular::accuracy(model, backend, &test).await? as f64, card("heldout_accuracy")?)]
        }
        "balanced-parens" => {
            let examples = parens::dataset(card("eval_seed")? as u64, card("eval_examples")? as usize);
            let (acc, hard) = parens::accuracy(model, backend, &examples).await?;
            vec![
                ("heldout_accuracy".into(), acc as f64, card("heldout_accuracy")?),
                ("heldout_hard_case_accuracy".into(), hard as f64, card("heldout_hard_case_accuracy")?),
            ]
        }
        "english-char-3l" => {
            let path = dir.join("../../corpus/moby-dick-heldout.txt");
            let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))?;
            let ids = bundle.tokenizer.encode(&text)?[1..].to_vec();
            vec![("heldout_loss_nats_per_char".into(), english::heldout_loss(model, backend, &ids).await?, card("heldout_loss_nats_per_char")?)]
        }
        other => return Err(crate::Error::Config(format!("no held-out metric is known for {other:?}"))),
    })
}
