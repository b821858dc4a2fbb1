//! Each view's [`Figure`] for export, built from the data the view already shows (pure: the
//! page hands these to its `ExportBar`s). The numbers are the ones the page's cells carry in
//! their `data-value` attributes, unrounded.

use crate::analysis::RunView;
use crate::causal::{AblationView, PatchView, ScrubView, SteerView};
use crate::export::{Body, Figure, Scale};
use crate::inspect::{AttributionView, LensView, NeuronView, NeuronsView};

/// The view's own data as JSON, for the JSON export's `source`.
fn source<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Position labels: `"<pos> <token>"`.
fn positions(tokens: &[String]) -> Vec<String> {
    tokens.iter().enumerate().map(|(p, t)| format!("{p} {t}")).collect()
}

/// The top-5 outputs after position `pos` of a run.
pub fn predictions(run: &RunView, pos: usize, readout: bool) -> Option<Figure> {
    let top = run.top5.get(pos)?;
    let tok = run.tokens.get(pos)?;
    let title =
        if readout { format!("Answer: top-5 outputs at position {pos} ({tok:?})") } else { format!("Next-token prediction after position {pos} ({tok:?})") };
    Some(Figure {
        name: format!("predictions-pos{pos}"),
        title,
        body: Body::Bars {
            value_axis: "probability".into(),
            labels: top.iter().map(|(t, _)| t.clone()).collect(),
            values: top.iter().map(|&(_, p)| p).collect(),
        },
        source: source(&serde_json::json!({ "prompt": run.prompt, "tokens": run.tokens, "pos": pos, "top5": top })),
    })
}

/// One head's attention pattern: queries x keys.
pub fn attention(run: &RunView, layer: usize, head: usize) -> Option<Figure> {
    let pattern = run.head_pattern(layer, head)?;
    let labels = positions(&run.tokens);
    Some(Figure {
        name: format!("attention-L{layer}H{head}"),
        title: format!("Attention pattern, layer {layer}, head {head}: {:?}", run.prompt),
        body: Body::Heatmap {
            row_axis: "query".into(),
            col_axis: "key".into(),
            row_labels: labels.clone(),
            col_labels: labels,
            values: pattern.to_vec(),
            scale: Scale::Sequential { hi: 1.0 },
            cell_text: Vec::new(),
        },
        source: None,
    })
}

/// The layer's strongest neurons x positions.
pub fn neurons(v: &NeuronsView, tokens: &[String]) -> Figure {
    Figure {
        name: format!("neurons-L{}", v.layer),
        title: format!("Layer {} MLP neurons ({}) over the prompt", v.layer, v.activation),
        body: Body::Heatmap {
            row_axis: "neuron".into(),
            col_axis: "position".into(),
            row_labels: v.neurons.iter().map(|n| format!("N{n}")).collect(),
            col_labels: positions(tokens),
            values: v.acts.clone(),
            scale: Scale::diverging_for(&v.acts),
            cell_text: Vec::new(),
        },
        source: source(v),
    }
}

/// One neuron's activation at each position.
pub fn neuron(v: &NeuronView, tokens: &[String]) -> Figure {
    Figure {
        name: format!("neuron-L{}N{}", v.layer, v.neuron),
        title: format!("Neuron {} of layer {} ({}) at each position", v.neuron, v.layer, v.activation),
        body: Body::Bars { value_axis: "activation".into(), labels: positions(tokens), values: v.acts.clone() },
        source: source(v),
    }
}

/// The logit lens: the target's probability per layer and position, the top token written in.
pub fn lens(v: &LensView, tokens: &[String]) -> Figure {
    let target = v.target.clone().unwrap_or_default();
    Figure {
        name: "logit-lens".into(),
        title: format!("Logit lens: P({target:?}) per layer and position"),
        body: Body::Heatmap {
            row_axis: "layer".into(),
            col_axis: "position".into(),
            row_labels: v.labels.clone(),
            col_labels: positions(&tokens[..v.n_pos.min(tokens.len())]),
            values: v.cells.iter().map(|c| c.target.map_or(f32::NAN, |t| t.0)).collect(),
            scale: Scale::Sequential { hi: 1.0 },
            cell_text: v.cells.iter().map(|c| c.top.first().map(|t| t.0.clone()).unwrap_or_default()).collect(),
        },
        source: source(v),
    }
}

/// Direct logit attribution: one bar per term.
pub fn attribution(v: &AttributionView) -> Figure {
    let what = match &v.distractor {
        Some(d) => format!("logit({:?}) \u{2212} logit({d:?})", v.target),
        None => format!("logit({:?})", v.target),
    };
    Figure {
        name: format!("attribution-pos{}", v.pos),
        title: format!("Direct logit attribution at position {}: {what}", v.pos),
        body: Body::Bars { value_axis: what, labels: v.bars.iter().map(|b| b.label.clone()).collect(), values: v.bars.iter().map(|b| b.value).collect() },
        source: source(v),
    }
}

/// A patching sweep (activation or path patching): the raw metric of each patched run.
pub fn patching(v: &PatchView) -> Figure {
    let grid = v.grid();
    let values: Vec<f32> = (0..grid.rows).flat_map(|r| (0..grid.cols).map(move |c| (r, c))).map(|(r, c)| v.result.values[v.cell(r, c).0]).collect();
    let (name, kind) = if v.path.is_some() { ("path-patching", "Path patching") } else { ("patching", "Activation patching") };
    Figure {
        name: name.into(),
        title: format!("{kind}: {} of each patched run ({})", v.metric, v.result.hook),
        body: Body::Heatmap {
            row_axis: if grid.row_labels.first().is_some_and(|l| l.contains('H')) { "layer, head".into() } else { "layer".into() },
            col_axis: if grid.cols_are_positions { "position".into() } else { "head".into() },
            row_labels: grid.row_labels,
            col_labels: grid.col_labels,
            scale: Scale::diverging_for(&values),
            values,
            cell_text: Vec::new(),
        },
        source: source(v),
    }
}

/// An ablation: the metric without and with it, and both top-5s.
pub fn ablation(v: &AblationView) -> Figure {
    let r = &v.result;
    let mut rows = vec![vec![format!("metric: {}", v.metric), format!("{:.6}", r.base), format!("{:.6}", r.ablated), format!("{:.6}", r.change)]];
    if let Some(t) = &v.task {
        rows.push(vec![t.name.clone(), format!("{:.6}", t.before), format!("{:.6}", t.after), format!("{:.6}", t.after - t.before)]);
    }
    for i in 0..v.base_top.len().max(v.ablated_top.len()) {
        let cell = |top: &[(String, f32)]| top.get(i).map(|(t, p)| format!("{t:?} {p:.6}")).unwrap_or_default();
        rows.push(vec![format!("top {}", i + 1), cell(&v.base_top), cell(&v.ablated_top), String::new()]);
    }
    Figure {
        name: "ablation".into(),
        title: format!("Ablation of {}", v.what),
        body: Body::Table { header: vec!["".into(), "normal run".into(), "ablated run".into(), "change".into()], rows },
        source: source(v),
    }
}

/// Causal scrubbing: loss recovered per hypothesis.
pub fn scrubbing(v: &ScrubView) -> Figure {
    let rows = v
        .rows
        .iter()
        .map(|row| {
            let r = &row.result;
            vec![
                r.hypothesis.clone(),
                format!("{:.6}", r.loss_recovered),
                format!("{:.6}", r.ci95.0),
                format!("{:.6}", r.ci95.1),
                row.card.map(|(x, _)| format!("{x:.6}")).unwrap_or_default(),
                row.description.clone(),
            ]
        })
        .collect();
    Figure {
        name: "scrubbing".into(),
        title: "Causal scrubbing: loss recovered".into(),
        body: Body::Table { header: ["hypothesis", "loss recovered", "ci95 low", "ci95 high", "model card", "description"].map(String::from).to_vec(), rows },
        source: source(v),
    }
}

/// Steering: the prompt's continuation without and with the vector.
pub fn steering(v: &SteerView) -> Figure {
    Figure {
        name: "steering".into(),
        title: format!("Steering: {}", v.vector),
        body: Body::Table {
            header: vec!["run".into(), "text".into()],
            rows: vec![vec!["prompt".into(), v.prompt.clone()], vec!["unsteered".into(), v.unsteered.clone()], vec!["steered".into(), v.steered.clone()]],
        },
        source: source(v),
    }
}

/// Modular addition: the embedding's norm along each frequency.
pub fn fourier(norms: &[f32]) -> Option<Figure> {
    (!norms.is_empty()).then(|| Figure {
        name: "fourier-embedding".into(),
        title: "Embedding norm per Fourier frequency".into(),
        body: Body::Bars { value_axis: "norm".into(), labels: (0..norms.len()).map(|k| format!("k={k}")).collect(), values: norms.to_vec() },
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Pattern;

    fn run() -> RunView {
        RunView {
            prompt: "ab".into(),
            ids: vec![0, 1, 2],
            tokens: vec!["<bos>".into(), "a".into(), "b".into()],
            top5: vec![vec![("a".into(), 0.5), ("b".into(), 0.25)]; 3],
            patterns: vec![Pattern { n_heads: 2, data: (0..18).map(|i| i as f32).collect() }],
            loss: vec![],
            elapsed_ms: 1.0,
        }
    }

    #[test]
    fn attention_and_predictions_take_the_numbers_shown() {
        let r = run();
        let f = attention(&r, 0, 1).unwrap();
        assert_eq!(f.name, "attention-L0H1");
        let Body::Heatmap { values, row_labels, .. } = &f.body else { panic!() };
        assert_eq!(values, &(9..18).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(row_labels, &["0 <bos>", "1 a", "2 b"]);
        assert!(attention(&r, 1, 0).is_none() && attention(&r, 0, 2).is_none());
        let p = predictions(&r, 2, false).unwrap();
        assert_eq!(p.body, Body::Bars { value_axis: "probability".into(), labels: vec!["a".into(), "b".into()], values: vec![0.5, 0.25] });
        assert!(predictions(&r, 3, false).is_none());
    }
}
