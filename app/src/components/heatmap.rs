use leptos::prelude::*;

use super::token_label;

/// One head's attention pattern as a grid: query tokens on rows, key tokens on columns.
/// Every cell carries its value in the DOM (`data-q`, `data-k`, `data-value`, a tooltip),
/// so what the page shows can be read back exactly.
#[component]
pub fn AttentionHeatmap(
    /// Token strings, the BOS token first: the labels of both axes.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// The pattern `[query, key]`, row-major (`tokens.len()` squared values).
    #[prop(into)]
    pattern: Signal<Vec<f32>>,
    /// The chosen query position; its row is outlined.
    #[prop(into)]
    selected: Signal<usize>,
    /// Called with a query position when its row is clicked.
    on_select: Callback<usize>,
) -> impl IntoView {
    move || {
        let (tokens, pattern) = (tokens.get(), pattern.get());
        let n = tokens.len();
        if n == 0 || pattern.len() != n * n {
            return None;
        }
        let keys =
            tokens.iter().enumerate().map(|(k, t)| view! { <div class="hm-label key" title=format!("key {k}: {t}")>{token_label(t)}</div> }).collect_view();
        let rows = (0..n)
            .map(|q| {
                let cells = (0..n)
                    .map(|k| {
                        let v = pattern[q * n + k];
                        let title = format!("query {q} \u{201c}{}\u{201d} \u{2192} key {k} \u{201c}{}\u{201d}: {v:.3}", tokens[q], tokens[k]);
                        // Square root: small but real weights stay visible next to a dominant one.
                        let alpha = format!("{:.3}", v.clamp(0.0, 1.0).sqrt());
                        let masked = k > q;
                        view! {
                            <div class="cell" class:masked=masked data-q=q data-k=k data-value=format!("{v:.6}") title=title style:--a=alpha></div>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="hm-row" class:current=move || selected.get() == q data-testid="heatmap-row" data-q=q on:click=move |_| on_select.run(q)>
                        <div class="hm-label query" title=format!("query {q}: {}", tokens[q])>{token_label(&tokens[q])}</div>
                        {cells}
                    </div>
                }
            })
            .collect_view();
        Some(view! {
            <div
                class="heatmap-wrap"
                tabindex="0"
                role="region"
                aria-label="Attention pattern: query tokens on rows, key tokens on columns; the arrow keys move the query"
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    let key = ev.key();
                    // Up and down move the query; left and right still scroll the box.
                    let vertical = matches!(key.as_str(), "ArrowUp" | "ArrowDown" | "Home" | "End");
                    if let Some(q) = super::token_chips::step(&key, selected.get_untracked(), n).filter(|_| vertical) {
                        ev.prevent_default();
                        on_select.run(q);
                    }
                }
            >
                <div class="axis-note">"keys \u{2192}"</div>
                <div class="heatmap" data-testid="heatmap" style:--n=n.to_string()>
                    <div class="hm-row head"><div class="hm-label corner">"q \u{2193}"</div>{keys}</div>
                    {rows}
                </div>
            </div>
        })
    }
}
