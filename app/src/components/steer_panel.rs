use std::sync::Arc;

use glassbox_core::{SteerSpec, SteerVector};
use leptos::prelude::*;

use crate::causal::SteerView;

/// Steering: a vector (ActAdd from a prompt pair, or a neuron's output direction) times a
/// coefficient, added while generating; the continuation with and without it side by side,
/// sampled with the same seed.
#[component]
pub fn SteerPanel(
    settings: RwSignal<SteerSpec>,
    #[prop(into)] n_layers: Signal<usize>,
    #[prop(into)] has_mlp: Signal<bool>,
    #[prop(into)] ready: Signal<bool>,
    #[prop(into)] running: Signal<bool>,
    #[prop(into)] result: Signal<Option<Result<Arc<SteerView>, String>>>,
    on_run: Callback<()>,
) -> impl IntoView {
    let is_actadd = move || matches!(settings.get().vector, SteerVector::ActAdd { .. });
    let layer_of = move || match settings.get().vector {
        SteerVector::ActAdd { layer, .. } | SteerVector::Neuron { layer, .. } => layer,
    };
    let set_layer = move |l: usize| {
        settings.update(|s| match &mut s.vector {
            SteerVector::ActAdd { layer, .. } | SteerVector::Neuron { layer, .. } => *layer = l,
        })
    };
    let text_of = move |plus: bool| match settings.get().vector {
        SteerVector::ActAdd { plus: p, minus: m, .. } => {
            if plus {
                p
            } else {
                m
            }
        }
        _ => String::new(),
    };
    let set_text = move |plus: bool, t: String| {
        settings.update(|s| {
            if let SteerVector::ActAdd { plus: p, minus: m, .. } = &mut s.vector {
                *(if plus { p } else { m }) = t;
            }
        })
    };
    let layers =
        move || (0..n_layers.get()).map(|l| view! { <option value=l.to_string() selected=move || layer_of() == l>{l.to_string()}</option> }).collect_view();
    let num = |v: &str| v.trim().parse::<f64>().ok();
    let results = move || match result.get() {
        None => view! { <p class="help">"Generate to compare the model's continuation with and without the vector."</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" data-testid="steer-error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let meta = format!(
                "{}. {} and {} new tokens (stopped at {} and {}), {:.0} ms on {}.",
                if v.on { v.vector.clone() } else { "The vector is off: both columns are the unsteered model".into() },
                v.tokens.0,
                v.tokens.1,
                v.stops.0,
                v.stops.1,
                v.elapsed_ms,
                v.backend
            );
            view! {
                <p class="run-meta" data-testid="steer-summary">{meta}</p>
                <div class="two-col">
                    <div>
                        <h4>"Without the vector"</h4>
                        <p class="generation"><span class="gen-prompt">{v.prompt.clone()}</span><span data-testid="steer-plain">{v.unsteered.clone()}</span></p>
                    </div>
                    <div>
                        <h4>{if v.on { "With the vector" } else { "With the vector (off)" }}</h4>
                        <p class="generation"><span class="gen-prompt">{v.prompt.clone()}</span><span data-testid="steer-steered">{v.steered.clone()}</span></p>
                    </div>
                </div>
            }
            .into_any()
        }
    };
    view! {
        <div class="steer-panel">
            <p class="help">
                "Steering (ActAdd, Turner et al. 2023) adds a vector to the residual stream while the model generates: the difference of two prompts' activations at a layer, aligned with the first positions of your prompt, or a neuron's output direction at every position. The prompt above is continued twice with the same seed, without and with the vector."
            </p>
            <div class="controls">
                <label class="field">"Vector "
                    <select data-testid="steer-kind" on:change=move |ev| {
                        let l = layer_of();
                        let v = if event_target_value(&ev) == "neuron" { SteerVector::Neuron { layer: l, neuron: 0 } } else { SteerVector::ActAdd { plus: "the sea".into(), minus: "the man".into(), layer: l } };
                        settings.update(|s| s.vector = v)
                    }>
                        <option value="actadd" selected=is_actadd>"ActAdd: a prompt pair's difference"</option>
                        <Show when=move || has_mlp.get()><option value="neuron" selected=move || !is_actadd()>"a neuron's output direction"</option></Show>
                    </select>
                </label>
                <label class="field">"layer "
                    <select data-testid="steer-layer" on:change=move |ev| { if let Ok(l) = event_target_value(&ev).parse() { set_layer(l) } }>{layers}</select>
                </label>
                <label class="field">"coefficient "
                    <input type="number" step="any" data-testid="steer-coeff" prop:value=move || settings.get().coeff.to_string() on:change=move |ev| {
                        if let Some(c) = num(&event_target_value(&ev)) { settings.update(|s| s.coeff = c as f32) }
                    } />
                </label>
                <label class="check"><input type="checkbox" data-testid="steer-on" prop:checked=move || settings.get().on on:change=move |ev| { let b = event_target_checked(&ev); settings.update(|s| s.on = b) } />"vector on"</label>
            </div>
            <Show when=is_actadd fallback=move || view! {
                <div class="controls">
                    <label class="field">"neuron "
                        <input type="number" min="0" data-testid="steer-neuron" prop:value=move || match settings.get().vector { SteerVector::Neuron { neuron, .. } => neuron.to_string(), _ => String::new() } on:change=move |ev| {
                            if let Ok(n) = event_target_value(&ev).trim().parse::<usize>() { settings.update(|s| if let SteerVector::Neuron { neuron, .. } = &mut s.vector { *neuron = n }) }
                        } />
                    </label>
                </div>
            }>
                <div class="controls">
                    <label class="field">"plus " <input type="text" data-testid="steer-plus" prop:value=move || text_of(true) on:input=move |ev| set_text(true, event_target_value(&ev)) /></label>
                    <label class="field">"minus " <input type="text" data-testid="steer-minus" prop:value=move || text_of(false) on:input=move |ev| set_text(false, event_target_value(&ev)) /></label>
                </div>
            </Show>
            <div class="controls">
                <label class="field">"new tokens "
                    <input type="number" min="1" max="512" data-testid="steer-max" prop:value=move || settings.get().max_new_tokens.to_string() on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).trim().parse::<usize>() { settings.update(|s| s.max_new_tokens = n) }
                    } />
                </label>
                <label class="field">"temperature "
                    <input type="number" min="0" step="0.1" data-testid="steer-temperature" prop:value=move || settings.get().temperature.to_string() on:change=move |ev| {
                        if let Some(t) = num(&event_target_value(&ev)) { settings.update(|s| s.temperature = t) }
                    } />
                </label>
                <label class="field">"top-p "
                    <input type="number" min="0" max="1" step="0.05" data-testid="steer-top-p" placeholder="off" prop:value=move || settings.get().top_p.map(|p| p.to_string()).unwrap_or_default() on:change=move |ev| {
                        let p = num(&event_target_value(&ev));
                        settings.update(|s| s.top_p = p)
                    } />
                </label>
                <label class="field">"seed "
                    <input type="number" min="0" data-testid="steer-seed" prop:value=move || settings.get().seed.to_string() on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).trim().parse::<u64>() { settings.update(|s| s.seed = n) }
                    } />
                </label>
                <label class="field">"stop at "
                    <input type="text" data-testid="steer-stop" placeholder="tokens, comma-separated" prop:value=move || settings.get().stop.join(",") on:change=move |ev| {
                        let stops = event_target_value(&ev).split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
                        settings.update(|s| s.stop = stops)
                    } />
                </label>
            </div>
            <button class="primary" data-testid="steer-run" disabled=move || !ready.get() || running.get() on:click=move |_| on_run.run(())>
                {move || if running.get() { "Generating\u{2026}" } else { "Generate" }}
            </button>
            {results}
        </div>
    }
}
