//! Fetching a model bundle over HTTP, relative to the page, with byte-level progress read
//! from the response body as it streams in.

use glassbox_core::ModelBundle;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use crate::models::{ModelEntry, BUNDLE_FILES};

/// How far a download has got.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The file being fetched.
    pub file: String,
    /// Bytes received so far, over all files.
    pub loaded: u64,
    /// Bytes expected over all files, when the server said (Content-Length).
    pub total: Option<u64>,
}

/// Resolves `path` against the document's base URL, so the site works under any sub-path.
pub fn resolve(path: &str) -> String {
    let base = web_sys::window().and_then(|w| w.document()).and_then(|d| d.base_uri().ok().flatten());
    base.and_then(|b| web_sys::Url::new_with_base(path, &b).ok()).map_or_else(|| path.to_string(), |u| u.href())
}

fn js_err(e: JsValue) -> String {
    e.as_string().or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message()))).unwrap_or_else(|| format!("{e:?}"))
}

/// Downloads a shipped model's files (named as `ModelBundle::from_files` expects them), with
/// progress over all of them; returns them and their total size.
pub async fn fetch_shipped(model: &ModelEntry, on_progress: impl Fn(Progress)) -> Result<(Vec<(String, Vec<u8>)>, u64), String> {
    let mut files = Vec::with_capacity(BUNDLE_FILES.len());
    let mut done_bytes = 0u64;
    for name in BUNDLE_FILES {
        let url = resolve(&format!("{}{name}", model.path));
        on_progress(Progress { file: name.to_string(), loaded: done_bytes, total: None });
        let bytes = fetch_bytes(&url, |loaded, total| {
            on_progress(Progress { file: name.to_string(), loaded: done_bytes + loaded, total: total.map(|t| done_bytes + t) })
        })
        .await
        .map_err(|e| format!("{name}: {e}"))?;
        done_bytes += bytes.len() as u64;
        files.push((name.to_string(), bytes));
    }
    Ok((files, done_bytes))
}

/// Downloads a shipped model and parses it here (the in-page benchmark; the page itself
/// parses in the engine's worker).
pub async fn load_bundle(model: &ModelEntry, on_progress: impl Fn(Progress)) -> Result<(ModelBundle, u64), String> {
    let (files, bytes) = fetch_shipped(model, on_progress).await?;
    let bundle = ModelBundle::from_files(&files, None).map_err(|e| format!("the files are damaged or do not match: {e}"))?;
    Ok((bundle, bytes))
}

/// Why a download stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum FetchError {
    Cancelled,
    NotFound(String),
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Cancelled => write!(f, "the download was cancelled"),
            FetchError::NotFound(url) => write!(f, "not found (HTTP 404): {url}"),
            FetchError::Failed(m) => f.write_str(m),
        }
    }
}

/// Fetches `url`, reading the body chunk by chunk; `on_progress(loaded, total)` after each.
pub async fn fetch_bytes(url: &str, on_progress: impl Fn(u64, Option<u64>)) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut total = None;
    fetch_into(url, None, &mut bytes, &mut total, &on_progress).await.map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// One request for `url`, streamed into `bytes`; the one download loop of the site (shipped
/// models and models from outside). With bytes already there it asks for the rest (an HTTP
/// Range request, to resume a dropped connection); a server that ignores Range and sends
/// everything again is fine too. `signal` cancels it. `total` is set from Content-Length
/// (unless the transfer is compressed, where that counts compressed bytes).
pub async fn fetch_into(
    url: &str,
    signal: Option<&web_sys::AbortSignal>,
    bytes: &mut Vec<u8>,
    total: &mut Option<u64>,
    on_progress: &dyn Fn(u64, Option<u64>),
) -> Result<(), FetchError> {
    let aborted = || signal.is_some_and(|s| s.aborted());
    let window = web_sys::window().ok_or(FetchError::Failed("no window".into()))?;
    let init = web_sys::RequestInit::new();
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    if !bytes.is_empty() {
        let headers = web_sys::Headers::new().map_err(|e| FetchError::Failed(js_err(e)))?;
        let _ = headers.set("range", &format!("bytes={}-", bytes.len()));
        init.set_headers(&headers);
    }
    let failed = |e: JsValue| {
        if aborted() {
            FetchError::Cancelled
        } else {
            FetchError::Failed(format!("could not download {url}: the server refused the request or could not be reached ({})", js_err(e)))
        }
    };
    let resp: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(failed)?
        .dyn_into()
        .map_err(|_| FetchError::Failed("the fetch did not return a response".into()))?;
    match resp.status() {
        404 => return Err(FetchError::NotFound(url.to_string())),
        206 if !bytes.is_empty() => {}
        s if (200..300).contains(&s) => bytes.clear(), // everything (again)
        s => return Err(FetchError::Failed(format!("HTTP {s} {} for {url}", resp.status_text()).trim_end().to_string())),
    }
    let h = resp.headers();
    let encoded = h.get("content-encoding").ok().flatten().is_some_and(|e| e != "identity");
    if total.is_none() && !encoded {
        *total = h.get("content-length").ok().flatten().and_then(|s| s.parse::<u64>().ok()).map(|n| n + bytes.len() as u64);
    }
    on_progress(bytes.len() as u64, *total);
    if bytes.is_empty() {
        bytes.reserve(total.unwrap_or(0) as usize);
    }
    match resp.body() {
        Some(body) => {
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            loop {
                let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
                    if aborted() {
                        FetchError::Cancelled
                    } else {
                        FetchError::Failed(format!("the download broke off: {}", js_err(e)))
                    }
                })?;
                if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                    break;
                }
                let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| FetchError::Failed(js_err(e)))?.unchecked_into();
                let start = bytes.len();
                bytes.resize(start + value.length() as usize, 0);
                value.copy_to(&mut bytes[start..]);
                on_progress(bytes.len() as u64, *total);
            }
        }
        None => {
            let buf = resp.array_buffer().map_err(|e| FetchError::Failed(js_err(e)))?;
            let buf = JsFuture::from(buf).await.map_err(failed)?;
            bytes.extend_from_slice(&Uint8Array::new(&buf).to_vec());
            on_progress(bytes.len() as u64, *total);
        }
    }
    if let Some(t) = *total {
        if (bytes.len() as u64) < t {
            return Err(FetchError::Failed(format!("truncated download: received {} of {t} bytes", bytes.len())));
        }
    }
    Ok(())
}
