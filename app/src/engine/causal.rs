//! The worker's side of the causal views: an experiment's `Analysis::Patch` (an activation
//! patching sweep) and `Analysis::Ablate` (an ablation), run with
//! `glassbox_core::analysis::patching` on the worker's engine and answered as the views of
//! `crate::causal`. Progress is posted after every chunk of patched runs, and the worker yields
//! there, so that a Cancel gets in between chunks.

use glassbox_core::analysis::patching::{zero_ablation, AblationKind, AblationTarget, Metric, MetricKind, PatchSpec};
use glassbox_core::tasks::{self, Rng};
use glassbox_core::{Analysis, Config, Experiment, ModelBundle, RunRequest, Tokenizer};

use super::local::Engine;
use super::protocol::{Reply, RunFailure};
use super::worker::{engine_failure, post, prepare_text, yield_now};
use crate::causal::{target_label, AblationView, PatchView, TaskEffect};
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
    let corrupted_text =
        exp.corrupted.as_deref().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            RunFailure::Prompt("Type a corrupted prompt: patching copies activations between two prompts of the same number of tokens.".into())
        })?;
    let clean = prepare_text(bundle, shipped, &exp.prompt).map_err(|e| prefix("The clean prompt", e))?;
    let corrupted = prepare_text(bundle, shipped, corrupted_text).map_err(|e| prefix("The corrupted prompt", e))?;
    let (c, k) = (&clean.ids, &corrupted.ids);
    if c.len() != k.len() {
        return Err(RunFailure::Prompt(format!(
            "The clean prompt has {} tokens and the corrupted prompt {}: patching position by position needs the same number. Clean: {}. Corrupted: {}.",
            c.len(),
            k.len(),
            token_strs(tok, c).join(" | "),
            token_strs(tok, k).join(" | ")
        )));
    }
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
        .map_err(|e| match e {
            glassbox_core::Error::Request(m) => prompt_fail(capitalize(&m)),
            other => engine_failure(other),
        })?
        .ok_or(RunFailure::Cancelled)?;
    let (target, distractor) = match &metric {
        Metric::LogitDiff { target, distractor } => (Some(*target), Some(*distractor)),
        Metric::Prob { target } | Metric::LogProb { target } => (Some(*target), None),
        Metric::Loss | Metric::Kl => (None, None),
    };
    Ok(PatchView {
        metric: describe(&metric, tok, result.pos),
        result,
        clean: token_strs(tok, c),
        corrupted: token_strs(tok, k),
        target: target.map(|t| tok.output_str(t)),
        distractor: distractor.map(|t| tok.output_str(t)),
        elapsed_ms: js_sys::Date::now() - t0,
        backend: engine.backend_label(),
    })
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
    let result = engine.ablate(&prompt.ids, &target, ablation, &data, &metric, None, chunk).await.map_err(|e| match e {
        glassbox_core::Error::Request(m) => prompt_fail(capitalize(&m)),
        other => engine_failure(other),
    })?;
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
