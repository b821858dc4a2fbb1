//! The explorer page: owns the state (the URL's view, the loaded model, the engine, the last
//! run) and wires the components together. Loading and running are async tasks on the one
//! browser thread (`spawn_local`); the UI never waits on them.

use std::rc::Rc;
use std::sync::Arc;

use glassbox_core::weights::MatrixRole;
use glassbox_core::{Config, ModelBundle, RunRequest, Tokenizer};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::analysis::{pattern_hook, RunView};
use crate::components::{
    AttentionHeatmap, BackendBadge, CorpusScan, FourierPanel, HeadPicker, HubLoad, LoadPanel,
    ModelPanel, ModelSource, NeuronGrid, Notice, NoticeKind, Notices, Prediction, PromptBox,
    ScanPanel, TokenChips,
};
use crate::hub;
use crate::scan::TopActivations;
use crate::fourier::embedding_frequency_norms;
use crate::engine::{CpuReason, Engine};
use crate::loader::{load_bundle, Progress};
use crate::models::{ModelEntry, MODELS};
use crate::prompt;
use crate::url_state::{self, UrlView};

/// Where loading the model has got.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadState {
    /// Downloading; `None` until the first byte counts arrive.
    Loading(Option<Progress>),
    /// Downloaded and parsed; starting the backend.
    Starting,
    /// Ready to run.
    Ready { bytes: u64, seconds: f64 },
    /// Could not load; the message says why.
    Failed(String),
}

/// What the page knows about the loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub cfg: Config,
    pub tokenizer: Tokenizer,
    pub card: serde_json::Value,
}

impl ModelInfo {
    fn card_str(&self, key: &str) -> String {
        self.card
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// What the prompt box says the model accepts: the vocabulary's own sentence, or the card's
    /// description of the vocabulary.
    pub fn vocabulary_help(&self) -> String {
        match self.tokenizer.help() {
            Some(h) => h.to_string(),
            None => format!("Type a prompt. The model knows {}.", self.card_str("vocabulary")),
        }
    }

    /// Whether the model answers through a readout of its own (named outputs, such as a
    /// classifier's classes) rather than by predicting the next token.
    pub fn has_readout(&self) -> bool {
        self.tokenizer.outputs().is_some()
    }
}

/// The page's state: all signals, so the struct is `Copy` and moves into every closure.
#[derive(Clone, Copy)]
struct Ui {
    model_entry: &'static ModelEntry,
    force_cpu: bool,
    load: RwSignal<LoadState>,
    model: RwSignal<Option<Arc<ModelInfo>>>,
    engine: StoredValue<Option<Rc<Engine>>, LocalStorage>,
    /// The loaded files, kept so that a lost GPU can be replaced by the CPU without a reload.
    bundle: StoredValue<Option<Rc<ModelBundle>>, LocalStorage>,
    backend: RwSignal<Option<String>>,
    cpu_reason: RwSignal<Option<CpuReason>>,
    /// The text in the prompt box (kept whatever happens to a run).
    text: RwSignal<String>,
    /// The prompt of the last run, as submitted; this is what the URL shares.
    submitted: RwSignal<String>,
    run: RwSignal<Option<Arc<RunView>>>,
    running: RwSignal<bool>,
    prompt_error: RwSignal<Option<String>>,
    cut_notice: RwSignal<Option<String>>,
    url_notices: RwSignal<Vec<String>>,
    pos: RwSignal<usize>,
    layer: RwSignal<usize>,
    head: RwSignal<usize>,
    /// The URL is rewritten from the state only once the first run has settled the view,
    /// so a link opened on a slow machine is not overwritten while it loads.
    url_live: RwSignal<bool>,
    /// Modular addition: the embedding's norm per frequency, the neurons' responses over all
    /// inputs (once computed), the progress of that computation, and the neuron shown.
    embedding_norms: RwSignal<Vec<f32>>,
    neuron_grid: RwSignal<Option<Arc<NeuronGrid>>>,
    neuron_progress: RwSignal<Option<usize>>,
    neuron: RwSignal<usize>,
    /// Top-activating examples over the model's corpus slice (models that have one).
    scan: RwSignal<Option<Arc<CorpusScan>>>,
    scan_progress: RwSignal<Option<(usize, usize)>>,
    scan_layer: RwSignal<usize>,
    scan_neuron: RwSignal<usize>,
    /// The CPU engine that sweeps use on a software WebGPU adapter (see `sweep_engine`).
    sweep_cpu: StoredValue<Option<Rc<Engine>>, LocalStorage>,
    /// Loading a model from the hub, a URL or a file (the model in use stays until the new
    /// one is ready).
    hub_load: RwSignal<HubLoad>,
    hub_base: RwSignal<String>,
    /// "name (family, format)" of the outside model in use; None while a shipped one is.
    loaded: RwSignal<Option<String>>,
    cached: RwSignal<Vec<(String, u64, String)>>,
    abort: StoredValue<Option<web_sys::AbortController>, LocalStorage>,
    /// How many files of the load in progress came from the browser's cache.
    from_cache: RwSignal<usize>,
    /// The URLs the load in progress has fetched (removed from the cache if they fail to load).
    fetched: StoredValue<Vec<String>, LocalStorage>,
}

/// Characters of the corpus slice a scan reads (about 2 seconds on the wasm CPU path for the
/// English model).
const SCAN_CHARS: usize = 16_000;

/// The model whose Fourier view the page offers.
const MODULAR: &str = "modular-addition";

/// The whole explorer page.
#[component]
pub fn App() -> impl IntoView {
    let (params, notices) = url_state::parse(url_state::read_param);
    let ui = Ui {
        model_entry: params.model,
        force_cpu: params.force_cpu,
        load: RwSignal::new(LoadState::Loading(None)),
        model: RwSignal::new(None),
        engine: StoredValue::new_local(None),
        bundle: StoredValue::new_local(None),
        backend: RwSignal::new(None),
        cpu_reason: RwSignal::new(None),
        text: RwSignal::new(
            params
                .prompt
                .clone()
                .unwrap_or_else(|| params.model.default_prompt.to_string()),
        ),
        submitted: RwSignal::new(String::new()),
        run: RwSignal::new(None),
        running: RwSignal::new(false),
        prompt_error: RwSignal::new(None),
        cut_notice: RwSignal::new(None),
        url_notices: RwSignal::new(notices),
        pos: RwSignal::new(0),
        layer: RwSignal::new(0),
        head: RwSignal::new(0),
        url_live: RwSignal::new(false),
        embedding_norms: RwSignal::new(Vec::new()),
        neuron_grid: RwSignal::new(None),
        neuron_progress: RwSignal::new(None),
        neuron: RwSignal::new(0),
        scan: RwSignal::new(None),
        scan_progress: RwSignal::new(None),
        scan_layer: RwSignal::new(0),
        scan_neuron: RwSignal::new(0),
        sweep_cpu: StoredValue::new_local(None),
        hub_load: RwSignal::new(HubLoad::Idle),
        hub_base: RwSignal::new(url_state::read_param("hub").unwrap_or_else(|| hub::DEFAULT_HUB.to_string())),
        loaded: RwSignal::new(None),
        cached: RwSignal::new(Vec::new()),
        abort: StoredValue::new_local(None),
        from_cache: RwSignal::new(0),
        fetched: StoredValue::new_local(Vec::new()),
    };
    spawn_local(start(ui, params));
    spawn_local(refresh_cached(ui));

    Effect::new(move |_| {
        if !ui.url_live.get() {
            return;
        }
        let prompt = ui.submitted.get();
        url_state::write(&UrlView {
            model: ui.model_entry.id,
            prompt: &prompt,
            pos: ui.pos.get(),
            layer: ui.layer.get(),
            head: ui.head.get(),
            force_cpu: ui.force_cpu,
        });
    });

    let on_run = Callback::new(move |()| spawn_local(run_prompt(ui, None)));
    let ready = Signal::derive(move || matches!(ui.load.get(), LoadState::Ready { .. }));
    let notices = Signal::derive(move || {
        let mut all: Vec<Notice> = ui
            .url_notices
            .get()
            .into_iter()
            .map(|m| Notice::new(NoticeKind::Warning, m))
            .collect();
        match ui.cpu_reason.get() {
            Some(CpuReason::Forced) => all.push(Notice::new(
                NoticeKind::Info,
                "The URL asks for the CPU backend (backend=cpu): WebGPU is not used.",
            )),
            Some(CpuReason::GpuFailed(why)) => {
                let short = if why.contains("no GPU adapter") {
                    "this browser offers no GPU adapter".to_string()
                } else {
                    why.clone()
                };
                all.push(Notice::new(NoticeKind::Warning, format!("WebGPU unavailable: {short}. Running on the CPU instead (slower, same results).")).detail(why));
            }
            None => {}
        }
        all
    });
    let run = ui.run;
    let n_layers = Signal::derive(move || ui.model.get().map_or(0, |m| m.cfg.n_layers));
    let tokens = Signal::derive(move || run.get().map(|r| r.tokens.clone()).unwrap_or_default());
    let predictions = Signal::derive(move || {
        run.get()
            .and_then(|r| r.top5.get(ui.pos.get()).cloned())
            .unwrap_or_default()
    });
    let pattern = Memo::new(move |_| {
        run.get()
            .and_then(|r| {
                r.head_pattern(ui.layer.get(), ui.head.get())
                    .map(<[f32]>::to_vec)
            })
            .unwrap_or_default()
    });
    let select_pos = Callback::new(move |p: usize| ui.pos.set(p));
    let readout = Signal::derive(move || ui.model.get().is_some_and(|m| m.has_readout()));

    view! {
        <header class="site-header">
            <div class="brand">
                <h1>"glassbox"</h1>
                <span class="tagline">"interpretability in your browser"</span>
            </div>
            <BackendBadge label=ui.backend running=ui.running />
        </header>
        <main>
            <Notices notices=notices />
            <ModelPanel entry=ui.model_entry models=MODELS load=ui.load model=ui.model />
            <LoadPanel
                state=ui.hub_load
                hub_base=ui.hub_base
                loaded=ui.loaded
                cached=ui.cached
                on_load=Callback::new(move |src: ModelSource| spawn_local(load_outside(ui, src)))
                on_cancel=Callback::new(move |()| {
                    if let Some(a) = ui.abort.get_value() {
                        a.abort();
                    }
                })
                on_delete=Callback::new(move |url: String| spawn_local(async move {
                    hub::delete_cached(&url).await;
                    refresh_cached(ui).await;
                }))
            />
            <PromptBox
                text=ui.text
                ready=ready
                running=ui.running
                on_run=on_run
                error=ui.prompt_error
                cut=ui.cut_notice
                hint=Signal::derive(move || ui.model.get().map(|m| m.vocabulary_help()).unwrap_or_default())
                examples=ui.model_entry.examples
            />
            <Show when=move || run.with(Option::is_some)>
                <section class="panel">
                    <h2>"Tokens"</h2>
                    <p class="help">"Click a token to see what the model predicts after it and where it attends."</p>
                    <TokenChips tokens=tokens prompt=Signal::derive(move || run.get().map(|r| r.prompt.clone()).unwrap_or_default()) selected=ui.pos on_select=select_pos />
                    <p class="run-meta" data-testid="run-meta">
                        {move || run.get().map(|r| format!("{} tokens, forward pass in {:.0} ms on {}", r.n_tokens(), r.elapsed_ms, ui.backend.get().unwrap_or_default()))}
                    </p>
                </section>
                <div class="two-col">
                    <section class="panel">
                        <h2>{move || if readout.get() { "Answer" } else { "Next-token prediction" }}</h2>
                        <Prediction tokens=tokens ids=Signal::derive(move || run.get().map(|r| r.ids.clone()).unwrap_or_default()) pos=ui.pos predictions=predictions readout=readout n_tokens=Signal::derive(move || run.get().map_or(0, |r| r.n_tokens())) induction_hint=Signal::derive(move || ui.model_entry.id == "induction-2l" && ui.loaded.get().is_none()) />
                    </section>
                    <section class="panel">
                        <h2>"Heads"</h2>
                        <HeadPicker n_layers=n_layers layer=ui.layer head=ui.head run=Signal::derive(move || run.get()) />
                    </section>
                </div>
                {move || (ui.model_entry.id == MODULAR && ui.loaded.get().is_none()).then(|| view! {
                    <FourierPanel
                        embedding_norms=ui.embedding_norms
                        grid=ui.neuron_grid
                        progress=ui.neuron_progress
                        on_compute=Callback::new(move |()| spawn_local(compute_neurons(ui)))
                        neuron=ui.neuron
                    />
                })}
                {move || ui.model_entry.corpus.filter(|_| ui.loaded.get().is_none()).map(|(_, what)| view! {
                    <ScanPanel
                        n_layers=n_layers
                        layer=ui.scan_layer
                        neuron=ui.scan_neuron
                        scan=ui.scan
                        progress=ui.scan_progress
                        on_scan=Callback::new(move |l: usize| spawn_local(scan_corpus(ui, l)))
                        corpus=what
                    />
                })}
                <section class="panel">
                    <h2>{move || format!("Attention pattern: layer {}, head {}", ui.layer.get(), ui.head.get())}</h2>
                    <p class="help">"Each row is a query position, each column a key position it can attend to; darker means more attention. The chosen position's row is outlined; click a row to choose it."</p>
                    <AttentionHeatmap tokens=tokens pattern=pattern selected=ui.pos on_select=select_pos />
                </section>
            </Show>
        </main>
        <footer class="site-footer">
            "Everything runs in this page: the model's weights are downloaded once and nothing you type leaves your browser."
        </footer>
    }
}

/// Loads the model, starts a backend, applies the URL's view and runs the first prompt.
async fn start(ui: Ui, params: url_state::UrlParams) {
    let t0 = js_sys::Date::now();
    let (bundle, bytes) = match load_bundle(ui.model_entry, move |p| {
        ui.load.set(LoadState::Loading(Some(p)))
    })
    .await
    {
        Ok(b) => b,
        Err(e) => {
            ui.load.set(LoadState::Failed(format!(
                "Could not load the model \u{201c}{}\u{201d}: {e}",
                ui.model_entry.id
            )));
            return;
        }
    };
    ui.load.set(LoadState::Starting);
    let (engine, reason) = match Engine::start(&bundle, ui.force_cpu).await {
        Ok(e) => e,
        Err(e) => {
            ui.load.set(LoadState::Failed(format!(
                "Could not start the model \u{201c}{}\u{201d}: {e}",
                ui.model_entry.id
            )));
            return;
        }
    };
    let cfg = bundle.cfg.clone();
    let (layer, layer_notice) = url_state::check_index("layer", params.layer, cfg.n_layers);
    let (head, head_notice) = url_state::check_index("head", params.head, cfg.n_heads);
    ui.url_notices
        .update(|v| v.extend(layer_notice.into_iter().chain(head_notice)));
    // The default layer is the last: in the shipped induction model that is where the
    // induction heads are. The default head is chosen after the first run (below).
    ui.layer.set(layer.unwrap_or(cfg.n_layers - 1));
    ui.head.set(head.unwrap_or(0));
    ui.backend.set(Some(engine.backend_label()));
    ui.cpu_reason.set(reason);
    ui.engine.set_value(Some(Rc::new(engine)));
    if ui.model_entry.id == MODULAR {
        let p = cfg.d_vocab_out;
        ui.embedding_norms.set(embedding_frequency_norms(&bundle.weights.W_E.dense(MatrixRole::Table).map(|t| t.data).unwrap_or_default(), p, cfg.d_model));
    }
    let bundle = Rc::new(bundle);
    ui.bundle.set_value(Some(bundle.clone()));
    ui.model.set(Some(Arc::new(ModelInfo {
        cfg,
        tokenizer: bundle.tokenizer.clone(),
        card: bundle.card.clone(),
    })));
    ui.load.set(LoadState::Ready {
        bytes,
        seconds: (js_sys::Date::now() - t0) / 1000.0,
    });
    run_prompt(ui, Some(params.pos)).await;
    if head.is_none() {
        if let Some(best) = ui
            .run
            .get_untracked()
            .and_then(|r| r.strongest_induction_head(ui.layer.get_untracked()))
        {
            ui.head.set(best);
        }
    }
    ui.url_live.set(true);
}

/// Runs the text in the prompt box. `url_pos` is the URL's position on the first run (checked
/// once the tokens are known); later runs keep the chosen position when the prompt is
/// unchanged and move to the last token when it changed.
async fn run_prompt(ui: Ui, url_pos: Option<Option<usize>>) {
    if ui.running.get_untracked() {
        return;
    }
    let (Some(info), Some(engine)) = (ui.model.get_untracked(), ui.engine.get_value()) else {
        return;
    };
    let text = ui.text.get_untracked();
    let same_prompt =
        ui.submitted.get_untracked() == text && ui.run.with_untracked(Option::is_some);
    ui.submitted.set(text.clone());
    ui.prompt_error.set(None);
    ui.cut_notice.set(None);
    let prepared = match prompt::prepare(&text, &info.tokenizer, info.cfg.n_ctx) {
        Ok(p) => p,
        Err(e) => {
            ui.prompt_error.set(Some(e.to_string()));
            ui.run.set(None);
            return;
        }
    };
    // The shipped model's prompt form (e.g. "a + b =") does not bind a model loaded from outside.
    let form = if ui.loaded.get_untracked().is_some() { Ok(()) } else { (ui.model_entry.check_form)(&prepared.ids) };
    if let Err(msg) = form {
        ui.prompt_error.set(Some(prompt::PromptError::Form(msg).to_string()));
        ui.run.set(None);
        return;
    }
    if let Some(cut) = &prepared.cut {
        ui.cut_notice.set(Some(cut.message(info.cfg.n_ctx)));
    }
    let hooks: Vec<String> = (0..info.cfg.n_layers).map(pattern_hook).collect();
    let hook_refs: Vec<&str> = hooks.iter().map(String::as_str).collect();
    let req = RunRequest::new(prepared.ids.clone()).cache(&hook_refs);
    ui.running.set(true);
    let t0 = js_sys::Date::now();
    let result = engine.run(&req).await;
    let elapsed = js_sys::Date::now() - t0;
    ui.running.set(false);
    match result {
        Ok(out) => {
            let view = RunView::from_output(
                &text,
                prepared.ids,
                &out,
                info.cfg.n_layers,
                &info.tokenizer,
                elapsed,
            );
            let n = view.n_tokens();
            match url_pos {
                Some(p) => {
                    let (pos, notice) = url_state::check_pos(p, n);
                    ui.url_notices.update(|v| v.extend(notice));
                    ui.pos.set(pos);
                }
                None if !same_prompt || ui.pos.get_untracked() >= n => ui.pos.set(n - 1),
                None => {}
            }
            ui.run.set(Some(Arc::new(view)));
        }
        Err(e) if engine.is_gpu() => {
            // The GPU failed mid-session (device lost, driver reset, out of memory): move to
            // the CPU with the weights already in memory, say so, and run the prompt again.
            let Some(bundle) = ui.bundle.get_value() else { return };
            match Engine::start(&bundle, true).await {
                Ok((cpu, _)) => {
                    ui.backend.set(Some(cpu.backend_label()));
                    ui.cpu_reason.set(Some(CpuReason::GpuFailed(format!("the GPU stopped working during a run ({e})"))));
                    ui.engine.set_value(Some(Rc::new(cpu)));
                    Box::pin(run_prompt(ui, None)).await;
                }
                Err(e2) => ui.prompt_error.set(Some(format!("The run failed on the GPU ({e}) and the CPU could not start ({e2})"))),
            }
        }
        Err(e) => {
            ui.prompt_error.set(Some(format!("The run failed: {e}")));
            ui.run.set(None);
        }
    }
}

/// Runs the modular-addition model on every input `a b =` and keeps each MLP neuron's
/// activation at `=` (the last layer's `mlp.hook_post`), for the Fourier panel. Batches of 16
/// values of a (1808 sequences) at a time, yielding to the page between them.
async fn compute_neurons(ui: Ui) {
    if ui.neuron_progress.get_untracked().is_some() || ui.neuron_grid.with_untracked(Option::is_some) {
        return;
    }
    let Some((info, engine)) = sweep_engine(ui).await else { return };
    let Some(d_mlp) = info.cfg.d_mlp else { return };
    let p = info.cfg.d_vocab_out;
    let eq = p as u32; // the "=" token follows the numbers 0..p-1
    let hook = format!("blocks.{}.mlp.hook_post", info.cfg.n_layers - 1);
    let n_pos = 3;
    let mut acts = vec![0f32; p * p * d_mlp];
    const CHUNK: usize = 16;
    for a0 in (0..p).step_by(CHUNK) {
        ui.neuron_progress.set(Some(a0));
        yield_now().await;
        let a1 = (a0 + CHUNK).min(p);
        let tokens: Vec<u32> = (a0..a1).flat_map(|a| (0..p).flat_map(move |b| [a as u32, b as u32, eq])).collect();
        let n = (a1 - a0) * p;
        match engine.run_batch(&tokens, n, &[hook.as_str()]).await {
            Ok(out) => {
                let t = out.get(&hook).expect("the hook was cached"); // [n, pos, d_mlp]
                for i in 0..n {
                    let src = (i * n_pos + n_pos - 1) * d_mlp;
                    let dst = (a0 * p + i) * d_mlp;
                    acts[dst..dst + d_mlp].copy_from_slice(&t.data[src..src + d_mlp]);
                }
            }
            Err(e) => {
                ui.prompt_error.set(Some(format!("Running all inputs failed: {e}")));
                ui.neuron_progress.set(None);
                return;
            }
        }
    }
    ui.neuron_progress.set(None);
    ui.neuron_grid.set(Some(Arc::new(NeuronGrid { p, d_mlp, acts })));
}

/// The engine for a large batched sweep (all modular inputs, a corpus scan): the page's own,
/// except on a software WebGPU adapter, which runs such sweeps about 100 times slower than our
/// wasm CPU path (headless Chromium on SwiftShader: minutes against 3 seconds). There a CPU
/// engine is made once from the weights already in memory and kept for later sweeps.
async fn sweep_engine(ui: Ui) -> Option<(Arc<ModelInfo>, Rc<Engine>)> {
    let (info, engine) = (ui.model.get_untracked()?, ui.engine.get_value()?);
    if !engine.is_software_gpu() {
        return Some((info, engine));
    }
    if let Some(cpu) = ui.sweep_cpu.get_value() {
        return Some((info, cpu));
    }
    let bundle = ui.bundle.get_value()?;
    match Engine::start(&bundle, true).await {
        Ok((cpu, _)) => {
            let cpu = Rc::new(cpu);
            ui.sweep_cpu.set_value(Some(cpu.clone()));
            Some((info, cpu))
        }
        Err(_) => Some((info, engine)),
    }
}

/// Lets the browser render (and handle input) before the next chunk of work.
async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Scans the model's corpus slice with layer `layer`'s MLP neurons and keeps each neuron's ten
/// strongest activations (`mlp.hook_post`), for the top-activating-examples panel. Windows of
/// `<bos>` + `n_ctx - 1` characters, 8 at a time, yielding to the page between batches.
async fn scan_corpus(ui: Ui, layer: usize) {
    if ui.scan_progress.get_untracked().is_some() {
        return;
    }
    let Some((path, _)) = ui.model_entry.corpus else { return };
    let Some((info, engine)) = sweep_engine(ui).await else { return };
    let Some(d_mlp) = info.cfg.d_mlp else { return };
    ui.scan_progress.set(Some((0, SCAN_CHARS)));
    let text = match crate::loader::fetch_bytes(&crate::loader::resolve(path), |_, _| {}).await.map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return scan_failed(ui, format!("{path} is not UTF-8 text")),
        Err(e) => return scan_failed(ui, e),
    };
    let chars: Vec<char> = text.chars().take(SCAN_CHARS).collect();
    let slice: String = chars.iter().collect();
    let ids = match info.tokenizer.encode(&slice) {
        Ok(ids) => ids[usize::from(info.tokenizer.bos().is_some())..].to_vec(),
        Err(e) => return scan_failed(ui, e.to_string()),
    };
    let body = info.cfg.n_ctx - 1;
    let bos = info.tokenizer.bos().unwrap_or(0);
    let hook = format!("blocks.{layer}.mlp.hook_post");
    let mut top = TopActivations::new(d_mlp, 10);
    let windows: Vec<&[u32]> = ids.chunks_exact(body).collect(); // whole windows only
    for (w0, batch) in windows.chunks(8).enumerate() {
        ui.scan_progress.set(Some((w0 * 8 * body, windows.len() * body)));
        yield_now().await;
        let tokens: Vec<u32> = batch.iter().flat_map(|w| std::iter::once(bos).chain(w.iter().copied())).collect();
        match engine.run_batch(&tokens, batch.len(), &[hook.as_str()]).await {
            Ok(out) => {
                let acts = out.get(&hook).expect("the hook was cached"); // [batch, n_ctx, d_mlp]
                let per_seq = info.cfg.n_ctx * d_mlp;
                for (i, seq) in acts.data.chunks_exact(per_seq).enumerate() {
                    let first = (w0 * 8 + i) * body;
                    top.add(seq, |p| (p > 0).then(|| first + p - 1));
                }
            }
            Err(e) => return scan_failed(ui, e.to_string()),
        }
    }
    ui.scan_progress.set(None);
    ui.scan.set(Some(Arc::new(CorpusScan { layer, chars, top })));
}

fn scan_failed(ui: Ui, why: String) {
    ui.scan_progress.set(None);
    ui.prompt_error.set(Some(format!("The scan failed: {why}")));
}

/// Reads the list of cached model files into the panel.
async fn refresh_cached(ui: Ui) {
    ui.cached.set(hub::list_cached().await);
}

/// Loads a model from the hub, a URL or a local file. The model in use stays in place (and
/// keeps answering) until the new one has been downloaded, parsed and started; on any failure
/// the panel says why and nothing else changes.
async fn load_outside(ui: Ui, src: ModelSource) {
    if matches!(ui.hub_load.get_untracked(), HubLoad::Downloading { .. } | HubLoad::Starting) {
        return;
    }
    match fetch_outside(ui, &src).await {
        Ok((files, quantize, label)) => {
            ui.hub_load.set(HubLoad::Starting);
            yield_now().await; // let the page show "Starting" before the parse blocks it
            match start_outside(ui, &files, quantize, label).await {
                Ok(()) => ui.hub_load.set(HubLoad::Idle),
                Err(e) => {
                    // Files that do not make a model are not kept for next time.
                    for url in ui.fetched.get_value() {
                        hub::delete_cached(&url).await;
                    }
                    ui.hub_load.set(HubLoad::Failed(e));
                }
            }
        }
        Err(e) => ui.hub_load.set(HubLoad::Failed(e)),
    }
    ui.abort.set_value(None);
    refresh_cached(ui).await;
}

type Files = Vec<(String, Vec<u8>)>;

/// Downloads (or reads from the cache) the files of `src`.
async fn fetch_outside(ui: Ui, src: &ModelSource) -> Result<(Files, Option<glassbox_core::QuantizeOnLoad>, String), String> {
    let controller = web_sys::AbortController::new().map_err(|_| "this browser cannot cancel downloads".to_string())?;
    ui.from_cache.set(0);
    ui.fetched.set_value(Vec::new());
    let signal = controller.signal();
    ui.abort.set_value(Some(controller));
    let get = |url: String, name: String| {
        let signal = signal.clone();
        async move {
            let t0 = js_sys::Date::now();
            let shown = name.clone();
            let progress = move |loaded: u64, total: Option<u64>| {
                let secs = (js_sys::Date::now() - t0) / 1000.0;
                let rate = if secs > 0.2 { loaded as f64 / secs } else { 0.0 };
                ui.hub_load.set(HubLoad::Downloading { file: shown.clone(), loaded, total, rate, cached: false });
            };
            ui.hub_load.set(HubLoad::Downloading { file: name.clone(), loaded: 0, total: None, rate: 0.0, cached: false });
            let (bytes, from_cache) = hub::fetch_model_file(&url, &signal, &progress).await?;
            ui.fetched.update_value(|v| v.push(url.clone()));
            if from_cache {
                ui.hub_load.set(HubLoad::Downloading { file: name.clone(), loaded: bytes.len() as u64, total: Some(bytes.len() as u64), rate: 0.0, cached: true });
                ui.from_cache.update(|n| *n += 1);
            }
            Ok::<_, hub::FetchError>((name, bytes))
        }
    };
    let gguf_name = |u: &str| u.rsplit('/').next().unwrap_or("model.gguf").split('?').next().unwrap_or("model.gguf").to_string();
    match src {
        ModelSource::Local(name, bytes) => Ok((vec![(name.clone(), bytes.to_vec())], None, format!("the local file {name}"))),
        ModelSource::Url(url) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("\u{201c}{url}\u{201d} is not an http(s) URL."));
            }
            let name = gguf_name(url);
            let file = get(url.clone(), name.clone()).await.map_err(|e| format!("{e}."))?;
            Ok((vec![file], None, name))
        }
        ModelSource::Hub { base, repo, file, quantize } => {
            hub::check_repo(repo)?;
            let quantize = match quantize.as_deref() {
                Some("q8_0") => Some(glassbox_core::QuantizeOnLoad::Q8_0),
                Some("q4_0") => Some(glassbox_core::QuantizeOnLoad::Q4_0),
                _ => None,
            };
            let url = |f: &str| hub::resolve_url(base, repo, f);
            let fail = |e: hub::FetchError| format!("{e}.");
            match file {
                Some(f) if f.is_empty() => Err("Name the GGUF file in the repository (for example model-q8_0.gguf).".into()),
                Some(f) => {
                    let one = get(url(f), f.clone()).await.map_err(fail)?;
                    Ok((vec![one], None, format!("{repo}/{f}")))
                }
                None => {
                    let mut files = vec![
                        get(url("config.json"), "config.json".into()).await.map_err(fail)?,
                        get(url("tokenizer.json"), "tokenizer.json".into()).await.map_err(fail)?,
                    ];
                    match get(url("model.safetensors"), "model.safetensors".into()).await {
                        Ok(f) => files.push(f),
                        Err(hub::FetchError::NotFound(_)) => {
                            let index = get(url("model.safetensors.index.json"), "model.safetensors.index.json".into()).await.map_err(fail)?;
                            let shards = glassbox_core::weights::shard_files(&index.1).map_err(|e| format!("{e}."))?;
                            files.push(index);
                            for s in shards {
                                files.push(get(url(&s), s.clone()).await.map_err(fail)?);
                            }
                        }
                        Err(e) => return Err(fail(e)),
                    }
                    Ok((files, quantize, repo.clone()))
                }
            }
        }
    }
}

/// Parses the files and starts a backend; only when both worked does the page switch to the
/// new model.
async fn start_outside(ui: Ui, files: &Files, quantize: Option<glassbox_core::QuantizeOnLoad>, label: String) -> Result<(), String> {
    let bundle = ModelBundle::from_files(files, quantize).map_err(|e| format!("Could not read the model: {e}."))?;
    let (engine, reason) = Engine::start(&bundle, ui.force_cpu).await.map_err(|e| format!("Could not start the model: {e}."))?;
    let cfg = bundle.cfg.clone();
    let format = bundle.card.get("format").and_then(|f| f.as_str()).unwrap_or("").to_string();
    let name = bundle.card.get("name").and_then(|n| n.as_str()).map(str::to_string).unwrap_or_else(|| label.clone());
    // Ready: switch everything over at once. Share links describe the shipped models only,
    // so the URL stops following the view while an outside model is in use.
    ui.url_live.set(false);
    ui.backend.set(Some(engine.backend_label()));
    ui.cpu_reason.set(reason);
    ui.engine.set_value(Some(Rc::new(engine)));
    ui.sweep_cpu.set_value(None);
    let bundle = Rc::new(bundle);
    ui.bundle.set_value(Some(bundle.clone()));
    ui.run.set(None);
    ui.layer.set(cfg.n_layers - 1);
    ui.head.set(0);
    ui.pos.set(0);
    let n_files = files.len();
    let cached = match ui.from_cache.get_untracked() {
        0 => String::new(),
        n if n == n_files => "; read from this browser's cache".to_string(),
        n => format!("; {n} of {n_files} files from this browser's cache"),
    };
    ui.loaded.set(Some(format!("{name} ({}, {} layers, d_model {}; {format}; from {label}{cached})", cfg.family(), cfg.n_layers, cfg.d_model)));
    ui.model.set(Some(Arc::new(ModelInfo { cfg, tokenizer: bundle.tokenizer.clone(), card: bundle.card.clone() })));
    run_prompt(ui, None).await;
    Ok(())
}
