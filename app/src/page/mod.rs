//! The explorer page. `state.rs` holds its state (one `Experiment` signal plus what loading
//! and running produce); `run.rs` starts models in the engine's worker and runs the
//! experiment; `outside.rs` loads models from the hub, a URL or a file; `sweeps.rs` asks for
//! the Fourier and corpus sweeps; `queries.rs` asks the worker for the inspect views' data. This file composes the components; they receive what they
//! show and report choices through callbacks.

mod causal;
mod outside;
mod queries;
mod run;
pub mod state;
mod sweeps;

use leptos::prelude::*;
use leptos::task::spawn_local;

use glassbox_core::analysis::lens::LensNorm;
use glassbox_core::View;

use crate::components::{
    AblationPanel, AttentionHeatmap, AttributionChart, BackendBadge, Corpus, FourierPanel, HeadGrid, HeadPicker, HeadScores, InterventionList, Legend,
    LoadPanel, LoadState, LogitLens, ModelPanel, ModelSource, NeuronHeatmap, NeuronPage, Notice, NoticeKind, Notices, PatchPanel, Prediction, PromptBox,
    ScanControls, TokenChips, TokenStrip, ViewTabs,
};
use crate::engine::CpuReason;
use crate::hub;
use crate::inspect::{Inspection, Query};
use crate::models::{MODELS, MODULAR};
use crate::url_state;
use state::Page;

/// The whole explorer page.
#[component]
pub fn App() -> impl IntoView {
    let (params, notices) = url_state::parse(url_state::read_param);
    let hub_base = url_state::read_param("hub").unwrap_or_else(|| hub::DEFAULT_HUB.to_string());
    let page = Page::new(params.model, params.experiment(), notices, hub_base);
    spawn_local(run::start_shipped(page));
    spawn_local(outside::refresh_cached(page));

    // The URL follows the experiment (shipped models; once the first run settled the view).
    Effect::new(move |_| {
        let e = page.experiment.get();
        if page.url_live.get() && page.loaded.get().is_none() {
            if let Some(view) = url_state::view_of(&e) {
                url_state::write(&view);
            }
        }
    });

    let on_run = Callback::new(move |()| run::submit(page));
    let ready = Signal::derive(move || matches!(page.load.get(), LoadState::Ready { .. }));
    let notices = Signal::derive(move || {
        let mut all: Vec<Notice> = page.url_notices.get().into_iter().map(|m| Notice::new(NoticeKind::Warning, m)).collect();
        if let Some(m) = page.engine_notice.get() {
            all.push(Notice::new(NoticeKind::Warning, m));
        }
        match page.cpu_reason.get() {
            Some(CpuReason::Forced) => all.push(Notice::new(NoticeKind::Info, "The URL asks for the CPU backend (backend=cpu): WebGPU is not used.")),
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
    let run = Memo::new(move |_| page.current_run());
    let has_run = move || run.with(Option::is_some);
    let view_of = move || run.get().map(|r| r.view.clone());
    let n_layers = Signal::derive(move || page.model.get().map_or(0, |m| m.cfg.n_layers));
    let tokens = Signal::derive(move || run.get().map(|r| r.view.tokens.clone()).unwrap_or_default());
    let pos = Signal::derive(move || page.pos());
    let layer = Signal::derive(move || page.layer());
    let head = Signal::derive(move || page.head());
    let predictions = Signal::derive(move || run.get().and_then(|r| r.view.top5.get(page.pos()).cloned()).unwrap_or_default());
    let pattern = Memo::new(move |_| run.get().and_then(|r| r.view.head_pattern(page.layer(), page.head()).map(<[f32]>::to_vec)).unwrap_or_default());
    let select_pos = Callback::new(move |p: usize| page.select(|s| s.pos = Some(p)));
    let readout = Signal::derive(move || page.model.get().is_some_and(|m| m.has_readout));
    let running = Signal::derive(move || page.running());
    let shipped_view = move || page.loaded.get().is_none();
    let has_mlp = Signal::derive(move || page.model.get().is_some_and(|m| m.cfg.d_mlp.is_some()));
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
            </div>
            <BackendBadge label=page.backend running=running />
        </header>
        <main>
            <Notices notices=notices />
            <ModelPanel entry=page.entry models=MODELS load=page.load model=page.model />
            <LoadPanel
                state=page.hub_load
                hub_base=page.hub_base
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
            <Show when=has_run>
                <section class="panel">
                    <h2>"Tokens"</h2>
                    <p class="help">"Click a token to see what the model predicts after it and where it attends."</p>
                    <TokenChips tokens=tokens prompt=Signal::derive(move || run.get().map(|r| r.view.prompt.clone()).unwrap_or_default()) selected=pos on_select=select_pos />
                    <TokenStrip tokens=tokens loss=Signal::derive(move || run.get().map(|r| r.view.loss.clone()).unwrap_or_default()) />
                    <InterventionList
                        interventions=Signal::derive(move || page.experiment.with(|e| e.interventions.clone()))
                        on_clear=Callback::new(move |()| causal::clear_interventions(page))
                    />
                    <p class="run-meta" data-testid="run-meta">
                        {move || run.get().map(|r| format!("{} tokens, forward pass in {:.0} ms on {}", r.view.n_tokens(), r.view.elapsed_ms, page.backend.get().unwrap_or_default()))}
                    </p>
                </section>
                <div class="two-col">
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
                })}
                <section class="panel">
                    <ViewTabs current=tab has_mlp=has_mlp on_select=Callback::new(move |v: View| page.select(|s| s.tab = Some(v))) />
                    {move || match tab.get() {
                        View::Attention => view! {
                            <h2>{move || format!("Layer {}: every head", page.layer())}</h2>
                            <HeadGrid run=Signal::derive(view_of) layer=layer head=head on_head=Callback::new(move |h: usize| page.select(|s| s.head = Some(h))) />
                            <h3>{move || format!("Attention pattern: layer {}, head {}", page.layer(), page.head())}</h3>
                            <p class="help">"Each row is a query position, each column a key position it can attend to; darker means more attention. The chosen position's row is outlined; click a row to choose it. Hover a cell for its exact weight."</p>
                            <AttentionHeatmap tokens=tokens pattern=pattern selected=pos on_select=select_pos />
                            <Legend label="attention weight (shading: its square root)" low="0" high="1" palette="seq" />
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
                            <NeuronHeatmap neurons=neurons tokens=tokens selected=Signal::derive(move || page.neuron()) on_neuron=select_neuron />
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
                        }.into_any(),
                        View::Lens => view! {
                            <h2>"Logit lens"</h2>
                            <LogitLens
                                lens=lens
                                tokens=tokens
                                target=queries::text(page, |s| s.target.clone())
                                on_target=Callback::new(move |t: String| page.select(|s| s.target = queries::optional(t)))
                                cached_scale=Signal::derive(move || page.experiment.with(|e| e.view.lens_cached_scale))
                                on_cached_scale=Callback::new(move |b: bool| page.select(|s| s.lens_cached_scale = b))
                                incl_mid=Signal::derive(move || page.experiment.with(|e| e.view.lens_mid))
                                on_incl_mid=Callback::new(move |b: bool| page.select(|s| s.lens_mid = b))
                            />
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
                        }.into_any(),
                        View::Patching => view! {
                            <h2>"Activation patching"</h2>
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
                            />
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
                        }.into_any(),
                    }}
                </section>
            </Show>
        </main>
        <footer class="site-footer">
            "Everything runs in this page: the model's weights are downloaded once and nothing you type leaves your browser."
        </footer>
    }
}
