//! `glassbox patch | ablate`: activation patching sweeps and ablations of
//! `glassbox_core::analysis::patching` on the CPU, printed as a grid with token labels (default)
//! or as JSON (`--json`: the core's `PatchResult` / `AblationResult`).

use std::path::Path;

use glassbox_core::analysis::patching::{ablate, patch, AblationKind, AblationTarget, Component, Direction, Granularity, Metric, PatchResult, PatchSpec};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle};
use serde_json::json;

use crate::analyze::{print_json, resolve_token, show};
use crate::{read_bundle, CliResult};

/// Cells per forward pass.
pub const DEFAULT_CHUNK: usize = 64;

/// `--what`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WhatArg {
    #[value(name = "resid_pre", alias = "resid-pre")]
    ResidPre,
    #[value(name = "resid_mid", alias = "resid-mid")]
    ResidMid,
    #[value(name = "attn_out", alias = "attn-out")]
    AttnOut,
    #[value(name = "mlp_out", alias = "mlp-out")]
    MlpOut,
    Z,
    Q,
    K,
    V,
    Pattern,
}

impl WhatArg {
    fn component(self) -> Component {
        match self {
            WhatArg::ResidPre => Component::ResidPre,
            WhatArg::ResidMid => Component::ResidMid,
            WhatArg::AttnOut => Component::AttnOut,
            WhatArg::MlpOut => Component::MlpOut,
            WhatArg::Z => Component::Z,
            WhatArg::Q => Component::Q,
            WhatArg::K => Component::K,
            WhatArg::V => Component::V,
            WhatArg::Pattern => Component::Pattern,
        }
    }
}

/// `--by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ByArg {
    /// One cell per position (the pattern: per destination position).
    Pos,
    /// One cell per layer (x head) covering every position.
    All,
}

/// `--metric`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// target - distractor logit at the position.
    #[value(name = "logit_diff", alias = "logit-diff")]
    LogitDiff,
    /// The target's probability at the position.
    Prob,
    /// The target's log-probability at the position.
    Logprob,
    /// Mean next-token loss over the prompt (the clean prompt's tokens as targets).
    Loss,
    /// KL divergence from the clean (unablated) next-token distribution at the position.
    Kl,
}

/// `--kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Zero,
    Mean,
    Resample,
}

/// The metric from `--metric`, `--target`, `--distractor`.
pub(crate) fn metric(bundle: &ModelBundle, m: MetricArg, target: Option<&str>, distractor: Option<&str>) -> CliResult<Metric> {
    let need = |t: Option<&str>, what: &str| -> CliResult<u32> {
        match t {
            Some(t) => resolve_token(bundle, t),
            None => Err(format!("the {what} metric needs --target TOKEN").into()),
        }
    };
    Ok(match m {
        MetricArg::LogitDiff => {
            let target = need(target, "logit_diff")?;
            let distractor = distractor.ok_or("the logit_diff metric needs --distractor TOKEN (or choose --metric prob|logprob|loss|kl)")?;
            Metric::LogitDiff { target, distractor: resolve_token(bundle, distractor)? }
        }
        MetricArg::Prob => Metric::Prob { target: need(target, "prob")? },
        MetricArg::Logprob => Metric::LogProb { target: need(target, "logprob")? },
        MetricArg::Loss => Metric::Loss,
        MetricArg::Kl => Metric::Kl,
    })
}

/// A prompt's tokens (padded for a readout model, as the app does).
fn encode(bundle: &ModelBundle, what: &str, text: &str) -> CliResult<Vec<u32>> {
    let mut tokens = bundle.tokenizer.encode(text)?;
    bundle.tokenizer.pad(&mut tokens);
    if text.trim().is_empty() || tokens.is_empty() {
        return Err(format!("the {what} prompt is empty").into());
    }
    if tokens.len() > bundle.cfg.n_ctx {
        return Err(format!("the {what} prompt has {} tokens, more than the model's context of {}", tokens.len(), bundle.cfg.n_ctx).into());
    }
    Ok(tokens)
}

pub(crate) fn metric_name(m: &Metric, bundle: &ModelBundle, pos: usize) -> String {
    let t = |id: &u32| format!("{} (#{id})", show(&bundle.tokenizer.output_str(*id)));
    match m {
        Metric::LogitDiff { target, distractor } => format!("logit difference {} - {} at position {pos}", t(target), t(distractor)),
        Metric::Prob { target } => format!("probability of {} at position {pos}", t(target)),
        Metric::LogProb { target } => format!("log-probability of {} at position {pos}", t(target)),
        Metric::Loss => "mean next-token loss over the prompt".into(),
        Metric::Kl => format!("KL(clean || run) at position {pos}"),
    }
}

/// Truncates a label to `n` characters.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub struct PatchArgs<'a> {
    pub model: &'a Path,
    pub clean: &'a str,
    pub corrupted: &'a str,
    pub target: Option<&'a str>,
    pub distractor: Option<&'a str>,
    pub what: WhatArg,
    pub by: ByArg,
    pub noising: bool,
    pub metric: MetricArg,
    pub pos: Option<usize>,
    pub raw: bool,
    pub chunk: usize,
    /// `clean` and `corrupted` are comma-separated token ids.
    pub ids: bool,
    pub json: bool,
}

/// Comma-separated token ids.
fn parse_ids(bundle: &ModelBundle, what: &str, s: &str) -> CliResult<Vec<u32>> {
    let ids = s
        .split(',')
        .map(|t| t.trim().parse::<u32>().map_err(|_| format!("the {what} prompt: {t:?} is not a token id (--ids takes ids such as 464,2068,7586)")))
        .collect::<Result<Vec<u32>, _>>()?;
    if let Some(t) = ids.iter().find(|&&t| t as usize >= bundle.cfg.d_vocab) {
        return Err(format!("the {what} prompt: token id {t} is outside the vocabulary of {}", bundle.cfg.d_vocab).into());
    }
    Ok(ids)
}

pub fn patch_cmd(a: PatchArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let (clean, corrupted) = if a.ids {
        (parse_ids(&bundle, "clean", a.clean)?, parse_ids(&bundle, "corrupted", a.corrupted)?)
    } else {
        (encode(&bundle, "clean", a.clean)?, encode(&bundle, "corrupted", a.corrupted)?)
    };
    let tok = &bundle.tokenizer;
    if clean.len() != corrupted.len() {
        let list = |t: &[u32]| t.iter().map(|&i| show(&tok.token_str(i))).collect::<Vec<_>>().join(" ");
        return Err(format!(
            "the clean and corrupted prompts must have the same number of tokens: {} ({}) and {} ({})",
            clean.len(),
            list(&clean),
            corrupted.len(),
            list(&corrupted)
        )
        .into());
    }
    let metric = metric(&bundle, a.metric, a.target, a.distractor)?;
    let spec = PatchSpec {
        component: a.what.component(),
        by: if a.by == ByArg::Pos { Granularity::ByPos } else { Granularity::AllPos },
        direction: if a.noising { Direction::Noising } else { Direction::Denoising },
        metric,
        pos: a.pos,
    };
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let t0 = std::time::Instant::now();
    let res = pollster::block_on(patch(&model, &CpuBackend, &clean, &corrupted, &spec, a.chunk.max(1), async |_, _| {}, || false))?
        .ok_or("the sweep was cancelled")?;
    let seconds = t0.elapsed().as_secs_f64();
    let strs = |t: &[u32]| t.iter().map(|&i| tok.token_str(i)).collect::<Vec<_>>();
    if a.json {
        return print_json(&json!({
            "clean_tokens": clean,
            "corrupted_tokens": corrupted,
            "clean_strs": strs(&clean),
            "corrupted_strs": strs(&corrupted),
            "seconds": seconds,
            "result": res,
        }));
    }
    print_grid(&bundle, &res, &clean, &corrupted, a.raw);
    eprintln!("{} patched runs in {} batches, {seconds:.2} s", res.runs, res.batches);
    Ok(())
}

/// A label per position: the clean token, and the corrupted one where they differ.
fn pos_labels(bundle: &ModelBundle, clean: &[u32], corrupted: &[u32]) -> Vec<String> {
    let tok = &bundle.tokenizer;
    clean
        .iter()
        .zip(corrupted)
        .enumerate()
        .map(
            |(p, (&c, &k))| {
                if c == k {
                    format!("{p}:{}", show(&tok.token_str(c)))
                } else {
                    format!("{p}:{}/{}", show(&tok.token_str(c)), show(&tok.token_str(k)))
                }
            },
        )
        .collect()
}

fn print_grid(bundle: &ModelBundle, res: &PatchResult, clean: &[u32], corrupted: &[u32], raw: bool) {
    let dir = match res.spec.direction {
        Direction::Denoising => "denoising: clean activations patched into the corrupted run",
        Direction::Noising => "noising: corrupted activations patched into the clean run",
    };
    println!("activation patching of {} ({}), {dir}", res.spec.component.name(), res.hook.replace("blocks.0.", "blocks.L."));
    println!("metric: {}", metric_name(&res.spec.metric, bundle, res.pos));
    println!("clean {:.4}, corrupted {:.4}", res.clean, res.corrupted);
    if raw {
        println!("each cell: the metric of the patched run");
    } else {
        println!("each cell: (patched - corrupted) / (clean - corrupted): 0 = corrupted, 1 = clean");
    }
    let vals = if raw { &res.values } else { &res.normalized };
    let names: Vec<&str> = res.axes.iter().map(|a| a.name.as_str()).collect();
    let labels = pos_labels(bundle, clean, corrupted);
    let w = 10;
    let num = |v: f32| format!("{:>w$}", if v.is_nan() { "nan".to_string() } else { format!("{v:.3}") });
    // Rows and columns: the last axis across (positions or heads), the others down.
    let (rows, cols): (Vec<String>, Vec<String>) = match names.as_slice() {
        ["layer"] => ((0..res.axes[0].size).map(|l| format!("L{l}")).collect(), vec!["all pos".into()]),
        ["layer", "pos"] => ((0..res.axes[0].size).map(|l| format!("L{l}")).collect(), labels.clone()),
        ["layer", "head"] | ["layer", "head_index"] => {
            ((0..res.axes[0].size).map(|l| format!("L{l}")).collect(), (0..res.axes[1].size).map(|h| format!("H{h}")).collect())
        }
        ["layer", "pos", "head"] => {
            let rows = (0..res.axes[0].size).flat_map(|l| labels.iter().map(move |p| format!("L{l} {p}"))).collect();
            (rows, (0..res.axes[2].size).map(|h| format!("H{h}")).collect())
        }
        ["layer", "head_index", "dest_pos"] => {
            let rows = (0..res.axes[0].size).flat_map(|l| (0..res.axes[1].size).map(move |h| format!("L{l}H{h}"))).collect();
            (rows, labels.clone())
        }
        _ => unreachable!("axes {names:?}"),
    };
    let label_w = rows.iter().map(|r| r.chars().count()).max().unwrap_or(4).min(24) + 1;
    let header: String = cols.iter().map(|c| format!("{:>w$}", clip(c, w - 1))).collect();
    println!("{:label_w$}{header}", "");
    for (r, label) in rows.iter().enumerate() {
        let row: String = (0..cols.len()).map(|c| num(vals[r * cols.len() + c])).collect();
        println!("{:label_w$}{row}", clip(label, label_w - 1));
    }
    // The cells that matter most.
    let mut idx: Vec<usize> = (0..vals.len()).filter(|&i| !vals[i].is_nan()).collect();
    let key = |i: usize| if raw { (res.values[i] - res.corrupted).abs() } else { res.normalized[i].abs() };
    idx.sort_by(|&x, &y| key(y).total_cmp(&key(x)));
    let top: Vec<String> = idx
        .iter()
        .take(5)
        .map(|&i| {
            let (r, c) = (i / cols.len(), i % cols.len());
            format!("{} {} {:.3}", rows[r], cols[c], vals[i])
        })
        .collect();
    println!("largest effects: {}", top.join("; "));
}

/// `L.H[,L.H...]`.
pub fn parse_heads(s: &str) -> CliResult<Vec<(usize, usize)>> {
    s.split(',')
        .map(|p| {
            let bad = || format!("{p:?} is not a head: write LAYER.HEAD, for example 1.3 (several: 1.0,1.3)");
            let (l, h) = p.trim().split_once('.').ok_or_else(bad)?;
            Ok((l.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
        })
        .collect()
}

/// `L:n,n,...`.
pub fn parse_neurons(s: &str) -> CliResult<(usize, Vec<usize>)> {
    let bad = || format!("{s:?} is not a neuron list: write LAYER:N,N,..., for example 2:5,17");
    let (l, ns) = s.split_once(':').ok_or_else(bad)?;
    let ns = ns.split(',').map(|n| n.trim().parse().map_err(|_| bad())).collect::<Result<Vec<usize>, _>>()?;
    Ok((l.trim().parse().map_err(|_| bad())?, ns))
}

pub struct AblateArgs<'a> {
    pub model: &'a Path,
    pub prompt: &'a str,
    pub heads: Option<&'a str>,
    pub mlp: Option<usize>,
    pub neurons: Option<&'a str>,
    pub kind: KindArg,
    pub dataset: Option<&'a Path>,
    pub metric: MetricArg,
    pub target: Option<&'a str>,
    pub distractor: Option<&'a str>,
    pub pos: Option<usize>,
    pub json: bool,
}

pub fn ablate_cmd(a: AblateArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let prompt = encode(&bundle, "", a.prompt)?;
    let target = match (a.heads, a.mlp, a.neurons) {
        (Some(h), None, None) => AblationTarget::Heads { heads: parse_heads(h)? },
        (None, Some(layer), None) => AblationTarget::Mlp { layer },
        (None, None, Some(n)) => {
            let (layer, neurons) = parse_neurons(n)?;
            AblationTarget::Neurons { layer, neurons }
        }
        _ => return Err("give exactly one of --head L.H[,L.H], --mlp L, --neurons L:n,n".into()),
    };
    let kind = match a.kind {
        KindArg::Zero => AblationKind::Zero,
        KindArg::Mean => AblationKind::Mean,
        KindArg::Resample => AblationKind::Resample,
    };
    let dataset = match a.dataset {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let mut seqs = Vec::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let t = encode(&bundle, "dataset", line)?;
                if t.len() != prompt.len() {
                    return Err(format!(
                        "{} line {}: {} tokens, but the prompt has {} (mean and resample ablations need sequences of the prompt's length)",
                        path.display(),
                        i + 1,
                        t.len(),
                        prompt.len()
                    )
                    .into());
                }
                seqs.push(t);
            }
            seqs
        }
        None if kind != AblationKind::Zero => {
            return Err(format!("a {:?} ablation needs --dataset FILE (one prompt per line, each as long as the prompt)", a.kind).to_lowercase().into())
        }
        None => Vec::new(),
    };
    let metric = metric(&bundle, a.metric, a.target, a.distractor)?;
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let res = pollster::block_on(ablate(&model, &CpuBackend, &prompt, &target, kind, &dataset, &metric, a.pos, DEFAULT_CHUNK))?;
    if a.json {
        return print_json(&json!({ "tokens": prompt, "dataset_size": dataset.len(), "result": res }));
    }
    let what = match &target {
        AblationTarget::Heads { heads } => format!("heads {}", heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect::<Vec<_>>().join(", ")),
        AblationTarget::Mlp { layer } => format!("the MLP of layer {layer}"),
        AblationTarget::Neurons { layer, neurons } => format!("neurons {neurons:?} of layer {layer}"),
    };
    let how = match kind {
        AblationKind::Zero => "zero".to_string(),
        AblationKind::Mean => format!("mean over {} sequences", dataset.len()),
        AblationKind::Resample => format!("resampled from {} sequences (metric averaged)", dataset.len()),
    };
    println!("{how} ablation of {what}");
    println!("metric: {}", metric_name(&metric, &bundle, res.pos));
    println!("unablated {:.4}, ablated {:.4}, change {:+.4}", res.base, res.ablated, res.change);
    if !res.samples.is_empty() {
        let s: Vec<String> = res.samples.iter().map(|v| format!("{v:.4}")).collect();
        println!("per sequence: {}", s.join(" "));
    }
    Ok(())
}
