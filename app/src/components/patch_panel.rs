use std::sync::Arc;

use glassbox_core::analysis::patching::{Component, Direction, Granularity, MetricKind};
use glassbox_core::analysis::path_patching::HeadInput;
use leptos::prelude::*;

use super::PatchHeatmap;
use crate::causal::{component_label, direction_label, granularity_label, metric_label, PatchCell, PatchMode, PatchSettings, PatchView};

/// Activation patching: the corrupted prompt, what to patch (TransformerLens's catalogue),
/// which way, what to measure; Run with progress and Cancel; the result as a heatmap whose
/// cells open their patched run.
#[component]
pub fn PatchPanel(
    /// The corrupted prompt as typed.
    corrupted: RwSignal<String>,
    settings: RwSignal<PatchSettings>,
    /// The metric's tokens as typed (shared with the lens and the attribution).
    #[prop(into)]
    target: Signal<String>,
    on_target: Callback<String>,
    #[prop(into)] distractor: Signal<String>,
    on_distractor: Callback<String>,
    /// Whether the model has MLPs (resid_mid and mlp_out need them).
    #[prop(into)]
    has_mlp: Signal<bool>,
    /// The selected token (the metric's position when "at the selected token" is on).
    #[prop(into)]
    pos: Signal<usize>,
    #[prop(into)] ready: Signal<bool>,
    /// (patched runs done, in all) while a sweep runs.
    #[prop(into)]
    progress: Signal<Option<(usize, usize)>>,
    #[prop(into)] result: Signal<Option<Result<Arc<PatchView>, String>>>,
    on_run: Callback<()>,
    on_cancel: Callback<()>,
    on_cell: Callback<(Arc<PatchView>, PatchCell)>,
    /// A padded model's padding token, hidden from the heatmap's position columns (`None`
    /// shows every position).
    #[prop(into)]
    pad: Signal<Option<u32>>,
) -> impl IntoView {
    let raw = RwSignal::new(false);
    let picked = RwSignal::new(None::<PatchCell>);
    let set = move |f: &dyn Fn(&mut PatchSettings)| settings.update(|s| f(s));
    let components = move || {
        Component::ALL
            .into_iter()
            .filter(|c| has_mlp.get() || !matches!(c, Component::ResidMid | Component::MlpOut))
            .map(|c| view! { <option value=c.name() selected=move || settings.get().component == c>{component_label(c)}</option> })
            .collect_view()
    };
    let metrics = MetricKind::ALL
        .into_iter()
        .map(|m| view! { <option value=m.name() selected=move || settings.get().metric == m>{metric_label(m)}</option> })
        .collect_view();
    let running = move || progress.get().is_some();
    let status = move || {
        progress.get().map(|(done, total)| {
            let pct = if total == 0 { 0.0 } else { 100.0 * done as f64 / total as f64 };
            view! {
                <div class="progress-row" data-testid="patch-progress">
                    <progress max="100" prop:value=pct></progress>
                    <span>{if total == 0 { "Running the clean and corrupted prompts\u{2026}".to_string() } else { format!("{done} of {total} patched runs") }}</span>
                    <button data-testid="patch-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                </div>
            }
        })
    };
    let results = move || match result.get() {
        None => {
            view! { <p class="help">"Run a sweep to see how much each activation, copied from one prompt into the other, restores the metric."</p> }.into_any()
        }
        Some(Err(e)) => view! { <p class="error" data-testid="patch-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let r = &v.result;
            let spec = &r.spec;
            let summary = match &v.path {
                None => format!(
                    "{} of {}, {}; metric: {}. Clean run {:.3}, corrupted run {:.3}. {} patched runs in {} batches, {:.0} ms on {}.",
                    component_label(spec.component),
                    granularity_label(spec.by),
                    direction_label(spec.direction),
                    v.metric,
                    r.clean,
                    r.corrupted,
                    r.runs,
                    r.batches,
                    v.elapsed_ms,
                    v.backend
                ),
                Some(p) => format!(
                    "Path patching: each sender's output from the corrupted run, along its direct paths to {} only, in the clean run; metric: {}. Clean run {:.3}, corrupted run {:.3}. {} senders, {} forward passes in {} batches, {:.0} ms on {}. Senders that cannot reach the receivers (not in an earlier layer) are blank.",
                    p.receivers,
                    v.metric,
                    r.clean,
                    r.corrupted,
                    p.senders,
                    r.runs,
                    r.batches,
                    v.elapsed_ms,
                    v.backend
                ),
            };
            let best = (0..r.values.len()).filter(|&i| r.normalized[i].is_finite()).max_by(|&a, &b| r.normalized[a].abs().total_cmp(&r.normalized[b].abs()));
            let grid = v.grid();
            let strongest = best.and_then(|i| {
                (0..grid.rows).flat_map(|row| (0..grid.cols).map(move |col| (row, col))).find(|&(row, col)| v.cell(row, col).0 == i).map(|(row, col)| {
                    let label = match (grid.cols_are_positions, grid.cols > 1) {
                        (true, _) => format!("{} at position {}", grid.row_labels[row], grid.col_labels[col]),
                        (false, true) => format!("{}{}", grid.row_labels[row], grid.col_labels[col]),
                        (false, false) => grid.row_labels[row].clone(),
                    };
                    if v.path.is_some() {
                        format!("Largest effect along a path: {label} ({:.2}; 0 = none, \u{2212}1 = the whole corrupted run).", r.normalized[i])
                    } else {
                        format!("Largest effect: {label} ({:.2} of the way from corrupted to clean).", r.normalized[i])
                    }
                })
            });
            let tokens_row = |label: &'static str, toks: &[String]| {
                let chips = toks.iter().map(|t| view! { <span class="tok-chip small">{super::token_label(t)}</span> }).collect_view();
                view! { <div class="token-row"><span class="row-label">{label}</span>{chips}</div> }
            };
            let v2 = v.clone();
            view! {
                <p class="run-meta" data-testid="patch-summary">{summary}</p>
                <p data-testid="patch-strongest">{strongest}</p>
                {tokens_row("clean", &v.clean)}
                {tokens_row("corrupted", &v.corrupted)}
                <label class="check"><input type="checkbox" data-testid="patch-raw" prop:checked=raw on:change=move |ev| raw.set(event_target_checked(&ev)) />"shade by the raw metric"</label>
                <PatchHeatmap
                    view=v.clone()
                    raw=raw
                    picked=picked
                    pad=pad.get()
                    on_cell=Callback::new(move |c: PatchCell| {
                        // A path is not one patched run: its cells do not open.
                        if v2.path.is_none() {
                            picked.set(Some(c));
                            on_cell.run((v2.clone(), c));
                        }
                    })
                />
            }
            .into_any()
        }
    };
    view! {
        <div class="patch-panel">
            <p class="help">
                "Activation patching runs the model on a clean and a corrupted prompt of the same token length and copies one activation from one run into the other, cell by cell. The clean prompt is the one above; type the corrupted one here."
            </p>
            <label class="field wide">"Corrupted prompt "
                <input type="text" data-testid="corrupted-prompt" placeholder="the prompt with the key token changed" prop:value=corrupted on:input=move |ev| corrupted.set(event_target_value(&ev)) />
            </label>
            <div class="controls">
                <label class="field">"Sweep "
                    <select data-testid="patch-mode" on:change=move |ev| { let m = if event_target_value(&ev) == "path" { PatchMode::Path } else { PatchMode::Activation }; set(&|s| s.mode = m) }>
                        <option value="activation" selected=move || settings.get().mode == PatchMode::Activation>"activation patching"</option>
                        <option value="path" selected=move || settings.get().mode == PatchMode::Path>"path patching (senders \u{2192} receivers)"</option>
                    </select>
                </label>
            </div>
            <Show when=move || settings.get().mode == PatchMode::Path>
                <p class="help">
                    "Path patching (Wang et al. 2022): for each sender head (and MLP), the clean run with every other head's output frozen to its clean value and the sender's taken from the corrupted run (MLPs and norms recomputed); then only the receivers' inputs are patched from that run. It measures the effect that flows along the direct path from sender to receiver."
                </p>
                <div class="controls">
                    <label class="field">"Receivers "
                        <select data-testid="path-receivers" on:change=move |ev| { let l = event_target_value(&ev) == "logits"; set(&|s| s.to_logits = l) }>
                            <option value="logits" selected=move || settings.get().to_logits>"the logits (final residual stream)"</option>
                            <option value="heads" selected=move || !settings.get().to_logits>"heads' inputs"</option>
                        </select>
                    </label>
                    <Show when=move || !settings.get().to_logits>
                        <input type="text" data-testid="path-heads" placeholder="1.0, 1.3" prop:value=move || settings.get().receiver_heads on:input=move |ev| { let t = event_target_value(&ev); set(&|s| s.receiver_heads = t.clone()) } />
                        <select data-testid="path-input" on:change=move |ev| { if let Ok(i) = event_target_value(&ev).parse::<HeadInput>() { set(&|s| s.input = i) } }>
                            {HeadInput::ALL.into_iter().map(|i| view! { <option value=i.name() selected=move || settings.get().input == i>{format!("{} input", i.name())}</option> }).collect_view()}
                        </select>
                    </Show>
                    <Show when=move || has_mlp.get()>
                        <label class="check"><input type="checkbox" data-testid="path-mlp" prop:checked=move || settings.get().mlp_senders on:change=move |ev| { let b = event_target_checked(&ev); set(&|s| s.mlp_senders = b) } />"MLPs as senders too"</label>
                    </Show>
                </div>
            </Show>
            <div class="controls" class:hidden=move || settings.get().mode == PatchMode::Path>
                <label class="field">"Patch "
                    <select data-testid="patch-component" on:change=move |ev| { let v = event_target_value(&ev); if let Ok(c) = v.parse() { set(&|s| s.component = c) } }>{components}</select>
                </label>
                <label class="field">"at "
                    <select data-testid="patch-by" on:change=move |ev| { let by = if event_target_value(&ev) == "all" { Granularity::AllPos } else { Granularity::ByPos }; set(&|s| s.by = by) }>
                        <option value="pos" selected=move || settings.get().by == Granularity::ByPos>{granularity_label(Granularity::ByPos)}</option>
                        <option value="all" selected=move || settings.get().by == Granularity::AllPos>{granularity_label(Granularity::AllPos)}</option>
                    </select>
                </label>
                <label class="field">"from "
                    <select data-testid="patch-direction" on:change=move |ev| { let d = if event_target_value(&ev) == "noising" { Direction::Noising } else { Direction::Denoising }; set(&|s| s.direction = d) }>
                        <option value="denoising" selected=move || settings.get().direction == Direction::Denoising>{direction_label(Direction::Denoising)}</option>
                        <option value="noising" selected=move || settings.get().direction == Direction::Noising>{direction_label(Direction::Noising)}</option>
                    </select>
                </label>
            </div>
            <div class="controls">
                <label class="field">"Metric "
                    <select data-testid="patch-metric" on:change=move |ev| { if let Ok(m) = event_target_value(&ev).parse() { set(&|s| s.metric = m) } }>{metrics}</select>
                </label>
                <Show when=move || settings.get().metric.needs_target()>
                    <label class="field">"target " <input type="text" data-testid="patch-target" placeholder="the clean prediction" prop:value=target on:change=move |ev| on_target.run(event_target_value(&ev)) /></label>
                </Show>
                <Show when=move || settings.get().metric == MetricKind::LogitDiff>
                    <label class="field">"distractor " <input type="text" data-testid="patch-distractor" placeholder="the corrupted prediction" prop:value=distractor on:change=move |ev| on_distractor.run(event_target_value(&ev)) /></label>
                </Show>
                <label class="check"><input type="checkbox" data-testid="patch-at-selected" prop:checked=move || settings.get().at_selected on:change=move |ev| { let b = event_target_checked(&ev); set(&|s| s.at_selected = b) } />
                    {move || format!("at the selected token (position {}) instead of the last", pos.get())}
                </label>
            </div>
            <button class="primary" data-testid="patch-run" disabled=move || !ready.get() || running() on:click=move |_| on_run.run(())>"Run sweep"</button>
            {status}
            {results}
        </div>
    }
}
