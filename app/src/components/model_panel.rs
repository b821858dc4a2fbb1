use std::sync::Arc;

use leptos::prelude::*;

use crate::engine::ModelSummary;
use crate::loader::Progress;
use crate::models::ModelEntry;

/// Where loading the page's model has got.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadState {
    /// Downloading; `None` until the first byte counts arrive.
    Loading(Option<Progress>),
    /// Downloaded; parsing and starting the backend (in the engine's worker).
    Starting,
    /// Ready to run.
    Ready { bytes: u64, seconds: f64 },
    /// Could not load; the message says why.
    Failed(String),
}

fn kb(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} kB", bytes as f64 / 1024.0)
    }
}

/// The held-out figures a model card states, in words.
fn card_metrics(card: &serde_json::Value) -> Vec<String> {
    let get = |k: &str| card.pointer(&format!("/metrics/{k}")).and_then(|v| v.as_f64());
    let mut out = Vec::new();
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    if let Some(a) = get("heldout_induction_accuracy") {
        out.push(format!("induction accuracy {}", pct(a)));
    }
    if let Some(a) = get("heldout_accuracy") {
        out.push(format!("accuracy {}", pct(a)));
    }
    if let Some(a) = get("heldout_hard_case_accuracy") {
        out.push(format!("{} on the hard case", pct(a)));
    }
    if let Some(l) = get("heldout_loss_nats_per_char") {
        let base = match (get("unigram_baseline_nats_per_char"), get("bigram_baseline_nats_per_char")) {
            (Some(u), Some(b)) => format!(" (unigram baseline {u:.2}, bigram {b:.2})"),
            _ => String::new(),
        };
        out.push(format!("loss {l:.3} nats per character{base}"));
    }
    out
}

/// The model: a menu of shipped models, download progress, then the model card (what the
/// model does and which characters it knows), or why it could not load.
#[component]
pub fn ModelPanel(
    /// The model this page shows.
    entry: &'static ModelEntry,
    /// Every shipped model, for the menu.
    models: &'static [ModelEntry],
    /// Where loading has got.
    #[prop(into)]
    load: Signal<LoadState>,
    /// The loaded model, once ready.
    #[prop(into)]
    model: Signal<Option<Arc<ModelSummary>>>,
) -> impl IntoView {
    // Another model is another page: the URL names it and the page reloads.
    let choose = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        if let Some(loc) = web_sys::window().map(|w| w.location()) {
            // A new page for the model (the share fragment of the old one goes with it).
            let _ = loc.set_href(&format!("?model={}", js_sys::encode_uri_component(&id)));
        }
    };
    let options = models.iter().map(|m| view! { <option value=m.id selected=m.id == entry.id>{m.title}</option> }).collect_view();
    let status = move || match load.get() {
        LoadState::Loading(p) => {
            let (loaded, total) = p.as_ref().map_or((0, None), |p| (p.loaded, p.total));
            let file = p.map(|p| p.file).unwrap_or_default();
            let text = match total {
                Some(t) => format!("Loading {file}: {} of {}", kb(loaded), kb(t)),
                None => format!("Loading {file}: {}", kb(loaded)),
            };
            view! {
                <div class="loading" data-testid="loading">
                    <progress data-testid="load-progress" max=total.unwrap_or(0).max(1).to_string() value=loaded.to_string()></progress>
                    <span>{text}</span>
                </div>
            }
            .into_any()
        }
        LoadState::Starting => {
            view! { <div class="loading" data-testid="loading"><progress></progress><span>"Starting the backend\u{2026}"</span></div> }.into_any()
        }
        LoadState::Ready { bytes, seconds } => view! {
            <p class="muted" data-testid="loaded">{format!("Loaded {} in {seconds:.1} s.", kb(bytes))}</p>
        }
        .into_any(),
        LoadState::Failed(msg) => view! { <div class="notice error" data-testid="load-error" role="alert">{msg}</div> }.into_any(),
    };
    let card = move || {
        model.get().map(|m| {
            let s = |k: &str| m.card.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let metrics = card_metrics(&m.card);
            let c = &m.cfg;
            let arch = format!(
                "{} {}, {} heads per layer, d_model {}{}, context {} tokens{}",
                c.n_layers,
                if c.n_layers == 1 { "layer" } else { "layers" },
                c.n_heads,
                c.d_model,
                c.d_mlp.map(|m| format!(", d_mlp {m}")).unwrap_or_default(),
                c.n_ctx,
                if c.attn_only() { ", attention only" } else { "" }
            );
            // A model loaded from outside (hub, URL, file) has no description: its card names
            // it, its family and its format instead.
            let format = s("format");
            let outside = (!format.is_empty()).then(|| {
                let name = s("name");
                view! {
                    {(!name.is_empty()).then(|| view! { <dt>"Model"</dt><dd data-testid="model-name">{name}</dd> })}
                    <dt>"Family"</dt><dd data-testid="model-family">{c.family()}</dd>
                    <dt>"Format"</dt><dd data-testid="model-format">{format}</dd>
                }
            });
            let shipped = outside.is_none().then(|| {
                view! {
                    <dt>"What it does"</dt><dd data-testid="model-description">{s("description")}</dd>
                    <dt>"Vocabulary"</dt><dd data-testid="model-vocabulary">{s("vocabulary")}</dd>
                }
            });
            view! {
                <dl class="card" data-testid="model-card">
                    {outside}
                    {shipped}
                    <dt>"Shape"</dt><dd>{arch}</dd>
                    {(!metrics.is_empty()).then(|| view! { <dt>"Held-out"</dt><dd data-testid="model-metrics">{metrics.join("; ")}</dd> })}
                </dl>
            }
        })
    };
    view! {
        <section class="panel">
            <div class="panel-head">
                <h2>"Model"</h2>
                <select class="model-select" data-testid="model-select" on:change=choose aria-label="model">{options}</select>
            </div>
            {status}
            {card}
        </section>
    }
}
