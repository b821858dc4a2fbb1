//! "Induction heads, live": the article shipped with the site. `public/article.html` holds the
//! prose and, in every `<figure data-figure="<kind>">`, a static image of the figure, which is
//! what a reader sees when WebAssembly does not run (`scripts/article_page.sh`, a trunk hook,
//! turns it into `dist/article.html` with the same module and styles as the explorer). When it
//! runs, [`mount`] puts a live figure into each: every figure shares ONE model download and ONE
//! engine worker ([`Article`]), computes when it first scrolls into view, and reads one prompt,
//! so that editing it in any figure recomputes them all.

mod figures;

use std::rc::Rc;
use std::sync::Arc;

use glassbox_core::analysis::patching::{AblationKind, AblationTarget, MetricKind};
use glassbox_core::{Analysis, Experiment, ModelRef};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::analysis::RunView;
use crate::engine::{EngineClient, EngineEvent, RunFailure, SweepResult};
use crate::inspect::{Inspection, Query};
use crate::loader::fetch_shipped;
use crate::models::{find_model, ModelEntry};

/// The model every figure runs: the shipped 2-layer induction organism.
const MODEL: &str = "induction-2l";

/// Whether this page is the article (its `<body data-page="article">`).
pub fn is_article() -> bool {
    web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()).and_then(|b| b.get_attribute("data-page")).as_deref() == Some("article")
}

/// Where the shared engine is.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// No figure has been on screen yet: nothing is downloaded.
    Idle,
    /// Downloading the model and starting the engine.
    Loading(String),
    /// The engine runs the model on `backend`.
    Ready {
        backend: String,
    },
    Failed(String),
}

/// A figure's answer for one prompt: `None` while it computes.
pub type Answer<T> = Option<(String, Result<Arc<T>, String>)>;

/// An inspect answer for a prompt and a query (`None` while it computes).
pub type Inspected = (String, Query, Option<Result<Arc<Inspection>, String>>);

/// Every head's zero ablation on the prompt: the mean loss without and with it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadAblation {
    pub n_layers: usize,
    pub n_heads: usize,
    pub base: f32,
    /// `loss[layer * n_heads + head]`: the loss with that head's output set to zero.
    pub loss: Vec<f32>,
}

/// The article's shared state: one engine, one prompt, one answer per kind of data. `Copy`.
#[derive(Clone, Copy)]
pub struct Article {
    pub entry: &'static ModelEntry,
    /// The prompt every figure shows (committed by Enter or a button in any figure).
    pub prompt: RwSignal<String>,
    /// The text in the figures' prompt boxes (one text: they all edit the same prompt).
    pub draft: RwSignal<String>,
    pub status: RwSignal<Status>,
    engine: StoredValue<Option<Rc<EngineClient>>, LocalStorage>,
    pub run: RwSignal<Answer<RunView>>,
    pub ablation: RwSignal<Answer<HeadAblation>>,
    /// Inspect answers (logit lens, attribution), each for a prompt and a query.
    pub inspections: RwSignal<Vec<Inspected>>,
    /// What has been asked, so that each (prompt, kind) is computed once.
    asked: StoredValue<Vec<(String, String)>>,
    /// The model's layers and heads per layer (known once it has started).
    pub dims: RwSignal<(usize, usize)>,
    /// Model downloads started (one per page; the e2e test counts requests too).
    pub downloads: RwSignal<u32>,
}

impl Article {
    fn new() -> Article {
        let entry = find_model(MODEL).expect("the induction model is shipped");
        Article {
            entry,
            prompt: RwSignal::new(entry.default_prompt.to_string()),
            draft: RwSignal::new(entry.default_prompt.to_string()),
            status: RwSignal::new(Status::Idle),
            engine: StoredValue::new_local(None),
            run: RwSignal::new(None),
            ablation: RwSignal::new(None),
            inspections: RwSignal::new(Vec::new()),
            asked: StoredValue::new(Vec::new()),
            dims: RwSignal::new((0, 0)),
            downloads: RwSignal::new(0),
        }
    }

    /// The experiment a figure computes for `prompt` (also what its "open in the explorer" link
    /// carries).
    pub fn experiment(&self, prompt: &str) -> Experiment {
        Experiment::new(ModelRef::shipped(self.entry.id), prompt)
    }

    pub fn ready(&self) -> bool {
        matches!(self.status.get(), Status::Ready { .. })
    }

    /// Commits the prompt boxes' text: every figure recomputes (those off screen when they
    /// scroll into view).
    pub fn commit(&self) {
        let text = self.draft.get_untracked();
        if text != self.prompt.get_untracked() {
            self.prompt.set(text);
        }
    }

    /// Downloads the model and starts the engine, once per page (the first figure on screen
    /// calls this; later calls do nothing).
    pub fn start(self) {
        if self.status.get_untracked() != Status::Idle {
            return;
        }
        self.status.set(Status::Loading("Downloading the model\u{2026}".into()));
        self.downloads.update(|d| *d += 1);
        spawn_local(async move {
            let progress = move |p: crate::loader::Progress| {
                let kb = p.loaded / 1024;
                self.status.set(Status::Loading(format!("Downloading the model ({kb} KB)\u{2026}")));
            };
            let (fetched, client) = futures_util::future::join(fetch_shipped(self.entry, progress), EngineClient::spawn()).await;
            let started = async {
                let (files, _) = fetched?;
                let client = client?;
                self.status.set(Status::Loading("Starting the engine\u{2026}".into()));
                let summary = client.load(&files, None, glassbox_core::BackendChoice::Auto, Some(self.entry.id.to_string())).await?;
                Ok::<_, String>((client, summary))
            };
            match started.await {
                Ok((client, summary)) => {
                    let client = Rc::new(client);
                    client.on_event(move |ev| match ev {
                        EngineEvent::BackendChanged { label, .. } => self.status.set(Status::Ready { backend: label }),
                        EngineEvent::Died(why) => self.status.set(Status::Failed(format!("The engine stopped ({why}). Reload the page to try again."))),
                    });
                    self.engine.set_value(Some(client));
                    self.dims.set((summary.cfg.n_layers, summary.cfg.n_heads));
                    self.status.set(Status::Ready { backend: summary.backend });
                }
                Err(e) => self.status.set(Status::Failed(format!("The live figures could not start: {e}"))),
            }
        });
    }

    /// Whether `kind` was already asked for `prompt` (and marks it asked).
    fn first_ask(&self, prompt: &str, kind: &str) -> bool {
        let key = (prompt.to_string(), kind.to_string());
        let mut fresh = false;
        self.asked.update_value(|v| {
            if !v.contains(&key) {
                v.push(key);
                fresh = true;
            }
        });
        fresh
    }

    /// Runs the prompt (predictions and attention read this run).
    pub fn ensure_run(self, prompt: String) {
        let Some(engine) = self.engine.get_value().filter(|_| self.first_ask(&prompt, "run")) else { return };
        spawn_local(async move {
            let exp = self.experiment(&prompt);
            let result = engine.run(engine.next_id(), &exp).await.map(|r| Arc::new(r.view)).map_err(failure);
            self.run.set(Some((prompt, result)));
        });
    }

    /// Zero-ablates every head in turn, with the mean loss over the prompt as the metric.
    pub fn ensure_ablation(self, prompt: String, n_layers: usize, n_heads: usize) {
        let Some(engine) = self.engine.get_value().filter(|_| self.first_ask(&prompt, "ablation")) else { return };
        spawn_local(async move {
            let mut loss = Vec::with_capacity(n_layers * n_heads);
            let mut base = f32::NAN;
            let mut error = None;
            for layer in 0..n_layers {
                for head in 0..n_heads {
                    let mut exp = self.experiment(&prompt);
                    exp.analysis = Analysis::Ablate {
                        target: AblationTarget::Heads { heads: vec![(layer, head)] },
                        ablation: AblationKind::Zero,
                        metric: MetricKind::Loss,
                        dataset: Vec::new(),
                    };
                    match engine.sweep(engine.next_id(), &exp, None, |_, _| {}).await {
                        Ok(SweepResult::Ablation(v)) => {
                            base = v.result.base;
                            loss.push(v.result.ablated);
                        }
                        Ok(_) => error = Some("the engine answered with another analysis".to_string()),
                        Err(e) => error = Some(failure(e)),
                    }
                    if error.is_some() {
                        break;
                    }
                }
                if error.is_some() {
                    break;
                }
            }
            let result = match error {
                Some(e) => Err(e),
                None => Ok(Arc::new(HeadAblation { n_layers, n_heads, base, loss })),
            };
            self.ablation.set(Some((prompt, result)));
        });
    }

    /// Asks an inspect view's data (logit lens, attribution) for the prompt.
    pub fn ensure_inspect(self, prompt: String, query: Query) {
        let Some(engine) = self.engine.get_value() else { return };
        let known = self.inspections.with_untracked(|v| v.iter().any(|(p, q, _)| *p == prompt && *q == query));
        if known {
            return;
        }
        self.inspections.update(|v| v.push((prompt.clone(), query.clone(), None)));
        spawn_local(async move {
            let exp = self.experiment(&prompt);
            let result = engine.inspect(engine.next_id(), &exp, query.clone()).await.map(Arc::new).map_err(failure);
            self.inspections.update(|v| {
                if let Some(slot) = v.iter_mut().find(|(p, q, _)| *p == prompt && *q == query) {
                    slot.2 = Some(result);
                }
            });
        });
    }

    /// The answer to `query` for `prompt`, once computed.
    pub fn inspection(&self, prompt: &str, query: &Query) -> Option<Result<Arc<Inspection>, String>> {
        self.inspections.with(|v| v.iter().find(|(p, q, _)| p == prompt && q == query).and_then(|(_, _, r)| r.clone()))
    }
}

fn failure(e: RunFailure) -> String {
    match e {
        RunFailure::Prompt(m) | RunFailure::Engine(m) => m,
        RunFailure::Cancelled => "cancelled".into(),
    }
}

/// Milliseconds since the page started loading (`performance.now()`).
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

/// Calls `f` once, when `el` first comes within 200 px of the viewport.
fn when_visible(el: &web_sys::Element, f: impl FnOnce() + 'static) {
    let f = Rc::new(std::cell::Cell::new(Some(f)));
    let once = f.clone();
    let callback =
        Closure::<dyn FnMut(js_sys::Array, web_sys::IntersectionObserver)>::new(move |entries: js_sys::Array, observer: web_sys::IntersectionObserver| {
            let seen = entries.iter().any(|e| e.unchecked_into::<web_sys::IntersectionObserverEntry>().is_intersecting());
            if seen {
                observer.disconnect();
                if let Some(f) = once.take() {
                    f();
                }
            }
        });
    let init = web_sys::IntersectionObserverInit::new();
    init.set_root_margin("200px");
    match web_sys::IntersectionObserver::new_with_options(callback.as_ref().unchecked_ref(), &init) {
        Ok(observer) => {
            observer.observe(el);
            callback.forget();
        }
        // No IntersectionObserver: compute at once.
        Err(_) => {
            if let Some(f) = f.take() {
                f();
            }
        }
    }
}

/// Mounts the live figures into the article's `<figure data-figure>` elements and its status
/// line (`[data-article-status]`).
pub fn mount() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    let article = Article::new();
    if let Ok(Some(el)) = doc.query_selector("[data-article-status]") {
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            el.set_inner_text("");
            leptos::mount::mount_to(el, move || view! { <figures::StatusLine article=article /> }).forget();
        }
    }
    let Ok(figures) = doc.query_selector_all("figure[data-figure]") else { return };
    for i in 0..figures.length() {
        let Some(fig) = figures.item(i).and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) else { continue };
        let Some(kind) = fig.get_attribute("data-figure").and_then(|k| figures::Kind::parse(&k)) else { continue };
        let Some(body) = fig.query_selector(".figure-body").ok().flatten().and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok()) else { continue };
        let _ = fig.class_list().add_1("is-live");
        let visible = RwSignal::new(false);
        when_visible(&fig, move || {
            visible.set(true);
            article.start();
        });
        leptos::mount::mount_to(body, move || view! { <figures::LiveFigure article=article kind=kind visible=visible /> }).forget();
    }
}
