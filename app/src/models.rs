//! The models this site ships, and where their files live relative to the page.
//!
//! Paths are relative so that the built site works under any sub-path of a static host.
//! To add a model, put its four files (`config.json`, `model.safetensors`, `vocab.json`,
//! `card.json`) under `public/models/<id>/` and add an entry here.

/// One shipped model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    /// The id used in the URL (`?model=...`).
    pub id: &'static str,
    /// The folder holding the model's files, relative to the page, with a trailing slash.
    pub path: &'static str,
    /// One line for the model menu.
    pub title: &'static str,
    /// A prompt that shows what the model does, used when the URL names none.
    pub default_prompt: &'static str,
    /// More prompts worth trying, offered as buttons under the prompt box.
    pub examples: &'static [&'static str],
}

/// Every model the site offers; the first is the default.
pub const MODELS: &[ModelEntry] = &[
    ModelEntry {
        id: "induction-2l",
        path: "models/induction-2l/",
        title: "induction-2l: 2-layer attention-only, forms induction heads",
        default_prompt: "xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ",
        examples: &["xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ", "abcdefgh 12345 abcdefgh"],
    },
    ModelEntry {
        id: "modular-addition",
        path: "models/modular-addition/",
        title: "modular-addition: a + b mod 113, 1 layer, grokked Fourier features",
        default_prompt: "37 + 85 =",
        examples: &["37 + 85 =", "112 + 1 =", "56 + 57 ="],
    },
    ModelEntry {
        id: "balanced-parens",
        path: "models/balanced-parens/",
        title: "balanced-parens: is a string of ( and ) balanced? 3 layers",
        default_prompt: "(()(()))",
        examples: &["(()(()))", "())(()", "((((", "()()()()"],
    },
    ModelEntry {
        id: "english-char-3l",
        path: "models/english-char-3l/",
        title: "english-char-3l: 3-layer character-level English LM (Moby-Dick)",
        default_prompt: "Call me Ishmael. The whale swam in the se",
        examples: &["Call me Ishmael. The whale swam in the se", "the captain of the shi", "It was the best of times, it was the worst of ti"],
    },
];

/// The model shown when the URL names none (or names one we do not have).
pub fn default_model() -> &'static ModelEntry {
    &MODELS[0]
}

/// The model with this id, if the site ships it.
pub fn find_model(id: &str) -> Option<&'static ModelEntry> {
    MODELS.iter().find(|m| m.id == id)
}

/// The four files of a model bundle, in the order they are fetched (the weights last, since
/// they are the only one large enough for a progress bar to matter).
pub const BUNDLE_FILES: [&str; 4] = [
    "config.json",
    "vocab.json",
    "card.json",
    "model.safetensors",
];
