use leptos::prelude::*;

/// The prompt's tokens as chips; clicking one chooses that position.
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
                        on:click=move |_| on_select.run(p)
                    >
                        <span class="tok">{super::token_label(&t)}</span>
                        <span class="idx">{p}</span>
                    </button>
                }
            })
            .collect_view();
        view! { <div class="chips" data-testid="tokens" data-prompt=prompt.get()>{chips}</div> }
    }
}
