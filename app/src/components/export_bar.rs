use leptos::prelude::*;

use crate::export::{save, Figure, Format};

/// The export buttons of one view: PNG and SVG of its figure, CSV and JSON of its numbers.
/// Disabled while the view has nothing to export. `view` names it in test ids
/// (`export-<view>`) and in nothing else.
#[component]
pub fn ExportBar(
    /// What the view shows, as a figure (`None` while it computes).
    #[prop(into)]
    figure: Signal<Option<Figure>>,
    view: &'static str,
) -> impl IntoView {
    let failed = RwSignal::new(None::<String>);
    let buttons = Format::ALL
        .into_iter()
        .map(|f| {
            let label = f.ext().to_uppercase();
            view! {
                <button
                    class="export-button"
                    data-testid=format!("export-{}", f.ext())
                    title=format!("Download this figure as {label}")
                    disabled=move || figure.with(Option::is_none)
                    on:click=move |_| {
                        if let Some(fig) = figure.get_untracked() {
                            failed.set(save(&fig, f).err());
                        }
                    }
                >
                    {label.clone()}
                </button>
            }
        })
        .collect_view();
    view! {
        <div class="export-bar" data-testid=format!("export-{view}")>
            <span class="export-label">"Export"</span>
            {buttons}
            {move || failed.get().map(|e| view! { <span class="error">{format!("Export failed: {e}")}</span> })}
        </div>
    }
}
