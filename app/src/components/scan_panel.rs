use std::sync::Arc;

use leptos::prelude::*;

use crate::scan::{snippet, TopActivations};

/// A finished scan of a corpus for one layer's MLP neurons.
#[derive(Debug)]
pub struct CorpusScan {
    pub layer: usize,
    /// The corpus text scanned, as characters.
    pub chars: Vec<char>,
    pub top: TopActivations,
}

/// Top-activating examples: for a neuron of a layer's MLP (`mlp.hook_post`), the places in a
/// held-out slice of the corpus where it fires most, each in its context.
#[component]
pub fn ScanPanel(
    /// Layers of the model.
    #[prop(into)]
    n_layers: Signal<usize>,
    /// The layer to scan and the neuron shown.
    layer: RwSignal<usize>,
    neuron: RwSignal<usize>,
    /// The last scan, if any.
    #[prop(into)]
    scan: Signal<Option<Arc<CorpusScan>>>,
    /// Characters scanned so far while scanning, `None` when not scanning.
    #[prop(into)]
    progress: Signal<Option<(usize, usize)>>,
    /// Scans the chosen layer.
    on_scan: Callback<usize>,
    /// Stops the scan in progress.
    on_cancel: Callback<()>,
    /// What the corpus is, in a few words.
    corpus: &'static str,
) -> impl IntoView {
    let n_neurons = move || scan.get().map_or(0, |s| s.top.n_neurons());
    let layer_buttons = move || {
        (0..n_layers.get())
            .map(|l| view! { <button class="seg" class:selected=move || layer.get() == l on:click=move |_| layer.set(l)>{format!("Layer {l}")}</button> })
            .collect_view()
    };
    let examples = move || {
        let s = scan.get()?;
        let n = neuron.get().min(s.top.n_neurons().saturating_sub(1));
        let rows = s
            .top
            .top(n)
            .iter()
            .map(|&(v, at)| {
                let (before, ch, after) = snippet(&s.chars, at, 40, 12);
                let shown = if ch == " " { "\u{2423}".to_string() } else { ch };
                view! {
                    <li data-testid="scan-example" data-activation=format!("{v:.5}") data-at=at>
                        <span class="act">{format!("{v:.2}")}</span>
                        <code class="ctx">{before}<mark>{shown}</mark>{after}</code>
                    </li>
                }
            })
            .collect_view();
        Some(view! {
            <p class="help">{format!("Neuron {n} of layer {}, its strongest activations in the slice (the highlighted character is the one just read):", s.layer)}</p>
            <ol class="scan-list">{rows}</ol>
        })
    };
    view! {
        <section class="panel" data-testid="scan-panel">
            <h2>"Top-activating examples"</h2>
            <p class="help">{format!("Runs the model over {corpus} and keeps, for every MLP neuron of the chosen layer, the characters where it fires most.")}</p>
            <div class="segmented">{layer_buttons}</div>
            <div class="neuron-controls">
                <button class="primary" data-testid="scan-run" disabled=move || progress.get().is_some() on:click=move |_| on_scan.run(layer.get())>
                    {move || match progress.get() {
                        Some((done, total)) => format!("Scanning\u{2026} {done} of {total} characters"),
                        None => "Scan".to_string(),
                    }}
                </button>
                {move || progress.get().is_some().then(|| view! { <button data-testid="scan-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button> })}
                <label>"Neuron "
                    <input type="number" min="0" data-testid="scan-neuron" max=move || n_neurons().saturating_sub(1).to_string()
                        prop:value=move || neuron.get().to_string()
                        on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { neuron.set(v); } } />
                </label>
            </div>
            {examples}
        </section>
    }
}
