//! What the causal views show: an activation patching sweep and an ablation, as the worker
//! computes them (`engine/causal.rs`, over `glassbox_core::analysis::patching`) and the page
//! draws them (`components/patch_panel.rs`, `components/ablation_panel.rs`). Token ids are
//! already strings here; numbers are the core's.

use glassbox_core::analysis::patching::{AblationKind, AblationResult, AblationTarget, Component, Direction, Granularity, MetricKind, PatchResult};
use glassbox_core::analysis::path_patching::{HeadInput, Receivers};
use glassbox_core::analysis::scrubbing::{InterchangeResult, ScrubResult};
use glassbox_core::{Analysis, SteerSpec, SteerVector};
use serde::{Deserialize, Serialize};

/// A finished patching sweep, with what the page needs to label it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchView {
    pub result: PatchResult,
    /// The two prompts' tokens (equal lengths).
    pub clean: Vec<String>,
    /// The clean prompt's ids (a padded model's padding is hidden from position columns).
    #[serde(default)]
    pub clean_ids: Vec<u32>,
    pub corrupted: Vec<String>,
    /// The metric in words (`logit("B") - logit("C") at position 7`).
    pub metric: String,
    /// The metric's tokens, as strings (what the page would type to ask for them again).
    pub target: Option<String>,
    pub distractor: Option<String>,
    /// Wall time of the sweep in the worker, milliseconds.
    pub elapsed_ms: f64,
    /// The backend it ran on ("CPU", "WebGPU (...)").
    pub backend: String,
    /// A path-patching sweep: senders (layer x head, and the MLPs in a last column) to these
    /// receivers. Its cells are paths, not single patched runs: they do not open.
    #[serde(default)]
    pub path: Option<PathInfo>,
}

/// What a path-patching sweep's heatmap needs beyond an activation sweep's. Its `normalized`
/// values follow ARENA's path-patching plots: 0 = no effect along the path, -1 = the whole
/// corrupted run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathInfo {
    /// The receivers in words ("the logits", "the keys of L1H0, L1H3").
    pub receivers: String,
    /// The last column is each layer's MLP as the sender.
    pub mlp_column: bool,
    /// Senders run (those that can reach the receivers).
    pub senders: usize,
}

/// How a patching result is laid out as a heatmap: rows and columns, each with labels, and
/// the cell behind each (row, column).
#[derive(Clone, Debug, PartialEq)]
pub struct PatchGrid {
    pub row_labels: Vec<String>,
    /// Column labels: tokens (with their position) for position axes, head names otherwise.
    pub col_labels: Vec<String>,
    /// Whether the columns are positions.
    pub cols_are_positions: bool,
    pub rows: usize,
    pub cols: usize,
}

/// One cell of a sweep: which activation it patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchCell {
    pub layer: usize,
    pub head: Option<usize>,
    /// `None`: every position.
    pub pos: Option<usize>,
}

impl PatchView {
    /// The heatmap layout of the result's axes (TransformerLens's shapes): `[layer, pos]` is
    /// layers x positions; `[layer, pos, head]` and `[layer, head_index, dest_pos]` are
    /// (layer, head) rows x positions; `[layer, head]` is layers x heads; `[layer]` one column.
    pub fn grid(&self) -> PatchGrid {
        let names: Vec<&str> = self.result.axes.iter().map(|a| a.name.as_str()).collect();
        let size = |i: usize| self.result.axes[i].size;
        let tokens = |n: usize| (0..n).map(|p| format!("{p} {}", self.clean.get(p).map(String::as_str).unwrap_or("?"))).collect::<Vec<_>>();
        let layer_rows = |n: usize| (0..n).map(|l| format!("L{l}")).collect::<Vec<_>>();
        let head_rows = |l: usize, h: usize| (0..l).flat_map(|l| (0..h).map(move |h| format!("L{l}H{h}"))).collect::<Vec<_>>();
        match names.as_slice() {
            ["layer", "pos"] => {
                PatchGrid { row_labels: layer_rows(size(0)), col_labels: tokens(size(1)), cols_are_positions: true, rows: size(0), cols: size(1) }
            }
            ["layer", "pos", "head"] | ["layer", "head_index", "dest_pos"] => {
                let (h, p) = if names[1] == "pos" { (size(2), size(1)) } else { (size(1), size(2)) };
                PatchGrid { row_labels: head_rows(size(0), h), col_labels: tokens(p), cols_are_positions: true, rows: size(0) * h, cols: p }
            }
            ["layer", "head"] | ["layer", "head_index"] => PatchGrid {
                row_labels: layer_rows(size(0)),
                col_labels: (0..size(1))
                    .map(|h| if h + 1 == size(1) && self.path.as_ref().is_some_and(|p| p.mlp_column) { "MLP".to_string() } else { format!("H{h}") })
                    .collect(),
                cols_are_positions: false,
                rows: size(0),
                cols: size(1),
            },
            _ => PatchGrid { row_labels: layer_rows(size(0)), col_labels: vec!["all positions".into()], cols_are_positions: false, rows: size(0), cols: 1 },
        }
    }

    /// The index into `values` of heatmap cell (row, col), and which activation it patched.
    pub fn cell(&self, row: usize, col: usize) -> (usize, PatchCell) {
        let names: Vec<&str> = self.result.axes.iter().map(|a| a.name.as_str()).collect();
        let size = |i: usize| self.result.axes[i].size;
        match names.as_slice() {
            ["layer", "pos"] => (row * size(1) + col, PatchCell { layer: row, head: None, pos: Some(col) }),
            ["layer", "pos", "head"] => {
                let h = size(2);
                let (l, head) = (row / h, row % h);
                ((l * size(1) + col) * h + head, PatchCell { layer: l, head: Some(head), pos: Some(col) })
            }
            ["layer", "head_index", "dest_pos"] => {
                let h = size(1);
                let (l, head) = (row / h, row % h);
                ((l * h + head) * size(2) + col, PatchCell { layer: l, head: Some(head), pos: Some(col) })
            }
            ["layer", "head"] | ["layer", "head_index"] => (row * size(1) + col, PatchCell { layer: row, head: Some(col), pos: None }),
            _ => (row, PatchCell { layer: row, head: None, pos: None }),
        }
    }
}

/// A finished ablation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationView {
    pub result: AblationResult,
    /// What was ablated, in words (`heads L1H0, L1H3`).
    pub what: String,
    pub metric: String,
    /// The top next tokens at the metric's position without and with the ablation.
    pub base_top: Vec<(String, f32)>,
    pub ablated_top: Vec<(String, f32)>,
    /// Mean and resample ablations: the dataset, in words.
    pub dataset: Option<String>,
    /// For a shipped model with a task metric: that metric without and with the ablation.
    pub task: Option<TaskEffect>,
}

/// A shipped organism's task metric (its card's) without and with an ablation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEffect {
    /// In words: "induction accuracy on 200 held-out sequences".
    pub name: String,
    pub before: f32,
    pub after: f32,
    /// What the card states for this ablation, when it states one (and for which).
    pub card: Option<(String, f64)>,
}

/// Activation patching (one activation per cell) or path patching (one sender's path per cell).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatchMode {
    #[default]
    Activation,
    Path,
}

/// The patching panel's choices (the experiment's `Analysis::Patch` or `Analysis::PathPatch`
/// once a sweep runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchSettings {
    pub mode: PatchMode,
    pub component: Component,
    pub by: Granularity,
    pub direction: Direction,
    pub metric: MetricKind,
    /// Read the metric at the selected token instead of the last.
    pub at_selected: bool,
    /// Path patching: to the logits, or to these heads' (`1.0, 1.3`) `input`.
    pub to_logits: bool,
    pub receiver_heads: String,
    pub input: HeadInput,
    /// Path patching: every MLP as a sender too.
    pub mlp_senders: bool,
}

impl Default for PatchSettings {
    fn default() -> Self {
        PatchSettings {
            mode: PatchMode::Activation,
            component: Component::ResidPre,
            by: Granularity::ByPos,
            direction: Direction::Denoising,
            metric: MetricKind::LogitDiff,
            at_selected: false,
            to_logits: true,
            receiver_heads: String::new(),
            input: HeadInput::K,
            mlp_senders: false,
        }
    }
}

impl PatchSettings {
    /// The settings an experiment names, when it names a sweep.
    pub fn of(a: &Analysis) -> Option<PatchSettings> {
        match a {
            Analysis::Patch { component, by, direction, metric, pos } => Some(PatchSettings {
                component: *component,
                by: *by,
                direction: *direction,
                metric: *metric,
                at_selected: pos.is_some(),
                ..PatchSettings::default()
            }),
            Analysis::PathPatch { receivers, metric, pos, mlp_senders } => {
                let (to_logits, receiver_heads, input) = match receivers {
                    Receivers::Logits => (true, String::new(), HeadInput::K),
                    Receivers::Heads { heads, input } => (false, heads.iter().map(|(l, h)| format!("{l}.{h}")).collect::<Vec<_>>().join(", "), *input),
                };
                Some(PatchSettings {
                    mode: PatchMode::Path,
                    metric: *metric,
                    at_selected: pos.is_some(),
                    to_logits,
                    receiver_heads,
                    input,
                    mlp_senders: *mlp_senders,
                    ..PatchSettings::default()
                })
            }
            _ => None,
        }
    }

    /// The experiment's analysis for these settings; an error names what is mistyped.
    pub fn analysis(&self, selected_pos: usize) -> Result<Analysis, String> {
        let pos = self.at_selected.then_some(selected_pos);
        Ok(match self.mode {
            PatchMode::Activation => Analysis::Patch { component: self.component, by: self.by, direction: self.direction, metric: self.metric, pos },
            PatchMode::Path => {
                let receivers = if self.to_logits {
                    Receivers::Logits
                } else {
                    match parse_target("heads", &self.receiver_heads).map_err(|e| format!("Receiver heads: {e}"))? {
                        AblationTarget::Heads { heads } => Receivers::Heads { heads, input: self.input },
                        _ => unreachable!("parse_target(\"heads\") gives heads"),
                    }
                };
                Analysis::PathPatch { receivers, metric: self.metric, pos, mlp_senders: self.mlp_senders }
            }
        })
    }
}

/// The receivers of a path-patching sweep in words.
pub fn receivers_label(r: &Receivers) -> String {
    match r {
        Receivers::Logits => "the logits".into(),
        Receivers::Heads { heads, input } => {
            let names: Vec<String> = heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
            let what = match input {
                HeadInput::Q => "queries",
                HeadInput::K => "keys",
                HeadInput::V => "values",
            };
            format!("the {what} of {}", names.join(", "))
        }
    }
}

/// Causal scrubbing of one or more hypotheses, with the card's figures beside them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrubView {
    pub rows: Vec<ScrubRow>,
    /// An interchange intervention (one node swap) on the same task, where there is one.
    pub interchange: Option<(String, InterchangeResult)>,
    /// The card's stated margin between the correct and the wrong hypothesis.
    pub card_margin: Option<f64>,
    pub elapsed_ms: f64,
    pub backend: String,
}

/// One scrubbed hypothesis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrubRow {
    pub result: ScrubResult,
    pub description: String,
    /// The card's loss recovered for this hypothesis (and its n), when the card states it.
    pub card: Option<(f64, usize)>,
}

/// The scrubbing panel's choices (the experiment's `Analysis::Scrub`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubSettings {
    pub hypotheses: Vec<String>,
    pub n: usize,
    pub seed: u64,
    pub rounds: usize,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        ScrubSettings { hypotheses: Vec::new(), n: 100, seed: 0, rounds: 2 }
    }
}

impl ScrubSettings {
    pub fn of(a: &Analysis) -> Option<ScrubSettings> {
        match a {
            Analysis::Scrub { hypotheses, n, seed, rounds } => Some(ScrubSettings { hypotheses: hypotheses.clone(), n: *n, seed: *seed, rounds: *rounds }),
            _ => None,
        }
    }

    pub fn analysis(&self) -> Result<Analysis, String> {
        if self.hypotheses.is_empty() {
            return Err("Pick at least one hypothesis.".into());
        }
        if !(2..=2000).contains(&self.n) {
            return Err(format!("The dataset size must be between 2 and 2000 (it is {}).", self.n));
        }
        if !(1..=20).contains(&self.rounds) {
            return Err(format!("Rounds must be between 1 and 20 (it is {}).", self.rounds));
        }
        Ok(Analysis::Scrub { hypotheses: self.hypotheses.clone(), n: self.n, seed: self.seed, rounds: self.rounds })
    }
}

/// The shipped hypotheses for a shipped model (by its id).
pub fn hypotheses_for(model_id: &str) -> Vec<&'static str> {
    let prefix = match model_id {
        "balanced-parens" => "parens-",
        "induction-2l" => "induction-",
        _ => return Vec::new(),
    };
    glassbox_core::analysis::scrubbing::hypotheses::NAMES.into_iter().filter(|n| n.starts_with(prefix)).collect()
}

/// A generation with and without a steering vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteerView {
    pub prompt: String,
    pub unsteered: String,
    pub steered: String,
    /// The vector in words, with its norm.
    pub vector: String,
    /// Whether the vector was added (off: the steered text is the unsteered one).
    pub on: bool,
    /// New tokens of each, and why each stopped.
    pub tokens: (usize, usize),
    pub stops: (String, String),
    pub elapsed_ms: f64,
    pub backend: String,
}

/// The steering panel's default: ActAdd with a prompt pair, greedy-free seeded sampling.
pub fn default_steer(n_layers: usize) -> SteerSpec {
    SteerSpec {
        vector: SteerVector::ActAdd { plus: "the sea".into(), minus: "the man".into(), layer: 1.min(n_layers.saturating_sub(1)) },
        coeff: 4.0,
        on: true,
        max_new_tokens: 40,
        temperature: 0.7,
        top_p: Some(0.9),
        seed: 0,
        stop: Vec::new(),
    }
}

/// The ablation panel's choices (the experiment's `Analysis::Ablate` once it runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AblationSettings {
    /// "heads", "mlp" or "neurons", and the text naming them (see [`parse_target`]).
    pub what: &'static str,
    pub text: String,
    pub kind: AblationKind,
    pub metric: MetricKind,
    /// Prompts for mean and resample ablations, one per line (empty: the task's generator).
    pub dataset: String,
}

impl Default for AblationSettings {
    fn default() -> Self {
        AblationSettings { what: "heads", text: String::new(), kind: AblationKind::Zero, metric: MetricKind::LogitDiff, dataset: String::new() }
    }
}

impl AblationSettings {
    pub fn of(a: &Analysis) -> Option<AblationSettings> {
        match a {
            Analysis::Ablate { target, ablation, metric, dataset } => {
                let (what, text) = target_text(target);
                Some(AblationSettings { what, text, kind: *ablation, metric: *metric, dataset: dataset.join("\n") })
            }
            _ => None,
        }
    }

    pub fn analysis(&self) -> Result<Analysis, String> {
        let dataset = self.dataset.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect();
        Ok(Analysis::Ablate { target: parse_target(self.what, &self.text)?, ablation: self.kind, metric: self.metric, dataset })
    }
}

/// Words for the page's controls and labels.
pub fn component_label(c: Component) -> &'static str {
    match c {
        Component::ResidPre => "residual stream before the block (resid_pre)",
        Component::ResidMid => "residual stream between attention and MLP (resid_mid)",
        Component::AttnOut => "attention output (attn_out)",
        Component::MlpOut => "MLP output (mlp_out)",
        Component::Z => "head outputs (z)",
        Component::Q => "queries (q)",
        Component::K => "keys (k)",
        Component::V => "values (v)",
        Component::Pattern => "attention pattern",
    }
}

pub fn metric_label(m: MetricKind) -> &'static str {
    match m {
        MetricKind::LogitDiff => "logit difference (target \u{2212} distractor)",
        MetricKind::Prob => "probability of the target",
        MetricKind::LogProb => "log-probability of the target",
        MetricKind::Loss => "loss (mean next-token cross-entropy)",
        MetricKind::Kl => "KL divergence from the clean output",
    }
}

pub fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Denoising => "clean \u{2192} corrupted run (denoising)",
        Direction::Noising => "corrupted \u{2192} clean run (noising)",
    }
}

pub fn granularity_label(g: Granularity) -> &'static str {
    match g {
        Granularity::ByPos => "each position",
        Granularity::AllPos => "all positions at once",
    }
}

pub fn ablation_label(k: AblationKind) -> &'static str {
    match k {
        AblationKind::Zero => "zero",
        AblationKind::Mean => "mean",
        AblationKind::Resample => "resample",
    }
}

/// An ablation target in words.
pub fn target_label(t: &AblationTarget) -> String {
    match t {
        AblationTarget::Heads { heads } => {
            let names: Vec<String> = heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
            format!("head{} {}", if heads.len() == 1 { "" } else { "s" }, names.join(", "))
        }
        AblationTarget::Mlp { layer } => format!("the MLP of layer {layer}"),
        AblationTarget::Neurons { layer, neurons } => {
            let names: Vec<String> = neurons.iter().map(|n| n.to_string()).collect();
            format!("neuron{} {} of layer {layer}", if neurons.len() == 1 { "" } else { "s" }, names.join(", "))
        }
    }
}

/// Reads what the reader typed for an ablation: heads as `1.0, 1.3` (or `L1H0 L1H3`), an MLP
/// layer as `2`, neurons as `1: 12 40` (layer, then neurons).
pub fn parse_target(kind: &str, text: &str) -> Result<AblationTarget, String> {
    let nums = |s: &str| -> Result<Vec<usize>, String> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|x| !x.is_empty())
            .map(|x| x.parse::<usize>().map_err(|_| format!("{x:?} is not a number")))
            .collect()
    };
    match kind {
        "heads" => {
            let mut heads = Vec::new();
            for part in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|x| !x.is_empty()) {
                let p = part.trim_start_matches(['L', 'l']);
                let (l, h) = p.split_once(['.', 'H', 'h']).ok_or_else(|| format!("{part:?} is not a head: write layer.head, as 1.0"))?;
                let n = |x: &str| x.parse::<usize>().map_err(|_| format!("{part:?} is not a head: write layer.head, as 1.0"));
                heads.push((n(l)?, n(h)?));
            }
            if heads.is_empty() {
                return Err("Name at least one head (layer.head, as 1.0).".into());
            }
            Ok(AblationTarget::Heads { heads })
        }
        "mlp" => match nums(text)?.as_slice() {
            [layer] => Ok(AblationTarget::Mlp { layer: *layer }),
            _ => Err("Name one layer (a number).".into()),
        },
        "neurons" => {
            let (l, ns) = text.split_once(':').ok_or("Write the layer, a colon, then the neurons: 1: 12 40.")?;
            let layer = l.trim().parse::<usize>().map_err(|_| format!("{:?} is not a layer number", l.trim()))?;
            let neurons = nums(ns)?;
            if neurons.is_empty() {
                return Err("Name at least one neuron after the colon.".into());
            }
            Ok(AblationTarget::Neurons { layer, neurons })
        }
        other => Err(format!("unknown ablation target {other:?}")),
    }
}

/// The reverse of [`parse_target`]: (kind, text).
pub fn target_text(t: &AblationTarget) -> (&'static str, String) {
    match t {
        AblationTarget::Heads { heads } => ("heads", heads.iter().map(|(l, h)| format!("{l}.{h}")).collect::<Vec<_>>().join(", ")),
        AblationTarget::Mlp { layer } => ("mlp", layer.to_string()),
        AblationTarget::Neurons { layer, neurons } => ("neurons", format!("{layer}: {}", neurons.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glassbox_core::analysis::patching::{Axis, Metric, PatchSpec};

    fn view(axes: &[(&str, usize)]) -> PatchView {
        let n: usize = axes.iter().map(|a| a.1).product();
        PatchView {
            result: PatchResult {
                spec: PatchSpec { component: Component::Z, by: Granularity::ByPos, direction: Direction::Denoising, metric: Metric::Loss, pos: None },
                pos: 0,
                hook: String::new(),
                axes: axes.iter().map(|(name, size)| Axis { name: name.to_string(), size: *size }).collect(),
                values: (0..n).map(|i| i as f32).collect(),
                normalized: vec![0.0; n],
                clean: 1.0,
                corrupted: 0.0,
                runs: n,
                batches: 1,
            },
            clean: vec!["<bos>".into(), "a".into(), "b".into()],
            clean_ids: vec![0, 1, 2],
            corrupted: vec!["<bos>".into(), "c".into(), "b".into()],
            metric: String::new(),
            target: None,
            distractor: None,
            elapsed_ms: 0.0,
            backend: String::new(),
            path: None,
        }
    }

    #[test]
    fn grid_cells_index_transformer_lens_shapes() {
        // [layer, pos, head]: row (layer 1, head 2), column pos 1 -> (1 * 3 + 1) * 4 + 2.
        let v = view(&[("layer", 2), ("pos", 3), ("head", 4)]);
        let g = v.grid();
        assert_eq!((g.rows, g.cols, g.row_labels[6].as_str(), g.col_labels[1].as_str()), (8, 3, "L1H2", "1 a"));
        assert_eq!(v.cell(6, 1), (18, PatchCell { layer: 1, head: Some(2), pos: Some(1) }));
        // [layer, head_index, dest_pos]: (l * h + head) * pos + p.
        let v = view(&[("layer", 2), ("head_index", 4), ("dest_pos", 3)]);
        assert_eq!(v.cell(6, 1).0, 19);
        let v = view(&[("layer", 2), ("head", 4)]);
        assert_eq!((v.grid().cols, v.cell(1, 3)), (4, (7, PatchCell { layer: 1, head: Some(3), pos: None })));
        let v = view(&[("layer", 2)]);
        assert_eq!((v.grid().cols, v.cell(1, 0).0), (1, 1));
    }

    #[test]
    fn path_patching_settings_round_trip_through_the_experiment() {
        let s = PatchSettings { mode: PatchMode::Path, to_logits: false, receiver_heads: "1.0, 1.3".into(), input: HeadInput::K, ..PatchSettings::default() };
        let a = s.analysis(4).unwrap();
        assert_eq!(
            a,
            Analysis::PathPatch {
                receivers: Receivers::Heads { heads: vec![(1, 0), (1, 3)], input: HeadInput::K },
                metric: MetricKind::LogitDiff,
                pos: None,
                mlp_senders: false
            }
        );
        assert_eq!(PatchSettings::of(&a).unwrap(), s);
        let bad = PatchSettings { receiver_heads: "x".into(), ..s.clone() };
        assert!(bad.analysis(0).unwrap_err().starts_with("Receiver heads:"));
        let logits = PatchSettings { mode: PatchMode::Path, ..PatchSettings::default() };
        assert!(matches!(logits.analysis(0).unwrap(), Analysis::PathPatch { receivers: Receivers::Logits, .. }));
        assert_eq!(receivers_label(&Receivers::Heads { heads: vec![(1, 0)], input: HeadInput::Q }), "the queries of L1H0");
        // A path sweep's MLP column is labelled.
        let mut v = view(&[("layer", 2), ("head", 5)]);
        v.path = Some(PathInfo { receivers: "the logits".into(), mlp_column: true, senders: 10 });
        assert_eq!(v.grid().col_labels, vec!["H0", "H1", "H2", "H3", "MLP"]);
    }

    #[test]
    fn scrubbing_offers_each_organism_its_hypotheses_and_checks_its_settings() {
        assert_eq!(hypotheses_for("balanced-parens"), vec!["parens-correct", "parens-wrong"]);
        assert_eq!(hypotheses_for("induction-2l"), vec!["induction-correct", "induction-wrong"]);
        assert!(hypotheses_for("english-char-3l").is_empty());
        let s = ScrubSettings { hypotheses: vec!["parens-correct".into()], ..ScrubSettings::default() };
        assert_eq!(ScrubSettings::of(&s.analysis().unwrap()).unwrap(), s);
        assert!(ScrubSettings::default().analysis().unwrap_err().contains("at least one"));
        assert!(ScrubSettings { n: 1, ..s.clone() }.analysis().unwrap_err().contains("between 2 and 2000"));
    }

    #[test]
    fn ablation_targets_parse_and_print() {
        assert_eq!(parse_target("heads", "1.0, 1.3").unwrap(), AblationTarget::Heads { heads: vec![(1, 0), (1, 3)] });
        assert_eq!(parse_target("heads", "L1H0 L0H2").unwrap(), AblationTarget::Heads { heads: vec![(1, 0), (0, 2)] });
        assert_eq!(parse_target("mlp", " 2 ").unwrap(), AblationTarget::Mlp { layer: 2 });
        assert_eq!(parse_target("neurons", "1: 12 40").unwrap(), AblationTarget::Neurons { layer: 1, neurons: vec![12, 40] });
        assert!(parse_target("heads", "").unwrap_err().contains("at least one"));
        assert!(parse_target("heads", "1").unwrap_err().contains("layer.head"));
        assert!(parse_target("neurons", "12 40").unwrap_err().contains("colon"));
        for t in
            [AblationTarget::Heads { heads: vec![(1, 0), (1, 3)] }, AblationTarget::Mlp { layer: 2 }, AblationTarget::Neurons { layer: 0, neurons: vec![3] }]
        {
            let (k, s) = target_text(&t);
            assert_eq!(parse_target(k, &s).unwrap(), t);
        }
        assert_eq!(target_label(&AblationTarget::Heads { heads: vec![(1, 0), (1, 3)] }), "heads L1H0, L1H3");
    }
}
