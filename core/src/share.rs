//! Share links: an [`Experiment`] in a URL fragment, and back.
//!
//! ```text
//! #v1/<payload>[&widget=<kind>][&static=1]
//!     payload = base64url, no padding ( raw DEFLATE ( the experiment's compact JSON ) )
//! ```
//!
//! Two versions, kept apart:
//! - the **link format** (`v1/`, [`LINK_VERSION`]): how the experiment is packed (base64url of
//!   raw DEFLATE of JSON, and the `&` parameters). It changes only if the packing does (another
//!   compression, say); a page keeps reading every link format it ever wrote.
//! - the **experiment format** ([`Experiment::v`], [`EXPERIMENT_VERSION`]): the JSON's schema.
//!   A `v1/` link can carry any experiment version; a field added with `#[serde(default)]` needs
//!   neither version bumped. An experiment newer than this code is refused with its own error
//!   ([`ShareError::FutureExperiment`]); older ones go through [`Experiment::from_json`], where
//!   a migration would live.
//!
//! Parameters, after the payload, for embeds: `widget=<kind>` (one of [`Widget::ALL`]: show that
//! widget alone) and `static=1` (frozen: no controls, the experiment as shared). Parameters a
//! newer page added are ignored, so that its links still open here; an unknown widget kind is an
//! error. A leading `#`, or a whole URL (everything up to its `#` is dropped), is accepted, as
//! are spaces and line breaks inside the payload (a link wrapped by a mail program).
//!
//! Decoding is bounded and never panics: a fragment over [`MAX_FRAGMENT_BYTES`] is refused
//! before any decoding; inflating stops at [`MAX_JSON_BYTES`] (a DEFLATE bomb costs that much,
//! no more); the decoded JSON is then checked against the limits below before it becomes an
//! experiment. The codec keeps every string as text, byte for byte (`<script>` included):
//! escaping is the renderer's job.
//!
//! Encoding is not byte-stable across versions of the compressor: what is pinned, forever, is
//! that every link once written decodes (`fixtures/links/v1/`, `core/tests/share_links.rs`).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::experiment::{Experiment, EXPERIMENT_VERSION};

/// The link format this code writes (`v1/`); see the module docs.
pub const LINK_VERSION: u64 = 1;
/// A fragment longer than this (64 KiB) is refused before decoding.
pub const MAX_FRAGMENT_BYTES: usize = 64 * 1024;
/// The most the payload may inflate to (256 KiB of JSON).
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// The longest text: the prompt, the corrupted prompt, a dataset prompt, any string not named
/// below (characters).
pub const MAX_TEXT_CHARS: usize = 20_000;
/// The longest name: every string of the model reference (ids, repositories, files, URLs,
/// hashes) and of the view's selection (tokens), a hook name, an object key (characters).
pub const MAX_NAME_CHARS: usize = 2_048;
/// The most interventions an experiment may carry.
pub const MAX_INTERVENTIONS: usize = 64;
/// The most entries of any other list or object (a steering vector of `d_model` numbers,
/// positions, heads, neurons, dataset prompts, hashes).
pub const MAX_LIST_LEN: usize = 16_384;
/// The deepest nesting of the JSON (an experiment nests about 6 deep).
pub const MAX_DEPTH: usize = 32;
/// DEFLATE level of [`encode`] (miniz's best; experiments are small).
const LEVEL: u8 = 10;

/// base64url; writes no padding, reads it with or without.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What an embed shows alone (`&widget=<kind>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Widget {
    /// The next-token predictions at every position.
    Predictions,
    /// The attention patterns.
    Attention,
    /// The MLP neurons.
    Neurons,
    /// The logit lens.
    Lens,
    /// Direct logit attribution.
    Attribution,
    /// An activation patching sweep.
    Patching,
}

impl Widget {
    pub const ALL: [Widget; 6] = [Widget::Predictions, Widget::Attention, Widget::Neurons, Widget::Lens, Widget::Attribution, Widget::Patching];

    /// The name in links (`attention`).
    pub fn name(self) -> &'static str {
        match self {
            Widget::Predictions => "predictions",
            Widget::Attention => "attention",
            Widget::Neurons => "neurons",
            Widget::Lens => "lens",
            Widget::Attribution => "attribution",
            Widget::Patching => "patching",
        }
    }
}

impl fmt::Display for Widget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Widget {
    type Err = ShareError;
    fn from_str(s: &str) -> Result<Widget, ShareError> {
        Widget::ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| ShareError::UnknownWidget { kind: short(s) })
    }
}

/// A decoded fragment: the experiment, and how an embed shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fragment {
    pub experiment: Experiment,
    /// `&widget=<kind>`: show this widget alone.
    pub widget: Option<Widget>,
    /// `&static=1`: frozen, no controls.
    pub frozen: bool,
}

/// Why a link does not open. Every message says what is wrong in words a reader can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("the link is empty: there is no experiment after the #")]
    Empty,
    #[error("this is not a glassbox link: it should start with v{LINK_VERSION}/")]
    NoPrefix,
    #[error("{}", unknown_format(*version))]
    UnknownFormat { version: u64 },
    #[error("the link is too long to be a glassbox link ({len} bytes; at most {max})")]
    TooLarge { len: usize, max: usize },
    #[error("the link stops after v{LINK_VERSION}/: its experiment is missing (was the link cut off?)")]
    MissingPayload,
    #[error("the link is damaged or was cut off: {detail}")]
    BadBase64 { detail: String },
    #[error("the link was cut off: its compressed experiment ends early (copy the whole link)")]
    Truncated,
    #[error("the link is damaged: its data does not decompress ({detail})")]
    NotDeflate { detail: String },
    #[error("the link's experiment decompresses to more than {max} bytes: it is not one glassbox wrote")]
    InflateLimit { max: usize },
    #[error("the link does not hold an experiment: {detail}")]
    NotExperiment { detail: String },
    #[error(
        "this experiment is format version {v}, made by a newer glassbox; this page reads up to version {EXPERIMENT_VERSION} (reload the page to get the newest glassbox)"
    )]
    FutureExperiment { v: u64 },
    #[error("the link's {field} is too long: {len} {unit} (at most {max})")]
    TooLong { field: String, len: usize, max: usize, unit: &'static str },
    #[error("the link's {field} is nested too deeply (more than {max} levels)")]
    TooDeep { field: String, max: usize },
    #[error("the link's {field} is not a usable value: {why}")]
    BadValue { field: String, why: String },
    #[error("unknown widget {kind:?} in the link (one of {})", widget_names())]
    UnknownWidget { kind: String },
    #[error("the link's parameter {name}={value:?} is not valid: {expected}")]
    BadParameter { name: String, value: String, expected: &'static str },
}

impl ShareError {
    /// A stable short name of the variant (`bad_base64`), for tests, logs and styling.
    pub fn kind(&self) -> &'static str {
        match self {
            ShareError::Empty => "empty",
            ShareError::NoPrefix => "no_prefix",
            ShareError::UnknownFormat { .. } => "unknown_format",
            ShareError::TooLarge { .. } => "too_large",
            ShareError::MissingPayload => "missing_payload",
            ShareError::BadBase64 { .. } => "bad_base64",
            ShareError::Truncated => "truncated",
            ShareError::NotDeflate { .. } => "not_deflate",
            ShareError::InflateLimit { .. } => "inflate_limit",
            ShareError::NotExperiment { .. } => "not_experiment",
            ShareError::FutureExperiment { .. } => "future_experiment",
            ShareError::TooLong { .. } => "too_long",
            ShareError::TooDeep { .. } => "too_deep",
            ShareError::BadValue { .. } => "bad_value",
            ShareError::UnknownWidget { .. } => "unknown_widget",
            ShareError::BadParameter { .. } => "bad_parameter",
        }
    }
}

fn unknown_format(version: u64) -> String {
    if version > LINK_VERSION {
        format!(
            "this link was made by a newer glassbox (v{version}); this page reads v{LINK_VERSION} links: reload the page to get the newest glassbox, or open the link on the site that made it"
        )
    } else {
        format!("this link's format v{version} does not exist (glassbox links start with v{LINK_VERSION}/)")
    }
}

fn widget_names() -> String {
    Widget::ALL.map(Widget::name).join(", ")
}

/// At most 40 characters of `s`, for messages (a hostile value can be 64 KiB long).
fn short(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The link of `e` without parameters: `v1/<payload>` (the page adds the `#`). Its limits are
/// not checked: [`check`] says whether the link will open.
pub fn encode(e: &Experiment) -> String {
    let deflated = miniz_oxide::deflate::compress_to_vec(e.to_json().as_bytes(), LEVEL);
    format!("v{LINK_VERSION}/{}", BASE64.encode(deflated))
}

/// The fragment of `e` as an embed shows it: `v1/<payload>[&widget=<kind>][&static=1]`.
pub fn fragment(e: &Experiment, widget: Option<Widget>, frozen: bool) -> String {
    let mut s = encode(e);
    if let Some(w) = widget {
        s.push_str("&widget=");
        s.push_str(w.name());
    }
    if frozen {
        s.push_str("&static=1");
    }
    s
}

/// Whether the link of `e` opens: its size and every limit, as [`parse_fragment`] checks them.
pub fn check(e: &Experiment) -> Result<(), ShareError> {
    parse_fragment(&encode(e)).map(|_| ())
}

/// The experiment of a fragment (its parameters ignored).
pub fn decode(s: &str) -> Result<Experiment, ShareError> {
    parse_fragment(s).map(|f| f.experiment)
}

/// Reads a fragment (`v1/<payload>&...`, with or without the `#`, or a whole URL); see the
/// module docs. Never panics.
pub fn parse_fragment(s: &str) -> Result<Fragment, ShareError> {
    if s.len() > MAX_FRAGMENT_BYTES {
        return Err(ShareError::TooLarge { len: s.len(), max: MAX_FRAGMENT_BYTES });
    }
    let s = s.split_once('#').map_or(s, |(_, f)| f).trim();
    if s.is_empty() {
        return Err(ShareError::Empty);
    }
    let (head, params) = s.split_once('&').unwrap_or((s, ""));
    let rest = head.strip_prefix('v').ok_or(ShareError::NoPrefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(ShareError::NoPrefix);
    }
    let version = rest[..digits].parse::<u64>().unwrap_or(u64::MAX);
    let payload = match &rest[digits..] {
        "" => "",
        r => r.strip_prefix('/').ok_or(ShareError::NoPrefix)?,
    };
    if version != LINK_VERSION {
        return Err(ShareError::UnknownFormat { version });
    }
    let (widget, frozen) = parse_params(params)?;
    let payload: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if payload.is_empty() {
        return Err(ShareError::MissingPayload);
    }
    let deflated = BASE64.decode(payload.as_bytes()).map_err(|e| ShareError::BadBase64 { detail: base64_detail(&e, &payload) })?;
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_JSON_BYTES).map_err(|e| {
        use miniz_oxide::inflate::TINFLStatus;
        match e.status {
            TINFLStatus::HasMoreOutput => ShareError::InflateLimit { max: MAX_JSON_BYTES },
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => ShareError::Truncated,
            status => ShareError::NotDeflate { detail: format!("{status:?}") },
        }
    })?;
    let text = String::from_utf8(json).map_err(|e| ShareError::NotExperiment { detail: format!("it is not UTF-8 text ({e})") })?;
    Ok(Fragment { experiment: experiment_of(&text)?, widget, frozen })
}

/// `&widget=<kind>` and `&static=1`; other parameters (a newer page's) are ignored.
fn parse_params(params: &str) -> Result<(Option<Widget>, bool), ShareError> {
    let (mut widget, mut frozen) = (None, false);
    for p in params.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k {
            "widget" => widget = Some(v.parse()?),
            "static" => {
                frozen = match v {
                    "" | "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(ShareError::BadParameter { name: "static".into(), value: short(v), expected: "static=1 or static=0" }),
                }
            }
            _ => {}
        }
    }
    Ok((widget, frozen))
}

fn base64_detail(e: &base64::DecodeError, payload: &str) -> String {
    match e {
        base64::DecodeError::InvalidByte(at, b) => {
            // The first invalid byte starts a character (a UTF-8 lead byte is never valid).
            let c = payload.get(*at..).and_then(|s| s.chars().next()).unwrap_or(char::from(*b));
            format!("character {c:?} at {at} cannot be part of a link (a link is v{LINK_VERSION}/ then letters, digits, - and _)")
        }
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidLastSymbol(..) => {
            "it ends in the middle of a character (copy the whole link)".into()
        }
        base64::DecodeError::InvalidPadding => "its = padding is misplaced".into(),
    }
}

/// The experiment of the decoded JSON: its version, then the limits, then the schema.
fn experiment_of(text: &str) -> Result<Experiment, ShareError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ShareError::NotExperiment { detail: e.to_string() })?;
    if let Some(v) = value.get("v").and_then(Value::as_u64) {
        if v > u64::from(EXPERIMENT_VERSION) {
            return Err(ShareError::FutureExperiment { v });
        }
    }
    let mut path = Vec::new();
    check_value(&value, &mut path)?;
    Experiment::from_json(text).map_err(|e| {
        let msg = match e {
            crate::Error::Request(m) => m,
            other => other.to_string(),
        };
        ShareError::NotExperiment { detail: msg.strip_prefix("not an experiment: ").map(str::to_string).unwrap_or(msg) }
    })
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_name(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(&short(k));
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "experiment".into()
    } else {
        s
    }
}

/// The limits, on the JSON tree (so that they hold for every field, those added later too).
fn check_value<'a>(v: &'a Value, path: &mut Vec<Step<'a>>) -> Result<(), ShareError> {
    if path.len() > MAX_DEPTH {
        return Err(ShareError::TooDeep { field: path_name(&path[..MAX_DEPTH]), max: MAX_DEPTH });
    }
    let too_long = |path: &[Step], len, max, unit| Err(ShareError::TooLong { field: path_name(path), len, max, unit });
    match v {
        Value::String(s) => {
            let top = match path.first() {
                Some(Step::Key(k)) => *k,
                _ => "",
            };
            let named = top == "model" || top == "view" || matches!(path.last(), Some(Step::Key("hook")));
            let max = if named { MAX_NAME_CHARS } else { MAX_TEXT_CHARS };
            if s.len() > max {
                let len = s.chars().count();
                if len > max {
                    return too_long(path, len, max, "characters");
                }
            }
        }
        Value::Number(n) => {
            // Numbers beyond f32 become infinities in an f32 field, which JSON cannot write back.
            if n.as_f64().is_some_and(|x| x.abs() > f64::from(f32::MAX)) {
                return Err(ShareError::BadValue { field: path_name(path), why: format!("{n} is out of range") });
            }
        }
        Value::Array(a) => {
            let max = if path.len() == 1 && matches!(path[0], Step::Key("interventions")) { MAX_INTERVENTIONS } else { MAX_LIST_LEN };
            if a.len() > max {
                return too_long(path, a.len(), max, "entries");
            }
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                check_value(x, path)?;
                path.pop();
            }
        }
        Value::Object(m) => {
            if m.len() > MAX_LIST_LEN {
                return too_long(path, m.len(), MAX_LIST_LEN, "entries");
            }
            for (k, x) in m {
                path.push(Step::Key(k));
                if k.len() > MAX_NAME_CHARS && k.chars().count() > MAX_NAME_CHARS {
                    return Err(ShareError::TooLong { field: format!("key {:?}", short(k)), len: k.chars().count(), max: MAX_NAME_CHARS, unit: "characters" });
                }
                check_value(x, path)?;
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}
