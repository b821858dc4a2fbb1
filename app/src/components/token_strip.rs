use leptos::prelude::*;

use super::html::{escape, open};
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
    // One string for the whole strip (see `html.rs`).
    let strip = move || tokens.with(|t| loss.with(|l| strip_html(t, l, max.get())));
    view! {
        <Show when=move || !loss.get().is_empty()>
            <div class="token-strip" data-testid="token-strip" inner_html=strip></div>
            <Legend label="surprise (loss of each token)" low="0 nats" high=Signal::derive(move || format!("{:.2} nats", max.get())) palette="heat" />
        </Show>
    }
}

/// The stylesheet's class for a shade `a` in [0, 1] (`shade-0` to `shade-20`, steps of 0.05):
/// markup written as a string cannot carry inline styles under the page's CSP.
pub fn shade_class(a: f32) -> String {
    format!("shade-{}", (a.clamp(0.0, 1.0) * 20.0).round() as u32)
}

/// The strip's markup: each token shaded by its loss (its share of the largest).
pub fn strip_html(tokens: &[String], loss: &[f32], max: f32) -> String {
    let mut out = String::with_capacity(tokens.len() * 150);
    for (p, t) in tokens.iter().enumerate() {
        let l = if p == 0 { None } else { loss.get(p - 1).copied() };
        let title = match l {
            Some(l) => format!("token {p} \u{201c}{t}\u{201d}: loss {l:.3} nats (P = {:.3})", (-l).exp()),
            None => format!("token {p} \u{201c}{t}\u{201d}: the first token is not predicted"),
        };
        let a = l.map_or(0.0, |l| (l / max).clamp(0.0, 1.0));
        let (pos, loss, class) = (p.to_string(), l.map(|l| format!("{l:.6}")), format!("strip-tok {}", shade_class(a)));
        open(
            &mut out,
            "span",
            &[("class", Some(&class)), ("data-testid", Some("loss-token")), ("data-pos", Some(&pos)), ("data-loss", loss.as_deref()), ("title", Some(&title))],
        );
        out.push_str(&escape(&super::token_label(t)));
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_token_is_shaded_by_its_loss() {
        let tokens: Vec<String> = ["<bos>", "a", "<"].iter().map(|s| s.to_string()).collect();
        let html = super::strip_html(&tokens, &[1.0, 2.0], 2.0);
        assert_eq!(html.matches("<span").count(), 3);
        // The first token is not predicted: no loss, no shade.
        assert!(html.starts_with("<span class=\"strip-tok shade-0\" data-testid=\"loss-token\" data-pos=\"0\" title="), "{html}");
        assert!(html.contains("<span class=\"strip-tok shade-10\" data-testid=\"loss-token\" data-pos=\"1\" data-loss=\"1.000000\""), "{html}");
        assert!(html.contains("<span class=\"strip-tok shade-20\" data-testid=\"loss-token\" data-pos=\"2\" data-loss=\"2.000000\""), "{html}");
        assert!(html.ends_with(">&lt;</span>"), "{html}");
        assert!(!html.contains("style="), "inline styles are refused by the page's CSP");
        assert_eq!(super::shade_class(0.024), "shade-0");
        assert_eq!(super::shade_class(0.026), "shade-1");
        assert_eq!(super::shade_class(7.0), "shade-20");
    }
}
