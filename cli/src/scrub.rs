//! `glassbox scrub`: causal scrubbing of a shipped hypothesis
//! (`glassbox_core::analysis::scrubbing`) on the CPU: the model's loss, the scrubbed loss, the
//! unconditional loss and the loss recovered with its 95% interval, as text or as JSON
//! (`--json`: the core's `ScrubResult` with the hypothesis).

use std::path::Path;

use glassbox_core::analysis::scrubbing::{hypotheses, scrub, Dataset, ScrubOptions, Task};
use glassbox_core::{CpuBackend, HookedTransformer};
use serde_json::json;

use crate::analyze::print_json;
use crate::{read_bundle, CliResult};

/// `--hypothesis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HypothesisArg {
    ParensCorrect,
    ParensWrong,
    InductionCorrect,
    InductionWrong,
}

impl HypothesisArg {
    fn name(self) -> &'static str {
        match self {
            HypothesisArg::ParensCorrect => "parens-correct",
            HypothesisArg::ParensWrong => "parens-wrong",
            HypothesisArg::InductionCorrect => "induction-correct",
            HypothesisArg::InductionWrong => "induction-wrong",
        }
    }
}

pub struct ScrubArgs<'a> {
    pub model: &'a Path,
    pub hypothesis: HypothesisArg,
    pub n: usize,
    pub seed: u64,
    pub rounds: usize,
    pub chunk: usize,
    pub json: bool,
}

pub fn scrub_cmd(a: ScrubArgs) -> CliResult<()> {
    let bundle = read_bundle(a.model)?;
    let hyp = hypotheses::by_name(a.hypothesis.name()).expect("every --hypothesis value is a shipped hypothesis");
    let organism = match hyp.task {
        Task::Parens => "balanced-parens",
        Task::Induction => "induction-2l",
    };
    let name = bundle.card["name"].as_str().unwrap_or_default();
    if name != organism {
        return Err(format!(
            "{} is a hypothesis about the shipped {organism} model; {} is {}",
            hyp.name,
            a.model.display(),
            if name.is_empty() { "another model" } else { name }
        )
        .into());
    }
    let model = HookedTransformer::new(&CpuBackend, bundle.cfg.clone(), &bundle.weights)?;
    if a.n < 2 {
        return Err("--n must be at least 2".into());
    }
    let data = Dataset::new(hyp.task, a.seed, a.n);
    let opts = ScrubOptions { seed: a.seed, rounds: a.rounds, chunk: a.chunk, ..ScrubOptions::default() };
    let r = pollster::block_on(scrub(&model, &CpuBackend, &data, &hyp, &opts))?;
    if a.json {
        return print_json(&json!({ "hypothesis": hyp, "result": r }));
    }
    println!("{}: {}", hyp.name, hyp.description);
    for c in &hyp.claims {
        let at = c.positions.as_ref().map(|p| format!(" at positions {p:?}")).unwrap_or_default();
        if c.inputs.is_empty() {
            println!("  {}{at} depends on: {}", c.site.label(), c.feature.label());
        } else {
            let inner: Vec<String> = c.inputs.iter().map(|i| format!("{} ({})", i.site.label(), i.feature.label())).collect();
            println!("  {}{at} is computed from: {}; the rest from: {}", c.site.label(), inner.join(", "), c.feature.label());
        }
    }
    println!("examples {} (seed {}), rounds {}", r.n, r.seed, r.rounds);
    println!("loss: model {:.4}  scrubbed {:.4}  unconditional {:.4}", r.loss_model, r.loss_scrubbed, r.loss_uncond);
    println!(
        "loss recovered {:.3}  (95% CI {:.3} to {:.3}; per round {:?})",
        r.loss_recovered,
        r.ci95.0,
        r.ci95.1,
        r.per_round.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    println!("{} forward passes in {} batches", r.runs, r.batches);
    Ok(())
}
