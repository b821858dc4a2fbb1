//! Export from the page: each view's figure (a `Signal<Option<Figure>>` for its `ExportBar`,
//! from `crate::figures`) and the run's cached activations, which the worker writes as numpy
//! files (every hook as an `.npz`, or one hook as an `.npy`; `core::export`).

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{Outcome, Page};
use crate::export::Figure;

/// The figure of a causal view's latest answer, while it belongs to the model in use.
pub fn outcome<T: Send + Sync + 'static>(
    page: Page,
    signal: RwSignal<Option<Outcome<T>>>,
    figure: impl Fn(&T) -> Figure + Send + Sync + 'static,
) -> Signal<Option<Figure>> {
    Signal::derive(move || signal.with(|o| o.as_ref().filter(|(g, _)| *g == page.model_gen.get()).and_then(|(_, r)| r.as_ref().ok()).map(|v| figure(v))))
}

/// The figure of an inspect view's answer.
pub fn answer<T: Send + Sync + 'static>(
    answer: Signal<Option<Result<Arc<T>, String>>>,
    figure: impl Fn(&T) -> Figure + Send + Sync + 'static,
) -> Signal<Option<Figure>> {
    Signal::derive(move || answer.with(|a| a.as_ref().and_then(|r| r.as_ref().ok()).map(|v| figure(v))))
}

/// The run's activations: every hook as an `.npz`, or the chosen hook as an `.npy`.
#[component]
pub fn ActivationsExport(page: Page) -> impl IntoView {
    let hooks = Signal::derive(move || page.model.get().map(|m| glassbox_core::hook_names(&m.cfg)).unwrap_or_default());
    let hook = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let status = RwSignal::new(None::<Result<String, String>>);
    let go = move |one: Option<String>| {
        let Some(engine) = page.engine.get_value() else { return };
        let exp = page.experiment.get_untracked();
        busy.set(true);
        status.set(None);
        spawn_local(async move {
            let id = engine.next_id();
            let result = engine.export(id, &exp, one).await.map_err(|e| e.to_string()).and_then(|f| {
                crate::export::download_bytes(&f.name, &f.bytes)?;
                let kb = f.bytes.len() as f64 / 1024.0;
                Ok(format!(
                    "{}: {} array{}, {kb:.0} KB (shapes [1, ...]: TransformerLens's batch axis).",
                    f.name,
                    f.arrays,
                    if f.arrays == 1 { "" } else { "s" }
                ))
            });
            status.set(Some(result));
            busy.set(false);
        });
    };
    let picked = move || Some(hook.get()).filter(|h| !h.is_empty()).or_else(|| hooks.with(|h| h.first().cloned()));
    view! {
        <div class="export-bar activations" data-testid="export-activations">
            <span class="export-label">"Activations"</span>
            <button class="export-button" data-testid="export-npz" disabled=move || busy.get() title="Every hook of this run, one .npy per TransformerLens hook name, in one .npz" on:click=move |_| go(None)>
                "All hooks (.npz)"
            </button>
            <select data-testid="export-hook" aria-label="hook to export" on:change=move |ev| hook.set(event_target_value(&ev))>
                {move || hooks.get().into_iter().map(|h| view! { <option value=h.clone() selected={let h = h.clone(); move || picked().as_deref() == Some(h.as_str())}>{h.clone()}</option> }).collect_view()}
            </select>
            <button class="export-button" data-testid="export-npy" disabled=move || busy.get() on:click=move |_| go(picked())>".npy"</button>
            {move || busy.get().then(|| view! { <span class="help">"Running with every hook cached\u{2026}"</span> })}
            {move || status.get().map(|s| match s {
                Ok(m) => view! { <span class="help" data-testid="export-activations-status">{m}</span> }.into_any(),
                Err(e) => view! { <span class="error" data-testid="export-activations-status">{e}</span> }.into_any(),
            })}
        </div>
    }
}
