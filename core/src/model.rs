//! The hooked transformer, written once for every backend and every family (GPT-2, Llama,
//! GPT-NeoX; `Config::arch`).
//!
//! Reads top to bottom like the papers: embed (plus learned positions, for GPT-2), then per
//! block a pre-norm attention (q, k, v, rotary q and k for rotary models, scores, pattern, z,
//! output) and a pre-norm MLP (GELU, or SwiGLU when gated; absent in attention-only models),
//! added into the residual stream one after the other (GPT-2, Llama) or side by side from the
//! same stream (GPT-NeoX's parallel block), then the final norm and the unembedding. Every
//! intermediate value passes through [`Hooks::hook`], which applies the run's interventions and
//! keeps what the run asked to cache. Hook names come from `hooks.rs`.
//!
//! Where no intervention sits on the value between two steps ([`Hooks::is_plain`]), the pass asks
//! the backend for both at once (`Backend::norm_scale_shift`, `attention`, `linear_act`,
//! `linear_add`: one GPU dispatch each); every value is still hooked, and equals the two steps'.

use crate::backend::Backend;
use crate::config::Config;
use crate::hooks::HookPoint;
use crate::run::{BatchRequest, HookAffine, PlannedRun, RunOutput, RunRequest};
use crate::tensor::HostTensor;
use crate::weights::{matrix_role, shares_blocks, BlockWeights, MatrixSource, MlpWeights, ModelWeights};
use crate::{Error, Result};

/// The logits and the cached hooks of a forward pass, still on the backend.
pub type Forward<B> = (<B as Backend>::Tensor, Vec<(HookPoint, <B as Backend>::Tensor)>);

/// A model whose weights live on backend `B`.
pub struct HookedTransformer<B: Backend> {
    pub cfg: Config,
    pub weights: ModelWeights<B::Tensor, B::Matrix>,
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

    /// Whether hook point `name`, still ahead in this pass, has no intervention: then nothing
    /// changes its value, and the backend may fuse the step that makes it with the step that
    /// reads it (the hook still sees, and may cache, the value). Panics if `name` is not ahead.
    fn is_plain(&self, name: &str) -> bool {
        let i = self.plan.hooks[self.next..]
            .iter()
            .position(|(p, _, _)| p.name == name)
            .unwrap_or_else(|| panic!("is_plain: {name} is not ahead in the hook list"));
        self.affines[self.next + i].is_none()
    }
}

impl<B: Backend> HookedTransformer<B> {
    /// Uploads host weights (dense tensors, or matrices that may be quantized) to the backend.
    pub fn new<M: MatrixSource>(backend: &B, cfg: Config, weights: &ModelWeights<HostTensor, M>) -> Result<Self> {
        cfg.validate()?;
        // A tied, quantized unembedding shares W_E's blocks (same allocation): upload them once
        // where the backend can read them both ways.
        let shared = cfg.tied_embeddings && shares_blocks(&weights.W_E, &weights.W_U);
        let mut w_e = None;
        let weights = weights.try_map(
            |_, t| backend.upload(t),
            |name, m| {
                if name == "unembed.W_U" && shared {
                    if let Some(u) = w_e.as_ref().and_then(|e| backend.tied_unembed(e)) {
                        return Ok(u);
                    }
                }
                let up = backend.upload_matrix(&m.to_matrix(), matrix_role(name))?;
                if name == "embed.W_E" {
                    w_e = Some(up.clone());
                }
                Ok(up)
            },
        )?;
        Ok(HookedTransformer { cfg, weights })
    }

    /// Records the forward pass of one run and returns (logits, cached hooks), still on the
    /// backend. Use [`HookedTransformer::run`] to get host values.
    pub fn forward(&self, backend: &B, req: &RunRequest) -> Result<Forward<B>> {
        let plan = PlannedRun::plan(&self.cfg, req)?;
        self.forward_planned(backend, &plan)
    }

    /// The forward pass over a batch of equal-length sequences, with no hooks cached and no
    /// interventions: what training runs. tokens `[batch * pos]` (sequence after sequence) ->
    /// logits `[batch * pos, d_vocab_out]`. The same code path as [`HookedTransformer::run_batch`].
    pub fn forward_batch(&self, backend: &B, tokens: &[u32], n_batch: usize) -> Result<B::Tensor> {
        let batch = BatchRequest::uniform(tokens, n_batch, &crate::CacheSpec::None)?;
        let plan = PlannedRun::plan_batch(&self.cfg, &batch.items)?;
        Ok(self.forward_planned(backend, &plan)?.0)
    }

    /// Runs a batch of equal-length runs at once, each with its own interventions, and reads
    /// back one [`RunOutput`] per item: its logits `[pos, d_vocab_out]` and the hooks it asked
    /// for, with TransformerLens shapes. A sweep (every input of a task, a patching sweep) is
    /// one call; [`HookedTransformer::run`] is a batch of one.
    pub async fn run_batch(&self, backend: &B, batch: &BatchRequest) -> Result<Vec<RunOutput>> {
        let plan = PlannedRun::plan_batch(&self.cfg, &batch.items)?;
        let (logits, cached) = self.forward_planned(backend, &plan)?;
        self.read_outputs(backend, &plan, logits, cached).await
    }

    /// Runs one request and reads the logits and the cached hooks back to the host, with
    /// TransformerLens shapes.
    pub async fn run(&self, backend: &B, req: &RunRequest) -> Result<RunOutput> {
        let plan = PlannedRun::plan(&self.cfg, req)?;
        let (logits, cached) = self.forward_planned(backend, &plan)?;
        let mut out = self.read_outputs(backend, &plan, logits, cached).await?;
        Ok(out.remove(0))
    }

    /// The model cut after block `layer`, with a one-output zero unembedding: the same
    /// activations up to `blocks.{layer}` (what TransformerLens's
    /// `run_with_cache(stop_at_layer=layer + 1)` computes) and none of the later work. It shares
    /// this model's weights on the backend. What a corpus scan of one layer runs.
    pub fn truncated(&self, backend: &B, layer: usize) -> Result<HookedTransformer<B>> {
        if layer >= self.cfg.n_layers {
            return Err(Error::Request(format!("layer {layer} is out of range (the model has {} layers)", self.cfg.n_layers)));
        }
        let mut cfg = self.cfg.clone();
        cfg.n_layers = layer + 1;
        cfg.d_vocab_out = 1;
        cfg.tied_embeddings = false;
        let w = &self.weights;
        let zero = crate::weights::HostMatrix::Dense(HostTensor::zeros(vec![cfg.d_model, 1]));
        let weights = ModelWeights {
            W_E: w.W_E.clone(),
            W_pos: w.W_pos.clone(),
            blocks: w.blocks[..=layer].to_vec(),
            ln_final_w: w.ln_final_w.clone(),
            ln_final_b: w.ln_final_b.clone(),
            W_U: backend.upload_matrix(&zero, crate::weights::MatrixRole::Linear)?,
        };
        Ok(HookedTransformer { cfg, weights })
    }

    /// Rows of the residual stream, already through the final norm, `[rows, d_model]`, times
    /// `W_U` on this backend: `[rows, d_vocab_out]` on the host. What the logit lens and a
    /// neuron's direct effect read (`analysis/`).
    pub async fn unembed(&self, backend: &B, rows: &HostTensor) -> Result<HostTensor> {
        if rows.shape.len() != 2 || rows.shape[1] != self.cfg.d_model {
            return Err(Error::Request(format!("unembed takes [rows, {}], not {:?}", self.cfg.d_model, rows.shape)));
        }
        let x = backend.upload(rows)?;
        let logits = backend.linear(&x, &self.weights.W_U, None)?;
        let data = backend.read(&[&logits]).await?.remove(0);
        Ok(HostTensor::new(vec![rows.shape[0], self.cfg.d_vocab_out], data))
    }

    fn forward_planned(&self, backend: &B, plan: &PlannedRun) -> Result<Forward<B>> {
        self.forward_kv(backend, plan, None)
    }

    /// The forward pass; with `kv` (one sequence, `generate.rs`), the plan's tokens are the
    /// positions after the cached ones: positions and rotary angles start at the cache's length,
    /// each block's new keys and values join the cached ones, and the new queries attend to all.
    pub(crate) fn forward_kv(&self, backend: &B, plan: &PlannedRun, mut kv: Option<&mut crate::generate::KvCache<B>>) -> Result<Forward<B>> {
        let mut hooks = Hooks::<B>::new(backend, plan)?;
        let h = &mut hooks;
        let w = &self.weights;
        let (tokens, n_batch, n_pos) = (plan.tokens.as_slice(), plan.n_batch, plan.n_pos);
        let offset = kv.as_ref().map(|c| c.len());

        let embed = h.hook(backend, "hook_embed", backend.embed(tokens, &w.W_E)?)?; // [pos, d_model]
        let mut resid = match &w.W_pos {
            Some(w_pos) => {
                let pos_embed = match offset {
                    None => backend.pos_embed(n_batch, n_pos, w_pos)?,
                    Some(offset) => backend.pos_embed_at(offset, n_pos, w_pos)?,
                };
                let pos_embed = h.hook(backend, "hook_pos_embed", pos_embed)?; // [pos, d_model]
                backend.add(&embed, &pos_embed)?
            }
            None => embed, // rotary models add positions inside attention
        };
        let rotary = match (self.cfg.rotary(), offset) {
            (Some((dim, base)), None) => Some(backend.rotary_tables(n_pos, dim, base)?),
            (Some((dim, base)), Some(offset)) => Some(backend.rotary_tables_at(offset, n_pos, dim, base)?),
            (None, _) => None,
        };
        for (l, block) in w.blocks.iter().enumerate() {
            let layer_kv = kv.as_deref_mut().map(|c| c.layer(l));
            resid = self.block(backend, h, l, block, resid, n_batch, rotary.as_ref(), layer_kv)?;
        }
        if let Some(c) = kv {
            c.advance(n_pos);
        }
        let x = self.norm(backend, h, "ln_final", &resid, &w.ln_final_w, w.ln_final_b.as_ref())?;
        let unembed_in = h.hook(backend, "unembed.hook_in", x)?; // [pos, d_model]
        let logits = h.hook(backend, "unembed.hook_out", backend.linear(&unembed_in, &w.W_U, None)?)?; // [pos, d_vocab_out]
        assert_eq!(hooks.next, plan.hooks.len(), "the forward pass skipped hook points");
        Ok((logits, hooks.cached))
    }

    /// One transformer block: `resid_pre -> resid_post`. Shapes in the comments are for one
    /// sequence; a batch stacks its sequences along `pos` (and leads the `[head, query, key]` ones).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        backend: &B,
        h: &mut Hooks<'_, B>,
        l: usize,
        w: &BlockWeights<B::Tensor, B::Matrix>,
        resid_pre: B::Tensor,
        n_batch: usize,
        rotary: Option<&(B::Tensor, B::Tensor)>,
        kv: Option<&mut Option<(B::Tensor, B::Tensor)>>,
    ) -> Result<B::Tensor> {
        let cfg = &self.cfg;
        let name = |s: &str| format!("blocks.{l}.{s}");
        let (n_heads, n_kv_heads, d_head) = (cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
        let resid_pre = h.hook(backend, &name("hook_resid_pre"), resid_pre)?; // [pos, d_model]

        // Attention.
        let x = self.norm(backend, h, &name("ln1"), &resid_pre, &w.ln1_w, w.ln1_b.as_ref())?; // [pos, d_model]
        let mut q = h.hook(backend, &name("attn.hook_q"), backend.linear(&x, &w.W_Q, w.b_Q.as_ref())?)?; // [pos, head, d_head]
        let mut k = h.hook(backend, &name("attn.hook_k"), backend.linear(&x, &w.W_K, w.b_K.as_ref())?)?; // [pos, kv_head, d_head]
        let v = h.hook(backend, &name("attn.hook_v"), backend.linear(&x, &w.W_V, w.b_V.as_ref())?)?; // [pos, kv_head, d_head]
        if let (Some(tables), Some((rot_dim, _))) = (rotary, cfg.rotary()) {
            q = h.hook(backend, &name("attn.hook_rot_q"), backend.rotary(&q, tables, n_heads, d_head, rot_dim)?)?; // [pos, head, d_head]
            k = h.hook(backend, &name("attn.hook_rot_k"), backend.rotary(&k, tables, n_kv_heads, d_head, rot_dim)?)?;
            // [pos, kv_head, d_head]
        }
        // With a KV cache the new keys and values join the earlier positions' (kept after rotary),
        // and the new queries attend to all of them: `[head, query, key]` has more keys than queries.
        let cached = match kv {
            Some(slot) => Some(crate::generate::append_kv(backend, slot, &k, &v)?),
            None => None,
        };
        let (scores_hook, pattern_hook) = (name("attn.hook_attn_scores"), name("attn.hook_pattern"));
        let z = if h.is_plain(&scores_hook) && h.is_plain(&pattern_hook) {
            // Nothing changes the scores or the pattern in between: scores, softmax and z in one step.
            let (scores, pattern, z) = match &cached {
                None => backend.attention(&q, &k, &v, n_batch, n_heads, n_kv_heads, d_head)?,
                Some((k_all, v_all)) => backend.attention_cached(&q, k_all, v_all, n_heads, n_kv_heads, d_head)?,
            };
            h.hook(backend, &scores_hook, scores)?; // [head, query, key]
            h.hook(backend, &pattern_hook, pattern)?; // [head, query, key]
            z
        } else {
            let scores = match &cached {
                None => backend.attn_scores(&q, &k, n_batch, n_heads, n_kv_heads, d_head)?,
                Some((k_all, _)) => backend.attn_scores_cached(&q, k_all, n_heads, n_kv_heads, d_head)?,
            };
            let scores = h.hook(backend, &scores_hook, scores)?; // [head, query, key]
            let pattern = h.hook(backend, &pattern_hook, backend.softmax(&scores)?)?; // [head, query, key]
            match &cached {
                None => backend.attn_z(&pattern, &v, n_batch, n_heads, n_kv_heads, d_head)?,
                Some((_, v_all)) => backend.attn_z_cached(&pattern, v_all, n_heads, n_kv_heads, d_head)?,
            }
        };
        let z = h.hook(backend, &name("attn.hook_z"), z)?; // [pos, head, d_head]

        // resid_pre + hook_attn_out: resid_mid, or (attention-only) resid_post.
        let resid_attn = self.add_projection(backend, h, &name("hook_attn_out"), &z, &w.W_O, w.b_O.as_ref(), &resid_pre)?; // [pos, d_model]

        let Some(mlp) = &w.mlp else {
            // Attention-only: there is no resid_mid.
            return h.hook(backend, &name("hook_resid_post"), resid_attn);
        };
        if cfg.parallel_attn_mlp {
            // GPT-NeoX: the MLP reads resid_pre too; resid_post = resid_pre + attn_out + mlp_out.
            let sum = self.mlp(backend, h, l, mlp, &resid_pre, &resid_attn)?;
            return h.hook(backend, &name("hook_resid_post"), sum); // [pos, d_model]
        }
        let resid_mid = h.hook(backend, &name("hook_resid_mid"), resid_attn)?; // [pos, d_model]
        let resid_post = self.mlp(backend, h, l, mlp, &resid_mid, &resid_mid)?;
        h.hook(backend, &name("hook_resid_post"), resid_post) // [pos, d_model]
    }

    /// `resid + hook(x W + b)`: an output projection (`hook_attn_out`, `hook_mlp_out`) added into
    /// the residual stream, as one step where no intervention changes the projection.
    #[allow(clippy::too_many_arguments)]
    fn add_projection(
        &self,
        backend: &B,
        h: &mut Hooks<'_, B>,
        hook: &str,
        x: &B::Tensor,
        w: &B::Matrix,
        b: Option<&B::Tensor>,
        resid: &B::Tensor,
    ) -> Result<B::Tensor> {
        if h.is_plain(hook) {
            let (out, sum) = backend.linear_add(x, w, b, resid)?;
            h.hook(backend, hook, out)?;
            return Ok(sum);
        }
        let out = h.hook(backend, hook, backend.linear(x, w, b)?)?;
        backend.add(resid, &out)
    }

    /// The MLP with the norm before it, reading `input`, its output `hook_mlp_out` added to `resid`
    /// (returned). Plain: `act(x W_in + b_in)`; gated (SwiGLU): `act(x W_gate) * (x W_in)` with
    /// both halves hooked, as TransformerLens.
    #[allow(clippy::too_many_arguments)]
    fn mlp(
        &self,
        backend: &B,
        h: &mut Hooks<'_, B>,
        l: usize,
        w: &MlpWeights<B::Tensor, B::Matrix>,
        input: &B::Tensor,
        resid: &B::Tensor,
    ) -> Result<B::Tensor> {
        let name = |s: &str| format!("blocks.{l}.{s}");
        let act = self.cfg.act_fn;
        let x = self.norm(backend, h, &name("ln2"), input, &w.ln2_w, w.ln2_b.as_ref())?; // [pos, d_model]
        let post = match &w.W_gate {
            Some(w_gate) => {
                // Each half's matmul takes the next step into its store where nothing changes
                // its hook: the activation (hook_pre), the product (hook_pre_linear).
                let gate = if h.is_plain(&name("mlp.hook_pre")) {
                    let (pre, gate) = backend.linear_act(&x, w_gate, None, act)?;
                    h.hook(backend, &name("mlp.hook_pre"), pre)?; // [pos, d_mlp]
                    gate
                } else {
                    let pre = h.hook(backend, &name("mlp.hook_pre"), backend.linear(&x, w_gate, None)?)?;
                    backend.act(act, &pre)?
                };
                if h.is_plain(&name("mlp.hook_pre_linear")) {
                    let (pre_linear, post) = backend.linear_mul(&x, &w.W_in, w.b_in.as_ref(), &gate)?;
                    h.hook(backend, &name("mlp.hook_pre_linear"), pre_linear)?; // [pos, d_mlp]
                    post
                } else {
                    let pre_linear = h.hook(backend, &name("mlp.hook_pre_linear"), backend.linear(&x, &w.W_in, w.b_in.as_ref())?)?;
                    backend.mul(&gate, &pre_linear)?
                }
            }
            None if h.is_plain(&name("mlp.hook_pre")) => {
                // Nothing changes hook_pre: the activation in the same step as the matmul.
                let (pre, post) = backend.linear_act(&x, &w.W_in, w.b_in.as_ref(), act)?;
                h.hook(backend, &name("mlp.hook_pre"), pre)?; // [pos, d_mlp]
                post
            }
            None => {
                let pre = h.hook(backend, &name("mlp.hook_pre"), backend.linear(&x, &w.W_in, w.b_in.as_ref())?)?; // [pos, d_mlp]
                backend.act(act, &pre)?
            }
        };
        let post = h.hook(backend, &name("mlp.hook_post"), post)?; // [pos, d_mlp]
        self.add_projection(backend, h, &name("hook_mlp_out"), &post, &w.W_out, w.b_out.as_ref(), resid)
        // [pos, d_model]
    }

    /// The norm `ln` (`ln1`, `ln2`, `ln_final`: LayerNorm or RMSNorm) with its two hooks, as
    /// TransformerLens 3: `hook_scale` `[pos, 1]`, then `hook_normalized` `[pos, d_model]` before
    /// the weight (and LayerNorm's bias). Where nothing changes `hook_normalized`, the norm and
    /// its weight are one step.
    fn norm(&self, backend: &B, h: &mut Hooks<'_, B>, ln: &str, x: &B::Tensor, w: &B::Tensor, b: Option<&B::Tensor>) -> Result<B::Tensor> {
        let (scale_hook, normalized_hook) = (format!("{ln}.hook_scale"), format!("{ln}.hook_normalized"));
        let (norm, eps) = (self.cfg.normalization, self.cfg.eps);
        if h.is_plain(&normalized_hook) {
            let (scale, normalized, out) = backend.norm_scale_shift(norm, x, eps, w, b)?;
            h.hook(backend, &scale_hook, scale)?;
            h.hook(backend, &normalized_hook, normalized)?;
            return Ok(out);
        }
        let (scale, normalized) = backend.normalize(norm, x, eps)?;
        h.hook(backend, &scale_hook, scale)?;
        let normalized = h.hook(backend, &normalized_hook, normalized)?;
        backend.scale_shift(&normalized, w, b)
    }

    /// Reads the logits and the cached hooks back (one submission, one read-back) and splits
    /// them into one output per item of the batch, each with the hooks that item asked for.
    async fn read_outputs(&self, backend: &B, plan: &PlannedRun, logits: B::Tensor, cached: Vec<(HookPoint, B::Tensor)>) -> Result<Vec<RunOutput>> {
        let mut refs: Vec<&B::Tensor> = vec![&logits];
        refs.extend(cached.iter().map(|(_, t)| t));
        let mut data = backend.read(&refs).await?.into_iter();
        let (n_batch, n_pos) = (plan.n_batch, plan.n_pos);
        let split = |all: Vec<f32>| -> Vec<Vec<f32>> {
            if n_batch == 1 {
                return vec![all];
            }
            let n = all.len() / n_batch;
            all.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
        };
        let logits = split(data.next().expect("logits were read"));
        let mut outs: Vec<RunOutput> =
            logits.into_iter().map(|l| RunOutput { cache: Vec::new(), logits: HostTensor::new(vec![n_pos, self.cfg.d_vocab_out], l) }).collect();
        // The forward pass caches exactly the planned hooks marked for caching, in plan order.
        let cached_index = plan.hooks.iter().enumerate().filter(|(_, (_, cache, _))| *cache).map(|(i, _)| i);
        for (((point, _), d), index) in cached.into_iter().zip(data).zip(cached_index) {
            let shape = point.shape(&self.cfg, n_pos);
            for (i, part) in split(d).into_iter().enumerate() {
                if plan.wanted[i][index] {
                    outs[i].cache.push((point.name.clone(), HostTensor::new(shape.clone(), part)));
                }
            }
        }
        Ok(outs)
    }
}
