use std::sync::Arc;

use leptos::prelude::*;

use crate::analysis::{induction_score, induction_targets, prev_token_score, RunView};

/// Layer and head selectors. Each head's button shows the scores that mean something for the
/// model (its card's `head_scores`; by default both) from the current run: how much it attends
/// to the previous token (`prev`), and how much to the token after the previous occurrence of
/// the current one (`induction`), to help find the heads worth a look. Every button carries
/// both in its data attributes.
#[component]
pub fn HeadPicker(
    /// Number of layers of the model.
    #[prop(into)]
    n_layers: Signal<usize>,
    /// The chosen layer.
    #[prop(into)]
    layer: Signal<usize>,
    /// The chosen head.
    #[prop(into)]
    head: Signal<usize>,
    /// Chooses a layer.
    on_layer: Callback<usize>,
    /// Chooses a head.
    on_head: Callback<usize>,
    /// The run whose patterns give the scores.
    #[prop(into)]
    run: Signal<Option<Arc<RunView>>>,
    /// The scores shown: "prev", "induction".
    #[prop(into)]
    scores: Signal<Vec<String>>,
) -> impl IntoView {
    let layers = move || {
        (0..n_layers.get())
            .map(|l| {
                view! {
                    <button
                        class="seg"
                        class:selected=move || layer.get() == l
                        aria-pressed=move || (layer.get() == l).to_string()
                        data-testid="layer-button"
                        data-layer=l
                        on:click=move |_| on_layer.run(l)
                    >
                        {format!("Layer {l}")}
                    </button>
                }
            })
            .collect_view()
    };
    let heads = move || {
        let run = run.get()?;
        let l = layer.get();
        let n = run.n_tokens();
        let targets = induction_targets(&run.ids);
        let shown = scores.get();
        let show = move |name: &str| shown.iter().any(|s| s == name);
        let (show_prev, show_ind) = (show("prev"), show("induction"));
        let buttons = (0..run.n_heads(l))
            .map(|h| {
                let p = run.head_pattern(l, h).unwrap_or_default();
                let prev = prev_token_score(p, n);
                let ind = induction_score(p, n, &targets);
                let fmt = |s: Option<f32>| s.map_or("n/a".to_string(), |s| format!("{s:.2}"));
                view! {
                    <button
                        class="head"
                        class:selected=move || head.get() == h
                        aria-pressed=move || (head.get() == h).to_string()
                        data-testid="head-button"
                        data-head=h
                        data-prev=prev.map(|s| format!("{s:.6}"))
                        data-induction=ind.map(|s| format!("{s:.6}"))
                        title="prev: mean attention to the previous token. induction: mean attention to the token after the earlier occurrence of the current token."
                        on:click=move |_| on_head.run(h)
                    >
                        <span class="head-name">{format!("Head {h}")}</span>
                        {show_prev.then(|| view! { <span class="score">{format!("prev {}", fmt(prev))}</span> })}
                        {show_ind.then(|| view! { <span class="score">{format!("induction {}", fmt(ind))}</span> })}
                    </button>
                }
            })
            .collect_view();
        Some(view! { <div class="heads" data-testid="heads">{buttons}</div> })
    };
    view! {
        <div class="segmented" role="group" aria-label="layer">{layers}</div>
        {heads}
    }
}
