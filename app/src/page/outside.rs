//! Models from outside the site: a Hugging Face repository, a URL of a GGUF file, or a file
//! from the reader's computer. The files are downloaded (or read from the browser's cache) on
//! the page's thread, then started in a new engine worker; the model in use keeps answering
//! until the new one has loaded, and a failure changes nothing.

use glassbox_core::{ModelRef, ModelSource as Source};
use leptos::prelude::*;

use super::run::{run_experiment, start_model};
use super::state::{ModelFiles, Page};
use crate::components::{HubLoad, ModelSource};
use crate::hub;

/// The experiment's reference to a model loaded from `src`.
fn model_ref(src: &ModelSource) -> ModelRef {
    let source = match src {
        ModelSource::Hub { repo, file, quantize, .. } => {
            Source::Hub { repo: repo.clone(), file: file.clone(), revision: "main".into(), quantize: quantize.clone().filter(|q| q != "none") }
        }
        ModelSource::Url(url) => Source::Url { url: url.clone() },
        ModelSource::Local(name, _) => Source::Local { name: name.clone() },
    };
    ModelRef { source, sha256: Vec::new() }
}

thread_local! {
    /// Hubs from the page's link that the reader has confirmed (pressed Load again for).
    static CONFIRMED_HUBS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The hub the page's link named (`?hub=`), when it is neither this site's origin nor the
/// default hub: a link must never silently change where models come from.
fn link_hub() -> Option<String> {
    let location = web_sys::window()?.location();
    let params = web_sys::UrlSearchParams::new_with_str(&location.search().ok()?).ok()?;
    let hub = params.get("hub")?.trim().trim_end_matches('/').to_string();
    let origin = web_sys::Url::new(&hub).ok()?.origin();
    (origin != location.origin().ok()? && hub != hub::DEFAULT_HUB).then_some(hub)
}

/// The first Load from a hub the link chose names its host and asks for a second press.
fn confirm_link_hub(base: &str, repo: &str) -> Result<(), String> {
    let base = base.trim().trim_end_matches('/').to_string();
    if link_hub().as_deref() != Some(base.as_str()) || CONFIRMED_HUBS.with(|c| c.borrow().contains(&base)) {
        return Ok(());
    }
    CONFIRMED_HUBS.with(|c| c.borrow_mut().push(base.clone()));
    let host = hub::host_of(&base);
    Err(format!(
        "The link that opened this page set the hub to {base}, not {}: {repo} would be downloaded from {host}. Nothing was downloaded; press Load again to download from {host}.",
        hub::host_of(hub::DEFAULT_HUB)
    ))
}

pub async fn refresh_cached(page: Page) {
    page.cached.set(hub::list_cached().await);
}

/// Loads a model from the hub, a URL or a local file. The model in use stays in place (and
/// keeps answering) until the new one has been downloaded, parsed and started; on any failure
/// the panel says why and nothing else changes.
pub async fn load_outside(page: Page, src: ModelSource) {
    if matches!(page.hub_load.get_untracked(), HubLoad::Downloading { .. } | HubLoad::Starting) {
        return;
    }
    match fetch_outside(page, &src).await {
        Ok((files, quantize, label)) => {
            page.hub_load.set(HubLoad::Starting);
            match start_outside(page, files, quantize, label, model_ref(&src)).await {
                Ok(()) => page.hub_load.set(HubLoad::Idle),
                Err(e) => {
                    // Files that do not make a model are not kept for next time.
                    for url in page.fetched.get_value() {
                        hub::delete_cached(&url).await;
                    }
                    page.hub_load.set(HubLoad::Failed(e));
                }
            }
        }
        Err(e) => page.hub_load.set(HubLoad::Failed(e)),
    }
    page.abort.set_value(None);
    refresh_cached(page).await;
}

type Files = Vec<(String, Vec<u8>)>;

/// Downloads (or reads from the cache) the files of `src`.
async fn fetch_outside(page: Page, src: &ModelSource) -> Result<(Files, Option<glassbox_core::QuantizeOnLoad>, String), String> {
    let controller = web_sys::AbortController::new().map_err(|_| "this browser cannot cancel downloads".to_string())?;
    page.from_cache.set(0);
    page.fetched.set_value(Vec::new());
    let signal = controller.signal();
    page.abort.set_value(Some(controller));
    // The files of one model share one size limit: each file may use what the ones before it
    // left (nothing is allocated for a file announced larger).
    let limit = crate::loader::size_limit();
    let used = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let get = |url: String, name: String| {
        let signal = signal.clone();
        let used = used.clone();
        async move {
            let t0 = js_sys::Date::now();
            let shown = name.clone();
            let progress = move |loaded: u64, total: Option<u64>| {
                let secs = (js_sys::Date::now() - t0) / 1000.0;
                let rate = if secs > 0.2 { loaded as f64 / secs } else { 0.0 };
                page.hub_load.set(HubLoad::Downloading { file: shown.clone(), loaded, total, rate, cached: false });
            };
            page.hub_load.set(HubLoad::Downloading { file: name.clone(), loaded: 0, total: None, rate: 0.0, cached: false });
            let left = limit.saturating_sub(used.get());
            let (bytes, from_cache) = hub::fetch_model_file(&url, &signal, left, &progress).await.map_err(|e| match e {
                hub::FetchError::TooLarge { size, .. } if left < limit => {
                    let before = crate::loader::bytes_in_words(used.get());
                    let limit = crate::loader::bytes_in_words(limit);
                    let size = size.map_or_else(|| "larger than what is left".to_string(), crate::loader::bytes_in_words);
                    hub::FetchError::Failed(format!(
                        "{name} is {size}; the limit here is {limit} for a model's files together, and {before} are taken by the files before it"
                    ))
                }
                hub::FetchError::TooLarge { .. } => hub::FetchError::Failed(format!("{name}: {e}")),
                e => e,
            })?;
            used.set(used.get() + bytes.len() as u64);
            page.fetched.update_value(|v| v.push(url.clone()));
            if from_cache {
                page.hub_load.set(HubLoad::Downloading {
                    file: name.clone(),
                    loaded: bytes.len() as u64,
                    total: Some(bytes.len() as u64),
                    rate: 0.0,
                    cached: true,
                });
                page.from_cache.update(|n| *n += 1);
            }
            Ok::<_, hub::FetchError>((name, bytes))
        }
    };
    let gguf_name = |u: &str| u.rsplit('/').next().unwrap_or("model.gguf").split('?').next().unwrap_or("model.gguf").to_string();
    match src {
        ModelSource::Local(name, bytes) => Ok((vec![(name.clone(), bytes.to_vec())], None, format!("the local file {name}"))),
        ModelSource::Url(url) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("\u{201c}{url}\u{201d} is not an http(s) URL."));
            }
            let name = gguf_name(url);
            let file = get(url.clone(), name.clone()).await.map_err(|e| format!("{e}."))?;
            Ok((vec![file], None, name))
        }
        ModelSource::Hub { base, repo, file, quantize } => {
            hub::check_repo(repo)?;
            confirm_link_hub(base, repo)?;
            let quantize = match quantize.as_deref() {
                None | Some("" | "none") => None,
                Some(q) => Some(q.parse::<glassbox_core::QuantizeOnLoad>().map_err(|e| format!("{e}."))?),
            };
            let url = |f: &str| hub::resolve_url(base, repo, f);
            let fail = |e: hub::FetchError| format!("{e}.");
            match file {
                Some(f) if f.is_empty() => Err("Name the GGUF file in the repository (for example model-q8_0.gguf).".into()),
                Some(f) => {
                    let one = get(url(f), f.clone()).await.map_err(fail)?;
                    Ok((vec![one], None, format!("{repo}/{f}")))
                }
                None => {
                    let mut files = vec![
                        get(url("config.json"), "config.json".into()).await.map_err(fail)?,
                        get(url("tokenizer.json"), "tokenizer.json".into()).await.map_err(fail)?,
                    ];
                    match get(url("model.safetensors"), "model.safetensors".into()).await {
                        Ok(f) => files.push(f),
                        Err(hub::FetchError::NotFound(_)) => {
                            let index = get(url("model.safetensors.index.json"), "model.safetensors.index.json".into()).await.map_err(fail)?;
                            let shards = glassbox_core::weights::shard_files(&index.1).map_err(|e| format!("{e}."))?;
                            files.push(index);
                            for s in shards {
                                files.push(get(url(&s), s.clone()).await.map_err(fail)?);
                            }
                        }
                        Err(e) => return Err(fail(e)),
                    }
                    Ok((files, quantize, repo.clone()))
                }
            }
        }
    }
}

/// Starts the files in a new engine; only when that worked does the page switch to the new
/// model, and runs the experiment on it.
async fn start_outside(page: Page, files: Files, quantize: Option<glassbox_core::QuantizeOnLoad>, label: String, source: ModelRef) -> Result<(), String> {
    let n_files = files.len();
    // The SHA-256 of each file as loaded (the browser's SubtleCrypto), for share links.
    let mut source = source;
    for (_, bytes) in &files {
        source.sha256.push(hub::sha256(bytes).await.unwrap_or_default());
    }
    let quantize = quantize.map(|q| q.to_string());
    let summary = start_model(page, std::rc::Rc::new(ModelFiles { files, quantize, shipped: None })).await?;
    let cfg = &summary.cfg;
    let format = summary.card.get("format").and_then(|f| f.as_str()).unwrap_or("").to_string();
    let name = summary.card.get("name").and_then(|n| n.as_str()).map(str::to_string).unwrap_or_else(|| label.clone());
    page.neuron_grid.set(None);
    page.scans.set(Vec::new());
    // A link's experiment waiting for this model opens now (its files' hashes compared with
    // the link's); otherwise the prompt stays and the view starts over on the new model.
    let link = page.pending_link.get_untracked().filter(|l| same_files(&l.model.source, &source.source));
    match link {
        Some(mut l) => {
            if !l.model.sha256.is_empty() && l.model.sha256 != source.sha256 {
                page.url_notices.update(|v| {
                    v.push(
                        "The model files loaded differ from the ones this link was made with (their SHA-256 differ): the numbers may differ from the author's."
                            .into(),
                    )
                });
            }
            l.model = source;
            super::share::apply(page, l);
            page.pending_link.set(None);
            // The first run on it reads the link's selection as a new page does (checked
            // against the tokens, not reset to the last position).
            page.url_live.set(false);
        }
        None => page.experiment.update(|e| {
            e.model = source;
            e.interventions.clear();
            e.view = glassbox_core::Selection { pos: None, layer: Some(cfg.n_layers - 1), head: Some(0), tab: e.view.tab, ..Default::default() };
        }),
    }
    let cached = match page.from_cache.get_untracked() {
        0 => String::new(),
        n if n == n_files => "; read from this browser's cache".to_string(),
        n => format!("; {n} of {n_files} files from this browser's cache"),
    };
    page.loaded.set(Some(format!("{name} ({}, {} layers, d_model {}; {format}; from {label}{cached})", cfg.family(), cfg.n_layers, cfg.d_model)));
    run_experiment(page).await;
    page.url_live.set(true);
    super::share::run_analysis(page);
    Ok(())
}

/// Whether two references name the same files (the revision and hashes aside).
fn same_files(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::Hub { repo: r1, file: f1, quantize: q1, .. }, Source::Hub { repo: r2, file: f2, quantize: q2, .. }) => r1 == r2 && f1 == f2 && q1 == q2,
        (Source::Url { url: u1 }, Source::Url { url: u2 }) => u1 == u2,
        (Source::Local { name: n1 }, Source::Local { name: n2 }) => n1 == n2,
        _ => false,
    }
}
