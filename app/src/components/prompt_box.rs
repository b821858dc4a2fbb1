use leptos::prelude::*;

/// The prompt: a text box with a Run button (Enter runs too; Shift+Enter adds a line), and the messages about
/// the last submitted prompt. The text stays in the box whatever happens to the run.
#[component]
pub fn PromptBox(
    /// The text in the box.
    text: RwSignal<String>,
    /// Whether the model is loaded (Run is disabled until it is).
    #[prop(into)]
    ready: Signal<bool>,
    /// Whether a run is in progress (Run is disabled meanwhile).
    #[prop(into)]
    running: Signal<bool>,
    /// Runs the text in the box.
    on_run: Callback<()>,
    /// Why the last prompt could not run, if it could not.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// What was cut off the last prompt to fit the context, if anything.
    #[prop(into)]
    cut: Signal<Option<String>>,
    /// What the model's vocabulary accepts, in a sentence.
    #[prop(into)]
    hint: Signal<String>,
    /// Prompts worth trying with this model: a click puts one in the box and runs it.
    examples: &'static [&'static str],
) -> impl IntoView {
    // Run stays enabled while a run is in flight: a new run supersedes the old one.
    let can_run = move || ready.get();
    let keydown = move |ev: leptos::ev::KeyboardEvent| {
        // Enter runs (as in a search box); Shift+Enter types a newline.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            if can_run() {
                on_run.run(());
            }
        }
    };
    view! {
        <section class="panel">
            <h2>"Prompt"</h2>
            <label class="help" for="prompt" data-testid="prompt-help">
                {move || {
                    let h = hint.get();
                    if h.is_empty() { "Type a prompt.".to_string() } else { h }
                }}
            </label>
            <textarea
                id="prompt"
                data-testid="prompt"
                rows="3"
                spellcheck="false"
                autocomplete="off"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=keydown
            ></textarea>
            <div class="prompt-actions">
                <button class="primary" data-testid="run" on:click=move |_| on_run.run(()) disabled=move || !can_run()>
                    {move || if running.get() { "Running\u{2026}" } else { "Run" }}
                </button>
                <span class="muted">"or Enter (Shift+Enter for a new line)"</span>
                <span class="examples">
                    {(!examples.is_empty()).then(|| view! { <span class="muted">"Try:"</span> })}
                    {examples
                        .iter()
                        .map(|&ex| {
                            view! {
                                <button class="example" data-testid="example" disabled=move || !can_run()
                                    on:click=move |_| { text.set(ex.to_string()); on_run.run(()); }>
                                    <code>{ex}</code>
                                </button>
                            }
                        })
                        .collect_view()}
                </span>
            </div>
            {move || error.get().map(|e| view! { <div class="notice error" data-testid="prompt-error" role="alert">{e}</div> })}
            {move || cut.get().map(|c| view! { <div class="notice warning" data-testid="prompt-cut" role="status">{c}</div> })}
        </section>
    }
}
