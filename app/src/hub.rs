//! Models from outside the site: a Hugging Face repository (by id and file, through the hub's
//! `resolve` URLs, under a configurable base so that tests can point at a local mock), any URL,
//! or a local file. Downloads stream with progress, can be cancelled, retry a dropped
//! connection from where it stopped (an HTTP Range request), and are kept in the browser's
//! Cache Storage keyed by URL, with the content's SHA-256 beside them (checked on every read),
//! so that a second visit loads with the network off.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Response};

use crate::loader::fetch_into;
pub use crate::loader::FetchError;

/// The Cache Storage bucket holding downloaded model files.
pub const CACHE_NAME: &str = "glassbox-models-v1";

/// The hub used when the page names none.
pub const DEFAULT_HUB: &str = "https://huggingface.co";

/// A curated model: where it lives on the hub and what its files weigh.
pub struct Curated {
    pub title: &'static str,
    pub repo: &'static str,
    /// (file, approximate download size, format) choices.
    pub files: &'static [(&'static str, &'static str, &'static str)],
}

/// Real models of the supported families. Sizes are estimates from the parameter count
/// (bytes per weight of the format: f16/bf16 2, Q8_0 1.06, Q4_0 0.56; real files keep some
/// tensors at higher precision), not measured: this site has no network at build time. File
/// names follow each repository's usual naming and are checked only when the user loads them.
pub const CURATED: &[Curated] = &[
    // llama.cpp writes GPT-2's tied unembedding as its own `output.weight` (38.6M more weights).
    Curated {
        title: "GPT-2 small (124M)",
        repo: "QuantFactory/gpt2-GGUF",
        files: &[("gpt2.Q8_0.gguf", "~177 MB", "Q8_0"), ("gpt2.Q4_0.gguf", "~95-110 MB", "Q4_0")],
    },
    Curated { title: "GPT-2 small (124M)", repo: "openai-community/gpt2", files: &[("safetensors", "~500-550 MB", "f32")] },
    Curated { title: "SmolLM2-135M", repo: "HuggingFaceTB/SmolLM2-135M", files: &[("safetensors", "~270 MB", "bf16")] },
    Curated { title: "Pythia-70m", repo: "EleutherAI/pythia-70m", files: &[("safetensors", "~140-170 MB", "f16")] },
    Curated { title: "Pythia-160m", repo: "EleutherAI/pythia-160m", files: &[("safetensors", "~325 MB", "f16")] },
    Curated {
        title: "Qwen2.5-0.5B-Instruct",
        repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        files: &[("qwen2.5-0.5b-instruct-q8_0.gguf", "~530 MB", "Q8_0"), ("qwen2.5-0.5b-instruct-q4_0.gguf", "~300-430 MB", "Q4_0")],
    },
];

/// `{base}/{repo}/resolve/main/{file}`, as the hub serves files.
pub fn resolve_url(base: &str, repo: &str, file: &str) -> String {
    format!("{}/{}/resolve/main/{}", base.trim_end_matches('/'), repo.trim_matches('/'), file.trim_start_matches('/'))
}

/// The host a hub base URL points at ("huggingface.co", "127.0.0.1:4173"), or the text as it
/// is when it is not a URL.
pub fn host_of(base: &str) -> String {
    web_sys::Url::new(base.trim()).map(|u| u.host()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| base.trim().to_string())
}

/// Checks a repo id: `owner/name`, hub-style characters only.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let ok = |s: &str| !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match repo.split_once('/') {
        Some((a, b)) if ok(a) && ok(b) => Ok(()),
        _ => Err(format!("\u{201c}{repo}\u{201d} is not a repository id (owner/name).")),
    }
}

/// Bytes in words: "12.3 MB".
pub fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.0} kB", bytes as f64 / 1e3)
    }
}

async fn cache() -> Option<web_sys::Cache> {
    let caches = web_sys::window()?.caches().ok()?;
    JsFuture::from(caches.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

/// The cached bytes of `url`, if any, checked against the SHA-256 stored beside them: a copy
/// whose content no longer matches its hash (a damaged or tampered cache entry) is dropped,
/// and the caller downloads the file again.
pub async fn cached(url: &str) -> Option<Vec<u8>> {
    let c = cache().await?;
    let hit = JsFuture::from(c.match_with_str(url)).await.ok()?;
    let resp: Response = hit.dyn_into().ok()?;
    let want = resp.headers().get("x-glassbox-sha256").ok().flatten().unwrap_or_default();
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    let bytes = Uint8Array::new(&buf).to_vec();
    if want.is_empty() || sha256(&bytes).await.as_deref() != Some(want.as_str()) {
        web_sys::console::warn_1(&format!("the cached copy of {url} does not match its SHA-256; downloading it again").into());
        let _ = JsFuture::from(c.delete_with_str(url)).await;
        return None;
    }
    Some(bytes)
}

/// SHA-256 of `bytes`, in hex (the browser's SubtleCrypto).
pub(crate) async fn sha256(bytes: &[u8]) -> Option<String> {
    let crypto = Reflect::get(&web_sys::window()?.into(), &"crypto".into()).ok()?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok()?;
    let digest: js_sys::Function = Reflect::get(&subtle, &"digest".into()).ok()?.dyn_into().ok()?;
    let data = Uint8Array::from(bytes);
    let promise: js_sys::Promise = digest.call2(&subtle, &"SHA-256".into(), &data).ok()?.dyn_into().ok()?;
    let out = JsFuture::from(promise).await.ok()?;
    Some(Uint8Array::new(&out).to_vec().iter().map(|b| format!("{b:02x}")).collect())
}

/// Keeps `bytes` as the cached copy of `url`, with their size and SHA-256 in headers.
async fn store(url: &str, bytes: &[u8]) {
    let Some(c) = cache().await else { return };
    let hash = sha256(bytes).await.unwrap_or_default();
    let init = web_sys::ResponseInit::new();
    let headers = web_sys::Headers::new().expect("Headers");
    let _ = headers.set("content-length", &bytes.len().to_string());
    let _ = headers.set("x-glassbox-sha256", &hash);
    init.set_headers(&headers);
    let body = Uint8Array::from(bytes);
    if let Ok(resp) = Response::new_with_opt_buffer_source_and_init(Some(&body), &init) {
        // A full cache (quota) only means no offline copy: the model still loads.
        let _ = JsFuture::from(c.put_with_str(url, &resp)).await;
    }
}

/// Every cached file: (url, bytes, sha256).
pub async fn list_cached() -> Vec<(String, u64, String)> {
    let Some(c) = cache().await else { return Vec::new() };
    let Ok(keys) = JsFuture::from(c.keys()).await else { return Vec::new() };
    let mut out = Vec::new();
    for req in js_sys::Array::from(&keys).iter() {
        let Ok(req) = req.dyn_into::<web_sys::Request>() else { continue };
        let url = req.url();
        let Ok(hit) = JsFuture::from(c.match_with_request(&req)).await else { continue };
        let Ok(resp) = hit.dyn_into::<Response>() else { continue };
        let h = resp.headers();
        let n = h.get("content-length").ok().flatten().and_then(|s| s.parse().ok()).unwrap_or(0);
        let hash = h.get("x-glassbox-sha256").ok().flatten().unwrap_or_default();
        out.push((url, n, hash));
    }
    out.sort();
    out
}

/// Removes `url` from the cache.
pub async fn delete_cached(url: &str) {
    if let Some(c) = cache().await {
        let _ = JsFuture::from(c.delete_with_str(url)).await;
    }
}

/// `url`'s bytes: from the cache when there, else downloaded (streamed, with
/// `on_progress(loaded, total)`, cancellable through `signal`, resumed up to twice after a
/// connection that dropped mid-body, refused past `limit` bytes before anything is allocated
/// for them) and then cached. Returns the bytes and whether they came from the cache.
pub async fn fetch_model_file(url: &str, signal: &AbortSignal, limit: u64, on_progress: &dyn Fn(u64, Option<u64>)) -> Result<(Vec<u8>, bool), FetchError> {
    if let Some(bytes) = cached(url).await.filter(|b| b.len() as u64 <= limit) {
        on_progress(bytes.len() as u64, Some(bytes.len() as u64));
        return Ok((bytes, true));
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut total: Option<u64> = None;
    let mut attempts = 0;
    loop {
        match fetch_into(url, Some(signal), limit, &mut bytes, &mut total, on_progress).await {
            Ok(()) => break,
            // A drop before the first chunk was read leaves nothing to resume from: the next
            // attempt asks for the whole file again.
            Err(FetchError::BrokeOff(m)) if attempts < 2 && !signal.aborted() => {
                attempts += 1;
                web_sys::console::warn_1(&format!("download of {url} broke off at {} bytes ({m}); resuming", bytes.len()).into());
            }
            Err(e) => return Err(e),
        }
    }
    store(url, &bytes).await;
    Ok((bytes, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_and_repo_ids() {
        assert_eq!(resolve_url("https://huggingface.co/", "a/b", "m.gguf"), "https://huggingface.co/a/b/resolve/main/m.gguf");
        assert_eq!(resolve_url("http://127.0.0.1:4173/hub", "/a/b/", "/x.json"), "http://127.0.0.1:4173/hub/a/b/resolve/main/x.json");
        assert!(check_repo("QuantFactory/gpt2-GGUF").is_ok());
        for bad in ["gpt2", "a/b/c", "/b", "a/", "a b/c", "../x/y", "../x"] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
        assert_eq!(size(1_500_000), "1.5 MB");
        assert_eq!(size(2_000), "2 kB");
    }
}
