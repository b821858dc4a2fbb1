//! Share links on the page: Copy link, Back and Forward through committed changes, and a link
//! whose model is not shipped (it waits for the reader to press Load, then runs the link's
//! experiment on it). The link format itself is `glassbox_core::share`; the URL is written by
//! `url_state`.

use glassbox_core::{Analysis, Experiment, ModelSource as Source};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::causal::{run_ablation, run_patch, run_scrub, run_steer};
use super::outside::load_outside;
use super::run::run_experiment;
use super::state::Page;
use crate::causal::{AblationSettings, PatchSettings, ScrubSettings};
use crate::components::ModelSource;
use crate::url_state;

/// Makes `e` the page's experiment: the prompt boxes and the panels' settings follow it.
/// Nothing runs.
pub fn apply(page: Page, e: Experiment) {
    page.text.set(e.prompt.clone());
    page.corrupted_text.set(e.corrupted.clone().unwrap_or_default());
    if let Some(s) = PatchSettings::of(&e.analysis) {
        page.patch_settings.set(s);
    }
    if let Some(s) = AblationSettings::of(&e.analysis) {
        page.ablation_settings.set(s);
    }
    if let Some(s) = ScrubSettings::of(&e.analysis) {
        page.scrub_settings.set(s);
    }
    if let Analysis::Steer(s) = &e.analysis {
        page.steer_settings.set(s.clone());
    }
    page.experiment.set(e);
}

/// Runs the experiment's analysis when it is one of the causal views' (a link to a patching
/// sweep shows the sweep, recomputed).
pub fn run_analysis(page: Page) {
    match page.experiment.with_untracked(|e| e.analysis.clone()) {
        Analysis::Patch { .. } | Analysis::PathPatch { .. } => spawn_local(run_patch(page)),
        Analysis::Ablate { .. } => spawn_local(run_ablation(page)),
        Analysis::Scrub { .. } => spawn_local(run_scrub(page)),
        Analysis::Steer(_) => spawn_local(run_steer(page)),
        Analysis::Inspect | Analysis::TaskSweep { .. } | Analysis::CorpusScan { .. } => {}
    }
}

/// Back or Forward: the history entry's experiment, on the same model (another model reloads
/// the page, which opens the entry's link from the start).
pub fn on_popstate(page: Page) {
    url_state::history_moved();
    let Some(window) = web_sys::window() else { return };
    let Some(fragment) = url_state::read_fragment() else { return };
    let Ok(f) = glassbox_core::share::parse_fragment(&fragment) else {
        let _ = window.location().reload();
        return;
    };
    if page.experiment.with_untracked(|e| e.model.source != f.experiment.model.source) {
        let _ = window.location().reload();
        return;
    }
    apply(page, f.experiment);
    spawn_local(run_experiment(page));
    run_analysis(page);
}

/// Copies the page's share link to the clipboard (and shows it, for browsers that refuse).
pub fn copy_link(page: Page) {
    let Some(url) = page.experiment.with_untracked(url_state::share_url) else { return };
    page.share_link.set(Some((url.clone(), false)));
    let Some(window) = web_sys::window() else { return };
    let promise = window.navigator().clipboard().write_text(&url);
    spawn_local(async move {
        if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
            page.share_link.set(Some((url, true)));
        }
    });
}

/// The link's outside model as the load panel names it, or why it cannot be fetched.
pub fn link_source(page: Page, e: &Experiment) -> Result<ModelSource, String> {
    match &e.model.source {
        Source::Hub { repo, file, quantize, .. } => {
            Ok(ModelSource::Hub { base: page.hub_base.get_untracked(), repo: repo.clone(), file: file.clone(), quantize: quantize.clone() })
        }
        Source::Url { url } => Ok(ModelSource::Url(url.clone())),
        Source::Local { name } => Err(format!(
            "This link's model is the file {name} from the computer it was made on: open that file with \u{201c}or a file\u{201d} below, then the link's experiment runs on it."
        )),
        Source::Shipped { id } => Err(format!("{id} is a shipped model")),
    }
}

/// Load pressed on a link's outside model: downloads it (the load panel shows the progress);
/// once it runs, the link's experiment is applied (`outside::start_outside`).
pub fn load_link_model(page: Page) {
    let Some(e) = page.pending_link.get_untracked() else { return };
    match link_source(page, &e) {
        Ok(src) => spawn_local(load_outside(page, src)),
        Err(m) => page.url_notices.update(|v| v.push(m)),
    }
}

/// Whether every file of a link's outside model is already in this browser's cache (then it
/// loads at once: nothing is downloaded).
pub fn link_model_cached(page: Page, e: &Experiment) -> bool {
    let cached = page.cached.get();
    let has = |url: &str| cached.iter().any(|(u, _, _)| u == url);
    match link_source(page, e) {
        Ok(ModelSource::Hub { base, repo, file: Some(f), .. }) => has(&crate::hub::resolve_url(&base, &repo, &f)),
        Ok(ModelSource::Hub { base, repo, file: None, .. }) => {
            let url = |f: &str| crate::hub::resolve_url(&base, &repo, f);
            has(&url("config.json")) && has(&url("tokenizer.json")) && (has(&url("model.safetensors")) || has(&url("model.safetensors.index.json")))
        }
        Ok(ModelSource::Url(u)) => has(&u),
        _ => false,
    }
}

/// The HTML a blog post pastes to embed `w` of the page's experiment: an iframe, or the
/// `<glassbox-widget>` element of `glassbox-embed.js` (which sizes itself to the widget).
pub fn embed_snippet(page: Page, w: glassbox_core::share::Widget) -> String {
    let e = page.experiment.get_untracked();
    let Some(iframe_src) = url_state::link_url(&e, Some(w), false) else { return String::new() };
    let site = iframe_src.split('#').next().unwrap_or_default().split('?').next().unwrap_or_default().to_string();
    let fragment = glassbox_core::share::fragment(&e, None, false);
    let name = w.name();
    format!(
        "<iframe src=\"{iframe_src}\" width=\"100%\" height=\"420\" style=\"border:0\" loading=\"lazy\" title=\"glassbox: {name}\"></iframe>\n\n\
         <!-- or, sized to the widget (it posts its height): -->\n\
         <script src=\"{site}glassbox-embed.js\"></script>\n\
         <glassbox-widget experiment=\"{fragment}\" widget=\"{name}\"></glassbox-widget>\n"
    )
}
