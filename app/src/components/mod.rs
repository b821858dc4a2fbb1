//! The page's components. Each takes its data as signals and reports choices through
//! callbacks or the signals it is given; none knows about backends or the URL.

mod backend_badge;
mod fourier_panel;
mod head_picker;
mod heatmap;
mod load_panel;
mod model_panel;
mod notices;
mod prediction;
mod prompt_box;
mod scan_panel;
mod token_chips;

pub use backend_badge::BackendBadge;
pub use fourier_panel::{FourierPanel, NeuronGrid};
pub use head_picker::HeadPicker;
pub use heatmap::AttentionHeatmap;
pub use load_panel::{HubLoad, LoadPanel, ModelSource};
pub use model_panel::{LoadState, ModelPanel};
pub use notices::{Notice, NoticeKind, Notices};
pub use prediction::Prediction;
pub use prompt_box::PromptBox;
pub use scan_panel::{CorpusScan, ScanPanel};
pub use token_chips::TokenChips;

/// How a token is written in labels: `<bos>` is shortened so it fits a heatmap row.
pub fn token_label(t: &str) -> String {
    if t == "<bos>" {
        "BOS".to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    /// Components receive what they show; they never reach up into the page's modules (its
    /// state, its runs) or the engine's worker.
    #[test]
    fn no_component_imports_the_page_or_the_engine_worker() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/components");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // The code, not its tests (this test names what it bans).
            let text = text.split("#[cfg(test)]").next().unwrap();
            for banned in ["crate::page", "crate::engine::client", "crate::engine::worker", "crate::engine::local", "crate::url_state"] {
                assert!(!text.contains(banned), "{} imports {banned}", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} component files found");
    }
}
