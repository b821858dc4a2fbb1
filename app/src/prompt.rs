//! Turning the text in the prompt box into the tokens of one run, with the messages a user
//! needs when that text is empty, too long for the model's context, or has characters the
//! model does not know. Pure logic: no DOM, no backend.

use glassbox_core::{Error, Tokenizer};

/// Tokens cut off the end of a prompt longer than the model's context.
#[derive(Clone, Debug, PartialEq)]
pub struct Cut {
    /// Tokens the whole prompt has (the BOS token included).
    pub total_tokens: usize,
    /// Tokens cut off the end.
    pub cut_tokens: usize,
    /// The prompt text that was cut (from the first cut character to the end).
    pub cut_text: String,
}

/// A prompt ready to run: its token ids (at most `n_ctx`) and what was cut, if anything.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub ids: Vec<u32>,
    pub cut: Option<Cut>,
}

/// Why a prompt cannot run at all.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptError {
    /// Nothing but whitespace.
    Empty,
    /// Characters the vocabulary lacks; the tokenizer's message names them.
    Vocabulary(String),
    /// Known tokens in an order the model does not take; the message says what it takes.
    Form(String),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptError::Empty => write!(f, "The prompt is empty: type some characters and press Run."),
            PromptError::Vocabulary(msg) => write!(f, "The prompt has characters this model does not know: {msg}."),
            PromptError::Form(msg) => write!(f, "The prompt does not fit: {msg}."),
        }
    }
}

/// Tokenizes `text` and keeps at most `n_ctx` tokens (the BOS token counts).
pub fn prepare(text: &str, tokenizer: &Tokenizer, n_ctx: usize) -> Result<Prepared, PromptError> {
    if text.chars().all(char::is_whitespace) {
        return Err(PromptError::Empty);
    }
    let spans = tokenizer.encode_with_spans(text).map_err(|e| match e {
        Error::Tokenizer(msg) => PromptError::Vocabulary(msg),
        other => PromptError::Vocabulary(other.to_string()),
    })?;
    let mut ids: Vec<u32> = spans.iter().map(|(id, _)| *id).collect();
    let cut = (ids.len() > n_ctx).then(|| {
        let cut_at = spans[n_ctx].1.start;
        Cut { total_tokens: ids.len(), cut_tokens: ids.len() - n_ctx, cut_text: text[cut_at..].trim().to_string() }
    });
    ids.truncate(n_ctx);
    // Models with a readout at a fixed position see every prompt padded to that length.
    tokenizer.pad(&mut ids);
    Ok(Prepared { ids, cut })
}

impl Cut {
    /// The notice shown above the results: how much was cut, and the start of the cut text
    /// (at most [`CUT_SHOWN`] characters, so that a long prompt does not flood the page).
    pub fn message(&self, n_ctx: usize) -> String {
        let chars = self.cut_text.chars().count();
        let shown: String = self.cut_text.chars().take(CUT_SHOWN).collect();
        let text = if chars > CUT_SHOWN { format!("\u{201c}{shown}\u{2026}\u{201d} ({chars} characters)") } else { format!("\u{201c}{shown}\u{201d}") };
        format!(
            "The prompt is {} tokens long (with <bos>) but the model's context is {n_ctx}: the last {} {} cut and not run: {text}",
            self.total_tokens,
            self.cut_tokens,
            if self.cut_tokens == 1 { "token was" } else { "tokens were" },
        )
    }
}

/// Characters of a cut prompt's tail that its notice quotes.
pub const CUT_SHOWN: usize = 60;

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        let mut tokens = vec!["<bos>".to_string()];
        tokens.extend(('a'..='z').map(String::from));
        Tokenizer::Vocab(glassbox_core::VocabTokenizer::chars(tokens, Some(0)))
    }

    #[test]
    fn a_long_cut_is_quoted_only_in_part() {
        let cut = Cut { total_tokens: 5064, cut_tokens: 5000, cut_text: "x".repeat(5000) };
        let m = cut.message(64);
        assert!(m.contains("the last 5000 tokens were cut"), "{m}");
        assert!(m.contains("(5000 characters)"), "{m}");
        assert!(m.chars().count() < 250, "{m}");
        let short = Cut { total_tokens: 71, cut_tokens: 7, cut_text: "defghij".into() }.message(64);
        assert!(short.ends_with("\u{201c}defghij\u{201d}"), "{short}");
    }

    #[test]
    fn empty_and_whitespace_prompts_are_empty() {
        assert_eq!(prepare("", &tok(), 8), Err(PromptError::Empty));
        assert_eq!(prepare(" \n\t", &tok(), 8), Err(PromptError::Empty));
    }

    #[test]
    fn unknown_characters_are_named() {
        let Err(PromptError::Vocabulary(msg)) = prepare("ab!c", &tok(), 8) else { panic!("expected an error") };
        assert!(msg.contains("\"!\""), "{msg}");
    }

    #[test]
    fn long_prompts_are_cut_to_the_context_with_bos_counted() {
        let p = prepare("ab cd efgh ij", &tok(), 6).unwrap();
        assert_eq!(p.ids, vec![0, 1, 2, 3, 4, 5]);
        let cut = p.cut.unwrap();
        assert_eq!((cut.total_tokens, cut.cut_tokens), (11, 5));
        assert_eq!(cut.cut_text, "fgh ij");
    }

    #[test]
    fn prompts_that_fit_are_not_cut() {
        assert_eq!(prepare("abc", &tok(), 4).unwrap(), Prepared { ids: vec![0, 1, 2, 3], cut: None });
    }
}
