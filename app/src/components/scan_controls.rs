use leptos::prelude::*;
use leptos::task::spawn_local;

/// The most text a scan reads (characters of pasted text, bytes of a file): about a minute of
/// scanning for a GPT-2-sized model on the wasm CPU path.
pub const MAX_CORPUS_CHARS: usize = 1_000_000;

/// A finished corpus scan of one layer (its examples stay in the engine's worker).
#[derive(Clone, Debug, PartialEq)]
pub struct ScanInfo {
    pub layer: usize,
    pub what: String,
    pub tokens_scanned: usize,
    pub windows: usize,
}

/// What to scan.
#[derive(Clone, Debug, PartialEq)]
pub enum Corpus {
    /// The held-out slice of Moby-Dick shipped with the site.
    Shipped,
    /// Text the reader pasted or a file they chose: (what it is, the text).
    Text(String, String),
}

/// Why a text cannot be scanned, if it cannot.
pub fn check_corpus(what: &str, chars: usize) -> Result<(), String> {
    if chars == 0 {
        return Err(format!("{what} is empty: there is nothing to scan."));
    }
    if chars > MAX_CORPUS_CHARS {
        return Err(format!(
            "{what} has {:.1} million characters; a scan here reads at most {:.1} million. Choose a shorter text.",
            chars as f64 / 1e6,
            MAX_CORPUS_CHARS as f64 / 1e6
        ));
    }
    Ok(())
}

/// Scans a corpus with a layer's neurons: the shipped Moby-Dick slice, pasted text or a text
/// file; with progress and Cancel.
#[component]
pub fn ScanControls(
    #[prop(into)] layer: Signal<usize>,
    #[prop(into)] scans: Signal<Vec<ScanInfo>>,
    /// (windows done, windows in all) while scanning.
    #[prop(into)]
    progress: Signal<Option<(usize, usize)>>,
    /// Why the last scan failed, if it did.
    #[prop(into)]
    failure: Signal<Option<String>>,
    on_scan: Callback<Corpus>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let source = RwSignal::new("shipped".to_string());
    let pasted = RwSignal::new(String::new());
    let file = RwSignal::new(None::<(String, String)>);
    let error = RwSignal::new(None::<String>);
    let scan = move |_| {
        error.set(None);
        let choice = match source.get_untracked().as_str() {
            "paste" => {
                let text = pasted.get_untracked();
                if let Err(e) = check_corpus("The pasted text", text.chars().count()) {
                    return error.set(Some(e));
                }
                Corpus::Text("the pasted text".into(), text)
            }
            "file" => match file.get_untracked() {
                Some((name, text)) => Corpus::Text(name, text),
                None => return error.set(Some("Choose a text file first.".into())),
            },
            _ => Corpus::Shipped,
        };
        on_scan.run(choice);
    };
    let on_file = move |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        error.set(None);
        file.set(None);
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let Some(f) = input.files().and_then(|l| l.get(0)) else { return };
        let name = f.name();
        let size = f.size() as usize;
        if let Err(e) = check_corpus(&format!("The file {name}"), size) {
            return error.set(Some(e));
        }
        spawn_local(async move {
            match gloo_file::futures::read_as_text(&gloo_file::File::from(f)).await {
                Ok(text) => match check_corpus(&format!("The file {name}"), text.chars().count()) {
                    Ok(()) => file.set(Some((format!("the file {name}"), text))),
                    Err(e) => error.set(Some(e)),
                },
                Err(e) => error.set(Some(format!("The file {name} could not be read as text: {e}."))),
            }
        });
    };
    let done = move || {
        let l = layer.get();
        scans.get().into_iter().find(|s| s.layer == l).map(|s| {
            view! { <p class="help" data-testid="scan-done">{format!("Layer {l} scanned: {} tokens of {} in {} windows.", s.tokens_scanned, s.what, s.windows)}</p> }
        })
    };
    view! {
        <div class="scan-controls" data-testid="scan-controls">
            <div class="segmented" role="radiogroup" aria-label="corpus">
                {[("shipped", "Moby-Dick (held-out slice)"), ("paste", "Paste text"), ("file", "A text file")]
                    .into_iter()
                    .map(|(id, label)| view! {
                        <label class="radio">
                            <input type="radio" name="corpus" data-testid=format!("corpus-{id}") prop:checked=move || source.get() == id on:change=move |_| source.set(id.to_string()) />
                            {label}
                        </label>
                    })
                    .collect_view()}
            </div>
            <Show when=move || source.get() == "paste">
                <textarea class="corpus-text" data-testid="corpus-text" rows="4" placeholder="Paste the text to scan" prop:value=pasted on:input=move |ev| pasted.set(event_target_value(&ev))></textarea>
            </Show>
            <Show when=move || source.get() == "file">
                <input type="file" accept=".txt,text/plain" data-testid="corpus-file-input" on:change=on_file />
            </Show>
            <div class="row">
                <button data-testid="scan-run" disabled=move || progress.get().is_some() on:click=scan>{move || format!("Scan with layer {}", layer.get())}</button>
                {move || progress.get().map(|(done, total)| view! {
                    <span class="progress" data-testid="scan-progress">{format!("{done} of {total} windows")}</span>
                    <button data-testid="scan-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                })}
            </div>
            {move || error.get().or_else(|| failure.get()).map(|e| view! { <p class="error" data-testid="scan-error">{e}</p> })}
            {done}
        </div>
    }
}
