use leptos::prelude::*;

use super::Legend;

/// The prompt with each token shaded by the model's surprise at it: the loss of predicting
/// token `p` from the tokens before it, `-ln P(token p)`, in nats.
#[component]
pub fn TokenStrip(
    /// Token strings, the BOS token first.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// `loss[p]` is the loss of token `p + 1` (empty for a readout model).
    #[prop(into)]
    loss: Signal<Vec<f32>>,
) -> impl IntoView {
    let max = Memo::new(move |_| loss.get().iter().copied().filter(|x| x.is_finite()).fold(0f32, f32::max).max(1e-6));
    let strip = move || {
        let (tokens, loss) = (tokens.get(), loss.get());
        let max = max.get();
        tokens
            .iter()
            .enumerate()
            .map(|(p, t)| {
                let l = if p == 0 { None } else { loss.get(p - 1).copied() };
                let title = match l {
                    Some(l) => format!("token {p} \u{201c}{t}\u{201d}: loss {l:.3} nats (P = {:.3})", (-l).exp()),
                    None => format!("token {p} \u{201c}{t}\u{201d}: the first token is not predicted"),
                };
                let a = l.map_or(0.0, |l| (l / max).clamp(0.0, 1.0));
                view! {
                    <span class="strip-tok" data-testid="loss-token" data-pos=p data-loss=l.map(|l| format!("{l:.6}")) title=title style:--a=format!("{a:.3}")>
                        {super::token_label(t)}
                    </span>
                }
            })
            .collect_view()
    };
    view! {
        <Show when=move || !loss.get().is_empty()>
            <div class="token-strip" data-testid="token-strip">{strip}</div>
            <Legend label="surprise (loss of each token)" low="0 nats" high=Signal::derive(move || format!("{:.2} nats", max.get())) palette="heat" />
        </Show>
    }
}
