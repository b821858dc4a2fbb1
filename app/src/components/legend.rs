use leptos::prelude::*;

/// A colour scale's legend: the gradient with its two ends and what the colour means.
/// `palette` is a CSS class of the gradient: "seq" (white to blue), "div" (blue, white,
/// orange: negative to positive), "heat" (white to red).
#[component]
pub fn Legend(
    /// What the colour shows.
    #[prop(into)]
    label: String,
    #[prop(into)] low: Signal<String>,
    #[prop(into)] high: Signal<String>,
    palette: &'static str,
) -> impl IntoView {
    view! {
        <div class="legend" data-testid="legend">
            <span class="legend-label">{label}</span>
            <span class="legend-end">{low}</span>
            <span class=format!("legend-bar {palette}")></span>
            <span class="legend-end">{high}</span>
        </div>
    }
}
