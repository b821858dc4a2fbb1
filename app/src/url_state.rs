//! The experiment in the page URL. **Share links** carry it in the fragment
//! (`#v1/...`, `glassbox_core::share`): the static host never sees it, and every model (shipped,
//! from the hub, by URL) can be shared. Each committed change (a run, a selection) is a new
//! history entry, so Back and Forward step through them.
//!
//! **Old links** (`?model=..&prompt=..&pos=..&layer=..&head=..[&backend=cpu]` and for the inspect
//! views `[&view=...][&neuron=..][&target=..][&distractor=..][&opts=cached,mid,unfold,centre,prompt]`)
//! still open: read once, then rewritten to the fragment. Parsing checks each parameter on its
//! own, and a broken one falls back to its default with a notice that names it, so a
//! half-broken link still opens. Checks that need the model (layer, head) or the tokens (pos)
//! happen once those are known. A broken share link opens the default view with a notice that
//! says what was wrong.

use glassbox_core::share;
use glassbox_core::{BackendChoice, Experiment, ModelRef, ModelSource, Selection, View};

use crate::models::{default_model, find_model, ModelEntry};

/// The URL's parameters, each already checked for syntax.
#[derive(Clone, Debug, PartialEq)]
pub struct UrlParams {
    pub model: &'static ModelEntry,
    /// The prompt text as typed; `None` means the model's example prompt.
    pub prompt: Option<String>,
    pub pos: Option<usize>,
    pub layer: Option<usize>,
    pub head: Option<usize>,
    /// `backend=cpu` (skip WebGPU) or `backend=webgpu` (WebGPU even on a software adapter).
    pub backend: BackendChoice,
    /// The inspect views' choices (tab, neuron, target, distractor, options); pos, layer and
    /// head are the fields above.
    pub inspect: Selection,
}

/// The `opts=` flags, in the order written.
const FLAGS: [&str; 5] = ["cached", "mid", "unfold", "centre", "prompt"];

fn flag_mut<'a>(s: &'a mut Selection, flag: &str) -> Option<&'a mut bool> {
    match flag {
        "cached" => Some(&mut s.lens_cached_scale),
        "mid" => Some(&mut s.lens_mid),
        "unfold" => Some(&mut s.unfold_ln),
        "centre" => Some(&mut s.center_unembed),
        "prompt" => Some(&mut s.heads_on_prompt),
        _ => None,
    }
}

#[cfg(test)]
fn view_name(v: View) -> &'static str {
    match v {
        View::Attention => "attention",
        View::Neurons => "neurons",
        View::Lens => "lens",
        View::Attribution => "attribution",
        View::Patching => "patching",
        View::Ablation => "ablation",
        View::Scrubbing => "scrubbing",
        View::Steering => "steering",
    }
}

impl UrlParams {
    /// The experiment these parameters describe (the model's example prompt when the URL
    /// names none). Ranges are checked later, against the model and the tokens.
    pub fn experiment(&self) -> Experiment {
        let mut e = Experiment::new(ModelRef::shipped(self.model.id), self.prompt.clone().unwrap_or_else(|| self.model.default_prompt.to_string()));
        e.view = Selection { pos: self.pos, layer: self.layer, head: self.head, ..self.inspect.clone() };
        e.backend = self.backend;
        e
    }
}

/// The old query view of an experiment on a shipped model (the format old links were written
/// in; kept to test that they still read back); `None` for other models.
#[cfg(test)]
pub fn view_of(e: &Experiment) -> Option<UrlView<'_>> {
    Some(UrlView {
        model: e.model.shipped_id()?,
        prompt: &e.prompt,
        pos: e.view.pos.unwrap_or(0),
        layer: e.view.layer.unwrap_or(0),
        head: e.view.head.unwrap_or(0),
        force_cpu: e.backend == BackendChoice::Cpu,
        inspect: &e.view,
    })
}

/// Reads the parameters through `get` (the query string's lookup) and returns them with a
/// notice for each one that was broken.
pub fn parse(get: impl Fn(&str) -> Option<String>) -> (UrlParams, Vec<String>) {
    let mut notices = Vec::new();
    let model = match get("model") {
        None => default_model(),
        Some(id) => find_model(&id).unwrap_or_else(|| {
            notices.push(format!("URL parameter model={id}: there is no model of that name; showing {} instead.", default_model().id));
            default_model()
        }),
    };
    let mut number = |key: &str, default: &str| {
        let raw = get(key)?;
        let t = raw.trim();
        match t.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                // Say what is wrong with it: a negative number, one too large, or no number.
                let why = if t.starts_with('-') && t[1..].parse::<u128>().is_ok() {
                    "is negative (positions, layers and heads count from 0)"
                } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    "is far too large"
                } else {
                    "is not a number"
                };
                notices.push(format!("URL parameter {key}={raw} {why}; showing {default} instead."));
                None
            }
        }
    };
    let pos = number("pos", "the last position");
    let layer = number("layer", "the last layer");
    let head = number("head", "the default head");
    let neuron = number("neuron", "neuron 0");
    let backend = match get("backend").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") => BackendChoice::Auto,
        Some("gpu" | "webgpu") => BackendChoice::WebGpu,
        Some("cpu") => BackendChoice::Cpu,
        Some(other) => {
            notices.push(format!("URL parameter backend={other} is neither cpu nor webgpu; choosing the backend automatically."));
            BackendChoice::Auto
        }
    };
    let mut inspect = Selection { neuron, target: get("target"), distractor: get("distractor"), ..Selection::default() };
    inspect.tab = match get("view").as_deref() {
        None => None,
        Some("attention") => Some(View::Attention),
        Some("neurons") => Some(View::Neurons),
        Some("lens") => Some(View::Lens),
        Some("attribution") => Some(View::Attribution),
        Some("patching") => Some(View::Patching),
        Some("ablation") => Some(View::Ablation),
        Some("scrubbing") => Some(View::Scrubbing),
        Some("steering") => Some(View::Steering),
        Some(other) => {
            notices.push(format!(
                "URL parameter view={other} is not attention, neurons, lens, attribution, patching, ablation, scrubbing or steering; showing the attention view."
            ));
            None
        }
    };
    for flag in get("opts").unwrap_or_default().split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match flag_mut(&mut inspect, flag) {
            Some(b) => *b = true,
            None => notices.push(format!("URL parameter opts: {flag} is not one of {}; ignored.", FLAGS.join(", "))),
        }
    }
    (UrlParams { model, prompt: get("prompt"), pos, layer, head, backend, inspect }, notices)
}

/// Checks a layer or head index against the model: the index when it is in range, else
/// `None` (use the default) and, when the URL had an index, a notice naming it.
pub fn check_index(key: &str, value: Option<usize>, count: usize) -> (Option<usize>, Option<String>) {
    match value {
        Some(v) if v < count => (Some(v), None),
        Some(v) => {
            (None, Some(format!("URL parameter {key}={v} is out of range (the model has {count}, numbered from 0); showing the default {key} instead.")))
        }
        None => (None, None),
    }
}

/// Checks the chosen position against the number of tokens run; defaults to the last one.
pub fn check_pos(value: Option<usize>, n_tokens: usize) -> (usize, Option<String>) {
    let last = n_tokens.saturating_sub(1);
    match value {
        Some(p) if p < n_tokens => (p, None),
        Some(p) => {
            (last, Some(format!("URL parameter pos={p} is past the end of the prompt ({n_tokens} tokens); showing the last position ({last}) instead.")))
        }
        None => (last, None),
    }
}

/// The view that an old query link encodes.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub struct UrlView<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    pub pos: usize,
    pub layer: usize,
    pub head: usize,
    pub force_cpu: bool,
    pub inspect: &'a Selection,
}

#[cfg(test)]
impl UrlView<'_> {
    /// The query parameters, in a stable order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("model", self.model.to_string()),
            ("prompt", self.prompt.to_string()),
            ("pos", self.pos.to_string()),
            ("layer", self.layer.to_string()),
            ("head", self.head.to_string()),
        ];
        if self.force_cpu {
            p.push(("backend", "cpu".into()));
        }
        let s = self.inspect;
        if let Some(v) = s.tab.filter(|v| *v != View::Attention) {
            p.push(("view", view_name(v).into()));
        }
        if let Some(n) = s.neuron {
            p.push(("neuron", n.to_string()));
        }
        for (key, value) in [("target", &s.target), ("distractor", &s.distractor)] {
            if let Some(v) = value {
                p.push((key, v.clone()));
            }
        }
        let mut copy = s.clone();
        let flags: Vec<&str> = FLAGS.into_iter().filter(|f| flag_mut(&mut copy, f).is_some_and(|b| *b)).collect();
        if !flags.is_empty() {
            p.push(("opts", flags.join(",")));
        }
        p
    }
}

/// What a page opens: the experiment, the shipped model to start, notices, and an experiment
/// on an outside model that waits for the reader to press Load.
#[derive(Clone, Debug, PartialEq)]
pub struct Opening {
    pub experiment: Experiment,
    pub entry: &'static ModelEntry,
    pub notices: Vec<String>,
    pub outside: Option<Experiment>,
    /// An embed (`&widget=<kind>` in the fragment): the one widget to show, and whether it is
    /// frozen (`&static=1`).
    pub widget: Option<(share::Widget, bool)>,
}

/// Reads the page's link: a share fragment (`v1/...`) when there is one, else the old query
/// parameters through `get`.
pub fn opening(fragment: Option<&str>, get: impl Fn(&str) -> Option<String>) -> Opening {
    let mut notices = Vec::new();
    if let Some(f) = fragment.map(str::trim).filter(|f| !f.is_empty()) {
        match share::parse_fragment(f) {
            Ok(frag) => {
                let widget = frag.widget.map(|w| (w, frag.frozen));
                let e = frag.experiment;
                match &e.model.source {
                    ModelSource::Shipped { id } => match find_model(id) {
                        Some(entry) => return Opening { experiment: e, entry, notices, outside: None, widget },
                        None => notices.push(format!(
                            "The link names the model \u{201c}{id}\u{201d}, which this site does not ship; showing {} instead.",
                            default_model().id
                        )),
                    },
                    _ => {
                        let entry = default_model();
                        let experiment = Experiment::new(ModelRef::shipped(entry.id), entry.default_prompt);
                        return Opening { experiment, entry, notices, outside: Some(e), widget };
                    }
                }
            }
            Err(e) => notices.push(format!("This link could not be opened: {e}. Showing the default view instead.")),
        }
        let entry = default_model();
        return Opening { experiment: Experiment::new(ModelRef::shipped(entry.id), entry.default_prompt), entry, notices, outside: None, widget: None };
    }
    let (params, more) = parse(get);
    notices.extend(more);
    Opening { experiment: params.experiment(), entry: params.model, notices, outside: None, widget: None }
}

/// An outside model in words, for the notice of a link that names one.
pub fn describe_model(m: &ModelRef) -> String {
    match &m.source {
        ModelSource::Shipped { id } => id.clone(),
        ModelSource::Hub { repo, file, revision, quantize } => {
            let mut s = format!("{repo}{}", file.as_ref().map(|f| format!("/{f}")).unwrap_or_else(|| " (safetensors)".into()));
            if revision != "main" {
                s.push_str(&format!(" at revision {revision}"));
            }
            if let Some(q) = quantize {
                s.push_str(&format!(", quantized to {q} on load"));
            }
            s
        }
        ModelSource::Url { url } => url.clone(),
        ModelSource::Local { name } => format!("the local file {name}"),
    }
}

/// The page URL's fragment without its `#`, when it has one.
pub fn read_fragment() -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let h = hash.trim_start_matches('#');
    (!h.is_empty()).then(|| h.to_string())
}

/// The page's share link for `e`: this page's address with the experiment in the fragment (the
/// hub base, `hub=`, stays in the query: it says where Load fetches from, not what is shown).
pub fn share_url(e: &Experiment) -> Option<String> {
    link_url(e, None, false)
}

/// [`share_url`] for one widget alone (an embed), optionally frozen.
pub fn link_url(e: &Experiment, widget: Option<share::Widget>, frozen: bool) -> Option<String> {
    let window = web_sys::window()?;
    let url = web_sys::Url::new(&window.location().href().ok()?).ok()?;
    let hub = url.search_params().get("hub");
    url.set_search("");
    if let Some(h) = hub {
        url.search_params().append("hub", &h);
    }
    url.set_hash(&share::fragment(e, widget, frozen));
    Some(url.href())
}

thread_local! {
    /// How many times Back or Forward moved through this page's history.
    static HISTORY_MOVES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Back or Forward happened: a URL write queued before it (see [`write_fragment_later`])
/// describes a state the reader has left and is dropped. Written out, it would push an entry
/// after the one the reader went back to and so cut off every entry Forward would reach.
pub fn history_moved() {
    HISTORY_MOVES.with(|m| m.set(m.get() + 1));
}

/// [`write_fragment`] in a task of its own after the next frame (encoding the link and
/// `pushState` are no part of any view's update), unless Back or Forward comes first. Writes
/// keep their order.
pub fn write_fragment_later(e: Experiment, push: bool) {
    let moves = HISTORY_MOVES.with(std::cell::Cell::get);
    crate::components::after_next_frame(move || {
        if HISTORY_MOVES.with(std::cell::Cell::get) == moves {
            write_fragment(&e, push);
        }
    });
}

/// Points the page's URL at `e`'s share link: a new history entry when `push` (a committed
/// change), else in place (the first write, which also rewrites an old `?model=` link). Nothing
/// happens when the URL already says the same.
pub fn write_fragment(e: &Experiment, push: bool) {
    let Some(window) = web_sys::window() else { return };
    let Some(href) = share_url(e) else { return };
    if window.location().href().ok().as_deref() == Some(href.as_str()) {
        return;
    }
    if let Ok(history) = window.history() {
        let _ = if push {
            history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
        } else {
            history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
        };
    }
}

/// Reads one query parameter of the page's URL.
pub fn read_param(key: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> (UrlParams, Vec<String>) {
        parse(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn backend_names_force_either_path() {
        for (v, want) in [
            ("cpu", BackendChoice::Cpu),
            ("webgpu", BackendChoice::WebGpu),
            ("WebGPU", BackendChoice::WebGpu),
            ("gpu", BackendChoice::WebGpu),
            ("auto", BackendChoice::Auto),
        ] {
            let (p, notices) = parse_pairs(&[("backend", v)]);
            assert_eq!((p.backend, notices.len()), (want, 0), "backend={v}");
            assert_eq!(p.experiment().backend, want);
        }
    }

    #[test]
    fn an_empty_query_gives_the_defaults_without_notices() {
        let (p, notices) = parse_pairs(&[]);
        assert_eq!(
            p,
            UrlParams { model: default_model(), prompt: None, pos: None, layer: None, head: None, backend: BackendChoice::Auto, inspect: Selection::default() }
        );
        assert!(notices.is_empty());
    }

    #[test]
    fn a_full_query_round_trips() {
        let inspect = Selection {
            tab: Some(View::Attribution),
            neuron: Some(7),
            target: Some(" Paris".into()),
            distractor: Some("#12".into()),
            lens_mid: true,
            center_unembed: true,
            ..Selection::default()
        };
        let view = UrlView { model: "induction-2l", prompt: "ab cd", pos: 3, layer: 1, head: 2, force_cpu: true, inspect: &inspect };
        let pairs: Vec<(&str, String)> = view.pairs();
        let (p, notices) = parse(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone()));
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(
            (p.model.id, p.prompt.as_deref(), p.pos, p.layer, p.head, p.backend),
            ("induction-2l", Some("ab cd"), Some(3), Some(1), Some(2), BackendChoice::Cpu)
        );
        assert_eq!(p.inspect, inspect);
    }

    #[test]
    fn the_query_reads_into_an_experiment_and_back() {
        let (p, _) = parse_pairs(&[("model", "induction-2l"), ("prompt", "ab ab"), ("pos", "2"), ("layer", "1"), ("backend", "cpu")]);
        let e = p.experiment();
        assert_eq!(e.model.shipped_id(), Some("induction-2l"));
        assert_eq!((e.prompt.as_str(), e.view.pos, e.view.layer, e.view.head), ("ab ab", Some(2), Some(1), None));
        assert_eq!(e.backend, BackendChoice::Cpu);
        let v = view_of(&e).unwrap();
        assert_eq!((v.model, v.prompt, v.pos, v.layer, v.force_cpu), ("induction-2l", "ab ab", 2, 1, true));
        // No prompt in the URL: the model's example.
        let (p, _) = parse_pairs(&[]);
        assert_eq!(p.experiment().prompt, default_model().default_prompt);
    }

    #[test]
    fn a_share_fragment_opens_its_experiment_and_wins_over_the_query() {
        let mut e = Experiment::new(ModelRef::shipped("balanced-parens"), "(())");
        e.view.layer = Some(2);
        let frag = share::fragment(&e, None, false);
        let o = opening(Some(&frag), |k| (k == "model").then(|| "induction-2l".to_string()));
        assert_eq!((o.entry.id, &o.experiment, o.outside, o.notices.len()), ("balanced-parens", &e, None, 0));
        // A hub model waits for Load: the default shipped model runs meanwhile.
        let hub = Experiment::new(
            ModelRef { source: ModelSource::Hub { repo: "a/b".into(), file: Some("m.gguf".into()), revision: "main".into(), quantize: None }, sha256: vec![] },
            "hi",
        );
        let o = opening(Some(&share::fragment(&hub, None, false)), |_| None);
        assert_eq!((o.entry.id, o.outside.as_ref()), (default_model().id, Some(&hub)));
        assert_eq!(describe_model(&hub.model), "a/b/m.gguf");
        // Broken, future and unknown-model links open the default view with a notice.
        for (bad, says) in [("v1/AAAA", "could not be opened"), ("v9/abc", "could not be opened"), ("nonsense", "could not be opened")] {
            let o = opening(Some(bad), |_| None);
            assert_eq!(o.entry.id, default_model().id);
            assert!(o.notices.iter().any(|n| n.contains(says)), "{bad}: {:?}", o.notices);
        }
        let gone = share::fragment(&Experiment::new(ModelRef::shipped("no-such-model"), "x"), None, false);
        assert!(opening(Some(&gone), |_| None).notices[0].contains("no-such-model"));
        // No fragment: the old query parameters.
        let o = opening(None, |k| (k == "model").then(|| "modular-addition".to_string()));
        assert_eq!(o.entry.id, "modular-addition");
    }

    #[test]
    fn broken_parameters_fall_back_and_are_named() {
        let (p, notices) =
            parse_pairs(&[("model", "nope"), ("pos", "abc"), ("layer", "-1"), ("head", "2"), ("backend", "tpu"), ("view", "graph"), ("opts", "mid,zoom")]);
        assert_eq!((p.model, p.pos, p.layer, p.head, p.backend), (default_model(), None, None, Some(2), BackendChoice::Auto));
        assert!(p.inspect.lens_mid && p.inspect.tab.is_none());
        assert_eq!(notices.len(), 6, "{notices:?}");
        for key in ["model=nope", "pos=abc", "layer=-1", "backend=tpu", "view=graph", "zoom"] {
            assert!(notices.iter().any(|n| n.contains(key)), "no notice names {key}: {notices:?}");
        }
        // Each kind of bad number in its own words.
        assert!(notices.iter().any(|n| n.contains("layer=-1 is negative")), "{notices:?}");
        assert!(notices.iter().any(|n| n.contains("pos=abc is not a number")), "{notices:?}");
        let (_, notices) = parse_pairs(&[("head", "99999999999999999999999")]);
        assert!(notices[0].contains("is far too large"), "{notices:?}");
    }

    #[test]
    fn ranges_are_checked_once_the_model_and_tokens_are_known() {
        assert_eq!(check_index("layer", Some(1), 2), (Some(1), None));
        assert_eq!(check_index("layer", None, 2), (None, None));
        let (layer, notice) = check_index("layer", Some(99), 2);
        assert_eq!(layer, None);
        assert!(notice.unwrap().contains("layer=99"));
        assert_eq!(check_pos(None, 10), (9, None));
        assert_eq!(check_pos(Some(4), 10), (4, None));
        let (pos, notice) = check_pos(Some(10), 10);
        assert_eq!(pos, 9);
        assert!(notice.unwrap().contains("pos=10"));
    }
}
