use std::sync::Arc;

use leptos::prelude::*;

use crate::causal::{ScrubSettings, ScrubView};

/// Causal scrubbing of the shipped hypotheses about an organism: pick hypotheses, the dataset
/// size, seed and rounds; each hypothesis's loss recovered with its 95% interval, beside the
/// model card's figure, and the margin between the correct and the wrong one.
#[component]
pub fn ScrubPanel(
    settings: RwSignal<ScrubSettings>,
    /// The hypotheses shipped for this model (name, description), empty when there are none.
    #[prop(into)]
    offered: Signal<Vec<(&'static str, String)>>,
    #[prop(into)] ready: Signal<bool>,
    #[prop(into)] running: Signal<bool>,
    #[prop(into)] result: Signal<Option<Result<Arc<ScrubView>, String>>>,
    on_run: Callback<()>,
) -> impl IntoView {
    let choices = move || {
        offered
            .get()
            .into_iter()
            .map(|(name, description)| {
                let checked = move || settings.get().hypotheses.iter().any(|h| h == name);
                view! {
                    <label class="check hypothesis">
                        <input type="checkbox" data-testid=format!("scrub-hyp-{name}") prop:checked=checked on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            settings.update(|s| {
                                s.hypotheses.retain(|h| h != name);
                                if on {
                                    s.hypotheses.push(name.to_string());
                                }
                            })
                        } />
                        <strong>{name}</strong>": "{description}
                    </label>
                }
            })
            .collect_view()
    };
    let number = move |testid: &'static str, get: fn(&ScrubSettings) -> u64, put: fn(&mut ScrubSettings, u64)| {
        view! {
            <input type="number" min="1" data-testid=testid prop:value=move || get(&settings.get()).to_string() on:change=move |ev| {
                if let Ok(v) = event_target_value(&ev).trim().parse::<u64>() { settings.update(|s| put(s, v)) }
            } />
        }
    };
    let results = move || match result.get() {
        None => view! { <p class="help">"Scrub a hypothesis to see how much of the model's loss it explains."</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="scrub-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let rows = v
                .rows
                .iter()
                .map(|row| {
                    let r = &row.result;
                    let frac = r.loss_recovered.clamp(0.0, 1.0);
                    let card = row.card.map(|(x, n)| format!("{x:.3} (n = {n})")).unwrap_or_else(|| "\u{2014}".into());
                    view! {
                        <tr data-testid="scrub-row" data-hypothesis=r.hypothesis.clone() data-recovered=format!("{:.6}", r.loss_recovered)>
                            <th title=row.description.clone()>{r.hypothesis.clone()}</th>
                            <td class="num"><span class="bar" style:width=format!("{:.1}%", 100.0 * frac)></span>{format!("{:.3}", r.loss_recovered)}</td>
                            <td class="num">{format!("[{:.3}, {:.3}]", r.ci95.0, r.ci95.1)}</td>
                            <td class="num">{format!("{:.4}", r.loss_scrubbed)}</td>
                            <td class="num">{card}</td>
                            <td class="num">{format!("{:.1}%", 100.0 * r.self_draws)}</td>
                        </tr>
                    }
                })
                .collect_view();
            let first = v.rows.first().map(|r| &r.result);
            let meta = first.map(|r| {
                format!(
                    "{} examples (seed {}), {} rounds: model loss {:.4}, unconditional (nothing claimed) {:.4}. {} forward passes, {:.0} ms on {}.",
                    r.n,
                    r.seed,
                    r.rounds,
                    r.loss_model,
                    r.loss_uncond,
                    v.rows.iter().map(|r| r.result.runs).sum::<usize>(),
                    v.elapsed_ms,
                    v.backend
                )
            });
            let correct = v.rows.iter().find(|r| r.result.hypothesis.ends_with("-correct")).map(|r| r.result.loss_recovered);
            let wrong = v.rows.iter().find(|r| r.result.hypothesis.ends_with("-wrong")).map(|r| r.result.loss_recovered);
            let margin = match (correct, wrong) {
                (Some(c), Some(w)) => Some(view! {
                    <p data-testid="scrub-margin" data-margin=format!("{:.6}", c - w) data-card-margin=v.card_margin.map(|m| m.to_string()).unwrap_or_default()>
                        {format!(
                            "The correct hypothesis recovers {:.3} more of the loss than the wrong one{}.",
                            c - w,
                            v.card_margin.map(|m| format!(" (the model card states a margin of at least {m})")).unwrap_or_default()
                        )}
                    </p>
                }),
                _ => None,
            };
            let iia = v.interchange.as_ref().map(|(what, r)| {
                view! {
                    <p data-testid="scrub-interchange" data-accuracy=format!("{:.6}", r.accuracy)>
                        {format!(
                            "Interchange intervention accuracy: {:.3} over {} pairs ({:.3} over the {} pairs where the swap should change the answer): {what}.",
                            r.accuracy, r.pairs, r.changed_accuracy, r.changed_pairs
                        )}
                    </p>
                }
            });
            view! {
                <p class="run-meta" data-testid="scrub-summary">{meta}</p>
                <div class="table-wrap" tabindex="0">
                    <table class="scrub-table" data-testid="scrub-table">
                        <thead><tr><th>"hypothesis"</th><th>"loss recovered"</th><th>"95% interval"</th><th>"scrubbed loss"</th><th>"model card"</th><th>"self-draws"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                {margin}
                {iia}
            }
            .into_any()
        }
    };
    view! {
        <div class="scrub-panel">
            <p class="help">
                "Causal scrubbing (Chan et al. 2022) tests a hypothesis about which features each part of the model computes: every claimed node's input is resampled from another example that agrees on the claimed feature, everything unclaimed from any example. Loss recovered = (L_hypothesis \u{2212} L_unconditional) / (L_model \u{2212} L_unconditional): 1 means the hypothesis explains the model's behaviour on the task, 0 no better than claiming nothing."
            </p>
            <Show when=move || !offered.get().is_empty() fallback=|| view! {
                <p class="help" data-testid="scrub-none">"This model has no shipped hypotheses: pick the balanced-parentheses or the induction model."</p>
            }>
                <div class="hypotheses">{choices}</div>
                <div class="controls">
                    <label class="field">"examples "{number("scrub-n", |s| s.n as u64, |s, v| s.n = v as usize)}</label>
                    <label class="field">"seed "{number("scrub-seed", |s| s.seed, |s, v| s.seed = v)}</label>
                    <label class="field">"rounds "{number("scrub-rounds", |s| s.rounds as u64, |s, v| s.rounds = v as usize)}</label>
                </div>
                <button class="primary" data-testid="scrub-run" disabled=move || !ready.get() || running.get() on:click=move |_| on_run.run(())>
                    {move || if running.get() { "Scrubbing\u{2026}" } else { "Scrub" }}
                </button>
            </Show>
            {results}
        </div>
    }
}
