//! What the causal views show: an activation patching sweep and an ablation, as the worker
//! computes them (`engine/causal.rs`, over `glassbox_core::analysis::patching`) and the page
//! draws them (`components/patch_panel.rs`, `components/ablation_panel.rs`). Token ids are
//! already strings here; numbers are the core's.

use glassbox_core::analysis::patching::{AblationKind, AblationResult, AblationTarget, Component, Direction, Granularity, MetricKind, PatchResult};
use glassbox_core::Analysis;
use serde::{Deserialize, Serialize};

/// A finished patching sweep, with what the page needs to label it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchView {
    pub result: PatchResult,
    /// The two prompts' tokens (equal lengths).
    pub clean: Vec<String>,
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
                col_labels: (0..size(1)).map(|h| format!("H{h}")).collect(),
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

/// The patching panel's choices (the experiment's `Analysis::Patch` once a sweep runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSettings {
    pub component: Component,
    pub by: Granularity,
    pub direction: Direction,
    pub metric: MetricKind,
    /// Read the metric at the selected token instead of the last.
    pub at_selected: bool,
}

impl Default for PatchSettings {
    fn default() -> Self {
        PatchSettings {
            component: Component::ResidPre,
            by: Granularity::ByPos,
            direction: Direction::Denoising,
            metric: MetricKind::LogitDiff,
            at_selected: false,
        }
    }
}

impl PatchSettings {
    /// The settings an experiment names, when it names a sweep.
    pub fn of(a: &Analysis) -> Option<PatchSettings> {
        match a {
            Analysis::Patch { component, by, direction, metric, pos } => {
                Some(PatchSettings { component: *component, by: *by, direction: *direction, metric: *metric, at_selected: pos.is_some() })
            }
            _ => None,
        }
    }

    pub fn analysis(&self, selected_pos: usize) -> Analysis {
        Analysis::Patch {
            component: self.component,
            by: self.by,
            direction: self.direction,
            metric: self.metric,
            pos: self.at_selected.then_some(selected_pos),
        }
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
            corrupted: vec!["<bos>".into(), "c".into(), "b".into()],
            metric: String::new(),
            target: None,
            distractor: None,
            elapsed_ms: 0.0,
            backend: String::new(),
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
