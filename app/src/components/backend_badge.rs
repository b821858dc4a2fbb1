use leptos::prelude::*;

/// The badge naming the backend in use ("Backend: WebGPU (...)" or "Backend: CPU").
#[component]
pub fn BackendBadge(
    /// The backend's name; `None` while it is starting.
    #[prop(into)]
    label: Signal<Option<String>>,
    /// Whether a forward pass is running now.
    #[prop(into)]
    running: Signal<bool>,
) -> impl IntoView {
    let is_gpu = move || label.get().is_some_and(|l| l.starts_with("WebGPU"));
    view! {
        <div class="badge" class:gpu=is_gpu class:cpu=move || !is_gpu() && label.get().is_some() data-testid="backend">
            {move || match label.get() {
                Some(l) => format!("Backend: {l}"),
                None => "Backend: starting\u{2026}".to_string(),
            }}
            <span class="spinner" class:on=running aria-hidden="true"></span>
        </div>
    }
}
