//! `glassbox scan`: top-activating examples of a layer's MLP neurons over a text corpus, as
//! the app's corpus scan: the corpus tokenized once, cut into windows of `<bos>` + `window - 1`
//! tokens (`glassbox_core::experiment::corpus_windows`), run in batches (`run_batch`, caching
//! only `blocks.{L}.mlp.hook_post`), and a running top-k per neuron with its context
//! (`glassbox_core::analysis::scan::TopActivations`). Prints one neuron's examples (or the
//! neurons that fired most) and the throughput, in tokens per second, to stderr.
//!
//! A neuron of layer `L` depends only on blocks `0..=L`, so the scan runs the model cut after
//! block `L` (`HookedTransformer::truncated`, a one-column unembedding: what TransformerLens's
//! `run_with_cache(stop_at_layer=L + 1)` does); `--full-forward` runs every layer and the real
//! unembedding instead (the same activations, more work).

use std::path::Path;
use std::time::Instant;

use glassbox_core::analysis::neurons::check_neuron;
use glassbox_core::analysis::scan::{Example, TopActivations};
use glassbox_core::analysis::top_k;
use glassbox_core::experiment::corpus_windows;
use glassbox_core::{BatchRequest, CacheSpec, CpuBackend, HookedTransformer, ModelBundle, RunRequest, Tokenizer};
use serde_json::json;

use crate::analyze::{print_json, show};
use crate::{read_bundle, CliResult};

/// Context kept before and after each example's token.
pub const BEFORE: usize = 16;
pub const AFTER: usize = 4;

pub struct ScanArgs<'a> {
    pub model: &'a Path,
    pub layer: usize,
    pub neuron: Option<usize>,
    pub corpus: &'a Path,
    pub k: usize,
    pub batch: usize,
    pub window: Option<usize>,
    pub full_forward: bool,
    pub json: bool,
}

/// The token that starts every window: the tokenizer's BOS, else GPT-2's `<|endoftext|>`
/// (what TransformerLens prepends), else token 0. Position 0 is never counted.
pub fn window_bos(tokenizer: &Tokenizer) -> u32 {
    tokenizer.bos().or_else(|| if let Tokenizer::Hf(t) = tokenizer { t.token_to_id("<|endoftext|>") } else { None }).unwrap_or(0)
}

pub fn scan(a: ScanArgs<'_>) -> CliResult<()> {
    let bundle: ModelBundle = read_bundle(a.model)?;
    let cfg = &bundle.cfg;
    let d_mlp = check_neuron(cfg, a.layer, a.neuron.unwrap_or(0))?;
    if a.k == 0 || a.batch == 0 {
        return Err("--k and --batch must be at least 1".into());
    }
    let text = std::fs::read_to_string(a.corpus).map_err(|e| format!("cannot read the corpus {}: {e}", a.corpus.display()))?;
    if text.trim().is_empty() {
        return Err(format!("the corpus file {} is empty", a.corpus.display()).into());
    }
    let mut ids = bundle.tokenizer.encode(&text).map_err(|e| format!("the corpus {}: {e}", a.corpus.display()))?;
    if bundle.tokenizer.bos().is_some_and(|b| ids.first() == Some(&b)) {
        ids.remove(0);
    }
    if ids.is_empty() {
        return Err(format!("the corpus file {} has no tokens", a.corpus.display()).into());
    }
    let mut window = a.window.unwrap_or(cfg.n_ctx);
    if window < 2 || window > cfg.n_ctx {
        return Err(format!("--window {window} must be from 2 to the model's context of {}", cfg.n_ctx).into());
    }
    if ids.len() < window - 1 {
        window = ids.len() + 1; // a short corpus is one shorter window
    }
    let bos = window_bos(&bundle.tokenizer);
    let windows = corpus_windows(&ids, bos, window);
    let dropped = ids.len() - windows.len() * (window - 1);

    let hook = format!("blocks.{}.mlp.hook_post", a.layer);
    let full = HookedTransformer::new(&CpuBackend, cfg.clone(), &bundle.weights)?;
    // Only the blocks up to the scanned layer (`HookedTransformer::truncated`), unless asked.
    let model = if a.full_forward { full } else { full.truncated(&CpuBackend, a.layer)? };
    let cache = CacheSpec::Names(vec![hook.clone()]);
    let mut top = TopActivations::new(d_mlp, a.k, BEFORE, AFTER);
    let t0 = Instant::now();
    for (b, chunk) in windows.chunks(a.batch).enumerate() {
        let batch = BatchRequest::new(chunk.iter().map(|w| RunRequest::new(w.clone()).with_cache(cache.clone())).collect());
        let outs = pollster::block_on(model.run_batch(&CpuBackend, &batch))?;
        for (i, out) in outs.iter().enumerate() {
            let acts = out.get(&hook).ok_or("the scan's hook was not cached")?; // [pos, d_mlp]
            top.add((b * a.batch + i) as u32, &acts.data, |p| p > 0);
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let tokens_per_s = top.tokens_scanned as f64 / seconds;
    eprintln!(
        "scan: {} tokens ({} windows of {window}, batch {}, layer {}, {}) in {seconds:.2} s: {tokens_per_s:.1} tokens/s",
        top.tokens_scanned,
        windows.len(),
        a.batch,
        a.layer,
        if a.full_forward { "full forward" } else { "blocks up to the layer" }
    );

    // The neurons whose best example is largest.
    let best: Vec<f32> = (0..d_mlp).map(|n| top.top(n).first().map_or(f32::NEG_INFINITY, |e| e.act)).collect();
    let strongest = top_k(&best, 10);
    let neuron = a.neuron.unwrap_or(strongest[0].0 as usize);
    let tok = &bundle.tokenizer;
    let example_json = |e: &Example| {
        let w = &windows[e.window as usize];
        let toks: Vec<String> = (e.start as usize..e.start as usize + e.context.len()).map(|p| tok.token_str(w[p])).collect();
        json!({
            "act": e.act, "window": e.window, "pos": e.pos, "start": e.start, "context": e.context,
            "tokens": toks, "corpus_token": e.window as usize * (window - 1) + e.pos as usize - 1,
        })
    };
    if a.json {
        return print_json(&json!({
                "layer": a.layer,
                "neuron": neuron,
                "hook": hook,
                "corpus": a.corpus.display().to_string(),
                "window": window,
                "windows": windows.len(),
                "batch": a.batch,
                "full_forward": a.full_forward,
                "tokens_scanned": top.tokens_scanned,
                "tokens_not_scanned": dropped,
                "seconds": seconds,
                "tokens_per_s": tokens_per_s,
                "strongest_neurons": strongest,
                "examples": top.top(neuron).iter().map(example_json).collect::<Vec<_>>(),
        }));
    }
    println!(
        "{hook} over {} ({} tokens in {} windows of {window}{})",
        a.corpus.display(),
        top.tokens_scanned,
        windows.len(),
        if dropped > 0 { format!("; the last {dropped} tokens, less than a window, not scanned") } else { String::new() }
    );
    if a.neuron.is_none() {
        let list: Vec<String> = strongest.iter().map(|(n, v)| format!("N{n} {v:.3}")).collect();
        println!("neurons with the largest activations: {}", list.join("  "));
        println!("(showing N{neuron}; choose one with --neuron N)");
    }
    println!("\ntop {} examples of L{}N{neuron} (the max token in [[ ]]):", a.k, a.layer);
    for (i, e) in top.top(neuron).iter().enumerate() {
        let w = &windows[e.window as usize];
        let mut line = String::new();
        for (p, &t) in w.iter().enumerate().skip(e.start as usize).take(e.context.len()) {
            let s = tok.token_str(t).replace('\n', "\\n");
            if p == e.pos as usize {
                line.push_str(&format!("[[{}]]", show(&s)));
            } else {
                line.push_str(&s);
            }
        }
        println!("{:>3}. {:>9.4}  window {:>4} pos {:>4}  {line}", i + 1, e.act, e.window, e.pos);
    }
    Ok(())
}
