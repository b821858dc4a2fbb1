//! Markup for the views a run rebuilds wholesale (token chips, the loss strip, the heatmap's
//! table for screen readers), written as one string and set as an element's `innerHTML`.
//!
//! At 128 tokens these views are about 650 elements. Building them node by node from wasm took
//! thousands of calls across the JS boundary (create, clone, set each attribute, attach each
//! listener) inside the task that applies a run's answer; the browser's HTML parser builds the
//! same nodes from one string in a fraction of that. Clicks are delegated to the container
//! (one listener, the element found with `closest`). Every piece of text and every attribute
//! value goes through [`escape`] (`export::xml_escape`): tokens are arbitrary text.

use std::fmt::Write;

/// Text and quoted attribute values escaped: the SVG export's escaping, which covers HTML too.
pub use crate::export::xml_escape as escape;

/// An element's opening tag with its attributes (values escaped); `None` values are left out.
pub fn open(out: &mut String, tag: &str, attrs: &[(&str, Option<&str>)]) {
    out.push('<');
    out.push_str(tag);
    for (name, value) in attrs {
        if let Some(v) = value {
            let _ = write!(out, " {name}=\"{}\"", escape(v));
        }
    }
    out.push('>');
}

/// The position in `data-pos` of the element `target` is in (or is), looked up from the
/// event's target up to the delegating container: which chip or cell was clicked.
pub fn pos_of(target: Option<web_sys::EventTarget>, selector: &str) -> Option<usize> {
    use wasm_bindgen::JsCast;
    let el = target?.dyn_into::<web_sys::Element>().ok()?;
    el.closest(selector).ok()??.get_attribute("data-pos")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{escape, open};

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(escape("<bos> & \"x\" 'y'"), "&lt;bos&gt; &amp; &quot;x&quot; &apos;y&apos;");
        assert_eq!(escape("whale \u{2423}"), "whale \u{2423}");
        let mut s = String::new();
        open(&mut s, "span", &[("class", Some("a")), ("title", Some("\"><script>")), ("data-x", None)]);
        assert_eq!(s, "<span class=\"a\" title=\"&quot;&gt;&lt;script&gt;\">");
    }
}
