//! The page's handle on the engine's worker: starts it, sends [`Request`]s, and turns the
//! [`Reply`]s back into awaited results. The page never computes; it awaits these.
//!
//! One worker holds one model. Replacing the model means starting a new worker and dropping
//! this handle, which terminates the old worker and frees everything it held, its GPU device
//! included. If the worker dies (a panic or trap in the engine), every pending request fails
//! with [`EngineDied`] and `on_event` reports it; the page starts a new one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use glassbox_core::Experiment;
use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use super::protocol::{ExportFile, ModelSummary, Reply, Request, RunFailure, RunReply, SweepResult};
use crate::inspect::{Inspection, Query};

/// Something the worker reports outside of a request's reply.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// The backend changed (a lost GPU moved the model to the CPU): the new label and why.
    BackendChanged { label: String, reason: String },
    /// The worker died; the message says how.
    Died(String),
}

/// The worker died before it answered.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineDied(pub String);

type ProgressFn = Rc<dyn Fn(usize, usize)>;
type EventFn = Rc<dyn Fn(EngineEvent)>;

#[derive(Default)]
struct Shared {
    next_id: Cell<u64>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Result<Reply, EngineDied>>>>,
    progress: RefCell<HashMap<u64, ProgressFn>>,
    on_event: RefCell<Option<EventFn>>,
    dead: RefCell<Option<String>>,
    started: RefCell<Option<oneshot::Sender<()>>>,
}

impl Shared {
    fn event(&self, e: EngineEvent) {
        let f = self.on_event.borrow().clone();
        if let Some(f) = f {
            f(e);
        }
    }

    fn die(&self, why: String) {
        if self.dead.borrow().is_some() {
            return;
        }
        *self.dead.borrow_mut() = Some(why.clone());
        self.started.borrow_mut().take();
        for (_, tx) in self.pending.borrow_mut().drain() {
            let _ = tx.send(Err(EngineDied(why.clone())));
        }
        self.event(EngineEvent::Died(why));
    }
}

/// A running engine worker.
pub struct EngineClient {
    worker: Worker,
    shared: Rc<Shared>,
    _listeners: [EventListener; 3],
}

impl Drop for EngineClient {
    fn drop(&mut self) {
        self.worker.terminate();
        // Replaced on purpose: fail what is pending, but report no death.
        self.shared.on_event.borrow_mut().take();
        self.shared.die("the engine was replaced".into());
    }
}

/// The URLs of this page's own wasm-bindgen module and wasm file, as trunk links them
/// (`<link rel="modulepreload">` and `<link rel="preload" as="fetch">`), for the worker to
/// import the same module.
fn module_urls() -> Result<(String, String), String> {
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let href = |sel: &str| -> Option<String> { doc.query_selector(sel).ok().flatten()?.dyn_into::<web_sys::HtmlLinkElement>().ok().map(|l| l.href()) };
    let glue = href("link[rel=modulepreload][href$='.js']").ok_or("the page does not link its module (modulepreload)")?;
    let wasm = href("link[rel=preload][href$='.wasm']").ok_or("the page does not link its wasm file (preload)")?;
    Ok((glue, wasm))
}

impl EngineClient {
    /// Starts a worker running this page's module and waits until it takes requests.
    pub async fn spawn() -> Result<EngineClient, String> {
        let (glue, wasm) = module_urls()?;
        let opts = WorkerOptions::new();
        opts.set_type(WorkerType::Module);
        opts.set_name("glassbox-engine");
        let worker =
            Worker::new_with_options(&crate::loader::resolve("worker.js"), &opts).map_err(|e| format!("the browser refused to start a worker: {e:?}"))?;
        let shared = Rc::new(Shared::default());
        let (started_tx, started_rx) = oneshot::channel();
        *shared.started.borrow_mut() = Some(started_tx);

        let s = shared.clone();
        let on_message = EventListener::new(&worker, "message", move |ev| {
            let ev: &MessageEvent = ev.unchecked_ref();
            let reply = match serde_wasm_bindgen::from_value::<Reply>(ev.data()) {
                Ok(r) => r,
                Err(e) => return web_sys::console::error_1(&format!("glassbox: an engine reply that does not parse: {e}").into()),
            };
            let id = match &reply {
                Reply::Started => {
                    if let Some(tx) = s.started.borrow_mut().take() {
                        let _ = tx.send(());
                    }
                    return;
                }
                Reply::Panicked(msg) => return s.die(format!("the engine crashed: {msg}")),
                Reply::BackendChanged { label, reason } => return s.event(EngineEvent::BackendChanged { label: label.clone(), reason: reason.clone() }),
                Reply::Progress { id, done, total } => {
                    let f = s.progress.borrow().get(id).cloned();
                    if let Some(f) = f {
                        f(*done, *total);
                    }
                    return;
                }
                Reply::Loaded { id, .. } | Reply::Ran { id, .. } | Reply::Swept { id, .. } | Reply::Inspected { id, .. } | Reply::Exported { id, .. } => *id,
            };
            s.progress.borrow_mut().remove(&id);
            if let Some(tx) = s.pending.borrow_mut().remove(&id) {
                let _ = tx.send(Ok(reply));
            }
        });
        let s = shared.clone();
        let on_error = EventListener::new(&worker, "error", move |ev| {
            let msg = ev.dyn_ref::<ErrorEvent>().map(|e| e.message()).filter(|m| !m.is_empty()).unwrap_or_else(|| "the engine's worker failed".into());
            s.die(msg);
        });
        let s = shared.clone();
        let on_message_error = EventListener::new(&worker, "messageerror", move |_| s.die("a message to the engine could not be read".into()));

        // The first message tells worker.js which module to import, and hands it this page's
        // compiled `WebAssembly.Module`, so the worker instantiates it without fetching and
        // compiling the wasm file again (the URL is the fallback).
        let boot = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&boot, &"glue".into(), &glue.into());
        let _ = js_sys::Reflect::set(&boot, &"wasm".into(), &wasm.into());
        let _ = js_sys::Reflect::set(&boot, &"module".into(), &wasm_bindgen::module());
        worker.post_message(&boot).map_err(|e| format!("could not start the engine: {e:?}"))?;
        let client = EngineClient { worker, shared, _listeners: [on_message, on_error, on_message_error] };
        match started_rx.await {
            Ok(()) => Ok(client),
            Err(_) => Err(client.shared.dead.borrow().clone().unwrap_or_else(|| "the engine's worker did not start".into())),
        }
    }

    /// Reports worker events (backend changes, death) to `f`.
    pub fn on_event(&self, f: impl Fn(EngineEvent) + 'static) {
        *self.shared.on_event.borrow_mut() = Some(Rc::new(f));
    }

    /// A fresh request id.
    pub fn next_id(&self) -> u64 {
        let id = self.shared.next_id.get() + 1;
        self.shared.next_id.set(id);
        id
    }

    /// Sends a request (with files beside it, transferred) and awaits its reply.
    async fn request(&self, id: u64, req: &Request, files: &[(String, Vec<u8>)]) -> Result<Reply, EngineDied> {
        if let Some(why) = self.shared.dead.borrow().clone() {
            return Err(EngineDied(why));
        }
        let (tx, rx) = oneshot::channel();
        self.shared.pending.borrow_mut().insert(id, tx);
        self.post(req, files).map_err(EngineDied)?;
        rx.await.unwrap_or_else(|_| Err(EngineDied("the engine stopped".into())))
    }

    fn post(&self, req: &Request, files: &[(String, Vec<u8>)]) -> Result<(), String> {
        let msg = js_sys::Object::new();
        let value = serde_wasm_bindgen::to_value(req).map_err(|e| e.to_string())?;
        let _ = js_sys::Reflect::set(&msg, &"req".into(), &value);
        let arrays = js_sys::Array::new();
        let transfer = js_sys::Array::new();
        for (_, bytes) in files {
            let a = js_sys::Uint8Array::from(bytes.as_slice());
            transfer.push(&a.buffer());
            arrays.push(&a);
        }
        let _ = js_sys::Reflect::set(&msg, &"files".into(), &arrays);
        self.worker.post_message_with_transfer(&msg, &transfer).map_err(|e| format!("could not reach the engine: {e:?}"))
    }

    /// Parses the files into a model and starts it in the worker.
    pub async fn load(
        &self,
        files: &[(String, Vec<u8>)],
        quantize: Option<String>,
        backend: glassbox_core::BackendChoice,
        shipped: Option<String>,
    ) -> Result<ModelSummary, String> {
        let id = self.next_id();
        let names = files.iter().map(|(n, _)| n.clone()).collect();
        match self.request(id, &Request::Load { id, names, quantize, backend, shipped }, files).await {
            Ok(Reply::Loaded { result, .. }) => result,
            Ok(other) => Err(format!("the engine answered {other:?}")),
            Err(EngineDied(why)) => Err(format!("The engine stopped while loading the model: {why}.")),
        }
    }

    /// Runs the experiment's prompt (request `id`, from [`EngineClient::next_id`]).
    pub async fn run(&self, id: u64, experiment: &Experiment) -> Result<RunReply, RunFailure> {
        match self.request(id, &Request::Run { id, experiment: experiment.clone() }, &[]).await {
            Ok(Reply::Ran { result, .. }) => result,
            Ok(other) => Err(RunFailure::Engine(format!("the engine answered {other:?}"))),
            Err(EngineDied(why)) => Err(RunFailure::Engine(format!("The engine stopped: {why}."))),
        }
    }

    /// Runs the experiment's sweep, reporting `(done, total)` sequences as it goes.
    pub async fn sweep(
        &self,
        id: u64,
        experiment: &Experiment,
        corpus: Option<(String, String)>,
        progress: impl Fn(usize, usize) + 'static,
    ) -> Result<SweepResult, RunFailure> {
        self.shared.progress.borrow_mut().insert(id, Rc::new(progress));
        match self.request(id, &Request::Sweep { id, experiment: experiment.clone(), corpus }, &[]).await {
            Ok(Reply::Swept { result, .. }) => result,
            Ok(other) => Err(RunFailure::Engine(format!("the engine answered {other:?}"))),
            Err(EngineDied(why)) => Err(RunFailure::Engine(format!("The engine stopped: {why}."))),
        }
    }

    /// Computes what one inspect view shows (request `id`, from [`EngineClient::next_id`]).
    pub async fn inspect(&self, id: u64, experiment: &Experiment, query: Query) -> Result<Inspection, RunFailure> {
        match self.request(id, &Request::Inspect { id, experiment: experiment.clone(), query }, &[]).await {
            Ok(Reply::Inspected { result, .. }) => result,
            Ok(other) => Err(RunFailure::Engine(format!("the engine answered {other:?}"))),
            Err(EngineDied(why)) => Err(RunFailure::Engine(format!("The engine stopped: {why}."))),
        }
    }

    /// The experiment's cached activations as numpy files (every hook as an `.npz`, or one).
    pub async fn export(&self, id: u64, experiment: &Experiment, hook: Option<String>) -> Result<ExportFile, RunFailure> {
        match self.request(id, &Request::Export { id, experiment: experiment.clone(), hook }, &[]).await {
            Ok(Reply::Exported { result, .. }) => result,
            Ok(other) => Err(RunFailure::Engine(format!("the engine answered {other:?}"))),
            Err(EngineDied(why)) => Err(RunFailure::Engine(format!("The engine stopped: {why}."))),
        }
    }

    /// Asks the worker to drop request `id` (a run not started yet, or a sweep between
    /// batches); its reply then says `Cancelled`.
    pub fn cancel(&self, id: u64) {
        let _ = self.post(&Request::Cancel { id }, &[]);
    }

    /// Destroys the worker's WebGPU device, as a lost GPU would (end-to-end tests).
    pub fn lose_gpu(&self) {
        let _ = self.post(&Request::LoseGpu, &[]);
    }

    /// Makes the engine panic (end-to-end test of the restart).
    pub fn crash(&self) {
        let _ = self.post(&Request::Crash, &[]);
    }
}
