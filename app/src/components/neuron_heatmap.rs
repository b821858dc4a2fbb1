use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::inspect::NeuronsView;

/// The neurons of a layer that fire most on the prompt, as a neurons x tokens heatmap
/// (orange positive, blue negative); a row opens that neuron's page.
#[component]
pub fn NeuronHeatmap(
    #[prop(into)] neurons: Signal<Option<Result<Arc<NeuronsView>, String>>>,
    #[prop(into)] tokens: Signal<Vec<String>>,
    /// The positions drawn as columns (a padded model's padding hidden); every position when
    /// empty.
    #[prop(into)]
    shown: Signal<Vec<usize>>,
    #[prop(into)] selected: Signal<usize>,
    on_neuron: Callback<usize>,
) -> impl IntoView {
    let scale = Memo::new(move |_| match neurons.get() {
        Some(Ok(v)) => v.acts.iter().copied().filter(|x| x.is_finite()).fold(0f32, |m, x| m.max(x.abs())).max(1e-6),
        _ => 1.0,
    });
    let grid = move || match neurons.get() {
        None => view! { <p class="computing">"Finding the neurons that fire most\u{2026}"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error">{e}</p> }.into_any(),
        Some(Ok(v)) => {
            let tokens = tokens.get();
            let s = scale.get();
            let cols = crate::analysis::columns(&shown.get(), v.n_pos);
            let header = cols
                .iter()
                .map(|&p| {
                    let t = tokens.get(p).cloned().unwrap_or_default();
                    view! { <th class="tok-col" title=t.clone()>{super::token_label(&t)}</th> }
                })
                .collect_view();
            let rows = v
                .neurons
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let n = n as usize;
                    let cells = cols
                        .iter()
                        .map(|&p| {
                            let a = v.acts[i * v.n_pos + p];
                            let t = tokens.get(p).cloned().unwrap_or_default();
                            view! {
                                <td
                                    class="nc"
                                    class:neg=a < 0.0
                                    data-value=format!("{a:.6}")
                                    title=format!("neuron {n}, token {p} \u{201c}{t}\u{201d}: {a:.4}")
                                    style:--a=format!("{:.3}", (a.abs() / s).clamp(0.0, 1.0))
                                ></td>
                            }
                        })
                        .collect_view();
                    view! {
                        <tr data-testid="neuron-row" data-neuron=n class:selected=move || selected.get() == n on:click=move |_| on_neuron.run(n)>
                            <th class="row-label">{format!("N{n}")}</th>
                            {cells}
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <p class="help">{format!("The {} neurons of layer {} with the largest activation on the prompt ({}). Click a row for the neuron's page.", v.neurons.len(), v.layer, v.activation)}</p>
                <div class="table-wrap" tabindex="0">
                    <table class="neuron-grid" data-testid="neuron-heatmap">
                        <thead><tr><th></th>{header}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                <Legend label="activation" low=Signal::derive(move || format!("{:.2}", -scale.get())) high=Signal::derive(move || format!("{:.2}", scale.get())) palette="div" />
            }
            .into_any()
        }
    };
    view! { <div class="neuron-heatmap">{grid}</div> }
}
