//! The explorer page. `state.rs` holds its state (one `Experiment` signal plus what loading
//! and running produce); `run.rs` starts models in the engine's worker and runs the
//! experiment; `outside.rs` loads models from the hub, a URL or a file; `sweeps.rs` asks for
//! the Fourier and corpus sweeps; `queries.rs` asks the worker for the inspect views' data. This file composes the components; they receive what they
//! show and report choices through callbacks.

mod causal;
mod embed;
mod export;
mod outside;
pub(crate) mod queries;
mod run;
mod share;
pub mod state;
mod sweeps;

use leptos::prelude::*;
use leptos::task::spawn_local;

use glassbox_core::analysis::lens::LensNorm;
use glassbox_core::View;

use crate::components::{
    AblationPanel, AttentionHeatmap, AttributionChart, BackendBadge, Corpus, ExportBar, FourierPanel, HeadGrid, HeadPicker, HeadScores, HubLoad,
    InterventionList, Legend, LoadPanel, LoadState, LogitLens, ModelPanel, ModelSource, NeuronHeatmap, NeuronPage, Notice, NoticeKind, Notices, PatchPanel,
    Prediction, PromptBox, ScanControls, ScrubPanel, SteerPanel, ThemeToggle, TokenChips, TokenStrip, ViewTabs,
};
use crate::engine::CpuReason;
use crate::figures;
use crate::hub;
use crate::inspect::{Inspection, Query};
use crate::models::{MODELS, MODULAR};
use crate::url_state;
use state::Page;

/// The whole explorer page.
#[component]
pub fn App() -> impl IntoView {
    let opening = url_state::opening(url_state::read_fragment().as_deref(), url_state::read_param);
    let hub_base = url_state::read_param("hub").unwrap_or_else(|| hub::DEFAULT_HUB.to_string());
    let page = Page::new(opening.entry, opening.experiment, opening.notices, hub_base);
    page.pending_link.set(opening.outside);
    let embedded = opening.widget;
    // The widget the Embed button offers: the one on screen.
    let embed_widget = RwSignal::new(embedded.map_or(glassbox_core::share::Widget::Attention, |(w, _)| w));
    if let Some((w, frozen)) = embedded {
        embed::start(page, w, frozen);
    }
    spawn_local(run::start_shipped(page));
    spawn_local(outside::refresh_cached(page));

    // The URL follows the experiment (once the first run settled the view, and not while a
    // link's outside model waits for Load): each committed change is a history entry.
    let first_write = StoredValue::new(true);
    Effect::new(move |_| {
        let e = page.experiment.get();
        // A run's placing of the position amends the entry of the change that started it.
        let amend = page.url_amend.get_value();
        page.url_amend.set_value(false);
        if page.url_live.get() && page.pending_link.with(Option::is_none) && embedded.is_none() {
            let push = !first_write.get_value() && !amend;
            first_write.set_value(false);
            // After the next frame: encoding the link and `pushState` took 5-15 ms, which
            // belonged to no view's update, and a `pushState` before the frame made the browser
            // restyle the rebuilt page inside it (28 ms at 128 tokens).
            url_state::write_fragment_later(e, push);
        }
    });
    // A link's outside model whose files are all in this browser's cache loads at once (once
    // the shipped model has started: one model loads at a time).
    Effect::new(move |_| {
        let ready = matches!(page.load.get(), LoadState::Ready { .. }) && page.hub_load.with(|h| matches!(h, HubLoad::Idle));
        if let Some(e) = page.pending_link.get().filter(|_| ready) {
            if share::link_model_cached(page, &e) {
                share::load_link_model(page);
            }
        }
    });
    // Back and Forward: the history entry's experiment.
    if let Some(window) = web_sys::window() {
        gloo_events::EventListener::new(&window, "popstate", move |_| share::on_popstate(page)).forget();
    }

    let on_run = Callback::new(move |()| run::submit(page));
    let ready = Signal::derive(move || matches!(page.load.get(), LoadState::Ready { .. }));
    let notices = Signal::derive(move || {
        let mut all: Vec<Notice> = page.url_notices.get().into_iter().map(|m| Notice::new(NoticeKind::Warning, m)).collect();
        if let Some(m) = page.engine_notice.get() {
            all.push(Notice::new(NoticeKind::Warning, m));
        }
        match page.cpu_reason.get() {
            Some(CpuReason::Forced) => all.push(Notice::new(NoticeKind::Info, "The CPU backend was asked for (backend=cpu): WebGPU is not used.")),
            // The badge says why; nothing is wrong.
            Some(CpuReason::SoftwareGpu(_)) => {}
            Some(CpuReason::GpuFailed(why)) => {
                let short = if why.contains("no GPU adapter") { "this browser offers no GPU adapter".to_string() } else { why.clone() };
                all.push(
                    Notice::new(NoticeKind::Warning, format!("WebGPU unavailable: {short}. Running on the CPU instead (slower, same results).")).detail(why),
                );
            }
            None => {}
        }
        all
    });
    // The run on screen: the experiment's own, or while that computes the previous one (stale).
    let run = Memo::new(move |_| page.shown_run());
    let has_run = move || run.with(Option::is_some);
    let stale = Memo::new(move |_| run.with(Option::is_some) && page.current_run().is_none());
    let busy = move || stale.get().to_string();
    let view_of = move || run.get().map(|r| r.view.clone());
    let n_layers = Signal::derive(move || page.model.get().map_or(0, |m| m.cfg.n_layers));
    let tokens = Signal::derive(move || run.get().map(|r| r.view.tokens.clone()).unwrap_or_default());
    let pos = Signal::derive(move || page.pos());
    let layer = Signal::derive(move || page.layer());
    let head = Signal::derive(move || page.head());
    let predictions = Signal::derive(move || run.get().and_then(|r| r.view.top5.get(page.pos()).cloned()).unwrap_or_default());
    let pattern = Memo::new(move |_| run.get().and_then(|r| r.view.head_pattern(page.layer(), page.head()).map(<[f32]>::to_vec)).unwrap_or_default());
    let select_pos = Callback::new(move |p: usize| page.select(|s| s.pos = Some(p)));
    // The token chips and the attention heatmap hide a padded model's padding (all but the last
    // position, where its readout is) unless the reader shows it: `shown` are the positions drawn.
    let show_padding = RwSignal::new(false);
    let pad = Signal::derive(move || page.model.get().and_then(|m| m.pad));
    let shown = Memo::new(move |_| {
        let pad = if show_padding.get() { None } else { pad.get() };
        run.with(|r| r.as_ref().map(|r| crate::analysis::shown_positions(&r.view.ids, pad)).unwrap_or_default())
    });
    let n_hidden = Signal::derive(move || run.with(|r| r.as_ref().map_or(0, |r| r.view.n_tokens())).saturating_sub(shown.with(Vec::len)));
    let heat_tokens = Memo::new(move |_| shown.with(|sh| tokens.with(|t| sh.iter().filter_map(|&p| t.get(p).cloned()).collect::<Vec<_>>())));
    let heat_pattern = Memo::new(move |_| {
        let n = tokens.with(Vec::len);
        shown.with(|sh| pattern.with(|pat| crate::analysis::sub_pattern(pat, n, sh)))
    });
    let heat_selected = Signal::derive(move || shown.with(|sh| crate::analysis::shown_index(sh, pos.get())));
    let heat_select = Callback::new(move |i: usize| {
        if let Some(p) = shown.with_untracked(|sh| sh.get(i).copied()) {
            select_pos.run(p);
        }
    });
    let readout = Signal::derive(move || page.model.get().is_some_and(|m| m.has_readout));
    let running = Signal::derive(move || page.running());
    let shipped_view = move || page.loaded.get().is_none();
    let has_mlp = Signal::derive(move || page.model.get().is_some_and(|m| m.cfg.d_mlp.is_some()));
    // The shipped scrubbing hypotheses of the model in use (none for an outside model).
    let offered_hypotheses = Signal::derive(move || {
        let card = page.model.get().map(|m| m.card.clone()).unwrap_or_default();
        let id = page.experiment.with(|e| e.model.shipped_id().map(str::to_string));
        let Some(id) = id.filter(|_| page.loaded.get().is_none()) else { return Vec::new() };
        crate::causal::hypotheses_for(&id)
            .into_iter()
            .map(|name| {
                let d = glassbox_core::analysis::scrubbing::hypotheses::by_name(name).map(|h| h.description).unwrap_or_default();
                let d = card["scrubbing"]["hypotheses"][name]["description"].as_str().map(str::to_string).unwrap_or(d);
                (name, d)
            })
            .collect::<Vec<_>>()
    });
    // A model with hypotheses starts with all of them picked, on the card's dataset (size, seed
    // and rounds), so that Scrub reproduces the card's figures; a link's own choice stays.
    Effect::new(move |_| {
        let offered: Vec<&'static str> = offered_hypotheses.get().into_iter().map(|(n, _)| n).collect();
        if offered.is_empty() {
            return;
        }
        let card = page.model.get_untracked().map(|m| m.card["scrubbing"].clone()).unwrap_or_default();
        page.scrub_settings.update(|s| {
            if s.hypotheses.iter().any(|h| offered.contains(&h.as_str())) {
                return;
            }
            s.hypotheses = offered.iter().map(|n| n.to_string()).collect();
            s.n = card["n"].as_u64().map_or(s.n, |n| n as usize);
            s.seed = card["seed"].as_u64().unwrap_or(s.seed);
            s.rounds = card["rounds"].as_u64().map_or(s.rounds, |r| r as usize);
        });
    });
    // The head scores that mean something for this model: its card's `head_scores` (a shipped
    // organism's card names them; none for a task that has no previous or repeated tokens to
    // follow), otherwise both.
    let head_scores = Signal::derive(move || {
        let card = page.model.get().map(|m| m.card.clone()).unwrap_or_default();
        match card["head_scores"].as_array() {
            Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
            None => vec!["prev".to_string(), "induction".to_string()],
        }
    });
    let select_neuron = Callback::new(move |n: usize| page.select(|s| s.neuron = Some(n)));

    // The inspect views' data, asked of the worker for the view on screen only. The tab is a
    // memo: the view is rebuilt when the tab changes, not on every edit of the experiment.
    let tab = Memo::new(move |_| queries::tab(page));
    let on_tab = move |v: View| tab.get() == v;
    let heads = queries::narrow(
        queries::use_query(page, move || on_tab(View::Attention).then(|| Query::Heads { repeated: !page.experiment.with(|e| e.view.heads_on_prompt) })),
        |i| match i {
            Inspection::Heads(h) => Some(h.clone()),
            _ => None,
        },
    );
    let neurons = queries::narrow(
        queries::use_query(page, move || (on_tab(View::Neurons) && has_mlp.get()).then(|| Query::Neurons { layer: page.layer(), k: 20 })),
        |i| match i {
            Inspection::Neurons(n) => Some(n.clone()),
            _ => None,
        },
    );
    let neuron = queries::narrow(
        queries::use_query(page, move || {
            (on_tab(View::Neurons) && has_mlp.get()).then(|| Query::Neuron { layer: page.layer(), neuron: page.neuron(), pos: page.pos() })
        }),
        |i| match i {
            Inspection::Neuron(n) => Some(n.clone()),
            _ => None,
        },
    );
    let lens = queries::narrow(
        queries::use_query(page, move || {
            on_tab(View::Lens).then(|| {
                page.experiment.with(|e| Query::Lens {
                    norm: if e.view.lens_cached_scale { LensNorm::CachedScale } else { LensNorm::Fresh },
                    incl_mid: e.view.lens_mid,
                    target: e.view.target.clone(),
                })
            })
        }),
        |i| match i {
            Inspection::Lens(l) => Some(l.clone()),
            _ => None,
        },
    );
    let attribution = queries::narrow(
        queries::use_query(page, move || {
            on_tab(View::Attribution).then(|| {
                page.experiment.with(|e| Query::Attribute {
                    pos: e.view.pos.unwrap_or(0),
                    target: e.view.target.clone(),
                    distractor: e.view.distractor.clone(),
                    fold_ln: !e.view.unfold_ln,
                    center_unembed: e.view.center_unembed,
                })
            })
        }),
        |i| match i {
            Inspection::Attribute(a) => Some(a.clone()),
            _ => None,
        },
    );

    view! {
        <header class="site-header">
            <div class="brand">
                <h1>"glassbox"</h1>
                <span class="tagline">"interpretability in your browser"</span>
                <a class="article-link" href="article.html" data-testid="article-link">"Article: induction heads, live"</a>
            </div>
            <div class="header-right">
                <ThemeToggle />
                <BackendBadge
                    label=page.backend
                    reason=page.cpu_reason
                    running=running
                    on_switch=Callback::new(move |gpu: bool| spawn_local(run::switch_backend(page, gpu)))
                />
            </div>
        </header>
        <main>
            <Notices notices=notices />
            {embedded.map(|_| view! {
                <a class="made-with" data-testid="made-with" target="_blank" rel="noopener"
                    href=move || page.experiment.with(url_state::share_url).unwrap_or_default()>
                    "made with glassbox \u{2197} open this in the explorer"
                </a>
            })}
            {move || page.pending_link.get().map(|e| {
                let what = url_state::describe_model(&e.model);
                let host = match &e.model.source {
                    glassbox_core::ModelSource::Hub { .. } => format!(" from {}", hub::host_of(&page.hub_base.get())),
                    _ => String::new(),
                };
                view! {
                    <div class="notice info link-model" data-testid="link-model">
                        <p>{format!("This link's experiment runs on {what}{host}. Nothing has been downloaded: press Load to download it (it stays in this browser's cache), and the link's view opens on it. Until then the page shows {}.", page.entry.id)}</p>
                        <button class="primary" data-testid="link-load" on:click=move |_| share::load_link_model(page)>"Load"</button>
                    </div>
                }
            })}
            <p class="intro" data-testid="intro">
                "A small transformer runs in this page, on WebGPU or the CPU, and you look inside it: its predictions, attention, neurons, logit lens and attributions, and causal experiments (patching, ablation, steering) that you can share as links which recompute in the reader's browser. Type a prompt below, "
                // Opens the load panel and scrolls to it without changing the URL's fragment (which
                // holds the page's state).
                <a href="#load" on:click=move |ev: leptos::ev::MouseEvent| {
                    ev.prevent_default();
                    page.load_open.set(true);
                    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("load")) {
                        el.scroll_into_view();
                    }
                }>"load a model from the hub"</a>
                ", or read "
                <a href="article.html">"Induction heads, live"</a>
                "."
            </p>
            <ModelPanel entry=page.entry models=MODELS load=page.load model=page.model />
            <PromptBox
                text=page.text
                ready=ready
                running=running
                on_run=on_run
                error=page.prompt_error
                cut=page.cut_notice
                hint=Signal::derive(move || page.model.get().map(|m| m.vocabulary_help.clone()).unwrap_or_default())
                examples=page.entry.examples
            />
            <div class="share-row">
                <button data-testid="share-copy" disabled=move || !ready.get() on:click=move |_| share::copy_link(page)>"Copy link"</button>
                {move || page.share_link.get().map(|(url, copied)| view! {
                    <input type="text" readonly class="share-link" data-testid="share-link" prop:value=url.clone() />
                    <span class="help">{if copied { "Copied: the link recomputes this view in the reader's browser." } else { "Copy the link above: it recomputes this view in the reader's browser." }}</span>
                })}
                <button data-testid="embed-show" disabled=move || !ready.get() on:click=move |_| {
                    let w = embed_widget.get_untracked();
                    page.embed_snippet.set(Some(share::embed_snippet(page, w)));
                }>"Embed"</button>
                <select data-testid="embed-widget" aria-label="widget to embed" on:change=move |ev| {
                    if let Ok(w) = event_target_value(&ev).parse::<glassbox_core::share::Widget>() {
                        embed_widget.set(w);
                        page.embed_snippet.set(Some(share::embed_snippet(page, w)));
                    }
                }>
                    {glassbox_core::share::Widget::ALL.into_iter().map(|w| view! { <option value=w.name() selected=move || embed_widget.get() == w>{w.name()}</option> }).collect_view()}
                </select>
            </div>
            {move || page.embed_snippet.get().map(|snippet| view! {
                <label class="field wide">"Paste this into a page (plain HTML, a Markdown post that allows HTML, or a Jupyter IFrame of the iframe's address):"
                    <textarea readonly rows="6" class="embed-snippet" data-testid="embed-snippet" prop:value=snippet></textarea>
                </label>
            })}
            <Show when=has_run>
                <section class="panel" class:stale=stale aria-busy=busy>
                    <h2>"Tokens"</h2>
                    <p class="help">"Click a token to see what the model predicts after it and where it attends."</p>
                    <TokenChips tokens=tokens shown=shown prompt=Signal::derive(move || run.get().map(|r| r.view.prompt.clone()).unwrap_or_default()) selected=pos on_select=select_pos />
                    {move || (pad.get().is_some() && (show_padding.get() || n_hidden.get() > 0)).then(|| view! {
                        <label class="help pad-toggle">
                            <input type="checkbox" data-testid="show-padding" prop:checked=move || show_padding.get() on:change=move |ev| show_padding.set(event_target_checked(&ev)) />
                            {move || if show_padding.get() { "Show padding positions".to_string() } else { format!("Show padding positions ({} hidden; the readout at the last position stays)", n_hidden.get()) }}
                        </label>
                    })}
                    <TokenStrip tokens=tokens loss=Signal::derive(move || run.get().map(|r| r.view.loss.clone()).unwrap_or_default()) />
                    <InterventionList
                        interventions=Signal::derive(move || page.experiment.with(|e| e.interventions.clone()))
                        on_clear=Callback::new(move |()| causal::clear_interventions(page))
                    />
                    <p class="run-meta" data-testid="run-meta">
                        {move || run.get().map(|r| format!("{} tokens, forward pass in {:.0} ms on {}", r.view.n_tokens(), r.view.elapsed_ms, page.backend.get().unwrap_or_default()))}
                    </p>
                    <export::ActivationsExport page=page />
                </section>
                <div class="two-col w-predictions" class:stale=stale aria-busy=busy>
                    <section class="panel">
                        <h2>{move || if readout.get() { "Answer" } else { "Next-token prediction" }}</h2>
                        <Prediction
                            tokens=tokens
                            ids=Signal::derive(move || run.get().map(|r| r.view.ids.clone()).unwrap_or_default())
                            pos=pos
                            predictions=predictions
                            readout=readout
                            n_tokens=Signal::derive(move || run.get().map_or(0, |r| r.view.n_tokens()))
                            induction_hint=Signal::derive(move || page.entry.id == "induction-2l" && shipped_view())
                        />
                        <ExportBar view="predictions" figure=Signal::derive(move || run.get().and_then(|r| figures::predictions(&r.view, page.pos(), readout.get()))) />
                    </section>
                    <section class="panel">
                        <h2>"Heads"</h2>
                        <HeadPicker
                            n_layers=n_layers
                            layer=layer
                            head=head
                            on_layer=Callback::new(move |l: usize| page.select(|s| s.layer = Some(l)))
                            on_head=Callback::new(move |h: usize| page.select(|s| s.head = Some(h)))
                            run=Signal::derive(view_of)
                            scores=head_scores
                        />
                    </section>
                </div>
                {move || (page.entry.id == MODULAR && shipped_view()).then(|| view! {
                    <FourierPanel
                        embedding_norms=Signal::derive(move || page.model.get().map(|m| m.embedding_norms.clone()).unwrap_or_default())
                        grid=page.neuron_grid
                        progress=page.neuron_progress
                        on_compute=Callback::new(move |()| spawn_local(sweeps::compute_neurons(page)))
                        on_cancel=Callback::new(move |()| sweeps::cancel_sweep(page))
                        neuron=Signal::derive(move || page.neuron())
                        on_neuron=Callback::new(move |n: usize| page.select(|s| s.neuron = Some(n)))
                    />
                    <ExportBar view="fourier" figure=Signal::derive(move || page.model.get().and_then(|m| figures::fourier(&m.embedding_norms))) />
                })}
                <section class="panel w-view" class:stale=stale aria-busy=busy>
                    <ViewTabs current=tab has_mlp=has_mlp scrubbable=Signal::derive(move || !offered_hypotheses.get().is_empty()) generates=Signal::derive(move || !readout.get()) on_select=Callback::new(move |v: View| page.select(|s| s.tab = Some(v))) />
                    {move || match tab.get() {
                        View::Attention => view! {
                            <h2>{move || format!("Layer {}: every head", page.layer())}</h2>
                            <HeadGrid run=Signal::derive(view_of) layer=layer head=head on_head=Callback::new(move |h: usize| page.select(|s| s.head = Some(h))) />
                            <h3>{move || format!("Attention pattern: layer {}, head {}", page.layer(), page.head())}</h3>
                            <p class="help">"Each row is a query position, each column a key position it can attend to; darker means more attention. The chosen position's row is outlined; click a row to choose it. Hover a cell for its exact weight."</p>
                            <AttentionHeatmap tokens=heat_tokens pattern=heat_pattern selected=heat_selected on_select=heat_select positions=shown />
                            <Legend label="attention weight (shading: its square root)" low="0" high="1" palette="seq" />
                            <ExportBar view="attention" figure=Signal::derive(move || run.get().and_then(|r| figures::attention(&r.view, page.layer(), page.head()))) />
                            <h3>"Head scores"</h3>
                            <HeadScores
                                scores=heads
                                on_prompt=Signal::derive(move || page.experiment.with(|e| e.view.heads_on_prompt))
                                on_prompt_change=Callback::new(move |b: bool| page.select(|s| s.heads_on_prompt = b))
                                layer=layer
                                head=head
                                on_select=Callback::new(move |(l, h): (usize, usize)| page.select(|s| { s.layer = Some(l); s.head = Some(h); }))
                            />
                        }.into_any(),
                        View::Neurons => view! {
                            <h2>{move || format!("Layer {}: MLP neurons", page.layer())}</h2>
                            <NeuronHeatmap neurons=neurons tokens=tokens shown=shown selected=Signal::derive(move || page.neuron()) on_neuron=select_neuron />
                            <ExportBar view="neurons" figure=export::answer(neurons, move |v| figures::neurons(v, &tokens.get())) />
                            <NeuronPage
                                neuron=neuron
                                tokens=tokens
                                index=Signal::derive(move || page.neuron())
                                d_mlp=Signal::derive(move || page.model.get().and_then(|m| m.cfg.d_mlp).unwrap_or(0))
                                on_neuron=select_neuron
                                scan_controls=ViewFn::from(move || view! {
                                    <ScanControls
                                        layer=layer
                                        scans=page.scans
                                        progress=page.scan_progress
                                        failure=page.scan_error
                                        on_scan=Callback::new(move |c: Corpus| spawn_local(sweeps::scan_corpus(page, page.layer(), c)))
                                        on_cancel=Callback::new(move |()| sweeps::cancel_sweep(page))
                                    />
                                })
                            />
                            <ExportBar view="neuron" figure=export::answer(neuron, move |v| figures::neuron(v, &tokens.get())) />
                        }.into_any(),
                        View::Lens => view! {
                            <h2>"Logit lens"</h2>
                            <LogitLens
                                lens=lens
                                tokens=tokens
                                shown=shown
                                target=queries::text(page, |s| s.target.clone())
                                on_target=Callback::new(move |t: String| page.select(|s| s.target = queries::optional(t)))
                                cached_scale=Signal::derive(move || page.experiment.with(|e| e.view.lens_cached_scale))
                                on_cached_scale=Callback::new(move |b: bool| page.select(|s| s.lens_cached_scale = b))
                                incl_mid=Signal::derive(move || page.experiment.with(|e| e.view.lens_mid))
                                on_incl_mid=Callback::new(move |b: bool| page.select(|s| s.lens_mid = b))
                            />
                            <ExportBar view="lens" figure=export::answer(lens, move |v| figures::lens(v, &tokens.get())) />
                        }.into_any(),
                        View::Attribution => view! {
                            <h2>{move || format!("Direct logit attribution at position {}", page.pos())}</h2>
                            <AttributionChart
                                attribution=attribution
                                target=queries::text(page, |s| s.target.clone())
                                on_target=Callback::new(move |t: String| page.select(|s| s.target = queries::optional(t)))
                                distractor=queries::text(page, |s| s.distractor.clone())
                                on_distractor=Callback::new(move |t: String| page.select(|s| s.distractor = queries::optional(t)))
                                unfold_ln=Signal::derive(move || page.experiment.with(|e| e.view.unfold_ln))
                                on_unfold_ln=Callback::new(move |b: bool| page.select(|s| s.unfold_ln = b))
                                center_unembed=Signal::derive(move || page.experiment.with(|e| e.view.center_unembed))
                                on_center_unembed=Callback::new(move |b: bool| page.select(|s| s.center_unembed = b))
                            />
                            <ExportBar view="attribution" figure=export::answer(attribution, figures::attribution) />
                        }.into_any(),
                        View::Patching => view! {
                            <h2>"Patching"</h2>
                            <PatchPanel
                                corrupted=page.corrupted_text
                                settings=page.patch_settings
                                target=queries::text(page, |s| s.target.clone())
                                on_target=Callback::new(move |t: String| page.select(|s| s.target = queries::optional(t)))
                                distractor=queries::text(page, |s| s.distractor.clone())
                                on_distractor=Callback::new(move |t: String| page.select(|s| s.distractor = queries::optional(t)))
                                has_mlp=has_mlp
                                pos=pos
                                ready=ready
                                progress=page.patch_progress
                                result=Signal::derive(move || page.patching.get().filter(|(g, _)| *g == page.model_gen.get()).map(|(_, r)| r))
                                on_run=Callback::new(move |()| spawn_local(causal::run_patch(page)))
                                on_cancel=Callback::new(move |()| sweeps::cancel_sweep(page))
                                on_cell=Callback::new(move |(v, c): (std::sync::Arc<crate::causal::PatchView>, crate::causal::PatchCell)| causal::open_cell(page, &v, c))
                                pad=Signal::derive(move || if show_padding.get() { None } else { pad.get() })
                            />
                            <ExportBar view="patching" figure=export::outcome(page, page.patching, figures::patching) />
                        }.into_any(),
                        View::Ablation => view! {
                            <h2>"Ablation"</h2>
                            <AblationPanel
                                settings=page.ablation_settings
                                has_mlp=has_mlp
                                target=queries::text(page, |s| s.target.clone())
                                on_target=Callback::new(move |t: String| page.select(|s| s.target = queries::optional(t)))
                                distractor=queries::text(page, |s| s.distractor.clone())
                                on_distractor=Callback::new(move |t: String| page.select(|s| s.distractor = queries::optional(t)))
                                ready=ready
                                running=page.ablation_running
                                result=Signal::derive(move || page.ablation.get().filter(|(g, _)| *g == page.model_gen.get()).map(|(_, r)| r))
                                on_run=Callback::new(move |()| spawn_local(causal::run_ablation(page)))
                                on_apply=Callback::new(move |()| causal::apply_zero_ablation(page))
                            />
                            <ExportBar view="ablation" figure=export::outcome(page, page.ablation, figures::ablation) />
                        }.into_any(),
                        View::Scrubbing => view! {
                            <h2>"Causal scrubbing"</h2>
                            <ScrubPanel
                                settings=page.scrub_settings
                                offered=offered_hypotheses
                                ready=ready
                                running=page.scrub_running
                                result=Signal::derive(move || page.scrub.get().filter(|(g, _)| *g == page.model_gen.get()).map(|(_, r)| r))
                                on_run=Callback::new(move |()| spawn_local(causal::run_scrub(page)))
                            />
                            <ExportBar view="scrubbing" figure=export::outcome(page, page.scrub, figures::scrubbing) />
                        }.into_any(),
                        View::Steering => view! {
                            <h2>"Steering"</h2>
                            <SteerPanel
                                settings=page.steer_settings
                                n_layers=n_layers
                                has_mlp=has_mlp
                                ready=ready
                                running=page.steer_running
                                result=Signal::derive(move || page.steer.get().filter(|(g, _)| *g == page.model_gen.get()).map(|(_, r)| r))
                                on_run=Callback::new(move |()| spawn_local(causal::run_steer(page)))
                            />
                            <ExportBar view="steering" figure=export::outcome(page, page.steer, figures::steering) />
                        }.into_any(),
                    }}
                </section>
            </Show>
            <LoadPanel
                state=page.hub_load
                hub_base=page.hub_base
                open=page.load_open
                loaded=page.loaded
                cached=page.cached
                on_load=Callback::new(move |src: ModelSource| spawn_local(outside::load_outside(page, src)))
                on_cancel=Callback::new(move |()| {
                    if let Some(a) = page.abort.get_value() {
                        a.abort();
                    }
                })
                on_delete=Callback::new(move |url: String| spawn_local(async move {
                    hub::delete_cached(&url).await;
                    outside::refresh_cached(page).await;
                }))
            />
        </main>
        <footer class="site-footer">
            "Everything runs in this page: the model's weights are downloaded once and nothing you type leaves your browser."
        </footer>
    }
}
