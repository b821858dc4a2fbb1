//! What the inspect views show, built in the engine's worker from the core's analyses
//! (`glassbox_core::analysis`) with token ids turned into strings: the page has no tokenizer
//! and no weights, only these values. Pure logic: no DOM, no backend.

use glassbox_core::analysis::attribution::{Attribution, Part};
use glassbox_core::analysis::heads::{HeadKind, HeadScores};
use glassbox_core::analysis::lens::{LensNorm, LogitLens};
use glassbox_core::analysis::neurons::DirectEffect;
use glassbox_core::analysis::scan::TopActivations;
use glassbox_core::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::engine::protocol::f32s;

/// What a view asks the worker for. Each reads the last run of the experiment's prompt (the
/// worker runs it first when it has not), except `Heads` on the repeated sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// The logit lens over every layer and position, with `target`'s probability per cell
    /// (a token string; `None`: the model's top prediction at the last position).
    Lens { norm: LensNorm, incl_mid: bool, target: Option<String> },
    /// Direct logit attribution at `pos` of `target` (default: the top prediction there),
    /// minus `distractor` (default: none).
    Attribute { pos: usize, target: Option<String>, distractor: Option<String>, fold_ln: bool, center_unembed: bool },
    /// Head scores on the prompt, or (`repeated`) on the detector's standard repeated random sequence.
    Heads { repeated: bool },
    /// The `k` neurons of `layer` with the largest activation on the prompt, and their activations.
    Neurons { layer: usize, k: usize },
    /// One neuron: its activations, its direct effect at `pos`, and its top examples if the
    /// layer was scanned.
    Neuron { layer: usize, neuron: usize, pos: usize },
}

impl Query {
    /// Whether the answer depends on the experiment's run (its prompt and interventions). Head
    /// scores on the detector's repeated sequence do not: they are the model's, computed once
    /// per model rather than after every run (on a software GPU that forward pass competed with
    /// the page drawing the run).
    pub fn reads_the_run(&self) -> bool {
        !matches!(self, Query::Heads { repeated: true })
    }
}

/// A view's data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Inspection {
    Lens(LensView),
    Attribute(AttributionView),
    Heads(HeadsView),
    Neurons(NeuronsView),
    Neuron(NeuronView),
}

/// Resolves a token the reader typed: exactly one token of the vocabulary (an output name for
/// a readout model), or `#id`.
pub fn resolve_token(tokenizer: &Tokenizer, n_outputs: usize, text: &str) -> Result<u32, String> {
    if let Some(id) = text.strip_prefix('#') {
        let id: u32 = id.trim().parse().map_err(|_| format!("\u{201c}{text}\u{201d} is not a token id (write #123)."))?;
        return if (id as usize) < n_outputs { Ok(id) } else { Err(format!("Token #{id} is out of range: the model has {n_outputs} outputs.")) };
    }
    if let Some(outputs) = tokenizer.outputs() {
        return outputs.iter().position(|o| o == text).map(|i| i as u32).ok_or_else(|| {
            let shown: Vec<&str> = outputs.iter().take(12).map(String::as_str).collect();
            format!("\u{201c}{text}\u{201d} is not one of the model's answers ({}{}).", shown.join(", "), if outputs.len() > 12 { ", ..." } else { "" })
        });
    }
    let short: String = text.chars().take(40).collect();
    match tokenizer.encode(text) {
        Ok(ids) => {
            let ids: Vec<u32> = ids.into_iter().filter(|&i| Some(i) != tokenizer.bos()).collect();
            match ids.as_slice() {
                [one] if (*one as usize) < n_outputs => Ok(*one),
                [] => Err("The target token is empty.".into()),
                _ => Err(format!("\u{201c}{short}\u{201d} is {} tokens for this model, not one; pick a single token (or write #id).", ids.len())),
            }
        }
        Err(e) => Err(format!("\u{201c}{short}\u{201d} is not in the model's vocabulary: {e}")),
    }
}

/// One cell of the logit lens, with token strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensCellView {
    pub top: Vec<(String, f32)>,
    /// The target's probability and rank (0 = top) in this cell.
    pub target: Option<(f32, u32)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensView {
    /// TransformerLens labels of the rows (`0_pre`, ..., `final_post`).
    pub labels: Vec<String>,
    pub n_pos: usize,
    pub norm: LensNorm,
    pub target: Option<String>,
    /// `cells[row * n_pos + pos]`.
    pub cells: Vec<LensCellView>,
}

impl LensView {
    pub fn new(lens: LogitLens, tokenizer: &Tokenizer) -> LensView {
        let cells = lens
            .cells
            .into_iter()
            .map(|c| LensCellView { top: c.top.into_iter().map(|(id, p)| (tokenizer.output_str(id), p)).collect(), target: c.target.map(|t| (t.prob, t.rank)) })
            .collect();
        LensView { labels: lens.labels, n_pos: lens.n_pos, norm: lens.norm, target: lens.target.map(|t| tokenizer.output_str(t)), cells }
    }

    pub fn cell(&self, row: usize, pos: usize) -> Option<&LensCellView> {
        (pos < self.n_pos).then(|| self.cells.get(row * self.n_pos + pos)).flatten()
    }

    /// The first row from which the target is the top prediction at `pos` through the last row.
    pub fn first_row_with_target_on_top(&self, pos: usize) -> Option<usize> {
        let rows = self.labels.len();
        (0..rows).rev().take_while(|&r| self.cell(r, pos).and_then(|c| c.target).is_some_and(|(_, rank)| rank == 0)).last()
    }
}

/// One bar of the attribution chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub label: String,
    pub value: f32,
    /// Its kind, for colour: "embed", "head", "bias", "mlp", "attn".
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionView {
    pub pos: usize,
    pub target: String,
    pub distractor: Option<String>,
    pub fold_ln: bool,
    pub center_unembed: bool,
    /// The exact decomposition: embed, pos_embed, each head, each b_O, each MLP, ln_final.b.
    pub bars: Vec<Bar>,
    /// Per layer: embed, pos_embed, `{l}_attn_out`, `{l}_mlp_out`.
    pub layers: Vec<Bar>,
    pub sum: f32,
    pub actual: f32,
}

impl AttributionView {
    pub fn new(a: Attribution, tokenizer: &Tokenizer) -> AttributionView {
        let kind = |p: Part| match p {
            Part::Embed | Part::PosEmbed => "embed",
            Part::Head { .. } => "head",
            Part::AttnBias { .. } | Part::NormBias => "bias",
            Part::Attn { .. } => "attn",
            Part::Mlp { .. } => "mlp",
        };
        let bars = |terms: Vec<glassbox_core::analysis::attribution::Term>| {
            terms.into_iter().map(|t| Bar { label: t.label, value: t.value, kind: kind(t.part).into() }).collect()
        };
        AttributionView {
            pos: a.opts.pos,
            target: tokenizer.output_str(a.opts.target),
            distractor: a.opts.distractor.map(|d| tokenizer.output_str(d)),
            fold_ln: a.opts.fold_ln,
            center_unembed: a.opts.center_unembed,
            bars: bars(a.terms),
            layers: bars(a.layers),
            sum: a.sum,
            actual: a.actual,
        }
    }

    /// The bar with the largest magnitude.
    pub fn largest(&self) -> Option<&Bar> {
        self.bars.iter().max_by(|a, b| a.value.abs().total_cmp(&b.value.abs()))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadsView {
    pub repeated: bool,
    /// The tokens scored on.
    pub tokens: Vec<String>,
    pub n_layers: usize,
    pub n_heads: usize,
    /// (kind label, scores `[layer * n_heads + head]`), previous token, duplicate token, induction.
    pub scores: Vec<(String, Vec<f32>)>,
}

impl HeadsView {
    pub fn new(s: HeadScores, tokenizer: &Tokenizer, repeated: bool) -> HeadsView {
        HeadsView {
            repeated,
            tokens: s.tokens.iter().map(|&t| tokenizer.token_str(t)).collect(),
            n_layers: s.n_layers,
            n_heads: s.n_heads,
            scores: HeadKind::ALL.iter().map(|&k| (k.label().to_string(), s.get(k).to_vec())).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronsView {
    pub layer: usize,
    /// The neurons shown, strongest first.
    pub neurons: Vec<u32>,
    pub n_pos: usize,
    /// `acts[i * n_pos + pos]` for `neurons[i]`.
    #[serde(with = "f32s")]
    pub acts: Vec<f32>,
    /// What the activation is (`mlp.hook_post`, and for a gated MLP which product).
    pub activation: String,
}

/// One top-activating example, ready to show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExampleView {
    pub act: f32,
    pub tokens: Vec<String>,
    pub acts: Vec<f32>,
    /// Index of the max token in `tokens`.
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronView {
    pub layer: usize,
    pub neuron: usize,
    pub d_mlp: usize,
    /// Its activation at every prompt position.
    pub acts: Vec<f32>,
    pub activation: String,
    /// The position whose final-norm scale the direct effect is read at.
    pub pos: usize,
    pub promoted: Vec<(String, f32)>,
    pub suppressed: Vec<(String, f32)>,
    /// Top examples from the scan of this layer, if there is one; with what was scanned.
    pub examples: Option<Vec<ExampleView>>,
    pub scanned: Option<String>,
}

/// Tokens with a value each, as shown.
pub type TokenValues = Vec<(String, f32)>;

impl NeuronView {
    /// A direct effect's (promoted, suppressed) tokens as strings.
    pub fn effect(e: DirectEffect, tokenizer: &Tokenizer) -> (TokenValues, TokenValues) {
        let s = |v: Vec<(u32, f32)>| v.into_iter().map(|(id, x)| (tokenizer.output_str(id), x)).collect();
        (s(e.promoted), s(e.suppressed))
    }
}

/// What a layer's activation is, in words.
pub fn activation_label(layer: usize, gated: bool) -> String {
    if gated {
        format!("blocks.{layer}.mlp.hook_post: act(x W_gate) \u{00d7} (x W_in), the gated product W_out reads")
    } else {
        format!("blocks.{layer}.mlp.hook_post: the activation after the nonlinearity")
    }
}

/// A finished scan of one layer over a corpus, kept in the worker: the windows' tokens and
/// every neuron's top examples.
pub struct LayerScan {
    pub layer: usize,
    pub what: String,
    pub windows: Vec<Vec<u32>>,
    pub top: TopActivations,
}

impl LayerScan {
    pub fn examples(&self, neuron: usize, tokenizer: &Tokenizer) -> Vec<ExampleView> {
        self.top
            .top(neuron)
            .iter()
            .map(|e| {
                let w = &self.windows[e.window as usize];
                let start = e.start as usize;
                let tokens = (start..start + e.context.len()).map(|p| tokenizer.token_str(w[p])).collect();
                ExampleView { act: e.act, tokens, acts: e.context.clone(), at: e.pos as usize - start }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(ranks: &[Option<u32>]) -> LensView {
        let cells = ranks.iter().map(|r| LensCellView { top: vec![], target: r.map(|r| (0.5, r)) }).collect();
        LensView { labels: (0..ranks.len()).map(|i| i.to_string()).collect(), n_pos: 1, norm: LensNorm::Fresh, target: Some("x".into()), cells }
    }

    #[test]
    fn the_target_appears_at_the_first_row_from_which_it_stays_on_top() {
        assert_eq!(lens(&[Some(3), Some(0), Some(2), Some(0), Some(0)]).first_row_with_target_on_top(0), Some(3));
        assert_eq!(lens(&[Some(0), Some(0)]).first_row_with_target_on_top(0), Some(0));
        assert_eq!(lens(&[Some(0), Some(1)]).first_row_with_target_on_top(0), None);
    }
}
