use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::inspect::LensView;

/// The logit lens: every layer's residual stream read through the final norm and the
/// unembedding, as a layers x positions grid. Each cell shows the top token there and is
/// shaded by the target's probability; clicking a cell lists its top 5.
#[component]
pub fn LogitLens(
    #[prop(into)] lens: Signal<Option<Result<Arc<LensView>, String>>>,
    #[prop(into)] tokens: Signal<Vec<String>>,
    /// The positions drawn as columns (a padded model's padding hidden); every position when
    /// empty.
    #[prop(into)]
    shown: Signal<Vec<usize>>,
    /// The target token as typed (empty: the model's prediction at the last position).
    #[prop(into)]
    target: Signal<String>,
    on_target: Callback<String>,
    #[prop(into)] cached_scale: Signal<bool>,
    on_cached_scale: Callback<bool>,
    #[prop(into)] incl_mid: Signal<bool>,
    on_incl_mid: Callback<bool>,
) -> impl IntoView {
    let picked = RwSignal::new(None::<(usize, usize)>);
    let grid = move || match lens.get() {
        None => view! { <p class="computing">"Reading every layer through the unembedding\u{2026}"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="lens-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let tokens = tokens.get();
            let cols = crate::analysis::columns(&shown.get(), v.n_pos);
            let target = v.target.clone().unwrap_or_default();
            let header = cols
                .iter()
                .map(|&p| {
                    let t = tokens.get(p).cloned().unwrap_or_default();
                    view! { <th class="tok-col" title=format!("position {p}: {t}")>{super::token_label(&t)}</th> }
                })
                .collect_view();
            let v2 = v.clone();
            let rows = v
                .labels
                .iter()
                .enumerate()
                .map(|(r, label)| {
                    let cells = cols
                        .iter()
                        .map(|&p| {
                            let c = v.cell(r, p).cloned();
                            let (top, top_p) = c.as_ref().and_then(|c| c.top.first().cloned()).unwrap_or_default();
                            let (tp, rank) = c.as_ref().and_then(|c| c.target).unwrap_or((0.0, u32::MAX));
                            let title = format!("{label}, position {p}: top {top:?} ({top_p:.3}); P({target:?}) = {tp:.4}, rank {}", rank + 1);
                            view! {
                                <td
                                    class="lc"
                                    class:hit=rank == 0
                                    class:picked=move || picked.get() == Some((r, p))
                                    data-testid="lens-cell"
                                    data-row=r
                                    data-label=label.clone()
                                    data-pos=p
                                    data-top=top.clone()
                                    data-target-prob=format!("{tp:.6}")
                                    data-target-rank=rank
                                    title=title
                                    style:--a=format!("{:.3}", tp.clamp(0.0, 1.0).sqrt())
                                    on:click=move |_| picked.set(Some((r, p)))
                                >
                                    {super::token_label(&top)}
                                </td>
                            }
                        })
                        .collect_view();
                    view! { <tr><th class="row-label" title="TransformerLens accumulated_resid label">{label.clone()}</th>{cells}</tr> }
                })
                .collect_view();
            let detail = move || {
                let (r, p) = picked.get()?;
                let c = v2.cell(r, p)?.clone();
                let items = c
                    .top
                    .iter()
                    .map(|(t, pr)| view! { <li data-token=t.clone() data-prob=format!("{pr:.6}")><code>{super::token_label(t)}</code>" "{format!("{pr:.3}")}</li> })
                    .collect_view();
                Some(view! {
                    <div class="lens-detail" data-testid="lens-detail">
                        <h4>{format!("{}, position {p}: top 5", v2.labels[r])}</h4>
                        <ol>{items}</ol>
                    </div>
                })
            };
            let norm = if v.norm == glassbox_core::analysis::lens::LensNorm::Fresh {
                "ln_final re-run with each residual's own statistics (TransformerLens 3)"
            } else {
                "centred and divided by the final residual's cached ln_final scale"
            };
            let last = v.n_pos.saturating_sub(1);
            let appears = match v.first_row_with_target_on_top(last) {
                Some(r) => format!("At the last position, {target:?} is the top prediction from {} on.", v.labels[r]),
                None => format!("At the last position, {target:?} is not the top prediction at the final layer."),
            };
            let appears_row = v.first_row_with_target_on_top(last).map(|r| r.to_string());
            view! {
                <p class="help" data-testid="lens-appears" data-row=appears_row>{appears}</p>
                <p class="help" data-testid="lens-target">{format!("Cell text: the top token. Shading: P({target:?}). Normalisation: {norm}.")}</p>
                <div class="table-wrap" tabindex="0">
                    <table class="lens" data-testid="logit-lens">
                        <thead><tr><th></th>{header}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                <Legend label=format!("P({target:?})") low="0" high="1" palette="seq" />
                {detail}
            }
            .into_any()
        }
    };
    view! {
        <div class="lens-controls row">
            <label class="field">
                "Target token "
                <input type="text" data-testid="lens-target-input" placeholder="the model's prediction" prop:value=target on:change=move |ev| on_target.run(event_target_value(&ev)) />
            </label>
            <label class="check">
                <input type="checkbox" data-testid="lens-cached" prop:checked=cached_scale on:change=move |ev| on_cached_scale.run(event_target_checked(&ev)) />
                "cached final scale"
            </label>
            <label class="check">
                <input type="checkbox" data-testid="lens-mid" prop:checked=incl_mid on:change=move |ev| on_incl_mid.run(event_target_checked(&ev)) />
                "include resid_mid"
            </label>
        </div>
        {grid}
    }
}
