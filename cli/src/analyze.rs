//! `glassbox lens | attribute | neuron | heads`: the inspection analyses of
//! `glassbox_core::analysis` on one prompt, printed for a reader (default) or as JSON (`--json`,
//! the core's result structs serialized), with the same numbers the app shows.

use std::path::Path;

use glassbox_core::analysis::attribution::{attribute, AttributionOptions};
use glassbox_core::analysis::heads::{head_scores, repeated_random_tokens, HeadKind};
use glassbox_core::analysis::lens::{logit_lens, LensNorm, LensOptions};
use glassbox_core::analysis::neurons::{activations, check_neuron, direct_effect};
use glassbox_core::analysis::{hooks_needed, top_k};
use glassbox_core::{CpuBackend, HookedTransformer, ModelBundle, RunOutput, RunRequest, Tokenizer};
use serde_json::json;

use crate::{read_bundle, CliResult};

/// How the logit lens normalises each residual (`--norm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NormArg {
    /// Re-run ln_final with each residual's own statistics (TransformerLens 3's default).
    Fresh,
    /// Divide by the final residual's cached ln_final scale (TransformerLens before 2.18).
    Cached,
}

/// The ranking of `glassbox heads` (`--sort`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortArg {
    Induction,
    PreviousToken,
    DuplicateToken,
}

impl SortArg {
    fn kind(self) -> HeadKind {
        match self {
            SortArg::Induction => HeadKind::Induction,
            SortArg::PreviousToken => HeadKind::PreviousToken,
            SortArg::DuplicateToken => HeadKind::DuplicateToken,
        }
    }
}

/// A token for display: whitespace made visible, control characters escaped.
pub fn show(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            ' ' => out.push('·'),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        "\"\"".into()
    } else {
        out
    }
}

/// Truncates `s` to `n` characters (with an ellipsis) for a table cell.
fn cell(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Resolves `--target` / `--distractor`: `#123` is an output id; anything else is a token
/// string, looked up among the model's outputs (a readout's named classes, or the
/// vocabulary), and for a Hugging Face tokenizer also as the text that encodes to exactly one
/// token (so that " the" finds `Ġthe`).
pub fn resolve_token(bundle: &ModelBundle, s: &str) -> CliResult<u32> {
    let n_out = bundle.cfg.d_vocab_out;
    if let Some(id) = s.strip_prefix('#') {
        let id: u32 = id.parse().map_err(|_| format!("{s:?} is not a token id (write #123, or the token itself)"))?;
        if id as usize >= n_out {
            return Err(format!("token id {id} is out of range (the model has {n_out} outputs, #0 to #{})", n_out - 1).into());
        }
        return Ok(id);
    }
    let found = match &bundle.tokenizer {
        Tokenizer::Vocab(t) => match &t.outputs {
            Some(outputs) => outputs.iter().position(|o| o == s).map(|i| i as u32),
            None => t.tokens.iter().position(|o| o == s).map(|i| i as u32),
        },
        Tokenizer::Hf(t) => t.token_to_id(s).or_else(|| {
            let ids = t.encode(s).ok()?;
            let ids: Vec<u32> = ids.into_iter().filter(|&i| Some(i) != t.bos && Some(i) != t.eos).collect();
            (ids.len() == 1).then(|| ids[0])
        }),
    };
    match found {
        Some(id) if (id as usize) < n_out => Ok(id),
        Some(id) => Err(format!("token {s:?} (#{id}) is not one of the model's {n_out} outputs").into()),
        None => {
            let hint = match &bundle.tokenizer {
                Tokenizer::Vocab(t) if t.outputs.is_some() => " (the model's outputs are named in its vocab.json \"outputs\")".to_string(),
                Tokenizer::Hf(t) => match t.encode(s) {
                    Ok(ids) if ids.len() > 1 => {
                        format!(" (it encodes to {} tokens: {})", ids.len(), ids.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(" "))
                    }
                    _ => String::new(),
                },
                _ => String::new(),
            };
            Err(format!("{s:?} is not a single token of the model's vocabulary{hint}; give one token, or an id as #123").into())
        }
    }
}

/// The prompt's tokens, padded for a readout model as the app does; an empty prompt is an error.
fn encode_prompt(bundle: &ModelBundle, prompt: &str) -> CliResult<Vec<u32>> {
    let mut tokens = bundle.tokenizer.encode(prompt)?;
    bundle.tokenizer.pad(&mut tokens);
    if prompt.trim().is_empty() && tokens.iter().all(|&t| Some(t) == bundle.tokenizer.bos()) {
        return Err("the prompt is empty (give one with --prompt TEXT)".into());
    }
    if tokens.is_empty() {
        return Err("the prompt encodes to no tokens with this model's tokenizer".into());
    }
    if tokens.len() > bundle.cfg.n_ctx {
        return Err(format!("the prompt has {} tokens, more than the model's context of {}", tokens.len(), bundle.cfg.n_ctx).into());
    }
    Ok(tokens)
}

/// A model on the CPU and one run of `tokens` caching every hook the analyses read.
fn run_analysed(bundle: &ModelBundle, tokens: &[u32]) -> CliResult<(HookedTransformer<CpuBackend>, RunOutput)> {
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    let names = hooks_needed(&bundle.cfg);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = pollster::block_on(model.run(&CpuBackend, &RunRequest::new(tokens.to_vec()).cache(&names)))?;
    Ok((model, out))
}

fn position(pos: Option<usize>, n: usize) -> CliResult<usize> {
    match pos {
        None => Ok(n - 1),
        Some(p) if p < n => Ok(p),
        Some(p) => Err(format!("position {p} is out of range (the prompt has {n} tokens, 0 to {})", n - 1).into()),
    }
}

/// Prints `v` as JSON; a closed pipe is an error, not a panic.
pub fn print_json(v: &serde_json::Value) -> CliResult<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

pub struct LensArgs<'a> {
    pub model: &'a Path,
    pub prompt: &'a str,
    pub target: Option<&'a str>,
    pub norm: NormArg,
    pub mid: bool,
    pub top: usize,
    pub json: bool,
}

pub fn lens(a: LensArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let target = a.target.map(|t| resolve_token(&bundle, t)).transpose()?;
    let tokens = encode_prompt(&bundle, a.prompt)?;
    let (model, out) = run_analysed(&bundle, &tokens)?;
    let norm = match a.norm {
        NormArg::Fresh => LensNorm::Fresh,
        NormArg::Cached => LensNorm::CachedScale,
    };
    let opts = LensOptions { norm, incl_mid: a.mid, top_k: a.top.max(1), target };
    let lens = pollster::block_on(logit_lens(&model, &CpuBackend, &bundle.weights, &out, &opts))?;
    let tok = &bundle.tokenizer;
    if a.json {
        return print_json(&json!({
            "tokens": tokens,
            "token_strs": tokens.iter().map(|&t| tok.token_str(t)).collect::<Vec<_>>(),
            "lens": lens,
        }));
    }
    let norm_name = match norm {
        LensNorm::Fresh => "fresh: ln_final re-run on each residual (TransformerLens 3)",
        LensNorm::CachedScale => "cached: divided by the final residual's ln_final scale (TransformerLens < 2.18)",
    };
    println!("logit lens, norm {norm_name}");
    println!("each cell: the top prediction and its probability");
    if let Some(t) = target {
        println!("target {} (#{t}): its probability under each cell", show(&tok.output_str(t)));
    }
    let w = 14;
    let label_w = lens.labels.iter().map(String::len).max().unwrap_or(5).max(10) + 1;
    let header: String = tokens.iter().enumerate().map(|(p, &t)| format!("{:>w$}", cell(&format!("{p}:{}", show(&tok.token_str(t))), w - 1))).collect();
    println!("{:label_w$}{header}", "");
    for (l, label) in lens.labels.iter().enumerate() {
        let row: String = (0..lens.n_pos)
            .map(|p| {
                let c = lens.cell(l, p).expect("a cell per label and position");
                let (id, prob) = c.top[0];
                format!("{:>w$}", format!("{} {prob:.2}", cell(&show(&tok.output_str(id)), w - 6)))
            })
            .collect();
        println!("{label:label_w$}{row}");
        if target.is_some() {
            let row: String = (0..lens.n_pos)
                .map(|p| {
                    let t = lens.cell(l, p).and_then(|c| c.target).expect("a target reading");
                    format!("{:>w$}", format!("p={:.3}", t.prob))
                })
                .collect();
            println!("{:label_w$}{row}", "  target");
        }
    }
    if opts.top_k > 1 {
        let last = lens.n_pos - 1;
        println!("\ntop {} at the last position ({last}):", opts.top_k);
        for (l, label) in lens.labels.iter().enumerate() {
            let c = lens.cell(l, last).expect("a cell");
            let top: Vec<String> = c.top.iter().map(|(id, p)| format!("{} {p:.3}", show(&tok.output_str(*id)))).collect();
            println!("{label:label_w$}{}", top.join("  "));
        }
    }
    Ok(())
}

pub struct AttributeArgs<'a> {
    pub model: &'a Path,
    pub prompt: &'a str,
    pub target: &'a str,
    pub distractor: Option<&'a str>,
    pub pos: Option<usize>,
    pub fold_ln: bool,
    pub center_unembed: bool,
    pub json: bool,
}

pub fn attribute_cmd(a: AttributeArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let target = resolve_token(&bundle, a.target)?;
    let distractor = a.distractor.map(|t| resolve_token(&bundle, t)).transpose()?;
    let tokens = encode_prompt(&bundle, a.prompt)?;
    let pos = position(a.pos, tokens.len())?;
    let (_, out) = run_analysed(&bundle, &tokens)?;
    let opts = AttributionOptions { fold_ln: a.fold_ln, center_unembed: a.center_unembed, ..AttributionOptions::new(pos, target, distractor) };
    let attr = attribute(&bundle.cfg, &bundle.weights, &out, &opts)?;
    // The sum is exact up to float rounding, which grows with the logits' size.
    let scale = out.logits.row(pos).iter().fold(1.0f32, |m, x| m.max(x.abs()));
    let tol = 1e-4 * scale;
    let agree = (attr.sum - attr.actual).abs() <= tol;
    let largest = attr.terms.iter().max_by(|x, y| x.value.abs().total_cmp(&y.value.abs())).map(|t| t.label.clone());
    let tok = &bundle.tokenizer;
    if a.json {
        return print_json(&json!({
            "tokens": tokens,
            "token_strs": tokens.iter().map(|&t| tok.token_str(t)).collect::<Vec<_>>(),
            "attribution": attr,
            "agree": agree,
            "tolerance": tol,
            "largest": largest,
        }));
    }
    let what = match distractor {
        Some(d) => format!("logit difference {} (#{target}) - {} (#{d})", show(&tok.output_str(target)), show(&tok.output_str(d))),
        None if a.center_unembed => format!("logit of {} (#{target}) minus the mean logit", show(&tok.output_str(target))),
        None => format!("logit of {} (#{target})", show(&tok.output_str(target))),
    };
    println!("direct logit attribution of the {what}");
    println!("at position {pos} (token {}), {} tokens", show(&tok.token_str(tokens[pos])), tokens.len());
    println!(
        "ln_final: {}; unembedding: {}",
        if a.fold_ln {
            "folded (weight into W_U, bias as its own term; the terms add up to the logit)"
        } else {
            "not folded (raw W_U; the terms need not add up)"
        },
        if a.center_unembed { "centred (mean column subtracted)" } else { "as stored" }
    );
    let max = attr.terms.iter().map(|t| t.value.abs()).fold(0.0f32, f32::max).max(1e-12);
    let label_w = attr.terms.iter().chain(&attr.layers).map(|t| t.label.len()).max().unwrap_or(8).max(8);
    println!("\nterms (embed, heads, b_O, MLPs, ln_final.b):");
    for t in &attr.terms {
        let n = ((t.value.abs() / max) * 30.0).round() as usize;
        let bar = if t.value >= 0.0 { format!("{:>30}|{}", "", "#".repeat(n)) } else { format!("{:>30}|", "-".repeat(n)) };
        println!("  {:label_w$} {:>11.5}  {bar}", t.label, t.value);
    }
    println!("\ndecompose_resid layers:");
    for t in &attr.layers {
        println!("  {:label_w$} {:>11.5}", t.label, t.value);
    }
    println!("\nsum of terms    {:>11.5}", attr.sum);
    println!("model's {} {:>11.5}", if distractor.is_some() { "diff " } else { "logit" }, attr.actual);
    if agree {
        println!("agree: the terms add up to the model's value (|difference| {:.2e} <= {tol:.1e})", (attr.sum - attr.actual).abs());
    } else if !a.fold_ln {
        println!(
            "do not agree: |difference| {:.2e} > {tol:.1e}, as expected without folding ln_final (drop --no-fold-ln for an exact decomposition)",
            (attr.sum - attr.actual).abs()
        );
    } else {
        println!("DO NOT AGREE: |difference| {:.2e} > {tol:.1e}", (attr.sum - attr.actual).abs());
    }
    if let Some(l) = largest {
        println!("largest term: {l}");
    }
    Ok(())
}

pub struct NeuronArgs<'a> {
    pub model: &'a Path,
    pub prompt: &'a str,
    pub layer: usize,
    pub neuron: usize,
    pub pos: Option<usize>,
    pub top: usize,
    pub json: bool,
}

pub fn neuron(a: NeuronArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    check_neuron(&bundle.cfg, a.layer, a.neuron)?;
    let tokens = encode_prompt(&bundle, a.prompt)?;
    let pos = position(a.pos, tokens.len())?;
    let (_, out) = run_analysed(&bundle, &tokens)?;
    let acts = activations(&bundle.cfg, &out, a.layer, a.neuron)?;
    let effect = direct_effect(&bundle.cfg, &bundle.weights, &out, a.layer, a.neuron, pos, a.top.max(1))?;
    let tok = &bundle.tokenizer;
    let shown = if bundle.cfg.gated_mlp { "mlp.hook_post = act(x W_gate) * (x W_in), what W_out reads" } else { "mlp.hook_post, after the activation" };
    if a.json {
        return print_json(&json!({
            "layer": a.layer,
            "neuron": a.neuron,
            "activation": shown,
            "tokens": tokens,
            "token_strs": tokens.iter().map(|&t| tok.token_str(t)).collect::<Vec<_>>(),
            "activations": acts,
            "direct_effect": effect,
            "promoted_strs": effect.promoted.iter().map(|(t, _)| tok.output_str(*t)).collect::<Vec<_>>(),
            "suppressed_strs": effect.suppressed.iter().map(|(t, _)| tok.output_str(*t)).collect::<Vec<_>>(),
        }));
    }
    println!("neuron L{}N{} (blocks.{}.{shown})", a.layer, a.neuron, a.layer);
    let max = acts.iter().map(|x| x.abs()).fold(0.0f32, f32::max).max(1e-12);
    for (p, (&t, &v)) in tokens.iter().zip(&acts).enumerate() {
        let n = ((v.abs() / max) * 30.0).round() as usize;
        println!("  {p:>4} {:>12} {v:>10.4}  {}", cell(&show(&tok.token_str(t)), 12), if v >= 0.0 { "#".repeat(n) } else { "-".repeat(n) });
    }
    let argmax = top_k(&acts, 1).first().map(|&(p, v)| (p, v));
    if let Some((p, v)) = argmax {
        println!("max activation {v:.4} at position {p} ({})", show(&tok.token_str(tokens[p as usize])));
    }
    println!("\ndirect effect on the logits per unit of activation (ln_final scale of position {pos}):");
    println!("  promoted:   {}", effect.promoted.iter().map(|(t, v)| format!("{} {v:+.4}", show(&tok.output_str(*t)))).collect::<Vec<_>>().join("  "));
    println!("  suppressed: {}", effect.suppressed.iter().map(|(t, v)| format!("{} {v:+.4}", show(&tok.output_str(*t)))).collect::<Vec<_>>().join("  "));
    Ok(())
}

pub struct HeadsArgs<'a> {
    pub model: &'a Path,
    pub prompt: Option<&'a str>,
    pub repeated: usize,
    pub seed: u64,
    pub sort: SortArg,
    pub json: bool,
}

pub fn heads(a: HeadsArgs<'_>) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let cfg = &bundle.cfg;
    let bos = bundle.tokenizer.bos();
    let tokens = match a.prompt {
        Some(p) => encode_prompt(&bundle, p)?,
        None => {
            if a.repeated == 0 {
                return Err("--repeated must be at least 1".into());
            }
            let n = 2 * a.repeated + usize::from(bos.is_some());
            if n > cfg.n_ctx {
                return Err(format!("--repeated {} makes {n} tokens, more than the model's context of {}", a.repeated, cfg.n_ctx).into());
            }
            // Random tokens from the vocabulary, BOS (and padding) left out.
            let lo = u32::from(bos == Some(0));
            let mut hi = bundle.tokenizer.vocab_size().min(cfg.d_vocab) as u32;
            if let Tokenizer::Vocab(t) = &bundle.tokenizer {
                if t.pad.is_some_and(|p| p + 1 == hi) {
                    hi -= 1;
                }
            }
            repeated_random_tokens(a.seed, a.repeated, lo, hi, bos)
        }
    };
    let (_, out) = run_analysed(&bundle, &tokens)?;
    let scores = head_scores(cfg, &out, &tokens)?;
    let kind = a.sort.kind();
    let ranked = scores.ranked(kind);
    let tok = &bundle.tokenizer;
    if a.json {
        return print_json(&json!({
            "input": if a.prompt.is_some() { "prompt".to_string() } else { format!("repeated random sequence, {} tokens twice, seed {}", a.repeated, a.seed) },
            "token_strs": tokens.iter().map(|&t| tok.token_str(t)).collect::<Vec<_>>(),
            "scores": scores,
            "sorted_by": kind,
            "ranked": ranked.iter().map(|&(l, h, s)| json!({"layer": l, "head": h, "label": format!("L{l}H{h}"), "score": s})).collect::<Vec<_>>(),
        }));
    }
    match a.prompt {
        Some(_) => println!("head scores on the prompt ({} tokens)", tokens.len()),
        None => println!("head scores on a repeated random sequence ({} tokens twice, seed {}, {} tokens)", a.repeated, a.seed, tokens.len()),
    }
    println!("TransformerLens detect_head semantics (error_measure=\"mul\"): share of each head's attention on the pattern");
    println!("ranked by {} score\n", kind.label());
    println!("  {:>4}  {:>6}  {:>14}  {:>15}  {:>9}", "rank", "head", "previous token", "duplicate token", "induction");
    let n_heads = scores.n_heads;
    for (rank, &(l, h, _)) in ranked.iter().enumerate() {
        let i = l * n_heads + h;
        let [p, d, ind] = [HeadKind::PreviousToken, HeadKind::DuplicateToken, HeadKind::Induction].map(|k| scores.get(k)[i]);
        println!("  {:>4}  {:>6}  {p:>14.4}  {d:>15.4}  {ind:>9.4}", rank + 1, format!("L{l}H{h}"));
    }
    for k in HeadKind::ALL {
        if let Some(&(l, h, s)) = scores.ranked(k).first() {
            println!("top {} head: L{l}H{h} ({s:.4})", k.label());
        }
    }
    Ok(())
}
