use std::sync::Arc;

use glassbox_core::analysis::patching::{AblationKind, MetricKind};
use leptos::prelude::*;

use crate::causal::{ablation_label, metric_label, AblationSettings, AblationView};

/// Ablations: heads, an MLP layer or neurons, set to zero, to their mean over a dataset, or
/// resampled from it; the metric without and with, the top predictions side by side and, for
/// a shipped organism, its task metric.
#[component]
pub fn AblationPanel(
    settings: RwSignal<AblationSettings>,
    #[prop(into)] has_mlp: Signal<bool>,
    #[prop(into)] target: Signal<String>,
    on_target: Callback<String>,
    #[prop(into)] distractor: Signal<String>,
    on_distractor: Callback<String>,
    #[prop(into)] ready: Signal<bool>,
    #[prop(into)] running: Signal<bool>,
    #[prop(into)] result: Signal<Option<Result<Arc<AblationView>, String>>>,
    on_run: Callback<()>,
    /// Apply the zero ablation to the page's run.
    on_apply: Callback<()>,
) -> impl IntoView {
    let what_options = move || {
        [("heads", "heads (layer.head, as 1.0, 1.3)"), ("mlp", "an MLP layer"), ("neurons", "neurons (layer: n n ...)")]
            .into_iter()
            .filter(|(w, _)| has_mlp.get() || *w == "heads")
            .map(|(w, label)| view! { <option value=w selected=move || settings.get().what == w>{label}</option> })
            .collect_view()
    };
    let kinds = [AblationKind::Zero, AblationKind::Mean, AblationKind::Resample]
        .into_iter()
        .map(|k| view! { <option value=ablation_label(k) selected=move || settings.get().kind == k>{ablation_label(k)}</option> })
        .collect_view();
    let metrics = MetricKind::ALL
        .into_iter()
        .map(|m| view! { <option value=m.name() selected=move || settings.get().metric == m>{metric_label(m)}</option> })
        .collect_view();
    let placeholder = move || match settings.get().what {
        "mlp" => "2",
        "neurons" => "1: 12 40",
        _ => "1.0, 1.3",
    };
    let top_list = |items: &[(String, f32)], testid: &'static str| {
        let li = items
            .iter()
            .map(|(t, p)| view! { <li data-token=t.clone() data-prob=format!("{p:.6}")><code>{super::token_label(t)}</code>" "{format!("{:.1}%", 100.0 * p)}</li> })
            .collect_view();
        view! { <ol class="top-list" data-testid=testid>{li}</ol> }
    };
    let results = move || match result.get() {
        None => view! { <p class="help">"Ablate a component to see how the prediction changes without it."</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="ablation-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let r = &v.result;
            let line = format!(
                "{} ablation of {}: {} goes from {:.4} to {:.4} (change {:+.4}){}.",
                ablation_label(r.kind),
                v.what,
                v.metric,
                r.base,
                r.ablated,
                r.change,
                v.dataset.as_ref().map(|d| format!("; dataset: {d}")).unwrap_or_default()
            );
            let task = v.task.as_ref().map(|t| {
                let card = t.card.as_ref().map(|(what, acc)| format!(" The model card states {:.1}% for the {what}.", 100.0 * acc)).unwrap_or_default();
                view! {
                    <p data-testid="ablation-task" data-before=format!("{:.4}", t.before) data-after=format!("{:.4}", t.after)>
                        {format!("{}: {:.1}% without the ablation, {:.1}% with it.{card}", capitalize(&t.name), 100.0 * t.before, 100.0 * t.after)}
                    </p>
                }
            });
            let zero = r.kind == AblationKind::Zero;
            view! {
                <p class="run-meta" data-testid="ablation-summary" data-change=format!("{:.6}", r.change)>{line}</p>
                {task}
                <div class="two-col">
                    <div><h4>"Normal run"</h4>{top_list(&v.base_top, "ablation-base-top")}</div>
                    <div><h4>"Ablated run"</h4>{top_list(&v.ablated_top, "ablation-top")}</div>
                </div>
                <Show when=move || zero>
                    <button data-testid="ablation-apply" on:click=move |_| on_apply.run(())>"Show the ablated run in every view"</button>
                </Show>
            }
            .into_any()
        }
    };
    view! {
        <div class="ablation-panel">
            <p class="help">"An ablation removes a component's contribution from the prompt's run: zero sets it to 0, mean replaces it by its average over a dataset (per position), resample by its value on each dataset sequence in turn (the metric averaged)."</p>
            <div class="controls">
                <label class="field">"Ablate "
                    <select data-testid="ablation-what" on:change=move |ev| {
                        let w = match event_target_value(&ev).as_str() { "mlp" => "mlp", "neurons" => "neurons", _ => "heads" };
                        settings.update(|s| s.what = w)
                    }>{what_options}</select>
                </label>
                <input type="text" data-testid="ablation-target" placeholder=placeholder prop:value=move || settings.get().text on:input=move |ev| settings.update(|s| s.text = event_target_value(&ev)) />
                <label class="field">"by "
                    <select data-testid="ablation-kind" on:change=move |ev| {
                        let k = match event_target_value(&ev).as_str() { "mean" => AblationKind::Mean, "resample" => AblationKind::Resample, _ => AblationKind::Zero };
                        settings.update(|s| s.kind = k)
                    }>{kinds}</select>
                </label>
            </div>
            <div class="controls">
                <label class="field">"Metric "
                    <select data-testid="ablation-metric" on:change=move |ev| { if let Ok(m) = event_target_value(&ev).parse() { settings.update(|s| s.metric = m) } }>{metrics}</select>
                </label>
                <Show when=move || settings.get().metric.needs_target()>
                    <label class="field">"target " <input type="text" data-testid="ablation-target-token" placeholder="the prediction" prop:value=target on:change=move |ev| on_target.run(event_target_value(&ev)) /></label>
                </Show>
                <Show when=move || settings.get().metric == MetricKind::LogitDiff>
                    <label class="field">"distractor " <input type="text" data-testid="ablation-distractor" placeholder="the second prediction" prop:value=distractor on:change=move |ev| on_distractor.run(event_target_value(&ev)) /></label>
                </Show>
            </div>
            <Show when=move || settings.get().kind != AblationKind::Zero>
                <label class="field wide">"Dataset: prompts of the prompt's token length, one per line (empty: the model's task generator, where it has one)"
                    <textarea data-testid="ablation-dataset" rows="3" prop:value=move || settings.get().dataset on:input=move |ev| settings.update(|s| s.dataset = event_target_value(&ev))></textarea>
                </label>
            </Show>
            <button class="primary" data-testid="ablation-run" disabled=move || !ready.get() || running.get() on:click=move |_| on_run.run(())>
                {move || if running.get() { "Ablating\u{2026}" } else { "Run ablation" }}
            </button>
            {results}
        </div>
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
