//! The page's components. Each takes its data as signals and reports choices through
//! callbacks or the signals it is given; none knows about backends or the URL.

mod ablation_panel;
mod attribution_chart;
mod backend_badge;
mod export_bar;
mod fourier_panel;
mod head_grid;
mod head_picker;
mod head_scores;
mod heatmap;
mod html;
mod intervention_list;
mod legend;
mod load_panel;
mod logit_lens;
mod model_panel;
mod neuron_heatmap;
mod neuron_page;
mod notices;
mod patch_heatmap;
mod patch_panel;
mod prediction;
mod prompt_box;
mod scan_controls;
mod scrub_panel;
mod steer_panel;
mod theme_toggle;
mod token_chips;
mod token_strip;
mod view_tabs;

pub use ablation_panel::AblationPanel;
pub use attribution_chart::AttributionChart;
pub use backend_badge::BackendBadge;
pub use export_bar::ExportBar;
pub use fourier_panel::{FourierPanel, NeuronGrid};
pub use head_grid::HeadGrid;
pub use head_picker::HeadPicker;
pub use head_scores::HeadScores;
pub use heatmap::AttentionHeatmap;
pub use intervention_list::InterventionList;
pub use legend::Legend;
pub use load_panel::{HubLoad, LoadPanel, ModelSource};
pub use logit_lens::LogitLens;
pub use model_panel::{LoadState, ModelPanel};
pub use neuron_heatmap::NeuronHeatmap;
pub use neuron_page::NeuronPage;
pub use notices::{Notice, NoticeKind, Notices};
pub use patch_heatmap::PatchHeatmap;
pub use patch_panel::PatchPanel;
pub use prediction::Prediction;
pub use prompt_box::PromptBox;
pub use scan_controls::{check_corpus, Corpus, ScanControls, ScanInfo};
pub use scrub_panel::ScrubPanel;
pub use steer_panel::SteerPanel;
pub use theme_toggle::ThemeToggle;
pub use token_chips::TokenChips;
pub use token_strip::TokenStrip;
pub use view_tabs::ViewTabs;

/// How a token is written everywhere the page shows one (chips, heatmap and lens labels, top-5
/// tables): `<bos>` as BOS, a space as `␣`, a newline as `↵`, a tab as `→`, a carriage return as
/// `␍`, other control characters as `<0xNN>`, and an empty token as `∅`, so that no token is ever
/// blank. The raw text stays in the elements' data attributes and tooltips.
pub fn token_label(t: &str) -> String {
    match t {
        "<bos>" => return "BOS".to_string(),
        "" => return "\u{2205}".to_string(),
        _ => {}
    }
    t.chars()
        .map(|c| match c {
            ' ' => "\u{2423}".to_string(),
            '\n' => "\u{21b5}".to_string(),
            '\t' => "\u{2192}".to_string(),
            '\r' => "\u{240d}".to_string(),
            c if c.is_control() => format!("<0x{:02X}>", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The canvas's 2D context, asked for as one written pixel by pixel (`willReadFrequently`):
/// the browser keeps it in memory instead of on the GPU, where every `putImageData` was an
/// upload (on a software GL, as in headless Chromium, a slow one).
pub fn context_2d(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    use wasm_bindgen::JsCast;
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"willReadFrequently".into(), &true.into());
    canvas.get_context_with_context_options("2d", &options).ok()??.dyn_into().ok()
}

/// Runs `f` once, in the next animation frame: views that draw on a canvas paint there, not in
/// the task that changed their data (a run's answer, a click), which stays short.
pub fn on_next_frame(f: impl FnOnce() + 'static) {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else { return };
    let cb = Closure::once_into_js(f);
    let _ = window.request_animation_frame(cb.unchecked_ref());
}

/// Runs `f` once, in a task right after the next frame: the frame that shows a run's answer (or
/// a click's) is rendered first, and the canvases paint in a task of their own. Painting inside
/// the animation frame put the canvases' work (12-21 ms at 128 tokens on a 2-core machine) in
/// the same task as the browser's style, layout and paint of the rebuilt page.
/// A hidden tab renders no frames: there `f` runs after 250 ms instead, so that work which
/// is not drawing (the URL's update) is never held back.
pub fn after_next_frame(f: impl FnOnce() + 'static) {
    use std::cell::Cell;
    use std::rc::Rc;
    type Once = Rc<Cell<Option<Box<dyn FnOnce()>>>>;
    let once: Once = Rc::new(Cell::new(Some(Box::new(f))));
    let fallback = once.clone();
    on_next_frame(move || {
        gloo_timers::callback::Timeout::new(0, move || {
            if let Some(f) = once.take() {
                f();
            }
        })
        .forget();
    });
    gloo_timers::callback::Timeout::new(250, move || {
        if let Some(f) = fallback.take() {
            f();
        }
    })
    .forget();
}

/// Draws `rgba` (`w x h` pixels, 4 bytes each) onto `canvas`, which CSS scales up.
pub fn paint(canvas: &web_sys::HtmlCanvasElement, w: usize, h: usize, rgba: &[u8]) {
    use wasm_bindgen::Clamped;
    if w == 0 || h == 0 || rgba.len() != 4 * w * h {
        return;
    }
    let Some(ctx) = context_2d(canvas) else { return };
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w as u32, h as u32) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_token_is_shown_blank() {
        use super::token_label;
        assert_eq!(token_label("<bos>"), "BOS");
        assert_eq!(token_label(" "), "\u{2423}");
        assert_eq!(token_label(" the"), "\u{2423}the");
        assert_eq!(token_label("\n\n"), "\u{21b5}\u{21b5}");
        assert_eq!(token_label("\t"), "\u{2192}");
        assert_eq!(token_label("\u{7}"), "<0x07>");
        assert_eq!(token_label(""), "\u{2205}");
        assert_eq!(token_label("whale"), "whale");
        assert_eq!(token_label("<0x0A>"), "<0x0A>");
    }

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
