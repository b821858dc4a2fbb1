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
    let mut rng = Rng::new(seed);
    let (mut right, mut total) = (0, 0);
    for _ in 0..n {
        let ex = induction::example(&mut rng);
        let out = model.run(backend, &crate::RunRequest::new(ex.tokens.clone())).await?;
        right += ex.correct(&out.logits);
        total += ex.predictable.len();
    }
    Ok(right as f32 / total as f32)
}
