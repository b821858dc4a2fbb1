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
    /// The server answered, then the connection dropped while the body streamed in (the bytes
    /// read so far stay in the buffer, which may be none of them): worth resuming.
    BrokeOff(String),
    /// Larger than `limit` bytes: `size` as the server announced it (Content-Length, or the
    /// total of a Content-Range), or `None` when the bytes ran past the limit unannounced.
    TooLarge {
        size: Option<u64>,
        limit: u64,
    },
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Cancelled => write!(f, "the download was cancelled"),
            FetchError::NotFound(url) => write!(f, "not found (HTTP 404): {url}"),
            FetchError::Failed(m) => f.write_str(m),
            FetchError::BrokeOff(m) => write!(f, "the download broke off: {m}"),
            FetchError::TooLarge { size: Some(size), limit } => {
                write!(f, "this file is {}; the limit here is {}", bytes_in_words(*size), bytes_in_words(*limit))
            }
            FetchError::TooLarge { size: None, limit } => write!(f, "this file is larger than the limit here ({})", bytes_in_words(*limit)),
        }
    }
}

/// Bytes in words: "3.0 GB", "12.3 MB", "2 kB".
pub fn bytes_in_words(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.0} kB", bytes as f64 / 1e3)
    }
}

/// The most bytes a model may take here, all its files together: a wasm32 `Vec` holds less
/// than 2 GiB and a page's WebAssembly memory at most 4 GiB (the files, then the weights
/// parsed from them, live in the engine's), and no more than a quarter of the memory the
/// device reports (`navigator.deviceMemory`, where the browser says). A download is checked
/// against it before anything is allocated for it. (The storage quota limits only the offline
/// copy: a file larger than what is left of it loads, without a copy in the cache.)
pub fn size_limit() -> u64 {
    const WASM_LIMIT: u64 = 2_000_000_000;
    let device = web_sys::window()
        .and_then(|w| Reflect::get(&w.navigator(), &"deviceMemory".into()).ok())
        .and_then(|v| v.as_f64())
        .filter(|gb| gb.is_finite() && *gb > 0.0)
        .map(|gb| (gb * 1e9 / 4.0) as u64);
    device.map_or(WASM_LIMIT, |d| d.clamp(250_000_000, WASM_LIMIT))
}

/// Fetches `url`, reading the body chunk by chunk; `on_progress(loaded, total)` after each.
pub async fn fetch_bytes(url: &str, on_progress: impl Fn(u64, Option<u64>)) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut total = None;
    fetch_into(url, None, size_limit(), &mut bytes, &mut total, &on_progress).await.map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// One request for `url`, streamed into `bytes`; the one download loop of the site (shipped
/// models and models from outside). With bytes already there it asks for the rest (an HTTP
/// Range request, to resume a dropped connection); a server that ignores Range and sends
/// everything again is fine too. `signal` cancels it. `total` is set from Content-Length
/// (unless the transfer is compressed, where that counts compressed bytes).
///
/// Nothing is allocated on a header's word: a file announced larger than `limit` (its
/// Content-Length, or the total of a Range reply's Content-Range) is refused before its body
/// is read, the buffer grows as bytes arrive (fallibly: running out of memory is an error, not a
/// trap), and a body that runs past `limit` unannounced is cut off there.
pub async fn fetch_into(
    url: &str,
    signal: Option<&web_sys::AbortSignal>,
    limit: u64,
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
    let header = |name: &str| h.get(name).ok().flatten();
    let encoded = header("content-encoding").is_some_and(|e| e != "identity");
    // What the server says the whole file weighs: a Range reply's Content-Range total, else
    // what is already here plus this body's Content-Length.
    let announced = header("content-range")
        .filter(|_| resp.status() == 206)
        .and_then(|r| r.rsplit('/').next().and_then(|t| t.trim().parse::<u64>().ok()))
        .or_else(|| header("content-length").filter(|_| !encoded).and_then(|s| s.trim().parse::<u64>().ok()).map(|n| n.saturating_add(bytes.len() as u64)));
    let refuse = |size: Option<u64>| {
        // Stop the transfer (the body is never read).
        if let Some(body) = resp.body() {
            let _ = body.cancel();
        }
        Err(FetchError::TooLarge { size, limit })
    };
    if let Some(n) = announced.filter(|&n| n > limit) {
        return refuse(Some(n));
    }
    if total.is_none() {
        *total = announced;
    }
    on_progress(bytes.len() as u64, *total);
    // Room for `n` more bytes, or an error: never a trap on a failed allocation.
    let grow = |bytes: &mut Vec<u8>, n: usize| -> Result<(), FetchError> {
        if (bytes.len() as u64).saturating_add(n as u64) > limit {
            return Err(FetchError::TooLarge { size: None, limit });
        }
        bytes
            .try_reserve(n)
            .or_else(|_| bytes.try_reserve_exact(n))
            .map_err(|_| FetchError::Failed(format!("this browser ran out of memory after {} of the download", bytes_in_words(bytes.len() as u64))))
    };
    match resp.body() {
        Some(body) => {
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            loop {
                let chunk = JsFuture::from(reader.read()).await.map_err(|e| if aborted() { FetchError::Cancelled } else { FetchError::BrokeOff(js_err(e)) })?;
                if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                    break;
                }
                let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| FetchError::Failed(js_err(e)))?.unchecked_into();
                let n = value.length() as usize;
                if let Err(e) = grow(bytes, n) {
                    let _ = reader.cancel();
                    return Err(e);
                }
                let start = bytes.len();
                bytes.resize(start + n, 0);
                value.copy_to(&mut bytes[start..]);
                on_progress(bytes.len() as u64, *total);
            }
        }
        None => {
            let buf = resp.array_buffer().map_err(|e| FetchError::Failed(js_err(e)))?;
            let buf = Uint8Array::new(&JsFuture::from(buf).await.map_err(failed)?);
            grow(bytes, buf.length() as usize)?;
            let start = bytes.len();
            bytes.resize(start + buf.length() as usize, 0);
            buf.copy_to(&mut bytes[start..]);
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
