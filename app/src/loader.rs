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
    let base = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten());
    base.and_then(|b| web_sys::Url::new_with_base(path, &b).ok())
        .map_or_else(|| path.to_string(), |u| u.href())
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Fetches the four files of `model`, calling `on_progress` as bytes arrive, and builds the
/// bundle. Errors are sentences for the page.
/// Returns the bundle and the number of bytes downloaded.
pub async fn load_bundle(
    model: &ModelEntry,
    on_progress: impl Fn(Progress),
) -> Result<(ModelBundle, u64), String> {
    let mut files: Vec<Vec<u8>> = Vec::with_capacity(BUNDLE_FILES.len());
    let mut done_bytes = 0u64;
    for name in BUNDLE_FILES {
        let url = resolve(&format!("{}{name}", model.path));
        on_progress(Progress {
            file: name.to_string(),
            loaded: done_bytes,
            total: None,
        });
        let bytes = fetch_bytes(&url, |loaded, total| {
            on_progress(Progress {
                file: name.to_string(),
                loaded: done_bytes + loaded,
                total: total.map(|t| done_bytes + t),
            })
        })
        .await
        .map_err(|e| format!("{name}: {e}"))?;
        done_bytes += bytes.len() as u64;
        files.push(bytes);
    }
    let bundle = ModelBundle::from_bytes(&files[0], &files[3], &files[1], &files[2])
        .map_err(|e| format!("the files are damaged or do not match: {e}"))?;
    Ok((bundle, done_bytes))
}

/// Fetches `url`, reading the body chunk by chunk; `on_progress(loaded, total)` after each.
pub async fn fetch_bytes(
    url: &str,
    on_progress: impl Fn(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("could not fetch {url}: {}", js_err(e)))?
        .dyn_into()
        .map_err(|_| "the fetch did not return a response".to_string())?;
    if !resp.ok() {
        let text = resp.status_text();
        return Err(format!("HTTP {} {} for {url}", resp.status(), text)
            .trim_end()
            .to_string());
    }
    let headers = resp.headers();
    let encoded = headers
        .get("content-encoding")
        .ok()
        .flatten()
        .is_some_and(|e| e != "identity");
    // With a compressed transfer, Content-Length counts compressed bytes: not comparable.
    let total = if encoded {
        None
    } else {
        headers
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u64>().ok())
    };
    on_progress(0, total);

    let mut bytes: Vec<u8> = Vec::with_capacity(total.unwrap_or(0) as usize);
    match resp.body() {
        Some(body) => {
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            loop {
                let chunk = JsFuture::from(reader.read())
                    .await
                    .map_err(|e| format!("the download broke off: {}", js_err(e)))?;
                if Reflect::get(&chunk, &"done".into())
                    .ok()
                    .and_then(|d| d.as_bool())
                    .unwrap_or(true)
                {
                    break;
                }
                let value: Uint8Array = Reflect::get(&chunk, &"value".into())
                    .map_err(js_err)?
                    .unchecked_into();
                let start = bytes.len();
                bytes.resize(start + value.length() as usize, 0);
                value.copy_to(&mut bytes[start..]);
                on_progress(bytes.len() as u64, total);
            }
        }
        None => {
            let buf = JsFuture::from(resp.array_buffer().map_err(js_err)?)
                .await
                .map_err(js_err)?;
            bytes = Uint8Array::new(&buf).to_vec();
            on_progress(bytes.len() as u64, total);
        }
    }
    if let Some(t) = total {
        if (bytes.len() as u64) < t {
            return Err(format!(
                "truncated download: received {} of {t} bytes",
                bytes.len()
            ));
        }
    }
    Ok(bytes)
}
