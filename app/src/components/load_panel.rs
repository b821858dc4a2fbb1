//! "Load a model": a Hugging Face repository (id + file, or its safetensors), any URL of a GGUF
//! file, or a file from this computer (picker or drag-and-drop); a curated list of real models
//! with their download sizes; the download's progress (bytes, rate, time left) with Cancel; the
//! files kept in the browser's cache, with their sizes and Delete. The component only collects
//! choices and shows state; `app.rs` loads (and keeps the model in use until the new one works).
//!
//! Collapsed by default behind its "Load a model…" button (a disclosure: `aria-expanded`), so
//! that the shipped models' views come first; the model in use and a download's progress or
//! error stay visible while it is closed. Dropping a file on it still loads the file.

use crate::hub::{size, CURATED};
use leptos::prelude::*;

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A hub repository: a GGUF file in it, or (file = None) its safetensors files.
    Hub { base: String, repo: String, file: Option<String>, quantize: Option<String> },
    /// Any URL of a GGUF file.
    Url(String),
    /// A local file: its name and bytes.
    Local(String, std::rc::Rc<Vec<u8>>),
}

/// Where loading an outside model has got.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum HubLoad {
    #[default]
    Idle,
    /// Downloading `file`: bytes so far, total if known, bytes per second, from the cache.
    Downloading {
        file: String,
        loaded: u64,
        total: Option<u64>,
        rate: f64,
        cached: bool,
    },
    /// Parsing the files and starting the backend.
    Starting,
    Failed(String),
}

#[component]
pub fn LoadPanel(
    state: RwSignal<HubLoad>,
    /// The hub base URL (a text field; the URL's `hub=` sets it).
    hub_base: RwSignal<String>,
    /// Whether the fields are shown (the button toggles it; the page's "load a model" link opens it).
    open: RwSignal<bool>,
    /// "name (family, format)" of the outside model in use, if any.
    #[prop(into)]
    loaded: Signal<Option<String>>,
    /// The cached files: (url, bytes, sha256).
    #[prop(into)]
    cached: Signal<Vec<(String, u64, String)>>,
    on_load: Callback<ModelSource>,
    on_cancel: Callback<()>,
    on_delete: Callback<String>,
) -> impl IntoView {
    let repo = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let format = RwSignal::new("gguf".to_string());
    let quantize = RwSignal::new("none".to_string());
    let url = RwSignal::new(String::new());
    let busy = Signal::derive(move || matches!(state.get(), HubLoad::Downloading { .. } | HubLoad::Starting));

    let load_hub = move |_| {
        let q = quantize.get_untracked();
        on_load.run(ModelSource::Hub {
            base: hub_base.get_untracked(),
            repo: repo.get_untracked().trim().to_string(),
            file: (format.get_untracked() == "gguf").then(|| file.get_untracked().trim().to_string()),
            quantize: (q != "none").then_some(q),
        })
    };
    let load_url = move |_| on_load.run(ModelSource::Url(url.get_untracked().trim().to_string()));
    let read_file = move |f: web_sys::File| {
        let name = f.name();
        // Nothing is read (or allocated) for a file larger than this page can hold.
        let limit = crate::loader::size_limit();
        if f.size() > limit as f64 {
            let size = crate::loader::bytes_in_words(f.size() as u64);
            return state.set(HubLoad::Failed(format!("{name}: this file is {size}; the limit here is {}.", crate::loader::bytes_in_words(limit))));
        }
        leptos::task::spawn_local(async move {
            match gloo_file::futures::read_as_bytes(&gloo_file::File::from(f)).await {
                Ok(bytes) => on_load.run(ModelSource::Local(name, std::rc::Rc::new(bytes))),
                Err(e) => state.set(HubLoad::Failed(format!("could not read the file {name}: {e}"))),
            }
        });
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|l| l.get(0)) {
            read_file(f);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
            read_file(f);
        }
    };

    let curated = CURATED
        .iter()
        .map(|c| {
            let files = c
                .files
                .iter()
                .map(|&(f, sz, fmt)| {
                    let pick = move |_| {
                        repo.set(c.repo.to_string());
                        if f == "safetensors" {
                            format.set("safetensors".into());
                            file.set(String::new());
                        } else {
                            format.set("gguf".into());
                            file.set(f.to_string());
                        }
                    };
                    view! { <button class="link" data-testid="curated-entry" on:click=pick>{format!("{fmt}, {sz}")}</button> }
                })
                .collect_view();
            view! { <li><span class="curated-title">{c.title}</span>" " {files}</li> }
        })
        .collect_view();

    let status = move || {
        match state.get() {
        HubLoad::Idle => None,
        HubLoad::Downloading { file, loaded, total, rate, cached } => {
            let pct = total.map(|t| if t > 0 { loaded as f64 / t as f64 } else { 1.0 });
            let left = match (total, rate > 0.0) {
                (Some(t), true) if t > loaded => format!(", about {:.0} s left", (t - loaded) as f64 / rate),
                _ => String::new(),
            };
            let text = format!(
                "{} {file}: {}{}{}{left}",
                if cached { "Reading from the browser cache" } else { "Downloading" },
                size(loaded),
                total.map(|t| format!(" of {}", size(t))).unwrap_or_default(),
                if rate > 0.0 && !cached { format!(" at {:.1} MB/s", rate / 1e6) } else { String::new() },
            );
            Some(view! {
                <div class="loading" data-testid="load-progress" data-loaded=loaded.to_string() data-total=total.map(|t| t.to_string()).unwrap_or_default()>
                    <progress max="1" value=pct.map(|p| p.to_string())></progress>
                    <span>{text}</span>
                    <button data-testid="load-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                </div>
            }
            .into_any())
        }
        HubLoad::Starting => Some(view! { <p class="loading" data-testid="load-starting">"Reading the model and starting it\u{2026} (the model in use keeps working until then)"</p> }.into_any()),
        HubLoad::Failed(m) => Some(view! { <p class="error" role="alert" data-testid="load-error">{m}" The model in use is unchanged."</p> }.into_any()),
    }
    };

    let cached_rows = move || {
        cached
            .get()
            .into_iter()
            .map(|(u, n, hash)| {
                let del = u.clone();
                let short = hash.get(..12).unwrap_or_default().to_string();
                view! {
                    <li data-testid="cached-entry" data-url=u.clone() data-bytes=n.to_string()>
                        <code>{u.clone()}</code>" "{size(n)}" "<span class="help" title=hash>{format!("sha256 {short}\u{2026}")}</span>" "
                        <button data-testid="cached-delete" on:click=move |_| on_delete.run(del.clone())>"Delete"</button>
                    </li>
                }
            })
            .collect_view()
    };

    view! {
        <section class="panel load-panel" id="load" data-testid="load-panel" on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default() on:drop=on_drop>
            <div class="load-head">
                <h2>"Load a model"</h2>
                <button class="load-toggle" data-testid="load-open" aria-controls="load-body" aria-expanded=move || open.get().to_string() on:click=move |_| open.update(|o| *o = !*o)>
                    {move || if open.get() { "Close" } else { "Load a model\u{2026}" }}
                </button>
            </div>
            {move || loaded.get().map(|l| view! { <p data-testid="loaded-model">"In use: "<strong>{l}</strong></p> })}
            {status}
            <div id="load-body" class="load-body" hidden=move || !open.get()>
                <p class="help">"GPT-2, Llama-family (SmolLM, Qwen2, TinyLlama) and GPT-NeoX (Pythia) models, as GGUF (F16, Q8_0, Q4_0, Q4_K, Q6_K) or safetensors with tokenizer.json. Files are downloaded once, kept in this browser's cache, and run here; nothing you type leaves the page."</p>
                <div class="load-row">
                    <label>"Hub " <input data-testid="hub-base" size="28" prop:value=move || hub_base.get() on:input=move |ev| hub_base.set(event_target_value(&ev)) /></label>
                    <label>"Repository " <input data-testid="hub-repo" placeholder="owner/name" prop:value=move || repo.get() on:input=move |ev| repo.set(event_target_value(&ev)) /></label>
                    <select data-testid="hub-format" aria-label="File format" prop:value=move || format.get() on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="gguf">"GGUF file"</option>
                        <option value="safetensors">"safetensors"</option>
                    </select>
                    <Show when=move || format.get() == "gguf">
                        <label>"File " <input data-testid="hub-file" placeholder="model-q8_0.gguf" prop:value=move || file.get() on:input=move |ev| file.set(event_target_value(&ev)) /></label>
                    </Show>
                    <Show when=move || format.get() == "safetensors">
                        <label>"Quantize on load " <select data-testid="hub-quantize" on:change=move |ev| quantize.set(event_target_value(&ev))>
                            <option value="none">"no"</option>
                            <option value="q8_0">"Q8_0"</option>
                            <option value="q4_0">"Q4_0"</option>
                        </select></label>
                    </Show>
                    <button data-testid="load-button" on:click=load_hub disabled=busy>"Load"</button>
                </div>
                <div class="load-row">
                    <label>"or a URL " <input data-testid="load-url" size="48" placeholder="https://.../model.gguf" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) /></label>
                    <button data-testid="load-url-button" on:click=load_url disabled=busy>"Load URL"</button>
                    <label>"or a file " <input type="file" accept=".gguf" data-testid="load-file" on:change=on_pick /></label>
                    <span class="help">"(or drop a .gguf file here)"</span>
                </div>
                <details>
                    <summary>"Suggested models (download sizes are approximate)"</summary>
                    // Where a suggestion downloads from is always named (a link can set the hub).
                    <p class="help" data-testid="curated-host">{move || format!("Downloaded from {}", crate::hub::host_of(&hub_base.get()))}</p>
                    <ul class="curated">{curated}</ul>
                </details>
                <details open=move || !cached.get().is_empty()>
                    <summary>{move || format!("Cached in this browser ({})", cached.get().len())}</summary>
                    <ul class="cached" data-testid="cached-list">{cached_rows}</ul>
                </details>
            </div>
        </section>
    }
}
