use std::sync::Arc;

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};

use crate::fourier::{grid_frequency_fractions, top_frequencies, top_share};

/// Every MLP neuron's activation at `=` over all inputs: `acts[(a * p + b) * d_mlp + n]`.
#[derive(Debug)]
pub struct NeuronGrid {
    pub p: usize,
    pub d_mlp: usize,
    pub acts: Vec<f32>,
}

impl NeuronGrid {
    /// Neuron `n`'s activations as a `p x p` grid over (a, b).
    pub fn neuron(&self, n: usize) -> Vec<f32> {
        (0..self.p * self.p).map(|i| self.acts[i * self.d_mlp + n]).collect()
    }
}

/// The modular-addition model in the Fourier basis: how the embedding of 0..p-1 spreads over
/// frequencies (a few key ones stand out), and each MLP neuron's response over all (a, b),
/// drawn as a p x p picture, with the frequency that explains most of it.
#[component]
pub fn FourierPanel(
    /// The norm of the embedding along each frequency 0..=p/2.
    #[prop(into)]
    embedding_norms: Signal<Vec<f32>>,
    /// The neurons' responses, once computed.
    #[prop(into)]
    grid: Signal<Option<Arc<NeuronGrid>>>,
    /// How many of the p values of a are done while computing, `None` when not computing.
    #[prop(into)]
    progress: Signal<Option<usize>>,
    /// Computes the responses (runs the model on all p * p inputs).
    on_compute: Callback<()>,
    /// Stops that computation.
    on_cancel: Callback<()>,
    /// The neuron shown.
    #[prop(into)]
    neuron: Signal<usize>,
    /// Chooses the neuron shown.
    on_neuron: Callback<usize>,
) -> impl IntoView {
    let bars = move || {
        let norms = embedding_norms.get();
        let max = norms.iter().skip(1).copied().fold(0f32, f32::max).max(1e-12);
        let top = top_frequencies(&norms, 6);
        norms
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, &v)| {
                let key = top.contains(&k);
                view! {
                    <div class="fbar" class:key=key data-k=k data-value=format!("{v:.5}") title=format!("frequency {k}: {v:.3}")>
                        <div class="fill" style:height=format!("{:.1}%", 100.0 * v / max)></div>
                        {key.then(|| view! { <span class="flabel">{k}</span> })}
                    </div>
                }
            })
            .collect_view()
    };
    let summary = move || {
        let norms = embedding_norms.get();
        if norms.len() < 2 {
            return (String::new(), String::new(), String::new());
        }
        let top = top_frequencies(&norms, 6);
        let share = top_share(&norms, 6);
        let list: Vec<String> = top.iter().map(|k| k.to_string()).collect();
        (
            list.join(","),
            format!("{share:.4}"),
            format!(
                "The 6 largest of the {} frequencies ({}) hold {:.0}% of the embedding's norm (squared, constant excluded); a random embedding would spread evenly, about {:.0}% for any 6.",
                norms.len() - 1,
                list.join(", "),
                share * 100.0,
                600.0 / (norms.len() - 1) as f32
            ),
        )
    };

    let canvas = NodeRef::<Canvas>::new();
    let selected = Memo::new(move |_| {
        let g = grid.get()?;
        let n = neuron.get().min(g.d_mlp - 1);
        let values = g.neuron(n);
        let fractions = grid_frequency_fractions(&values, g.p);
        let k = top_frequencies(&fractions, 1).first().copied().unwrap_or(0);
        Some((g.p, values, k, fractions.get(k).copied().unwrap_or(0.0)))
    });
    Effect::new(move |_| {
        let (Some((p, values, _, _)), Some(c)) = (selected.get(), canvas.get()) else { return };
        draw(&c, p, &values);
    });
    let d_mlp = move || grid.get().map_or(0, |g| g.d_mlp);
    let step = move |delta: i64| {
        let n = d_mlp() as i64;
        if n > 0 {
            on_neuron.run(((neuron.get_untracked() as i64 + delta).rem_euclid(n)) as usize);
        }
    };

    view! {
        <section class="panel" data-testid="fourier-panel">
            <h2>"Fourier basis"</h2>
            <p class="help">"Each bar is one frequency k: how much of the embedding of the numbers 0\u{2013}112 lies along cos(2\u{3c0}kx/113) and sin(2\u{3c0}kx/113). A model that has grokked modular addition uses a few key frequencies (labelled)."</p>
            <div class="fbars" data-testid="fourier-embedding" data-top=move || summary().0 data-share=move || summary().1>{bars}</div>
            <p class="muted" data-testid="fourier-summary">{move || summary().2}</p>
            <h3>"Neurons over all inputs"</h3>
            <p class="help">"An MLP neuron's activation at \u{201c}=\u{201d} for every a (rows, 0 at the top) and b (columns): periodic stripes, mostly at one key frequency."</p>
            {move || match (grid.get(), progress.get()) {
                (None, None) => view! {
                    <button class="primary" data-testid="fourier-compute" on:click=move |_| on_compute.run(())>"Run all 12,769 inputs"</button>
                }.into_any(),
                (None, Some(done)) => view! {
                    <div class="loading"><progress max="113" value=done.to_string()></progress><span>{format!("Running a = 0\u{2013}{done} of 112\u{2026}")}</span><button data-testid="fourier-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button></div>
                }.into_any(),
                (Some(_), _) => view! {
                    <div class="neuron-controls">
                        <button on:click=move |_| step(-1) aria-label="previous neuron">"\u{2190}"</button>
                        <label>"Neuron "
                            <input type="number" min="0" max=move || d_mlp().saturating_sub(1).to_string() data-testid="neuron-input"
                                prop:value=move || neuron.get().to_string()
                                on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { on_neuron.run(v.min(d_mlp().saturating_sub(1))); } } />
                        </label>
                        <button on:click=move |_| step(1) aria-label="next neuron">"\u{2192}"</button>
                    </div>
                    {move || selected.get().map(|(_, _, k, f)| view! {
                        <p data-testid="neuron-frequency" data-k=k data-fraction=format!("{f:.4}")>
                            {format!("Neuron {}: {:.0}% of its variance over (a, b) is at frequency {k} (cos and sin of {k}a, {k}b, {k}(a+b), {k}(a\u{2212}b)).", neuron.get(), f * 100.0)}
                        </p>
                    })}
                    <canvas node_ref=canvas class="neuron-canvas" data-testid="neuron-canvas" width="113" height="113"></canvas>
                }.into_any(),
            }}
        </section>
    }
}

/// Paints a `p x p` grid on the canvas: white at the minimum to dark blue at the maximum.
fn draw(canvas: &web_sys::HtmlCanvasElement, p: usize, values: &[f32]) {
    let Ok(Some(ctx)) = canvas.get_context("2d") else { return };
    let Ok(ctx) = ctx.dyn_into::<web_sys::CanvasRenderingContext2d>() else { return };
    let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let span = (hi - lo).max(1e-12);
    let mut rgba = Vec::with_capacity(p * p * 4);
    for &v in values {
        let t = (v - lo) / span;
        rgba.extend_from_slice(&[(255.0 * (1.0 - 0.85 * t)) as u8, (255.0 * (1.0 - 0.6 * t)) as u8, 255, 255]);
    }
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), p as u32, p as u32) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}
