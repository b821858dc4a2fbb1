use glassbox_core::{InterventionSpec, Prompt, SpecOp};
use leptos::prelude::*;

/// Says how the run on screen differs from the plain model (a patch opened from a sweep, an
/// ablation applied), with a button that removes the changes.
#[component]
pub fn InterventionList(#[prop(into)] interventions: Signal<Vec<InterventionSpec>>, on_clear: Callback<()>) -> impl IntoView {
    move || {
        let ivs = interventions.get();
        (!ivs.is_empty()).then(|| {
            let items = ivs.iter().map(|i| view! { <li>{describe(i)}</li> }).collect_view();
            view! {
                <div class="interventions" data-testid="interventions" role="status">
                    <strong>"This run is changed:"</strong>
                    <ul>{items}</ul>
                    <button data-testid="interventions-clear" on:click=move |_| on_clear.run(())>"Show the unchanged run"</button>
                </div>
            }
        })
    }
}

/// One intervention in words.
pub fn describe(i: &InterventionSpec) -> String {
    let mut at = String::new();
    if let Some(h) = i.head {
        at.push_str(&format!(" head {h}"));
    }
    if let Some(n) = i.neuron {
        at.push_str(&format!(" neuron {n}"));
    }
    match &i.positions {
        Some(p) if p.len() == 1 => at.push_str(&format!(" at position {}", p[0])),
        Some(p) => at.push_str(&format!(" at positions {p:?}")),
        None => at.push_str(" at every position"),
    }
    match &i.op {
        SpecOp::Zero => format!("{}{at} set to zero", i.hook),
        SpecOp::Scale(s) => format!("{}{at} scaled by {s}", i.hook),
        SpecOp::Add(_) => format!("{}{at} plus a vector", i.hook),
        SpecOp::PatchFrom(Prompt::Clean) => format!("{}{at} patched from the clean prompt's run (into the corrupted prompt)", i.hook),
        SpecOp::PatchFrom(Prompt::Corrupted) => format!("{}{at} patched from the corrupted prompt's run", i.hook),
    }
}
