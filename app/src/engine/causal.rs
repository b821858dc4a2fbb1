//! The worker's side of the causal views: an experiment's `Analysis::Patch` (an activation
//! patching sweep) and `Analysis::Ablate` (an ablation), run with
//! `glassbox_core::analysis::patching` on the worker's engine and answered as the views of
//! `crate::causal`. Progress is posted after every chunk of patched runs, and the worker yields
//! there, so that a Cancel gets in between chunks.

use glassbox_core::analysis::patching::{
    zero_ablation, AblationKind, AblationTarget, Axis, Component, Direction, Granularity, Metric, MetricKind, PatchResult, PatchSpec,
};
use glassbox_core::analysis::path_patching::PathPatchSpec;
use glassbox_core::analysis::scrubbing::{hypotheses, CausalVariable, Dataset, ScrubOptions, Site};
use glassbox_core::generate::{neuron_steering, GenerateOptions, Generation, StopReason};
use glassbox_core::tasks::{self, Rng};
use glassbox_core::{Analysis, Config, Experiment, ModelBundle, RunRequest, SteerVector, Tokenizer};

use super::local::Engine;
use super::protocol::{Reply, RunFailure};
use super::worker::{engine_failure, post, prepare_text, yield_now};
use crate::causal::{hypotheses_for, receivers_label, target_label, AblationView, PatchView, PathInfo, ScrubRow, ScrubView, SteerView, TaskEffect};
use crate::inspect::resolve_token;
use crate::models::ModelEntry;

/// Floats one batch's largest activation may hold: a quarter of WebGPU's default storage
/// buffer binding limit (128 MiB), so that a chunk of patched runs fits any device.
const CHUNK_FLOATS: usize = 8 << 20;
/// Patched runs per batch at most (a chunk's progress step).
const MAX_CHUNK: usize = 64;
/// Sequences a mean or resample ablation draws from a task generator.
const TASK_DATASET: usize = 64;

/// Patched runs per batch for prompts of `n_pos` tokens: as many as keep the batch's largest
/// activation (MLP hidden, attention scores, residual stream) under [`CHUNK_FLOATS`].
pub fn patch_chunk(cfg: &Config, n_pos: usize) -> usize {
    let per_item = n_pos * cfg.d_mlp.unwrap_or(0).max(cfg.n_heads * n_pos).max(3 * cfg.d_model).max(cfg.d_vocab_out.min(4096)).max(1);
    (CHUNK_FLOATS / per_item).clamp(1, MAX_CHUNK)
}

/// The tokens of a prompt as the views label them.
fn token_strs(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| tok.token_str(i)).collect()
}

fn prompt_fail(e: impl std::fmt::Display) -> RunFailure {
    RunFailure::Prompt(format!("{e}").trim_end_matches('.').to_string() + ".")
}

/// The metric of a sweep or ablation with its tokens: the view's target and distractor as
/// typed, or by default the top prediction of `reference` at `pos` (target) and of `other`, or
/// `reference`'s second, when that is the same token (distractor).
async fn resolve_metric(
    engine: &Engine,
    bundle: &ModelBundle,
    exp: &Experiment,
    kind: MetricKind,
    pos: usize,
    reference: &[u32],
    other: Option<&[u32]>,
) -> Result<Metric, RunFailure> {
    if !kind.needs_target() {
        return kind.with_tokens(None, None).map_err(prompt_fail);
    }
    let cfg = &bundle.cfg;
    let typed = |t: &Option<String>| {
        t.as_deref().map(str::trim_end).filter(|t| !t.is_empty()).map(|t| resolve_token(&bundle.tokenizer, cfg.d_vocab_out, t)).transpose()
    };
    let mut target = typed(&exp.view.target).map_err(RunFailure::Prompt)?;
    let mut distractor = typed(&exp.view.distractor).map_err(RunFailure::Prompt)?;
    if target.is_none() || (distractor.is_none() && kind == MetricKind::LogitDiff) {
        let top = |ids: &[u32]| {
            let ids = ids.to_vec();
            async move { engine.run(&RunRequest::new(ids)).await.map(|o| o.top_k(pos, 2).into_iter().map(|(t, _)| t).collect::<Vec<u32>>()) }
        };
        let ref_top = top(reference).await.map_err(engine_failure)?;
        let t = *target.get_or_insert(ref_top[0]);
        if distractor.is_none() {
            let other_top = match other {
                Some(ids) => top(ids).await.map_err(engine_failure)?.first().copied(),
                None => None,
            };
            distractor = other_top.filter(|&o| o != t).or_else(|| ref_top.iter().copied().find(|&o| o != t));
        }
    }
    kind.with_tokens(target, distractor).map_err(prompt_fail)
}

/// The metric in words.
fn describe(metric: &Metric, tok: &Tokenizer, pos: usize) -> String {
    let s = |t: u32| format!("\u{201c}{}\u{201d}", tok.output_str(t));
    match metric {
        Metric::LogitDiff { target, distractor } => format!("logit {} \u{2212} logit {} at position {pos}", s(*target), s(*distractor)),
        Metric::Prob { target } => format!("P({}) at position {pos}", s(*target)),
        Metric::LogProb { target } => format!("log P({}) at position {pos}", s(*target)),
        Metric::Loss => "mean next-token loss over the prompt".into(),
        Metric::Kl => format!("KL(clean \u{2016} run) at position {pos}"),
    }
}

/// An activation patching sweep between the experiment's prompt and its corrupted prompt.
pub async fn patch_sweep(
    engine: &Engine,
    bundle: &ModelBundle,
    shipped: Option<&'static ModelEntry>,
    exp: &Experiment,
    id: u64,
    cancelled: impl Fn() -> bool,
) -> Result<PatchView, RunFailure> {
    let Analysis::Patch { component, by, direction, metric, pos } = exp.analysis.clone() else {
        return Err(RunFailure::Engine("not a patching sweep".into()));
    };
    let tok = &bundle.tokenizer;
    let (c, k) = prompt_pair(bundle, shipped, exp)?;
    let (c, k) = (&c, &k);
    let n = c.len();
    let at = pos.unwrap_or(n - 1);
    if at >= n {
        return Err(RunFailure::Prompt(format!("The metric's position {at} is past the prompt's last position {}.", n - 1)));
    }
    // The target defaults to the clean run's prediction, the distractor to the corrupted run's.
    let metric = resolve_metric(engine, bundle, exp, metric, at, c, Some(k)).await?;
    let spec = PatchSpec { component, by, direction, metric: metric.clone(), pos };
    let t0 = js_sys::Date::now();
    let result = engine
        .patch(
            c,
            k,
            &spec,
            patch_chunk(&bundle.cfg, n),
            async |done, total| {
                post(&Reply::Progress { id, done, total });
                yield_now().await;
            },
            cancelled,
        )
        .await
        .map_err(core_fail)?
        .ok_or(RunFailure::Cancelled)?;
    let (target, distractor) = metric_tokens(&metric);
    Ok(PatchView {
        metric: describe(&metric, tok, result.pos),
        result,
        clean: token_strs(tok, c),
        clean_ids: c.to_vec(),
        corrupted: token_strs(tok, k),
        target: target.map(|t| tok.output_str(t)),
        distractor: distractor.map(|t| tok.output_str(t)),
        elapsed_ms: js_sys::Date::now() - t0,
        backend: engine.backend_label(),
        path: None,
    })
}

/// A core error as the page shows it: a bad request (a head out of range, prompts of different
/// lengths...) is the reader's to fix; anything else is the engine's.
fn core_fail(e: glassbox_core::Error) -> RunFailure {
    match e {
        glassbox_core::Error::Request(m) => prompt_fail(capitalize(&m)),
        other => engine_failure(other),
    }
}

fn prefix(what: &str, e: RunFailure) -> RunFailure {
    match e {
        RunFailure::Prompt(m) => RunFailure::Prompt(format!("{what}: {m}")),
        other => other,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Sequences of `n` tokens drawn like a shipped model's task, for mean and resample
/// ablations: induction sequences (random characters, one segment repeated), the parentheses
/// task's strings, or every modular-addition input; `None` for a model without a generator.
pub fn task_dataset(shipped: Option<&ModelEntry>, n: usize) -> Option<(String, Vec<Vec<u32>>)> {
    let mut rng = Rng::new(0);
    match shipped?.id {
        "induction-2l" if n >= 2 => {
            let vocab = tasks::induction::vocab().len();
            let data = (0..TASK_DATASET)
                .map(|_| {
                    let body = n - 1;
                    let mut t: Vec<u32> = (0..body).map(|_| rng.range(1, vocab) as u32).collect();
                    let seg = body / 3;
                    if seg >= 2 {
                        let start2 = rng.range(seg, body - seg + 1);
                        for i in 0..seg {
                            t[start2 + i] = t[i];
                        }
                    }
                    std::iter::once(tasks::induction::BOS).chain(t).collect()
                })
                .collect();
            Some((format!("{TASK_DATASET} random sequences of {n} tokens with a repeated segment (seed 0)"), data))
        }
        "balanced-parens" if n == tasks::parens::N_POS => {
            let data = tasks::parens::dataset(0, TASK_DATASET).iter().map(|(s, _)| tasks::parens::tokens(s)).collect();
            Some((format!("{TASK_DATASET} strings drawn like the training data (seed 0)"), data))
        }
        "modular-addition" if n == tasks::modular::N_POS => {
            let p = tasks::modular::P;
            Some((format!("all {} inputs a + b =", p * p), (0..p).flat_map(|a| (0..p).map(move |b| tasks::modular::tokens(a, b).to_vec())).collect()))
        }
        _ => None,
    }
}

/// An ablation of the experiment's prompt, with the shipped organism's task metric before and
/// after where it has one (the induction model's held-out accuracy, for zero ablations).
pub async fn ablation(engine: &Engine, bundle: &ModelBundle, shipped: Option<&'static ModelEntry>, exp: &Experiment) -> Result<AblationView, RunFailure> {
    let Analysis::Ablate { target, ablation, metric, dataset } = exp.analysis.clone() else {
        return Err(RunFailure::Engine("not an ablation".into()));
    };
    let tok = &bundle.tokenizer;
    let cfg = &bundle.cfg;
    let prompt = prepare_text(bundle, shipped, &exp.prompt)?;
    let n = prompt.ids.len();
    let (data, dataset_label) =
        match ablation {
            AblationKind::Zero => (Vec::new(), None),
            AblationKind::Mean | AblationKind::Resample if dataset.iter().any(|l| !l.trim().is_empty()) => {
                let mut data = Vec::new();
                for (i, line) in dataset.iter().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let p = prepare_text(bundle, shipped, line).map_err(|e| prefix(&format!("Dataset prompt {}", i + 1), e))?;
                    if p.ids.len() != n {
                        return Err(RunFailure::Prompt(format!(
                            "Dataset prompt {} has {} tokens and the prompt {n}: mean and resample ablations read sequences of the prompt's length ({}).",
                            i + 1,
                            p.ids.len(),
                            token_strs(tok, &p.ids).join(" | ")
                        )));
                    }
                    data.push(p.ids);
                }
                let label = format!("{} prompt{} typed below", data.len(), if data.len() == 1 { "" } else { "s" });
                (data, Some(label))
            }
            AblationKind::Mean | AblationKind::Resample => match task_dataset(shipped, n) {
                Some((label, data)) => (data, Some(label)),
                None => return Err(RunFailure::Prompt(
                    "Mean and resample ablations need a dataset: type prompts of the prompt's token length, one per line (this model has no task generator)."
                        .into(),
                )),
            },
        };
    let at = n - 1;
    let metric = resolve_metric(engine, bundle, exp, metric, at, &prompt.ids, None).await?;
    let chunk = patch_chunk(cfg, n);
    let result = engine.ablate(&prompt.ids, &target, ablation, &data, &metric, None, chunk).await.map_err(core_fail)?;
    let task = match (shipped.map(|s| s.id), ablation) {
        (Some("induction-2l"), AblationKind::Zero) => Some(induction_effect(engine, bundle, &target).await?),
        _ => None,
    };
    let named = |top: &[(u32, f32)]| top.iter().map(|&(t, p)| (tok.output_str(t), p)).collect();
    Ok(AblationView {
        what: target_label(&target),
        metric: describe(&metric, tok, result.pos),
        base_top: named(&result.base_top),
        ablated_top: named(&result.ablated_top),
        dataset: dataset_label,
        task,
        result,
    })
}

/// The induction model's held-out accuracy (its card's evaluation) without and with a zero
/// ablation of `target`, and the card's figure when the card states this ablation.
async fn induction_effect(engine: &Engine, bundle: &ModelBundle, target: &AblationTarget) -> Result<TaskEffect, RunFailure> {
    let metrics = &bundle.card["metrics"];
    let seed = metrics["eval_seed"].as_u64().unwrap_or(1_000_003);
    let n = metrics["eval_sequences"].as_u64().unwrap_or(200) as usize;
    let ivs = zero_ablation(&bundle.cfg, target).map_err(prompt_fail)?;
    let before = engine.induction_accuracy(seed, n, &[]).await.map_err(engine_failure)?;
    let after = engine.induction_accuracy(seed, n, &ivs).await.map_err(engine_failure)?;
    let card_ablation = &bundle.card["mechanism"]["zero_ablation"];
    let card_heads: Option<Vec<(usize, usize)>> = serde_json::from_value(card_ablation["heads"].clone()).ok();
    let card = match (target, card_heads, card_ablation["induction_accuracy"].as_f64()) {
        (AblationTarget::Heads { heads }, Some(mut c), Some(acc)) => {
            let mut h = heads.clone();
            h.sort_unstable();
            c.sort_unstable();
            (h == c).then(|| (format!("zero ablation of {}", target_label(target)), acc))
        }
        _ => None,
    };
    Ok(TaskEffect { name: format!("induction accuracy on {n} held-out sequences"), before, after, card })
}

/// A path-patching sweep between the experiment's prompt (clean) and its corrupted prompt:
/// every head (and MLP, when asked) as the sender, answered as a layer x head heatmap.
pub async fn path_patch_sweep(
    engine: &Engine,
    bundle: &ModelBundle,
    shipped: Option<&'static ModelEntry>,
    exp: &Experiment,
    id: u64,
    cancelled: impl Fn() -> bool,
) -> Result<PatchView, RunFailure> {
    let Analysis::PathPatch { receivers, metric, pos, mlp_senders } = exp.analysis.clone() else {
        return Err(RunFailure::Engine("not a path-patching sweep".into()));
    };
    let tok = &bundle.tokenizer;
    let cfg = &bundle.cfg;
    let (c, k) = prompt_pair(bundle, shipped, exp)?;
    let n = c.len();
    let at = pos.unwrap_or(n - 1);
    if at >= n {
        return Err(RunFailure::Prompt(format!("The metric's position {at} is past the prompt's last position {}.", n - 1)));
    }
    let metric = resolve_metric(engine, bundle, exp, metric, at, &c, Some(&k)).await?;
    let spec = PathPatchSpec { receivers: receivers.clone(), metric: metric.clone(), pos, mlp_senders };
    let t0 = js_sys::Date::now();
    let r = engine
        .path_patch(
            &c,
            &k,
            &spec,
            patch_chunk(cfg, n),
            async |done, total| {
                post(&Reply::Progress { id, done, total });
                yield_now().await;
            },
            cancelled,
        )
        .await
        .map_err(core_fail)?
        .ok_or(RunFailure::Cancelled)?;
    // As a layer x head grid (the MLPs in a last column): z of every head, from the corrupted
    // run into the clean one, all positions; normalised as ARENA's IOI exercise shows path
    // patching: (value - clean) / (clean - corrupted), 0 = no effect along the path, -1 = the
    // whole corrupted run (the core's `normalized` minus 1).
    let heads = cfg.n_heads;
    let cols = heads + usize::from(mlp_senders);
    let mut values = Vec::with_capacity(cfg.n_layers * cols);
    let mut normalized = Vec::with_capacity(cfg.n_layers * cols);
    for l in 0..cfg.n_layers {
        values.extend_from_slice(&r.values[l * heads..(l + 1) * heads]);
        normalized.extend(r.normalized[l * heads..(l + 1) * heads].iter().map(|x| x - 1.0));
        if mlp_senders {
            values.push(r.mlp_values.get(l).copied().unwrap_or(f32::NAN));
            normalized.push(r.mlp_normalized.get(l).map_or(f32::NAN, |x| x - 1.0));
        }
    }
    let result = PatchResult {
        spec: PatchSpec { component: Component::Z, by: Granularity::AllPos, direction: Direction::Noising, metric: metric.clone(), pos },
        pos: r.pos,
        hook: Component::Z.hook(0),
        axes: vec![Axis { name: "layer".into(), size: cfg.n_layers }, Axis { name: "head".into(), size: cols }],
        values,
        normalized,
        clean: r.clean,
        corrupted: r.corrupted,
        runs: r.runs,
        batches: r.batches,
    };
    let (target, distractor) = metric_tokens(&metric);
    Ok(PatchView {
        metric: describe(&metric, tok, r.pos),
        result,
        clean: token_strs(tok, &c),
        clean_ids: c.to_vec(),
        corrupted: token_strs(tok, &k),
        target: target.map(|t| tok.output_str(t)),
        distractor: distractor.map(|t| tok.output_str(t)),
        elapsed_ms: js_sys::Date::now() - t0,
        backend: engine.backend_label(),
        path: Some(PathInfo { receivers: receivers_label(&receivers), mlp_column: mlp_senders, senders: r.senders }),
    })
}

/// Causal scrubbing of the experiment's hypotheses on a shipped organism, each beside its
/// card's figure, and for the parentheses model one interchange intervention.
pub async fn scrub_run(engine: &Engine, bundle: &ModelBundle, shipped: Option<&'static ModelEntry>, exp: &Experiment) -> Result<ScrubView, RunFailure> {
    let Analysis::Scrub { hypotheses: names, n, seed, rounds } = exp.analysis.clone() else {
        return Err(RunFailure::Engine("not a scrubbing run".into()));
    };
    let id = shipped.map(|s| s.id).unwrap_or("");
    let offered = hypotheses_for(id);
    if offered.is_empty() {
        return Err(RunFailure::Prompt(
            "Causal scrubbing needs a hypothesis about the model's task: the shipped hypotheses are for the balanced-parentheses and induction models.".into(),
        ));
    }
    if names.is_empty() {
        return Err(RunFailure::Prompt("Pick at least one hypothesis.".into()));
    }
    if !(2..=2000).contains(&n) || !(1..=20).contains(&rounds) {
        return Err(RunFailure::Prompt(format!("The dataset size must be 2 to 2000 and rounds 1 to 20 (they are {n} and {rounds}).")));
    }
    let card = &bundle.card["scrubbing"];
    let t0 = js_sys::Date::now();
    let mut rows = Vec::new();
    let mut data = None;
    for name in &names {
        let hyp = match hypotheses::by_name(name) {
            Some(h) if offered.contains(&name.as_str()) => h,
            _ => return Err(RunFailure::Prompt(format!("There is no hypothesis {name:?} for this model (there are: {}).", offered.join(", ")))),
        };
        let data = data.get_or_insert_with(|| Dataset::new(hyp.task, seed, n));
        let opts = ScrubOptions { seed, rounds, bootstrap: 1000, chunk: patch_chunk(&bundle.cfg, data.tokens[0].len()) };
        let result = engine.scrub(data, &hyp, &opts).await.map_err(core_fail)?;
        let stated = &card["hypotheses"][name.as_str()];
        let card_row = stated["loss_recovered"].as_f64().map(|x| (x, card["n"].as_u64().unwrap_or(0) as usize));
        rows.push(ScrubRow { result, description: hyp.description.clone(), card: card_row });
        yield_now().await;
    }
    let interchange = match (id, data.as_ref()) {
        ("balanced-parens", Some(data)) => {
            let site = Site::ResidPost { layer: bundle.cfg.n_layers - 1 };
            let r = engine
                .interchange(data, site, Some(vec![hypotheses::PARENS_LAST]), CausalVariable::ParensBalanced, n.min(200), seed, 64)
                .await
                .map_err(engine_failure)?;
            Some((format!("swap {} at the readout position from another example; the causal model predicts the source's label", site.label()), r))
        }
        _ => None,
    };
    Ok(ScrubView { rows, interchange, card_margin: card["margin"].as_f64(), elapsed_ms: js_sys::Date::now() - t0, backend: engine.backend_label() })
}

/// Generates from the prompt without and with the experiment's steering vector (the same seed).
pub async fn steer_run(engine: &Engine, bundle: &ModelBundle, shipped: Option<&'static ModelEntry>, exp: &Experiment) -> Result<SteerView, RunFailure> {
    let Analysis::Steer(spec) = exp.analysis.clone() else {
        return Err(RunFailure::Engine("not a steering run".into()));
    };
    let tok = &bundle.tokenizer;
    let cfg = &bundle.cfg;
    if bundle.tokenizer.outputs().is_some() {
        return Err(RunFailure::Prompt("This model classifies its input; it does not generate text.".into()));
    }
    if spec.max_new_tokens == 0 || spec.max_new_tokens > 512 {
        return Err(RunFailure::Prompt(format!("Generate 1 to 512 new tokens (asked for {}).", spec.max_new_tokens)));
    }
    if !(spec.temperature >= 0.0 && spec.temperature.is_finite()) {
        return Err(RunFailure::Prompt(format!("The temperature must be 0 (greedy) or positive (it is {}).", spec.temperature)));
    }
    if let Some(p) = spec.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return Err(RunFailure::Prompt(format!("Top-p must be above 0 and at most 1 (it is {p}).")));
    }
    if !spec.coeff.is_finite() {
        return Err(RunFailure::Prompt("The coefficient must be a number.".into()));
    }
    let prompt = prepare_text(bundle, shipped, &exp.prompt)?;
    if prompt.ids.len() >= cfg.n_ctx {
        return Err(RunFailure::Prompt(format!("The prompt fills the model's context of {} tokens: there is no room to generate.", cfg.n_ctx)));
    }
    let mut stop = Vec::new();
    for s in &spec.stop {
        stop.push(resolve_token(tok, cfg.d_vocab_out, s).map_err(|e| RunFailure::Prompt(format!("Stop token: {e}")))?);
    }
    let fail = core_fail;
    let steering = match &spec.vector {
        SteerVector::ActAdd { plus, minus, layer } => {
            let side = |text: &str, what: &str| -> Result<Vec<u32>, RunFailure> {
                let p = prepare_text(bundle, shipped, text).map_err(|e| prefix(what, e))?;
                if p.ids.iter().all(|&t| Some(t) == tok.bos()) {
                    return Err(RunFailure::Prompt(format!("{what} is empty: type a prompt for it.")));
                }
                Ok(p.ids)
            };
            let (plus, minus) = (side(plus, "The \u{201c}plus\u{201d} prompt")?, side(minus, "The \u{201c}minus\u{201d} prompt")?);
            let pad = tok.encode(" ").ok().and_then(|ids| ids.into_iter().rfind(|&t| Some(t) != tok.bos())).unwrap_or(0);
            engine.actadd(&plus, &minus, pad, *layer, spec.coeff).await.map_err(fail)?
        }
        SteerVector::Neuron { layer, neuron } => {
            if cfg.d_mlp.is_some_and(|d| *neuron >= d) {
                return Err(RunFailure::Prompt(format!("Neuron {neuron} is out of range (layer {layer} has {} neurons).", cfg.d_mlp.unwrap_or(0))));
            }
            neuron_steering(cfg, &bundle.weights, *layer, *neuron, spec.coeff).map_err(fail)?
        }
    };
    let vector = match &spec.vector {
        SteerVector::ActAdd { plus, minus, layer } => format!(
            "{} \u{00d7} (\u{201c}{plus}\u{201d} \u{2212} \u{201c}{minus}\u{201d}) at blocks.{layer}.hook_resid_pre, over the prompt's first {} positions (largest row norm {:.2})",
            spec.coeff,
            steering.rows.len(),
            steering.row_norms().into_iter().fold(0f32, f32::max)
        ),
        SteerVector::Neuron { layer, neuron } => format!(
            "{} \u{00d7} the output direction of neuron {neuron} (layer {layer}) at blocks.{layer}.hook_mlp_out, every position (norm {:.2})",
            spec.coeff,
            steering.row_norms().first().copied().unwrap_or(0.0)
        ),
    };
    let opts = GenerateOptions {
        max_new_tokens: spec.max_new_tokens,
        temperature: spec.temperature,
        top_p: spec.top_p,
        seed: spec.seed,
        stop,
        top_k: 0,
        keep_logits: false,
        use_cache: true,
    };
    let t0 = js_sys::Date::now();
    let plain = engine.generate(&prompt.ids, &opts, None).await.map_err(fail)?;
    yield_now().await;
    let steered = if spec.on { engine.generate(&prompt.ids, &opts, Some(&steering)).await.map_err(fail)? } else { plain.clone() };
    let stop_word = |g: &Generation| {
        match g.stop {
            StopReason::MaxTokens => "the length limit",
            StopReason::StopToken => "a stop token",
            StopReason::ContextFull => "the end of the model's context",
        }
        .to_string()
    };
    Ok(SteerView {
        prompt: exp.prompt.clone(),
        unsteered: tok.decode(&plain.tokens),
        steered: tok.decode(&steered.tokens),
        vector,
        on: spec.on,
        tokens: (plain.tokens.len(), steered.tokens.len()),
        stops: (stop_word(&plain), stop_word(&steered)),
        elapsed_ms: js_sys::Date::now() - t0,
        backend: engine.backend_label(),
    })
}

/// The clean and corrupted prompts' tokens, of equal length (or a message showing both).
fn prompt_pair(bundle: &ModelBundle, shipped: Option<&'static ModelEntry>, exp: &Experiment) -> Result<(Vec<u32>, Vec<u32>), RunFailure> {
    let tok = &bundle.tokenizer;
    let corrupted_text =
        exp.corrupted.as_deref().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            RunFailure::Prompt("Type a corrupted prompt: patching copies activations between two prompts of the same number of tokens.".into())
        })?;
    let clean = prepare_text(bundle, shipped, &exp.prompt).map_err(|e| prefix("The clean prompt", e))?;
    let corrupted = prepare_text(bundle, shipped, corrupted_text).map_err(|e| prefix("The corrupted prompt", e))?;
    let (c, k) = (clean.ids, corrupted.ids);
    if c.len() != k.len() {
        return Err(RunFailure::Prompt(format!(
            "The clean prompt has {} tokens and the corrupted prompt {}: patching position by position needs the same number. Clean: {}. Corrupted: {}.",
            c.len(),
            k.len(),
            token_strs(tok, &c).join(" | "),
            token_strs(tok, &k).join(" | ")
        )));
    }
    Ok((c, k))
}

fn metric_tokens(metric: &Metric) -> (Option<u32>, Option<u32>) {
    match metric {
        Metric::LogitDiff { target, distractor } => (Some(*target), Some(*distractor)),
        Metric::Prob { target } | Metric::LogProb { target } => (Some(*target), None),
        Metric::Loss | Metric::Kl => (None, None),
    }
}
