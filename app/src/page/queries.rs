//! The inspect views' data. Each view names the [`Query`] it needs, derived from the
//! experiment (its selection) and the current run; the page asks the engine's worker once per
//! (run, query) and keeps a few answers, so that going back to a view is instant. The worker
//! answers from the run it keeps (every hook the views read is cached there).

use std::sync::Arc;

use glassbox_core::View;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{Inspected, Page, RunKey};
use crate::inspect::{Inspection, Query};

/// Answers kept (the views of the current run, and a few before them).
const KEPT: usize = 16;

/// The answer to `query` for the current run: `None` while there is no run or it computes.
pub fn use_query(page: Page, query: impl Fn() -> Option<Query> + Send + Sync + 'static) -> Signal<Option<Result<Arc<Inspection>, String>>> {
    let query = Memo::new(move |_| query());
    Effect::new(move |_| {
        let Some(q) = query.get() else { return };
        let Some(key) = key_now(page, &q) else { return };
        if page.inspections.with_untracked(|v| v.iter().any(|i| i.key == key && i.query == q)) {
            return;
        }
        page.inspections.update(|v| {
            v.push(Inspected { key: key.clone(), query: q.clone(), result: None });
            if v.len() > KEPT {
                v.remove(0);
            }
        });
        spawn_local(ask(page, key, q));
    });
    Signal::derive(move || {
        let q = query.get()?;
        let key = key_now(page, &q)?;
        page.inspections.with(|v| v.iter().rev().find(|i| i.key == key && i.query == q).and_then(|i| i.result.clone()))
    })
}

/// The key the answer to `query` is kept under now: the current run's (`None` while it
/// computes), or for a query that does not read the run (see [`Query::reads_the_run`]) the
/// model's alone, so that one answer serves every run and stays on screen while one computes.
fn key_now(page: Page, query: &Query) -> Option<RunKey> {
    if query.reads_the_run() {
        Some(page.current_run()?.key.clone())
    } else {
        page.shown_run()?;
        Some(RunKey::of_model(page.model_gen.get()))
    }
}

async fn ask(page: Page, key: RunKey, query: Query) {
    let Some(engine) = page.engine.get_value() else { return };
    let exp = page.experiment.get_untracked();
    let id = engine.next_id();
    let result = engine.inspect(id, &exp, query.clone()).await.map(Arc::new).map_err(|e| e.to_string());
    page.inspections.update(|v| {
        if let Some(i) = v.iter_mut().find(|i| i.key == key && i.query == query) {
            i.result = Some(result);
        }
    });
}

/// The answer as the view's own type.
pub fn narrow<T: Clone + Send + Sync + 'static>(
    answer: Signal<Option<Result<Arc<Inspection>, String>>>,
    pick: impl Fn(&Inspection) -> Option<T> + Send + Sync + 'static,
) -> Signal<Option<Result<Arc<T>, String>>> {
    Signal::derive(move || narrow_answer(answer.get(), &pick))
}

/// One answer as the view's own type (an error when the engine answered another view's data).
pub fn narrow_answer<T>(answer: Option<Result<Arc<Inspection>, String>>, pick: impl Fn(&Inspection) -> Option<T>) -> Option<Result<Arc<T>, String>> {
    answer.map(|r| r.and_then(|i| pick(&i).map(Arc::new).ok_or_else(|| "the engine answered another view's data".to_string())))
}

/// The view on screen.
pub fn tab(page: Page) -> View {
    page.experiment.with(|e| e.view.tab.unwrap_or_default())
}

/// The text of an optional selection field, for an input box.
pub fn text(page: Page, f: impl Fn(&glassbox_core::Selection) -> Option<String> + Send + Sync + 'static) -> Signal<String> {
    Signal::derive(move || page.experiment.with(|e| f(&e.view)).unwrap_or_default())
}

/// An input box's text as a selection field (empty: the default).
pub fn optional(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}
