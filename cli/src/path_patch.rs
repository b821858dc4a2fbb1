//! `glassbox path-patch`: path patching (`glassbox_core::analysis::path_patching`, ARENA's IOI
//! exercise) on the CPU: every head (and with `--mlp` every MLP) as the sender, the logits or a
//! set of heads' q / k / v inputs as the receivers, printed as a layer x head grid (default) or
//! as JSON (`--json`: the core's `PathPatchResult`).

use std::path::Path;

use glassbox_core::analysis::path_patching::{path_patch, HeadInput, PathPatchResult, PathPatchSpec, Receivers};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle};
use serde_json::json;

use crate::analyze::{print_json, show};
use crate::patch::{metric, metric_name, parse_heads, MetricArg};
use crate::{read_bundle, CliResult};

/// Senders per forward pass.
pub const DEFAULT_CHUNK: usize = 64;

/// `--input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputArg {
    Q,
    K,
    V,
}

pub struct PathPatchArgs<'a> {
    pub model: &'a Path,
    pub clean: &'a str,
    pub corrupted: &'a str,
    pub target: Option<&'a str>,
    pub distractor: Option<&'a str>,
    /// `logits`, or receiver heads `L.H[,L.H]`.
    pub receivers: &'a str,
    pub input: Option<InputArg>,
    pub mlp: bool,
    pub metric: MetricArg,
    pub pos: Option<usize>,
    pub raw: bool,
    pub chunk: usize,
    /// `clean` and `corrupted` are comma-separated token ids.
    pub ids: bool,
    pub json: bool,
}

/// A prompt's tokens: text (padded for a readout model, as the app does) or, with `--ids`,
/// comma-separated ids.
fn tokens(bundle: &ModelBundle, what: &str, text: &str, ids: bool) -> CliResult<Vec<u32>> {
    let tokens = if ids {
        let ids = text
            .split(',')
            .map(|t| t.trim().parse::<u32>().map_err(|_| format!("the {what} prompt: {t:?} is not a token id (--ids takes ids such as 464,2068,7586)")))
            .collect::<Result<Vec<u32>, _>>()?;
        if let Some(t) = ids.iter().find(|&&t| t as usize >= bundle.cfg.d_vocab) {
            return Err(format!("the {what} prompt: token id {t} is outside the vocabulary of {}", bundle.cfg.d_vocab).into());
        }
        ids
    } else {
        let mut tokens = bundle.tokenizer.encode(text)?;
        bundle.tokenizer.pad(&mut tokens);
        if text.trim().is_empty() {
            return Err(format!("the {what} prompt is empty").into());
        }
        tokens
    };
    if tokens.is_empty() {
        return Err(format!("the {what} prompt is empty").into());
    }
    if tokens.len() > bundle.cfg.n_ctx {
        return Err(format!("the {what} prompt has {} tokens, more than the model's context of {}", tokens.len(), bundle.cfg.n_ctx).into());
    }
    Ok(tokens)
}

/// `--receivers` and `--input`.
fn receivers(s: &str, input: Option<InputArg>) -> CliResult<Receivers> {
    if s.trim() == "logits" {
        if let Some(i) = input {
            return Err(
                format!("--input {} needs receiver heads (--receivers L.H[,L.H]); the logits have no q, k or v", format!("{i:?}").to_lowercase()).into()
            );
        }
        return Ok(Receivers::Logits);
    }
    let heads = parse_heads(s).map_err(|e| format!("--receivers: write logits, or heads as LAYER.HEAD[,LAYER.HEAD]: {e}"))?;
    let input = match input.ok_or("receiver heads need --input q|k|v (which of their inputs the paths end at)")? {
        InputArg::Q => HeadInput::Q,
        InputArg::K => HeadInput::K,
        InputArg::V => HeadInput::V,
    };
    Ok(Receivers::Heads { heads, input })
}

pub fn path_patch_cmd(a: PathPatchArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let (clean, corrupted) = (tokens(&bundle, "clean", a.clean, a.ids)?, tokens(&bundle, "corrupted", a.corrupted, a.ids)?);
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
    let spec = PathPatchSpec {
        receivers: receivers(a.receivers, a.input)?,
        metric: metric(&bundle, a.metric, a.target, a.distractor)?,
        pos: a.pos,
        mlp_senders: a.mlp,
    };
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let t0 = std::time::Instant::now();
    let res = pollster::block_on(path_patch(&model, &CpuBackend, &clean, &corrupted, &spec, a.chunk.max(1), async |_, _| {}, || false))?
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
    print_grid(&bundle, &res, a.raw);
    eprintln!("{} senders, {} patched runs in {} batches, {seconds:.2} s", res.senders, res.runs, res.batches);
    Ok(())
}

fn print_grid(bundle: &ModelBundle, res: &PathPatchResult, raw: bool) {
    let to = match &res.spec.receivers {
        Receivers::Logits => "the logits".to_string(),
        Receivers::Heads { heads, input } => {
            format!("the {} input of heads {}", input.name(), heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect::<Vec<_>>().join(", "))
        }
    };
    println!("path patching: sender (a head's output; corrupted) -> {to}; every other head frozen to its clean output, MLPs recomputed");
    println!("metric: {}", metric_name(&res.spec.metric, bundle, res.pos));
    println!("clean {:.4}, corrupted {:.4}", res.clean, res.corrupted);
    if raw {
        println!("each cell: the metric of the path-patched run");
    } else {
        println!("each cell: (patched - corrupted) / (clean - corrupted): 1 = clean (no effect along the path), 0 = corrupted (ARENA's metric: this - 1)");
    }
    let (vals, mlp) = if raw { (&res.values, &res.mlp_values) } else { (&res.normalized, &res.mlp_normalized) };
    let (n_layers, n_heads) = (res.axes[0].size, res.axes[1].size);
    let w = 10;
    let num = |v: f32| format!("{:>w$}", if v.is_nan() { "-".to_string() } else { format!("{v:.3}") });
    let mut header: String = (0..n_heads).map(|h| format!("{:>w$}", format!("H{h}"))).collect();
    if !mlp.is_empty() {
        header.push_str(&format!("{:>w$}", "MLP"));
    }
    println!("{:5}{header}", "");
    for l in 0..n_layers {
        let mut row: String = (0..n_heads).map(|h| num(vals[l * n_heads + h])).collect();
        if !mlp.is_empty() {
            row.push_str(&num(mlp[l]));
        }
        println!("{:5}{row}", format!("L{l}"));
    }
    if vals.iter().all(|v| v.is_nan()) {
        println!("no sender comes before the receivers: nothing to patch");
        return;
    }
    // The senders whose path moves the metric most.
    let effect = |v: f32, n: f32| if raw { (v - res.clean).abs() } else { (1.0 - n).abs() };
    let mut cells: Vec<(String, f32, f32)> = (0..vals.len())
        .filter(|&i| !res.values[i].is_nan())
        .map(|i| (format!("L{}H{}", i / n_heads, i % n_heads), vals[i], effect(res.values[i], res.normalized[i])))
        .chain((0..mlp.len()).filter(|&l| !res.mlp_values[l].is_nan()).map(|l| (format!("MLP{l}"), mlp[l], effect(res.mlp_values[l], res.mlp_normalized[l]))))
        .collect();
    cells.sort_by(|a, b| b.2.total_cmp(&a.2));
    let top: Vec<String> = cells.iter().take(5).map(|(name, v, _)| format!("{name} {v:.3}")).collect();
    println!("largest effects: {}", top.join("; "));
}
