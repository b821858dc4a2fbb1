//! Embeds: the page opened with `&widget=<kind>` in its share fragment shows that one widget with
//! no page chrome (for an iframe in a blog post or an article), a "made with glassbox" link to the
//! full explorer with the same experiment, and tells its parent its height:
//!
//! ```text
//! parent.postMessage({ type: "glassbox:height", height: <CSS pixels>, widget: "<kind>" }, "*")
//! ```
//!
//! whenever the height changes (checked every 250 ms; `public/glassbox-embed.js` sizes its
//! iframe with it). `&static=1` freezes the widget: no controls, no clicks. The whole app runs
//! behind it (the same engine, run and views): an embed is the explorer with the rest hidden by
//! `body.embed` CSS classes, so it computes exactly what the explorer shows.

use std::cell::Cell;
use std::rc::Rc;

use glassbox_core::share::Widget;
use glassbox_core::View;
use wasm_bindgen::JsValue;

use super::state::Page;

/// The view tab that shows `w` (`None`: the predictions, which are above the tabs).
pub fn tab_of(w: Widget) -> Option<View> {
    match w {
        Widget::Predictions => None,
        Widget::Attention => Some(View::Attention),
        Widget::Neurons => Some(View::Neurons),
        Widget::Lens => Some(View::Lens),
        Widget::Attribution => Some(View::Attribution),
        Widget::Patching => Some(View::Patching),
    }
}

/// Turns the page into the embed of `w`: body classes, the widget's tab, the height messages.
pub fn start(page: Page, w: Widget, frozen: bool) {
    let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) else { return };
    let part = if tab_of(w).is_some() { "embed-view" } else { "embed-predictions" };
    body.set_class_name(&format!("embed {part} embed-{}{}", w.name(), if frozen { " frozen" } else { "" }));
    if let Some(tab) = tab_of(w) {
        page.select(|s| s.tab = Some(tab));
    }
    let last = Rc::new(Cell::new(-1.0f64));
    let name = w.name();
    gloo_timers::callback::Interval::new(250, move || {
        let Some(window) = web_sys::window() else { return };
        let Some(root) = window.document().and_then(|d| d.document_element()) else { return };
        let height = f64::from(root.scroll_height());
        if height == last.get() {
            return;
        }
        last.set(height);
        let Ok(Some(parent)) = window.parent() else { return };
        let msg = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&msg, &JsValue::from_str(k), &v);
        let _ = set("type", JsValue::from_str("glassbox:height"));
        let _ = set("height", JsValue::from_f64(height));
        let _ = set("widget", JsValue::from_str(name));
        let _ = parent.post_message(&msg, "*");
    })
    .forget();
}
