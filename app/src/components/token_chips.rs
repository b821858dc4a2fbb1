use leptos::prelude::*;

/// The prompt's tokens as chips; clicking one chooses that position. The strip is one Tab stop
/// (the chosen chip): the arrow keys, Home and End move the position. Only the positions in
/// `shown` get a chip (a padded model's padding is hidden unless the reader shows it); each chip
/// keeps its true position (`data-pos`, which the stylesheet also draws under the token: one
/// element per chip).
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
    move || {
        let all = tokens.get();
        let positions = shown.get();
        let chips = positions
            .iter()
            .filter_map(|&p| all.get(p).cloned().map(|t| (p, t)))
            .map(|(p, t)| {
                view! {
                    <button
                        class="chip"
                        class:selected=move || selected.get() == p
                        class:special=t.starts_with('<')
                        data-testid="token"
                        data-pos=p
                        data-token=t.clone()
                        title=format!("position {p}: {t}")
                        tabindex=move || if selected.get() == p { "0" } else { "-1" }
                        on:click=move |_| on_select.run(p)
                    >
                        {super::token_label(&t)}
                    </button>
                }
            })
            .collect_view();
        let keydown = move |ev: leptos::ev::KeyboardEvent| {
            let Some(p) = step(&ev.key(), selected.get_untracked(), &positions) else { return };
            ev.prevent_default();
            on_select.run(p);
            // Keep the focus on the chosen chip (the strip's one Tab stop).
            let strip = ev.current_target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok());
            if let Some(chip) = strip.and_then(|s| s.query_selector(&format!("[data-pos=\"{p}\"]")).ok().flatten()) {
                let _ = wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlElement>(chip).focus();
            }
        };
        view! {
            <div class="chips" data-testid="tokens" data-prompt=prompt.get() role="group" aria-label="Tokens of the prompt: the arrow keys move the position" on:keydown=keydown>
                {chips}
            </div>
        }
    }
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
    use super::step;

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
