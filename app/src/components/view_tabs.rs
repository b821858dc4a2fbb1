use glassbox_core::View;
use leptos::prelude::*;

/// The inspect views, as tabs. Views a model cannot show (neurons of an attention-only model)
/// are left out.
#[component]
pub fn ViewTabs(
    #[prop(into)] current: Signal<View>,
    /// Whether the model has MLP neurons.
    #[prop(into)]
    has_mlp: Signal<bool>,
    /// Whether the model has shipped scrubbing hypotheses, and whether it generates text.
    #[prop(into)]
    scrubbable: Signal<bool>,
    #[prop(into)] generates: Signal<bool>,
    on_select: Callback<View>,
) -> impl IntoView {
    let tabs = move || {
        [
            (View::Attention, "Attention", "attention"),
            (View::Neurons, "Neurons", "neurons"),
            (View::Lens, "Logit lens", "lens"),
            (View::Attribution, "Attribution", "attribution"),
            (View::Patching, "Patching", "patching"),
            (View::Ablation, "Ablation", "ablation"),
            (View::Scrubbing, "Scrubbing", "scrubbing"),
            (View::Steering, "Steering", "steering"),
        ]
        .into_iter()
        .filter(|(v, _, _)| match v {
            View::Neurons => has_mlp.get(),
            View::Scrubbing => scrubbable.get(),
            View::Steering => generates.get(),
            _ => true,
        })
        .map(|(v, label, id)| {
            view! {
                <button
                    role="tab"
                    class="tab"
                    class:selected=move || current.get() == v
                    aria-selected=move || (current.get() == v).to_string()
                    data-testid=format!("tab-{id}")
                    on:click=move |_| on_select.run(v)
                >
                    {label}
                </button>
            }
        })
        .collect_view()
    };
    view! { <div class="tabs" role="tablist" aria-label="views">{tabs}</div> }
}
