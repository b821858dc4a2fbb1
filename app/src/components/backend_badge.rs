use leptos::prelude::*;

use crate::engine::CpuReason;

/// The badge naming the backend in use and, on the CPU, why ("Backend: CPU: faster than this
/// browser's software WebGPU"), with a button that moves the model to the other backend.
#[component]
pub fn BackendBadge(
    /// The backend's name; `None` while it is starting.
    #[prop(into)]
    label: Signal<Option<String>>,
    /// Why the engine is on the CPU, when it is.
    #[prop(into)]
    reason: Signal<Option<CpuReason>>,
    /// Whether a forward pass is running now.
    #[prop(into)]
    running: Signal<bool>,
    /// Called with "WebGPU" (`true`) or "CPU" (`false`) when the reader asks for the other one;
    /// `None` where the page offers no switch.
    #[prop(optional)]
    on_switch: Option<Callback<bool>>,
) -> impl IntoView {
    let is_gpu = move || label.get().is_some_and(|l| l.starts_with("WebGPU"));
    let text = move || match (label.get(), reason.get()) {
        (None, _) => "Backend: starting\u{2026}".to_string(),
        (Some(l), Some(CpuReason::SoftwareGpu(_))) => format!("Backend: {l}: faster than this browser's software WebGPU"),
        (Some(l), _) => format!("Backend: {l}"),
    };
    let title = move || {
        match reason.get() {
        Some(CpuReason::SoftwareGpu(adapter)) => format!(
            "This browser's only WebGPU adapter is {adapter}, which runs on the CPU itself: a forward pass is many times slower there than on glassbox's CPU path. Same results either way."
        ),
        Some(CpuReason::Forced) => "You asked for the CPU backend.".to_string(),
        Some(CpuReason::GpuFailed(why)) => format!("WebGPU could not be used: {why}"),
        None => String::new(),
    }
    };
    // What the switch offers: WebGPU when on the CPU for a reason WebGPU could be tried
    // (forced or software), the CPU when on WebGPU.
    let offer = move || match (label.get(), reason.get()) {
        (None, _) | (_, Some(CpuReason::GpuFailed(_))) => None,
        (Some(_), Some(_)) => Some(true),
        (Some(_), None) => Some(false),
    };
    view! {
        <div class="badge" class:gpu=is_gpu class:cpu=move || !is_gpu() && label.get().is_some() data-testid="backend" title=title>
            <span data-testid="backend-label">{text}</span>
            <span class="spinner" class:on=running aria-hidden="true"></span>
            {move || on_switch.zip(offer()).map(|(switch, gpu)| view! {
                <button
                    type="button"
                    class="backend-switch"
                    data-testid="backend-switch"
                    disabled=running
                    on:click=move |_| switch.run(gpu)
                >
                    {if gpu { "Use WebGPU" } else { "Use the CPU" }}
                </button>
            })}
        </div>
    }
}
