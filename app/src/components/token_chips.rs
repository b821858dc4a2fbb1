use leptos::prelude::*;

/// The prompt's tokens as chips; clicking one chooses that position. The strip is one Tab stop
/// (the chosen chip): the arrow keys, Home and End move the position.
#[component]
pub fn TokenChips(
    /// Token strings, the BOS token first.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// The prompt these tokens came from (exposed as `data-prompt` for tests and tools).
    #[prop(into)]
    prompt: Signal<String>,
    /// The chosen position.
    #[prop(into)]
    selected: Signal<usize>,
    /// Called with the position of a clicked chip.
    on_select: Callback<usize>,
) -> impl IntoView {
    move || {
        let chips = tokens
            .get()
            .into_iter()
            .enumerate()
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
                        <span class="tok">{super::token_label(&t)}</span>
                        <span class="idx">{p}</span>
                    </button>
                }
            })
            .collect_view();
        let n = tokens.with(Vec::len);
        let keydown = move |ev: leptos::ev::KeyboardEvent| {
            let Some(p) = step(&ev.key(), selected.get_untracked(), n) else { return };
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

/// The position a key moves to from `p` among `n` (arrows by one, Home and End to the ends).
pub fn step(key: &str, p: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let last = n - 1;
    Some(match key {
        "ArrowLeft" | "ArrowUp" => p.saturating_sub(1),
        "ArrowRight" | "ArrowDown" => (p + 1).min(last),
        "Home" => 0,
        "End" => last,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::step;

    #[test]
    fn keys_move_the_position_within_the_prompt() {
        assert_eq!(step("ArrowLeft", 3, 10), Some(2));
        assert_eq!(step("ArrowLeft", 0, 10), Some(0));
        assert_eq!(step("ArrowRight", 9, 10), Some(9));
        assert_eq!(step("ArrowDown", 4, 10), Some(5));
        assert_eq!(step("Home", 4, 10), Some(0));
        assert_eq!(step("End", 4, 10), Some(9));
        assert_eq!(step("a", 4, 10), None);
        assert_eq!(step("End", 0, 0), None);
    }
}
