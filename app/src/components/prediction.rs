use leptos::prelude::*;

use crate::analysis::induction_targets;

/// The five most likely next tokens after the chosen position, each with its probability as
/// a number and a bar; plus what induction (copying what followed this token last time)
/// would predict, when the token occurred before.
#[component]
pub fn Prediction(
    /// Token strings, the BOS token first.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// Token ids, in the same order.
    #[prop(into)]
    ids: Signal<Vec<u32>>,
    /// The chosen position.
    #[prop(into)]
    pos: Signal<usize>,
    /// (token, probability) pairs for that position, most likely first.
    #[prop(into)]
    predictions: Signal<Vec<(String, f32)>>,
    /// Whether the outputs are a readout's named answers (a classifier's classes, the sums of
    /// modular addition) rather than next tokens.
    #[prop(into)]
    readout: Signal<bool>,
    /// The number of tokens (the readout is meant to be read at the last one).
    #[prop(into)]
    n_tokens: Signal<usize>,
    /// Whether to say what an induction head would predict (for the induction model, whose
    /// task is exactly that).
    #[prop(into)]
    induction_hint: Signal<bool>,
) -> impl IntoView {
    let heading = move || {
        let p = pos.get();
        let t = tokens.with(|t| t.get(p).map(|t| super::token_label(t)).unwrap_or_default());
        match (readout.get(), p + 1 == n_tokens.get()) {
            (false, _) => format!("After position {p} (\u{201c}{t}\u{201d}), the model predicts:"),
            (true, true) => format!("The model's answer, read at the last position ({p}, \u{201c}{t}\u{201d}):"),
            (true, false) => format!(
                "The readout at position {p} (\u{201c}{t}\u{201d}); the model was trained to answer at the last position, {}:",
                n_tokens.get().saturating_sub(1)
            ),
        }
    };
    let rows = move || {
        predictions
            .get()
            .into_iter()
            .enumerate()
            .map(|(rank, (tok, prob))| {
                let data_token = tok.clone();
                view! {
                    <tr data-testid="top5" data-token=data_token data-prob=format!("{prob:.6}")>
                        <td class="rank">{rank + 1}</td>
                        <td class="tok"><code>{super::token_label(&tok)}</code></td>
                        <td class="bar-cell"><div class="bar" style:width=format!("{:.2}%", prob * 100.0)></div></td>
                        <td class="prob">{format!("{:.1}%", prob * 100.0)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let induction = move || {
        if !induction_hint.get() {
            return None;
        }
        let (p, ids, tokens) = (pos.get(), ids.get(), tokens.get());
        let target = induction_targets(&ids).into_iter().find(|&(q, _)| q == p)?;
        let k = target.1;
        // The key after the earlier occurrence is the token that followed it: the copy.
        let next = tokens.get(k)?.clone();
        Some(view! {
            <p class="hint" data-testid="induction-hint">
                {format!("\u{201c}{}\u{201d} occurred before, at position {}, followed by \u{201c}{next}\u{201d}: an induction head would predict \u{201c}{next}\u{201d}.", tokens[p], k - 1)}
            </p>
        })
    };
    view! {
        <p class="help">{heading}</p>
        <table class="top5" data-testid="top5-table">
            <tbody>{rows}</tbody>
        </table>
        {induction}
    }
}
