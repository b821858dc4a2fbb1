use leptos::prelude::*;

/// The light / dark switch in the header. The page follows the system's `prefers-color-scheme`
/// until the reader picks one; the pick sets `data-theme` on `<html>` (main.css has the two
/// palettes) and is remembered in this browser (`localStorage`, key `glassbox-theme`).
#[component]
pub fn ThemeToggle() -> impl IntoView {
    if let Some(saved) = storage().and_then(|s| s.get_item(KEY).ok().flatten()) {
        set_theme(&saved);
    }
    let dark = RwSignal::new(is_dark());
    let toggle = move |_| {
        let next = if is_dark() { "light" } else { "dark" };
        set_theme(next);
        if let Some(s) = storage() {
            let _ = s.set_item(KEY, next);
        }
        dark.set(next == "dark");
    };
    view! {
        <button class="theme-toggle" data-testid="theme-toggle" aria-pressed=move || dark.get().to_string() title="Switch between light and dark" on:click=toggle>
            {move || if dark.get() { "Light mode" } else { "Dark mode" }}
        </button>
    }
}

const KEY: &str = "glassbox-theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn root() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.document_element()
}

fn set_theme(theme: &str) {
    if let Some(r) = root() {
        let _ = r.set_attribute("data-theme", theme);
    }
    // Canvas views read their colours when they paint: tell them to paint again.
    if let Some(w) = web_sys::window() {
        if let Ok(ev) = web_sys::Event::new("glassbox-theme") {
            let _ = w.dispatch_event(&ev);
        }
    }
}

/// Whether the page is dark now: the reader's pick, or else the system's preference.
fn is_dark() -> bool {
    match root().and_then(|r| r.get_attribute("data-theme")).as_deref() {
        Some("dark") => true,
        Some(_) => false,
        None => web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten()).is_some_and(|m| m.matches()),
    }
}
