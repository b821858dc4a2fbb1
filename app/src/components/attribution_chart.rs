use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::inspect::{AttributionView, Bar};

/// Direct logit attribution at a position: one bar per component (each head, each MLP, the
/// embeddings and the bias terms), with the check that they add up to what the model produced.
#[component]
pub fn AttributionChart(
    #[prop(into)] attribution: Signal<Option<Result<Arc<AttributionView>, String>>>,
    #[prop(into)] target: Signal<String>,
    on_target: Callback<String>,
    #[prop(into)] distractor: Signal<String>,
    on_distractor: Callback<String>,
    #[prop(into)] unfold_ln: Signal<bool>,
    on_unfold_ln: Callback<bool>,
    #[prop(into)] center_unembed: Signal<bool>,
    on_center_unembed: Callback<bool>,
) -> impl IntoView {
    let per_layer = RwSignal::new(false);
    let chart = move || match attribution.get() {
        None => view! { <p class="computing">"Attributing\u{2026}"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="attribution-error">{e}</p> }.into_any(),
        Some(Ok(a)) => {
            let bars: Vec<Bar> = if per_layer.get() { a.layers.clone() } else { a.bars.clone() };
            let max = bars.iter().fold(0f32, |m, b| m.max(b.value.abs())).max(1e-9);
            let what = match &a.distractor {
                Some(d) => format!("logit({:?}) \u{2212} logit({d:?})", a.target),
                None if a.center_unembed => format!("logit({:?}) \u{2212} mean logit", a.target),
                None => format!("logit({:?})", a.target),
            };
            let rows = bars
                .into_iter()
                .map(|b| {
                    let w = 50.0 * b.value.abs() / max;
                    view! {
                        <div class="bar-row" data-testid="attr-bar" data-label=b.label.clone() data-kind=b.kind.clone() data-value=format!("{:.6}", b.value) title=format!("{}: {:+.4}", b.label, b.value)>
                            <span class="bar-label">{b.label.clone()}</span>
                            <span class="bar-track">
                                <span class=format!("attr-fill {}", b.kind) class:neg=b.value < 0.0 style:--w=format!("{w:.2}%")></span>
                            </span>
                            <span class="num">{format!("{:+.3}", b.value)}</span>
                        </div>
                    }
                })
                .collect_view();
            let agree = (a.sum - a.actual).abs() <= 1e-3_f32.max(1e-4 * a.actual.abs());
            let check = if agree {
                format!("Sum of the terms {:+.4} = the model's {what} {:+.4} (difference {:.1e}).", a.sum, a.actual, (a.sum - a.actual).abs())
            } else {
                format!(
                    "Sum of the terms {:+.4} \u{2260} the model's {what} {:+.4}: without folding ln_final's weight into W_U the terms do not add up (TransformerLens on an unprocessed model).",
                    a.sum, a.actual
                )
            };
            let largest = a.largest().map(|b| b.label.clone()).unwrap_or_default();
            view! {
                <p class="help">{format!("Direct effect of each component on {what} at position {}, through ln_final at its cached scale{}{}.", a.pos, if a.fold_ln { " (weight folded into W_U, bias as a term)" } else { ", weight not folded" }, if a.center_unembed { ", centred unembedding" } else { "" })}</p>
                <p class="sum-check" class:bad=!agree data-testid="attribution-sum" data-sum=format!("{:.6}", a.sum) data-actual=format!("{:.6}", a.actual) data-largest=largest>{check}</p>
                <div class="bars" data-testid="attribution">{rows}</div>
                <Legend label="bar length: the term, scaled to the largest" low=format!("{:+.2} (lowers)", -max) high=format!("{max:+.2} (raises)") palette="div" />
            }
            .into_any()
        }
    };
    view! {
        <div class="attr-controls row">
            <label class="field">"Target " <input type="text" data-testid="attr-target" placeholder="the prediction here" prop:value=target on:change=move |ev| on_target.run(event_target_value(&ev)) /></label>
            <label class="field">"minus " <input type="text" data-testid="attr-distractor" placeholder="(none)" prop:value=distractor on:change=move |ev| on_distractor.run(event_target_value(&ev)) /></label>
            <label class="check"><input type="checkbox" data-testid="attr-per-layer" prop:checked=per_layer on:change=move |ev| per_layer.set(event_target_checked(&ev)) />"per layer"</label>
            <label class="check"><input type="checkbox" data-testid="attr-unfold" prop:checked=unfold_ln on:change=move |ev| on_unfold_ln.run(event_target_checked(&ev)) />"don't fold ln_final"</label>
            <label class="check"><input type="checkbox" data-testid="attr-centre" prop:checked=center_unembed on:change=move |ev| on_center_unembed.run(event_target_checked(&ev)) />"centre the unembedding"</label>
        </div>
        {chart}
    }
}
