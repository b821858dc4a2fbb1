use leptos::html::Div;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::html::{escape, open, pos_of};

/// The prompt's tokens as chips; clicking one chooses that position. The strip is one Tab stop
/// (the chosen chip): the arrow keys, Home and End move the position. Only the positions in
/// `shown` get a chip (a padded model's padding is hidden unless the reader shows it); each chip
/// keeps its true position (`data-pos`, which the stylesheet also draws under the token: one
/// element per chip).
///
/// The chips are written as one string (see `html.rs`: building 128 of them node by node was
/// the largest part of applying a run's answer); a new position only moves the selection from
/// one chip to the other.
#[component]
pub fn TokenChips(
    /// Token strings, the BOS token first.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// The prompt these tokens came from (exposed as `data-prompt` for tests and tools).
    #[prop(into)]
    prompt: Signal<String>,
    /// The positions drawn, in order (every position of an unpadded prompt).
    #[prop(into)]
    shown: Signal<Vec<usize>>,
    /// The chosen position.
    #[prop(into)]
    selected: Signal<usize>,
    /// Called with the position of a clicked chip.
    on_select: Callback<usize>,
) -> impl IntoView {
    let strip = NodeRef::<Div>::new();
    // What the strip's markup was written from, and the chip marked as chosen.
    let drawn = StoredValue::new((Vec::<String>::new(), Vec::<usize>::new(), String::new()));
    let marked = StoredValue::new(None::<usize>);
    Effect::new(move |_| {
        let Some(el) = strip.get() else { return };
        let sel = selected.get();
        let prompt = prompt.get();
        let same = tokens.with(|t| shown.with(|s| drawn.with_value(|d| d.0 == *t && d.1 == *s && d.2 == prompt)));
        if !same {
            let (t, s) = (tokens.get(), shown.get());
            el.set_inner_html(&chips_html(&t, &s, sel));
            // The prompt attribute last: a test that waits for it finds the chips in place.
            let _ = el.set_attribute("data-prompt", &prompt);
            drawn.set_value((t, s, prompt));
        } else if marked.get_value() != Some(sel) {
            if let Some(old) = marked.get_value() {
                mark(&el, old, false);
            }
            mark(&el, sel, true);
        }
        marked.set_value(Some(sel));
    });
    let click = move |ev: leptos::ev::MouseEvent| {
        if let Some(p) = pos_of(ev.target(), ".chip") {
            on_select.run(p);
        }
    };
    let keydown = move |ev: leptos::ev::KeyboardEvent| {
        let Some(p) = shown.with_untracked(|sh| step(&ev.key(), selected.get_untracked(), sh)) else { return };
        ev.prevent_default();
        on_select.run(p);
        // Keep the focus on the chosen chip (the strip's one Tab stop).
        if let Some(chip) = strip.get_untracked().and_then(|s| chip(&s, p)) {
            let _ = chip.unchecked_into::<web_sys::HtmlElement>().focus();
        }
    };
    view! {
        <div class="chips" data-testid="tokens" node_ref=strip role="group" aria-label="Tokens of the prompt: the arrow keys move the position" on:click=click on:keydown=keydown></div>
    }
}

/// The chips' markup: one button per shown position, the chosen one marked and the strip's
/// only Tab stop.
pub fn chips_html(tokens: &[String], shown: &[usize], selected: usize) -> String {
    let mut out = String::with_capacity(shown.len() * 160);
    for &p in shown {
        let Some(t) = tokens.get(p) else { continue };
        let chosen = p == selected;
        let class = match (chosen, t.starts_with('<')) {
            (false, false) => "chip",
            (true, false) => "chip selected",
            (false, true) => "chip special",
            (true, true) => "chip special selected",
        };
        let pos = p.to_string();
        open(
            &mut out,
            "button",
            &[
                ("type", Some("button")),
                ("class", Some(class)),
                ("data-testid", Some("token")),
                ("data-pos", Some(&pos)),
                ("data-token", Some(t)),
                ("title", Some(&format!("position {p}: {t}"))),
                ("tabindex", Some(if chosen { "0" } else { "-1" })),
            ],
        );
        out.push_str(&escape(&super::token_label(t)));
        out.push_str("</button>");
    }
    out
}

fn chip(strip: &web_sys::HtmlDivElement, p: usize) -> Option<web_sys::Element> {
    strip.query_selector(&format!(".chip[data-pos=\"{p}\"]")).ok().flatten()
}

/// Marks chip `p` chosen (the strip's Tab stop) or not.
fn mark(strip: &web_sys::HtmlDivElement, p: usize, chosen: bool) {
    let Some(c) = chip(strip, p) else { return };
    let _ = c.class_list().toggle_with_force("selected", chosen);
    let _ = c.set_attribute("tabindex", if chosen { "0" } else { "-1" });
}

/// The position a key moves to from `p` among the drawn positions `shown` (arrows to the
/// previous or next drawn one, Home and End to the ends).
pub fn step(key: &str, p: usize, shown: &[usize]) -> Option<usize> {
    let (&first, &last) = (shown.first()?, shown.last()?);
    Some(match key {
        "ArrowLeft" | "ArrowUp" => shown.iter().rev().find(|&&q| q < p).copied().unwrap_or(first),
        "ArrowRight" | "ArrowDown" => shown.iter().find(|&&q| q > p).copied().unwrap_or(last),
        "Home" => first,
        "End" => last,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{chips_html, step};

    #[test]
    fn chips_are_written_with_their_positions_and_the_choice_marked() {
        let tokens: Vec<String> = ["<bos>", "a", " ", "\"<"].iter().map(|s| s.to_string()).collect();
        let html = chips_html(&tokens, &[0, 1, 2, 3], 2);
        assert_eq!(html.matches("<button").count(), 4);
        assert!(html.contains("class=\"chip special\""), "{html}");
        assert!(html.contains("data-pos=\"2\" data-token=\" \" title=\"position 2:  \" tabindex=\"0\">\u{2423}</button>"), "{html}");
        assert!(html.contains("class=\"chip selected\""));
        assert_eq!(html.matches("tabindex=\"0\"").count(), 1);
        // Tokens are text, never markup.
        assert!(html.contains("data-token=\"&quot;&lt;\""), "{html}");
        assert!(html.contains(">&quot;&lt;</button>"), "{html}");
        // Hidden positions get no chip.
        assert_eq!(chips_html(&tokens, &[0, 3], 3).matches("<button").count(), 2);
    }

    #[test]
    fn keys_move_the_position_within_the_prompt() {
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(step("ArrowLeft", 3, &all), Some(2));
        assert_eq!(step("ArrowLeft", 0, &all), Some(0));
        assert_eq!(step("ArrowRight", 9, &all), Some(9));
        assert_eq!(step("ArrowDown", 4, &all), Some(5));
        assert_eq!(step("Home", 4, &all), Some(0));
        assert_eq!(step("End", 4, &all), Some(9));
        assert_eq!(step("a", 4, &all), None);
        assert_eq!(step("End", 0, &[]), None);
    }

    #[test]
    fn keys_skip_hidden_padding() {
        // <bos> ( ) then padding to 9, whose last position (the readout) stays.
        let shown = [0, 1, 2, 9];
        assert_eq!(step("ArrowRight", 2, &shown), Some(9));
        assert_eq!(step("ArrowLeft", 9, &shown), Some(2));
        assert_eq!(step("ArrowLeft", 5, &shown), Some(2)); // from a hidden position (a link's)
        assert_eq!(step("End", 0, &shown), Some(9));
        assert_eq!(step("Home", 9, &shown), Some(0));
    }
}
