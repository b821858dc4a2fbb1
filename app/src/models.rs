//! The models this site ships, and where their files live relative to the page.
//!
//! Paths are relative so that the built site works under any sub-path of a static host.
//! To add a model, put its four files (`config.json`, `model.safetensors`, `vocab.json`,
//! `card.json`) under `public/models/<id>/` and add an entry here.

/// One shipped model.
#[derive(Clone, Copy, Debug)]
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
    /// Checks that tokenized prompt has the form the model was trained on (beyond its
    /// vocabulary); the message says what the form is.
    pub check_form: fn(&[u32]) -> Result<(), String>,
}

/// Two entries are the same model when their ids are.
impl PartialEq for ModelEntry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for ModelEntry {}

/// Any sequence of known tokens is a prompt.
fn any_form(_: &[u32]) -> Result<(), String> {
    Ok(())
}

/// Modular addition reads exactly `a b =` (token ids: the numbers 0..113 are ids 0..113, `=`
/// is 113).
pub fn modular_form(ids: &[u32]) -> Result<(), String> {
    match ids {
        [a, b, 113] if *a < 113 && *b < 113 => Ok(()),
        _ => Err("this model answers prompts of the form \u{201c}a + b =\u{201d}: two numbers from 0 to 112, then \u{201c}=\u{201d}".into()),
    }
}

/// The model whose Fourier view the page offers.
pub const MODULAR: &str = "modular-addition";

/// Every model the site offers; the first is the default.
pub const MODELS: &[ModelEntry] = &[
    ModelEntry {
        id: "induction-2l",
        path: "models/induction-2l/",
        title: "induction-2l: 2-layer attention-only, forms induction heads",
        default_prompt: "xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ",
        examples: &["xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ", "abcdefgh 12345 abcdefgh"],
        check_form: any_form,
    },
    ModelEntry {
        id: "modular-addition",
        path: "models/modular-addition/",
        title: "modular-addition: a + b mod 113, 1 layer, grokked Fourier features",
        default_prompt: "37 + 85 =",
        examples: &["37 + 85 =", "112 + 1 =", "56 + 57 ="],
        check_form: modular_form,
    },
    ModelEntry {
        id: "balanced-parens",
        path: "models/balanced-parens/",
        title: "balanced-parens: is a string of ( and ) balanced? 3 layers",
        default_prompt: "(()(()))",
        examples: &["(()(()))", "())(()", "((((", "()()()()"],
        check_form: any_form,
    },
    ModelEntry {
        id: "english-char-3l",
        path: "models/english-char-3l/",
        title: "english-char-3l: 3-layer character-level English LM (Moby-Dick)",
        default_prompt: "Call me Ishmael. The whale swam in the se",
        examples: &["Call me Ishmael. The whale swam in the se", "the captain of the shi", "It was the best of times, it was the worst of ti"],
        check_form: any_form,
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
pub const BUNDLE_FILES: [&str; 4] = ["config.json", "vocab.json", "card.json", "model.safetensors"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modular_form_is_exactly_a_b_equals() {
        assert!(modular_form(&[37, 85, 113]).is_ok());
        for bad in [&[37, 85][..], &[37, 113], &[37, 85, 113, 113], &[113, 85, 113], &[37, 85, 2]] {
            assert!(modular_form(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_example_fits_its_model() {
        for m in MODELS {
            assert!(m.examples.contains(&m.default_prompt), "{}", m.id);
        }
    }
}
