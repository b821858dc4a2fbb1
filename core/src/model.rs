//! The hooked GPT-2-architecture transformer, written once for every backend.
//!
//! Reads top to bottom like the paper: embed, then per block a pre-LayerNorm attention
//! (q, k, v, scores, pattern, z, output) and a pre-LayerNorm GELU MLP (absent in
//! attention-only models) added into the residual stream, then the final LayerNorm and the
//! unembedding. Every intermediate value passes through [`Hooks::hook`], which applies the
//! run's interventions and keeps what the run asked to cache. Hook names come from `hooks.rs`.

use crate::backend::Backend;
use crate::config::Config;
use crate::hooks::HookPoint;
use crate::run::{HookAffine, PlannedRun, RunOutput, RunRequest};
use crate::tensor::HostTensor;
use crate::weights::{BlockWeights, ModelWeights};
use crate::{Error, Result};

/// A model whose weights live on backend `B`.
pub struct HookedTransformer<B: Backend> {
    pub cfg: Config,
    pub weights: ModelWeights<B::Tensor>,
}

/// The hook points of one run, visited in order by the forward pass.
struct Hooks<'r, B: Backend> {
    plan: &'r PlannedRun,
    /// Index of the next hook point the forward pass must visit.
    next: usize,
    /// Interventions uploaded to the backend, one affine map per hook point.
    affines: Vec<Option<(B::Tensor, B::Tensor)>>,
    cached: Vec<(HookPoint, B::Tensor)>,
}

impl<'r, B: Backend> Hooks<'r, B> {
    fn new(backend: &B, plan: &'r PlannedRun) -> Result<Self> {
        let affines = plan
            .hooks
            .iter()
            .map(|(_, _, a)| a.as_ref().map(|HookAffine { mul, add }| Ok((backend.upload(mul)?, backend.upload(add)?))).transpose())
            .collect::<Result<_>>()?;
        Ok(Hooks { plan, next: 0, affines, cached: Vec::new() })
    }

    /// The hook point `name`: applies its interventions, caches it if asked, passes it on.
    fn hook(&mut self, backend: &B, name: &str, x: B::Tensor) -> Result<B::Tensor> {
        let (point, cache, _) = self.plan.hooks.get(self.next).ok_or_else(|| Error::Request(format!("hook {name} visited past the end of the list")))?;
        // The forward pass and hooks.rs must agree; a mismatch is a bug, caught by the tests.
        assert_eq!(point.name, name, "forward pass visited {name} where hooks.rs lists {}", point.name);
        let x = match &self.affines[self.next] {
            Some((mul, add)) => backend.affine(&x, mul, add)?,
            None => x,
        };
        if *cache {
            self.cached.push((point.clone(), x.clone()));
        }
        self.next += 1;
        Ok(x)
    }
}

impl<B: Backend> HookedTransformer<B> {
    /// Uploads host weights to the backend.
    pub fn new(backend: &B, cfg: Config, weights: &ModelWeights<HostTensor>) -> Result<Self> {
        cfg.validate()?;
        let weights = weights.try_map(|_, t| backend.upload(t))?;
        Ok(HookedTransformer { cfg, weights })
    }

    /// Records the forward pass of one run and returns (logits, cached hooks), still on the
    /// backend. Use [`HookedTransformer::run`] to get host values.
    pub fn forward(&self, backend: &B, req: &RunRequest) -> Result<(B::Tensor, Vec<(HookPoint, B::Tensor)>)> {
        let plan = PlannedRun::plan(&self.cfg, req)?;
        self.forward_planned(backend, &plan, &plan.tokens, 1)
    }

    /// The forward pass over a batch of equal-length sequences, with no hooks cached and no
    /// interventions: what training runs. tokens `[batch * pos]` (sequence after sequence) ->
    /// logits `[batch * pos, d_vocab_out]`. The same code path as [`HookedTransformer::forward`].
    pub fn forward_batch(&self, backend: &B, tokens: &[u32], n_batch: usize) -> Result<B::Tensor> {
        let plan = self.plan_batch(tokens, n_batch, &[])?;
        Ok(self.forward_planned(backend, &plan, tokens, n_batch)?.0)
    }

    /// Runs a batch of equal-length sequences (no interventions) and reads back the logits
    /// `[batch, pos, d_vocab_out]` and the hooks named in `cache`, each `[batch, ...]` with
    /// the hook's TransformerLens shape after the batch axis.
    pub async fn run_batch(&self, backend: &B, tokens: &[u32], n_batch: usize, cache: &[&str]) -> Result<RunOutput> {
        let plan = self.plan_batch(tokens, n_batch, cache)?;
        let (logits, cached) = self.forward_planned(backend, &plan, tokens, n_batch)?;
        self.read_output(backend, logits, cached, Some(n_batch), tokens.len() / n_batch).await
    }

    /// Checks a batch and plans it: the first sequence's plan (which checks the length and the
    /// hook names) stands for all, since nothing is changed, only cached.
    fn plan_batch(&self, tokens: &[u32], n_batch: usize, cache: &[&str]) -> Result<PlannedRun> {
        if n_batch == 0 || tokens.is_empty() || tokens.len() % n_batch != 0 {
            return Err(Error::Request(format!("{} tokens do not split into {n_batch} equal sequences", tokens.len())));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.cfg.d_vocab) {
            return Err(Error::Request(format!("token id {t} is outside the vocabulary of {}", self.cfg.d_vocab)));
        }
        PlannedRun::plan(&self.cfg, &RunRequest::new(tokens[..tokens.len() / n_batch].to_vec()).cache(cache))
    }

    fn forward_planned(&self, backend: &B, plan: &PlannedRun, tokens: &[u32], n_batch: usize) -> Result<(B::Tensor, Vec<(HookPoint, B::Tensor)>)> {
        let mut hooks = Hooks::<B>::new(backend, plan)?;
        let h = &mut hooks;
        let w = &self.weights;
        let n_pos = tokens.len() / n_batch;

        let embed = h.hook(backend, "hook_embed", backend.embed(tokens, &w.W_E)?)?; // [pos, d_model]
        let pos_embed = h.hook(backend, "hook_pos_embed", backend.pos_embed(n_batch, n_pos, &w.W_pos)?)?; // [pos, d_model]
        let mut resid = backend.add(&embed, &pos_embed)?;
        for (l, block) in w.blocks.iter().enumerate() {
            resid = self.block(backend, h, l, block, resid, n_batch)?;
        }
        let x = self.layer_norm(backend, h, "ln_final", &resid, &w.ln_final_w, &w.ln_final_b)?;
        let unembed_in = h.hook(backend, "unembed.hook_in", x)?; // [pos, d_model]
        let logits = h.hook(backend, "unembed.hook_out", backend.linear(&unembed_in, &w.W_U, None)?)?; // [pos, d_vocab_out]
        assert_eq!(hooks.next, plan.hooks.len(), "the forward pass skipped hook points");
        Ok((logits, hooks.cached))
    }

    /// One transformer block: `resid_pre -> resid_post`. Shapes in the comments are for one
    /// sequence; a batch stacks its sequences along `pos` (and leads the `[head, query, key]` ones).
    fn block(&self, backend: &B, h: &mut Hooks<'_, B>, l: usize, w: &BlockWeights<B::Tensor>, resid_pre: B::Tensor, n_batch: usize) -> Result<B::Tensor> {
        let cfg = &self.cfg;
        let name = |s: &str| format!("blocks.{l}.{s}");
        let (n_heads, d_head) = (cfg.n_heads, cfg.d_head);
        let resid_pre = h.hook(backend, &name("hook_resid_pre"), resid_pre)?; // [pos, d_model]

        // Attention.
        let x = self.layer_norm(backend, h, &name("ln1"), &resid_pre, &w.ln1_w, &w.ln1_b)?; // [pos, d_model]
        let q = h.hook(backend, &name("attn.hook_q"), backend.linear(&x, &w.W_Q, Some(&w.b_Q))?)?; // [pos, head, d_head]
        let k = h.hook(backend, &name("attn.hook_k"), backend.linear(&x, &w.W_K, Some(&w.b_K))?)?; // [pos, head, d_head]
        let v = h.hook(backend, &name("attn.hook_v"), backend.linear(&x, &w.W_V, Some(&w.b_V))?)?; // [pos, head, d_head]
        let scores = backend.attn_scores(&q, &k, n_batch, n_heads, d_head)?;
        let scores = h.hook(backend, &name("attn.hook_attn_scores"), scores)?; // [head, query, key]
        let pattern = h.hook(backend, &name("attn.hook_pattern"), backend.softmax(&scores)?)?; // [head, query, key]
        let z = h.hook(backend, &name("attn.hook_z"), backend.attn_z(&pattern, &v, n_batch, n_heads, d_head)?)?; // [pos, head, d_head]
        let attn_out = h.hook(backend, &name("hook_attn_out"), backend.linear(&z, &w.W_O, Some(&w.b_O))?)?; // [pos, d_model]

        let Some(mlp) = &w.mlp else {
            // Attention-only: there is no resid_mid.
            return h.hook(backend, &name("hook_resid_post"), backend.add(&resid_pre, &attn_out)?);
        };
        let resid_mid = h.hook(backend, &name("hook_resid_mid"), backend.add(&resid_pre, &attn_out)?)?; // [pos, d_model]

        // MLP.
        let x = self.layer_norm(backend, h, &name("ln2"), &resid_mid, &mlp.ln2_w, &mlp.ln2_b)?; // [pos, d_model]
        let pre = h.hook(backend, &name("mlp.hook_pre"), backend.linear(&x, &mlp.W_in, Some(&mlp.b_in))?)?; // [pos, d_mlp]
        let post = h.hook(backend, &name("mlp.hook_post"), backend.gelu_new(&pre)?)?; // [pos, d_mlp]
        let mlp_out = h.hook(backend, &name("hook_mlp_out"), backend.linear(&post, &mlp.W_out, Some(&mlp.b_out))?)?; // [pos, d_model]
        h.hook(backend, &name("hook_resid_post"), backend.add(&resid_mid, &mlp_out)?) // [pos, d_model]
    }

    /// LayerNorm `ln` (`ln1`, `ln2`, `ln_final`) with its two hooks, as TransformerLens 3:
    /// `hook_scale` `[pos, 1]`, then `hook_normalized` `[pos, d_model]` before the weight and bias.
    fn layer_norm(&self, backend: &B, h: &mut Hooks<'_, B>, ln: &str, x: &B::Tensor, w: &B::Tensor, b: &B::Tensor) -> Result<B::Tensor> {
        let (scale, normalized) = backend.layer_norm(x, self.cfg.eps)?;
        h.hook(backend, &format!("{ln}.hook_scale"), scale)?;
        let normalized = h.hook(backend, &format!("{ln}.hook_normalized"), normalized)?;
        backend.scale_shift(&normalized, w, b)
    }

    /// Runs one request and reads the logits and the cached hooks back to the host, with
    /// TransformerLens shapes.
    pub async fn run(&self, backend: &B, req: &RunRequest) -> Result<RunOutput> {
        let (logits, cached) = self.forward(backend, req)?;
        self.read_output(backend, logits, cached, None, req.tokens.len()).await
    }

    /// Reads the logits and the cached hooks back to the host with TransformerLens shapes,
    /// after a leading batch axis when `n_batch` is given.
    async fn read_output(&self, backend: &B, logits: B::Tensor, cached: Vec<(HookPoint, B::Tensor)>, n_batch: Option<usize>, n_pos: usize) -> Result<RunOutput> {
        let mut refs: Vec<&B::Tensor> = vec![&logits];
        refs.extend(cached.iter().map(|(_, t)| t));
        let mut data = backend.read(&refs).await?.into_iter();
        let shape = |s: Vec<usize>| n_batch.into_iter().chain(s).collect::<Vec<usize>>();
        let logits = HostTensor::new(shape(vec![n_pos, self.cfg.d_vocab_out]), data.next().expect("logits were read"));
        let cache = cached.into_iter().zip(data).map(|((point, _), d)| (point.name.clone(), HostTensor::new(shape(point.shape(&self.cfg, n_pos)), d))).collect();
        Ok(RunOutput { cache, logits })
    }
}
