//! The article's live figures. Each reads the shared [`Article`] state: the prompt, the one run
//! of it (predictions, attention), the per-head ablation, and inspect answers (logit lens,
//! attribution), and shows the same components as the explorer.

use std::sync::Arc;

use glassbox_core::analysis::lens::LensNorm;
use glassbox_core::View;
use leptos::prelude::*;

use super::{now_ms, Answer, Article, HeadAblation, Status};
use crate::analysis::{induction_score, induction_targets, RunView};
use crate::components::{AttentionHeatmap, AttributionChart, Legend, LogitLens, TokenStrip};
use crate::inspect::{Inspection, Query};
use crate::page::queries::{narrow_answer as narrow, optional};

/// What a `<figure data-figure="...">` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The model's surprise at every token of a repeated sequence.
    Predictions,
    /// The induction head's attention pattern.
    Attention,
    /// Every head zero-ablated in turn: the loss without it.
    Ablation,
    /// The logit lens.
    Lens,
    /// Direct logit attribution at the last position.
    Attribution,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "predictions" => Kind::Predictions,
            "attention" => Kind::Attention,
            "ablation" => Kind::Ablation,
            "lens" => Kind::Lens,
            "attribution" => Kind::Attribution,
            _ => return None,
        })
    }
}

/// The article's status line: what the live figures cost and where they run.
#[component]
pub fn StatusLine(article: Article) -> impl IntoView {
    move || {
        match article.status.get() {
        Status::Idle => view! {
            <span data-testid="article-status" data-state="idle">
                "The figures in this article are live: they are computed in your browser when you scroll to them, from one download of a 185 KB model that every figure shares."
            </span>
        }
        .into_any(),
        Status::Loading(m) => view! { <span data-testid="article-status" data-state="loading">{m}</span> }.into_any(),
        Status::Ready { backend } => view! {
            <span data-testid="article-status" data-state="ready" data-backend=backend.clone()>
                {format!("Live: the figures run induction-2l on {backend} in your browser (one model download, one engine, shared by every figure).")}
            </span>
        }
        .into_any(),
        Status::Failed(m) => view! { <span class="error" data-testid="article-status" data-state="error">{m}</span> }.into_any(),
    }
    }
}

/// The prompt line of a figure: every figure edits the same prompt.
#[component]
fn PromptLine(article: Article) -> impl IntoView {
    let new_sequence = move |_| {
        let text = random_repeat(12);
        article.draft.set(text);
        article.commit();
    };
    view! {
        <div class="fig-prompt">
            <label>
                "Prompt "
                <input
                    type="text"
                    data-testid="figure-prompt"
                    spellcheck="false"
                    prop:value=move || article.draft.get()
                    on:input=move |ev| article.draft.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| {
                        if ev.key() == "Enter" {
                            article.commit();
                        }
                    }
                />
            </label>
            <button data-testid="figure-recompute" on:click=move |_| article.commit()>"Recompute"</button>
            <button data-testid="figure-random" title="A new random segment, repeated" on:click=new_sequence>"New sequence"</button>
        </div>
    }
}

/// A random segment of `n` distinct characters of the model's alphabet, 8 other characters, then
/// the segment again: what the model was trained to continue.
fn random_repeat(n: usize) -> String {
    let mut pool: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".chars().collect();
    let mut take = || pool.swap_remove((js_sys::Math::random() * pool.len() as f64) as usize % pool.len());
    let segment: String = (0..n).map(|_| take()).collect();
    let filler: String = (0..8).map(|_| take()).collect();
    format!("{segment} {filler} {segment}")
}

/// One live figure: the prompt line, then the figure once its data is computed.
#[component]
pub fn LiveFigure(article: Article, kind: Kind, visible: RwSignal<bool>) -> impl IntoView {
    let prompt = article.prompt;
    // The run of the prompt, when it is the current prompt's.
    let run = Signal::derive(move || current(article.run.get(), &prompt.get()));
    let lens_target = RwSignal::new(String::new());
    let lens_cached = RwSignal::new(false);
    let lens_mid = RwSignal::new(false);
    let lens_query = Memo::new(move |_| Query::Lens {
        norm: if lens_cached.get() { LensNorm::CachedScale } else { LensNorm::Fresh },
        incl_mid: lens_mid.get(),
        target: optional(lens_target.get()),
    });
    let attr_target = RwSignal::new(String::new());
    let attr_distractor = RwSignal::new(String::new());
    let attr_unfold = RwSignal::new(false);
    let attr_center = RwSignal::new(true);
    let attr_query = Memo::new(move |_| {
        let n = run.get().and_then(|r| r.ok()).map_or(0, |r| r.n_tokens());
        (n > 0).then(|| Query::Attribute {
            pos: n - 1,
            target: optional(attr_target.get()),
            distractor: optional(attr_distractor.get()),
            fold_ln: !attr_unfold.get(),
            center_unembed: attr_center.get(),
        })
    });

    // Ask for this figure's data while it is on screen and the engine runs.
    Effect::new(move |_| {
        if !visible.get() || !article.ready() {
            return;
        }
        let p = prompt.get();
        match kind {
            Kind::Predictions | Kind::Attention => article.ensure_run(p),
            Kind::Ablation => {
                let (layers, heads) = article.dims.get();
                article.ensure_ablation(p, layers, heads)
            }
            Kind::Lens => article.ensure_inspect(p, lens_query.get()),
            Kind::Attribution => {
                article.ensure_run(p.clone());
                if let Some(q) = attr_query.get() {
                    article.ensure_inspect(p, q)
                }
            }
        }
    });
    let lens = Signal::derive(move || {
        narrow(article.inspection(&prompt.get(), &lens_query.get()), |i| if let Inspection::Lens(l) = i { Some(l.clone()) } else { None })
    });
    let attribution = Signal::derive(move || {
        let q = attr_query.get()?;
        narrow(article.inspection(&prompt.get(), &q), |i| if let Inspection::Attribute(a) = i { Some(a.clone()) } else { None })
    });
    let ablation = Signal::derive(move || current(article.ablation.get(), &prompt.get()));

    // Computed: Some(Ok) when the figure shows this prompt's data, Some(Err) on a failure.
    let outcome = Memo::new(move |_| -> Option<Result<(), String>> {
        match kind {
            Kind::Predictions | Kind::Attention => run.get().map(|r| r.map(|_| ())),
            Kind::Ablation => ablation.get().map(|r| r.map(|_| ())),
            Kind::Lens => lens.get().map(|r| r.map(|_| ())),
            Kind::Attribution => attribution.get().map(|r| r.map(|_| ())),
        }
    });
    let state = Memo::new(move |_| match (visible.get(), article.status.get(), outcome.get()) {
        (false, _, _) => "waiting",
        (_, Status::Idle | Status::Loading(_), _) => "loading",
        (_, Status::Failed(_), _) => "error",
        (_, _, None) => "computing",
        (_, _, Some(Ok(()))) => "ready",
        (_, _, Some(Err(_))) => "error",
    });
    // When the figure first showed its numbers (ms since the page started loading).
    let ready_ms = RwSignal::new(None::<f64>);
    Effect::new(move |_| {
        if state.get() == "ready" && ready_ms.get_untracked().is_none() {
            ready_ms.set(Some(now_ms()));
        }
    });

    let tokens = Signal::derive(move || run.get().and_then(|r| r.ok()).map(|r| r.tokens.clone()).unwrap_or_default());
    let body = move || {
        let message = match state.get() {
            "waiting" => Some("Computed when it scrolls into view.".to_string()),
            "loading" => Some(match article.status.get() {
                Status::Loading(m) => m,
                _ => "Starting\u{2026}".into(),
            }),
            "computing" => Some("Computing\u{2026}".into()),
            _ => None,
        };
        if let Some(m) = message {
            return view! { <p class="computing">{m}</p> }.into_any();
        }
        if let (Status::Failed(m), _) | (_, Some(Err(m))) = (article.status.get(), outcome.get()) {
            return view! { <p class="error" data-testid="figure-error">{m}</p> }.into_any();
        }
        match kind {
            Kind::Predictions => predictions(run).into_any(),
            Kind::Attention => attention(run).into_any(),
            Kind::Ablation => ablation_grid(ablation).into_any(),
            Kind::Lens => view! {
                <LogitLens
                    lens=lens
                    tokens=tokens
                    shown={Vec::<usize>::new()}
                    target=lens_target
                    on_target=Callback::new(move |t| lens_target.set(t))
                    cached_scale=lens_cached
                    on_cached_scale=Callback::new(move |b| lens_cached.set(b))
                    incl_mid=lens_mid
                    on_incl_mid=Callback::new(move |b| lens_mid.set(b))
                />
            }
            .into_any(),
            Kind::Attribution => view! {
                <AttributionChart
                    attribution=attribution
                    target=attr_target
                    on_target=Callback::new(move |t| attr_target.set(t))
                    distractor=attr_distractor
                    on_distractor=Callback::new(move |t| attr_distractor.set(t))
                    unfold_ln=attr_unfold
                    on_unfold_ln=Callback::new(move |b| attr_unfold.set(b))
                    center_unembed=attr_center
                    on_center_unembed=Callback::new(move |b| attr_center.set(b))
                />
            }
            .into_any(),
        }
    };
    // The same experiment, opened in the full explorer.
    let link = move || {
        let mut e = article.experiment(&prompt.get());
        e.view.tab = Some(match kind {
            Kind::Predictions | Kind::Attention => View::Attention,
            Kind::Ablation => View::Ablation,
            Kind::Lens => View::Lens,
            Kind::Attribution => View::Attribution,
        });
        format!("./#{}", glassbox_core::share::fragment(&e, None, false))
    };
    view! {
        <div
            class="live-figure"
            data-testid="live-figure"
            data-kind=format!("{kind:?}").to_lowercase()
            data-state=move || state.get()
            data-prompt=move || (state.get() == "ready").then(|| prompt.get())
            data-ready-ms=move || ready_ms.get().map(|t| format!("{t:.0}"))
        >
            <PromptLine article=article />
            {body}
            <a class="open-explorer" data-testid="open-explorer" href=link>"Open in the explorer \u{2197}"</a>
        </div>
    }
}

/// `answer` when it is for `prompt`.
fn current<T>(answer: Answer<T>, prompt: &str) -> Option<Result<Arc<T>, String>> {
    answer.filter(|(p, _)| p == prompt).map(|(_, r)| r)
}

/// Positions whose token an induction head can predict: the token before it occurred earlier,
/// followed by this same token (`loss[p - 1]` is this token's surprise).
fn predictable(ids: &[u32]) -> Vec<usize> {
    induction_targets(ids).into_iter().filter(|&(q, k)| q + 1 < ids.len() && ids[k] == ids[q + 1]).map(|(q, _)| q + 1).collect()
}

/// Figure 1: the surprise at every token, and its mean on the repeat and elsewhere.
fn predictions(run: Signal<Option<Result<Arc<RunView>, String>>>) -> impl IntoView {
    let view = run.get().and_then(|r| r.ok());
    let tokens = Signal::derive(move || run.get().and_then(|r| r.ok()).map(|r| r.tokens.clone()).unwrap_or_default());
    let loss = Signal::derive(move || run.get().and_then(|r| r.ok()).map(|r| r.loss.clone()).unwrap_or_default());
    let summary = view.map(|v| {
        let hit = predictable(&v.ids);
        let mean = |ps: &mut dyn Iterator<Item = usize>| {
            let xs: Vec<f32> = ps.filter_map(|p| v.loss.get(p - 1).copied()).collect();
            (!xs.is_empty()).then(|| xs.iter().sum::<f32>() / xs.len() as f32)
        };
        let repeat = mean(&mut hit.iter().copied());
        let rest = mean(&mut (1..v.n_tokens()).filter(|p| !hit.contains(p)));
        let fmt = |x: Option<f32>| x.map_or("\u{2014}".to_string(), |x| format!("{x:.2} nats"));
        view! {
            <p class="fig-numbers" data-testid="loss-summary" data-repeat=repeat.map(|x| format!("{x:.4}")) data-rest=rest.map(|x| format!("{x:.4}"))>
                {format!("Mean surprise on the {} tokens an induction head can predict: {}; on the other {}: {}.", hit.len(), fmt(repeat), v.n_tokens() - 1 - hit.len(), fmt(rest))}
            </p>
        }
    });
    view! { <TokenStrip tokens=tokens loss=loss /> {summary} }
}

/// Figure 2: the attention pattern of a head (by default the strongest induction head of the
/// last layer), with a picker for the others.
fn attention(run: Signal<Option<Result<Arc<RunView>, String>>>) -> impl IntoView {
    let Some(v) = run.get_untracked().and_then(|r| r.ok()) else { return ().into_any() };
    let last = v.patterns.len().saturating_sub(1);
    let default = (last, v.strongest_induction_head(last).unwrap_or(0));
    let picked = RwSignal::new(default);
    let query = RwSignal::new(v.n_tokens().saturating_sub(1));
    let heads: Vec<(usize, usize)> = (0..v.patterns.len()).flat_map(|l| (0..v.n_heads(l)).map(move |h| (l, h))).collect();
    let targets = induction_targets(&v.ids);
    let v2 = v.clone();
    let score = Signal::derive(move || {
        let (l, h) = picked.get();
        v2.head_pattern(l, h).and_then(|p| induction_score(p, v2.n_tokens(), &targets))
    });
    let v3 = v.clone();
    let pattern = Signal::derive(move || {
        let (l, h) = picked.get();
        v3.head_pattern(l, h).map(<[f32]>::to_vec).unwrap_or_default()
    });
    let tokens = v.tokens.clone();
    let buttons = heads
        .into_iter()
        .map(|(l, h)| {
            view! {
                <button class="head-btn" class:selected=move || picked.get() == (l, h) data-testid="figure-head" data-layer=l data-head=h on:click=move |_| picked.set((l, h))>
                    {format!("L{l}H{h}")}
                </button>
            }
        })
        .collect_view();
    view! {
        <div class="fig-heads">{buttons}</div>
        <p class="fig-numbers" data-testid="attention-head" data-layer=move || picked.get().0 data-head=move || picked.get().1 data-score=move || score.get().map(|s| format!("{s:.4}"))>
            {move || {
                let (l, h) = picked.get();
                match score.get() {
                    Some(s) => format!("Head L{l}H{h}: on average {:.0}% of each query's attention goes to the token after the previous occurrence of that query's token (its induction score).", 100.0 * s),
                    None => format!("Head L{l}H{h}. This prompt repeats no token, so no head can show induction."),
                }
            }}
        </p>
        <AttentionHeatmap tokens=tokens pattern=pattern selected=query on_select=Callback::new(move |q| query.set(q)) />
        <Legend label="attention weight (shading: its square root)" low="0" high="1" palette="seq" />
    }
    .into_any()
}

/// Figure 3: the mean loss with each head zero-ablated, as a layers x heads grid of changes.
fn ablation_grid(ablation: Signal<Option<Result<Arc<HeadAblation>, String>>>) -> impl IntoView {
    let Some(a) = ablation.get().and_then(|r| r.ok()) else { return ().into_any() };
    let change = |i: usize| a.loss[i] - a.base;
    let max = (0..a.loss.len()).map(change).fold(0f32, |m, c| m.max(c.abs())).max(1e-6);
    let header = (0..a.n_heads).map(|h| view! { <th>{format!("H{h}")}</th> }).collect_view();
    let rows = (0..a.n_layers)
        .map(|l| {
            let cells = (0..a.n_heads)
                .map(|h| {
                    let i = l * a.n_heads + h;
                    let c = change(i);
                    view! {
                        <td
                            class="ab-cell"
                            class:up={c > 0.0}
                            class:down={c < 0.0}
                            data-testid="ablation-cell"
                            data-layer=l
                            data-head=h
                            data-loss=format!("{:.6}", a.loss[i])
                            data-change=format!("{c:.6}")
                            title=format!("L{l}H{h} ablated: loss {:.3} nats ({c:+.3})", a.loss[i])
                            style:--a=format!("{:.3}", (c.abs() / max).clamp(0.0, 1.0))
                        >
                            {format!("{c:+.2}")}
                        </td>
                    }
                })
                .collect_view();
            view! { <tr><th>{format!("layer {l}")}</th>{cells}</tr> }
        })
        .collect_view();
    let top = (0..a.loss.len()).max_by(|&i, &j| change(i).total_cmp(&change(j)));
    let line = match top {
        Some(i) => format!(
            "Mean loss of the prompt: {:.3} nats. Zero-ablating L{}H{} raises it most, to {:.3} nats ({:+.3}).",
            a.base,
            i / a.n_heads,
            i % a.n_heads,
            a.loss[i],
            change(i)
        ),
        None => String::new(),
    };
    view! {
        <p class="fig-numbers" data-testid="ablation-line" data-base=format!("{:.6}", a.base)>{line}</p>
        <table class="ablation-grid" data-testid="ablation-grid">
            <thead><tr><th></th>{header}</tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <Legend label="change in loss when the head is zero-ablated" low=format!("{:+.2}", -max) high=format!("{max:+.2}") palette="div" />
    }
    .into_any()
}
