use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::inspect::{ExampleView, NeuronView};

/// One neuron: its activation over the prompt, what it writes into the logits directly, and
/// where in a corpus it fires most (after a scan of its layer).
#[component]
pub fn NeuronPage(
    #[prop(into)] neuron: Signal<Option<Result<Arc<NeuronView>, String>>>,
    #[prop(into)] tokens: Signal<Vec<String>>,
    /// The neuron chosen (also while its page computes) and the layer's width.
    #[prop(into)]
    index: Signal<usize>,
    #[prop(into)] d_mlp: Signal<usize>,
    on_neuron: Callback<usize>,
    /// The scan controls, shown where the examples go.
    scan_controls: ViewFn,
) -> impl IntoView {
    let input = move || {
        view! {
            <label class="field">
                "Neuron "
                <input
                    type="number"
                    min="0"
                    max=move || d_mlp.get().saturating_sub(1).to_string()
                    data-testid="neuron-input"
                    prop:value=move || index.get().to_string()
                    on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).trim().parse::<usize>() {
                            on_neuron.run(n);
                        }
                    }
                />
                {move || format!(" of {}", d_mlp.get())}
            </label>
        }
    };
    let body = move || match neuron.get() {
        None => view! { <p class="computing">"Computing the neuron's page\u{2026}"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="neuron-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let tokens = tokens.get();
            let max = v.acts.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
            let strip = v
                .acts
                .iter()
                .enumerate()
                .map(|(p, &a)| {
                    let t = tokens.get(p).cloned().unwrap_or_default();
                    view! {
                        <span class="strip-tok act" class:neg=a < 0.0 data-testid="neuron-act" data-value=format!("{a:.6}") title=format!("token {p} \u{201c}{t}\u{201d}: {a:.4}") style:--a=format!("{:.3}", (a.abs() / max).clamp(0.0, 1.0))>
                            {super::token_label(&t)}
                        </span>
                    }
                })
                .collect_view();
            let list = |items: &[(String, f32)], id: &'static str| {
                let items = items
                    .iter()
                    .map(|(t, x)| view! { <li data-token=t.clone() data-value=format!("{x:.6}")><code>{format!("{t:?}")}</code>" "<span class="num">{format!("{x:+.3}")}</span></li> })
                    .collect_view();
                view! { <ol class="effect" data-testid=id>{items}</ol> }
            };
            view! {
                <h3 data-testid="neuron-title">{format!("Layer {} neuron {}", v.layer, v.neuron)}</h3>
                <p class="help">{v.activation.clone()}</p>
                <div class="token-strip" data-testid="neuron-acts">{strip}</div>
                <Legend label="activation on the prompt" low=format!("{:.2}", -max) high=format!("{max:.2}") palette="div" />
                <div class="two-col">
                    <div>
                        <h4>"Promotes (direct effect on the logits)"</h4>
                        {list(&v.promoted, "neuron-promoted")}
                    </div>
                    <div>
                        <h4>"Suppresses"</h4>
                        {list(&v.suppressed, "neuron-suppressed")}
                    </div>
                </div>
                <p class="help">{format!("Logit change per unit of activation, through ln_final at position {}'s scale and W_U (its direct path only).", v.pos)}</p>
                <h4>"Top-activating examples"</h4>
                {match (&v.examples, &v.scanned) {
                    (Some(ex), Some(what)) => view! {
                        <p class="help">{format!("From {what}. The token where the neuron fired most is boxed; shading is the neuron's activation.")}</p>
                        <Examples examples=ex.clone() />
                    }.into_any(),
                    _ => view! { <p class="help">"Scan a corpus with this layer to see where this neuron fires most."</p> }.into_any(),
                }}
            }
            .into_any()
        }
    };
    view! {
        <div class="neuron-page" data-testid="neuron-page">
            {input}
            {body}
            {scan_controls.run()}
        </div>
    }
}

#[component]
fn Examples(examples: Vec<ExampleView>) -> impl IntoView {
    if examples.is_empty() {
        return view! { <p class="help">"The scan found no activation for this neuron."</p> }.into_any();
    }
    let max = examples.iter().fold(0f32, |m, e| m.max(e.act.abs())).max(1e-6);
    let rows = examples
        .into_iter()
        .map(|e| {
            let toks = e
                .tokens
                .iter()
                .zip(&e.acts)
                .enumerate()
                .map(|(i, (t, &a))| {
                    view! {
                        <span class="ex-tok" class:max=i == e.at class:neg=a < 0.0 title=format!("{t:?}: {a:.4}") style:--a=format!("{:.3}", (a.abs() / max).clamp(0.0, 1.0))>
                            {t.replace('\n', "\u{21b5}")}
                        </span>
                    }
                })
                .collect_view();
            view! {
                <li class="top-example" data-testid="scan-example" data-value=format!("{:.6}", e.act)>
                    <span class="num">{format!("{:.3}", e.act)}</span>
                    <span class="ex-text">{toks}</span>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="top-examples" data-testid="scan-examples">{rows}</ol> }.into_any()
}
