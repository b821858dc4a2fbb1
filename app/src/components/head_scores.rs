use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::inspect::HeadsView;

/// Every head's previous-token, duplicate-token and induction score (TransformerLens's head
/// detector), as a table sorted by the column clicked; a row selects its head.
#[component]
pub fn HeadScores(
    #[prop(into)] scores: Signal<Option<Result<Arc<HeadsView>, String>>>,
    /// Whether the scores are on the prompt (else on a repeated random sequence).
    #[prop(into)]
    on_prompt: Signal<bool>,
    on_prompt_change: Callback<bool>,
    #[prop(into)] layer: Signal<usize>,
    #[prop(into)] head: Signal<usize>,
    on_select: Callback<(usize, usize)>,
) -> impl IntoView {
    // The column sorted by (index into the scores), highest first. Induction by default.
    let sort = RwSignal::new(2usize);
    let table = move || match scores.get() {
        None => view! { <p class="computing">"Scoring heads\u{2026}"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="head-scores-error">{e}</p> }.into_any(),
        Some(Ok(s)) => {
            let col = sort.get().min(s.scores.len().saturating_sub(1));
            let mut rows: Vec<usize> = (0..s.n_layers * s.n_heads).collect();
            rows.sort_by(|&a, &b| s.scores[col].1[b].total_cmp(&s.scores[col].1[a]));
            let headers = s
                .scores
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let name = name.clone();
                    view! {
                        <th aria-sort=move || if sort.get() == i { "descending" } else { "none" }>
                            <button class="sort" data-testid="head-scores-sort" on:click=move |_| sort.set(i)>{name}{move || if sort.get() == i { " \u{25be}" } else { "" }}</button>
                        </th>
                    }
                })
                .collect_view();
            let body = rows
                .into_iter()
                .map(|i| {
                    let (l, h) = (i / s.n_heads, i % s.n_heads);
                    let cells = s
                        .scores
                        .iter()
                        .map(|(_, v)| view! { <td class="num" style:--a=format!("{:.3}", v[i].clamp(0.0, 1.0))>{format!("{:.3}", v[i])}</td> })
                        .collect_view();
                    view! {
                        <tr
                            data-testid="head-score-row"
                            data-layer=l
                            data-head=h
                            data-prev=format!("{:.6}", s.scores[0].1[i])
                            data-duplicate=format!("{:.6}", s.scores[1].1[i])
                            data-induction=format!("{:.6}", s.scores[2].1[i])
                            class:selected=move || layer.get() == l && head.get() == h
                            on:click=move |_| on_select.run((l, h))
                        >
                            <td>{format!("L{l}H{h}")}</td>
                            {cells}
                        </tr>
                    }
                })
                .collect_view();
            let on = if s.repeated {
                format!("a random sequence repeated twice ({} tokens)", s.tokens.len())
            } else {
                format!("the prompt ({} tokens)", s.tokens.len())
            };
            view! {
                <p class="help">{format!("Share of each head's attention where a head of that kind would look, on {on} (TransformerLens detect_head, \"mul\").")}</p>
                <Legend label="score (share of attention)" low="0" high="1" palette="seq" />
                <div class="table-wrap" tabindex="0">
                    <table class="scores" data-testid="head-scores">
                        <thead><tr><th>"head"</th>{headers}</tr></thead>
                        <tbody>{body}</tbody>
                    </table>
                </div>
            }
            .into_any()
        }
    };
    view! {
        <div class="head-scores">
            <label class="check">
                <input type="checkbox" data-testid="heads-on-prompt" prop:checked=on_prompt on:change=move |ev| on_prompt_change.run(event_target_checked(&ev)) />
                "Score on the prompt (instead of a repeated random sequence)"
            </label>
            {table}
        </div>
    }
}
