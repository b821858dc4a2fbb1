//! The attention pattern of one head, drawn on a canvas.
//!
//! It used to be one DOM element per cell: 15,376 cells at 124 tokens, and a run or a head
//! click spent 135-907 ms of main-thread time building them. Now the cells are one `n x n`
//! image (one pixel per cell, scaled up without smoothing), the labels are drawn once per
//! paint, and hover and click are mapped from coordinates ([`Layout::hit`]). What a screen
//! reader (and a test) reads is a table of the chosen query row's weights, `n` rows, and the
//! readout line under the canvas names the hovered cell.

use leptos::html::{Canvas, Div};
use leptos::prelude::*;

use super::token_label;

/// Where things are on the canvas, in CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// Tokens (the grid is `n x n`).
    pub n: usize,
    /// Side of one cell.
    pub cell: f64,
    /// Width of the query-label column left of the grid.
    pub left: f64,
    /// Height of the key-label strip above the grid.
    pub top: f64,
    /// Every `label_step`-th label is drawn (cells narrower than a line of text skip some).
    pub label_step: usize,
}

/// Cells are never drawn smaller than this (CSS px); a wider grid pans inside its box.
const MIN_CELL: f64 = 6.0;
/// Nor larger than this at zoom 1.
const MAX_CELL: f64 = 26.0;
/// Height of a label's line of text.
const LABEL_PX: f64 = 11.0;

impl Layout {
    /// Fits `n` cells into `width` x `height` CSS px (labels included: a column and a strip of
    /// `label` px), times `zoom`.
    pub fn fit(n: usize, width: f64, height: f64, label: f64, zoom: f64) -> Layout {
        let across = (width - label - 2.0) / n.max(1) as f64;
        let down = (height - label - 2.0) / n.max(1) as f64;
        let fitted = across.min(down).floor().clamp(MIN_CELL, MAX_CELL);
        let cell = (fitted * zoom).round().max(2.0);
        let label_step = (LABEL_PX / cell).ceil().max(1.0) as usize;
        Layout { n, cell, left: label, top: label, label_step }
    }

    /// Canvas size in CSS px.
    pub fn size(&self) -> (f64, f64) {
        (self.left + self.n as f64 * self.cell, self.top + self.n as f64 * self.cell)
    }

    /// The (query, key) cell under a point, if it is on the grid.
    pub fn hit(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        let q = self.row(y)?;
        if x < self.left {
            return None;
        }
        let k = ((x - self.left) / self.cell).floor() as usize;
        (k < self.n).then_some((q, k))
    }

    /// The query row at a height: on the grid or on its label.
    pub fn row(&self, y: f64) -> Option<usize> {
        if y < self.top {
            return None;
        }
        let q = ((y - self.top) / self.cell).floor() as usize;
        (q < self.n).then_some(q)
    }
}

/// The colours of one paint, read from the page's CSS (light or dark).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Palette {
    pub background: [u8; 3],
    pub heat: [u8; 3],
    pub masked: [u8; 3],
}

impl Default for Palette {
    fn default() -> Palette {
        Palette { background: [255, 255, 255], heat: [37, 80, 180], masked: [226, 228, 232] }
    }
}

/// One RGBA pixel per cell, row-major: the heat colour over the background with opacity the
/// square root of the weight (small but real weights stay visible next to a dominant one);
/// keys after the query (masked by causality) in the masked colour.
pub fn cell_pixels(pattern: &[f32], n: usize, p: &Palette) -> Vec<u8> {
    let mut rgba = Vec::with_capacity(4 * n * n);
    for q in 0..n {
        for k in 0..n {
            let rgb = if k > q {
                p.masked
            } else {
                let a = pattern.get(q * n + k).copied().unwrap_or(0.0);
                let a = if a.is_finite() { a.clamp(0.0, 1.0).sqrt() } else { 0.0 };
                let mix = |bg: u8, fg: u8| (bg as f32 + (fg as f32 - bg as f32) * a).round() as u8;
                [mix(p.background[0], p.heat[0]), mix(p.background[1], p.heat[1]), mix(p.background[2], p.heat[2])]
            };
            rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
    rgba
}

/// Parses a CSS colour as the page's stylesheets write them: `#rgb`, `#rrggbb`, `r, g, b`
/// (the `--heat` triple) or `rgb(r, g, b)`.
pub fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        let digit = |i: usize, w: usize| u8::from_str_radix(hex.get(i..i + w)?, 16).ok();
        return match hex.len() {
            3 => Some([digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17]),
            6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?]),
            _ => None,
        };
    }
    let inner = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')).unwrap_or(s);
    let parts: Vec<u8> = inner.split(',').map(|p| p.trim().parse::<f32>().ok().map(|v| v.clamp(0.0, 255.0) as u8)).collect::<Option<_>>()?;
    (parts.len() == 3).then(|| [parts[0], parts[1], parts[2]])
}

/// One head's attention pattern: query tokens on rows, key tokens on columns.
#[component]
pub fn AttentionHeatmap(
    /// Token strings, the BOS token first: the labels of both axes.
    #[prop(into)]
    tokens: Signal<Vec<String>>,
    /// The pattern `[query, key]`, row-major (`tokens.len()` squared values).
    #[prop(into)]
    pattern: Signal<Vec<f32>>,
    /// The chosen query position; its row is outlined.
    #[prop(into)]
    selected: Signal<usize>,
    /// Called with a query position when its row is clicked.
    on_select: Callback<usize>,
    /// The prompt position of each row and column, for the text a reader sees, when the grid
    /// shows only some positions (a padded model's padding hidden); by default row i is i.
    #[prop(into, optional)]
    positions: Option<Signal<Vec<usize>>>,
) -> impl IntoView {
    let at = move |i: usize| positions.and_then(|p| p.with(|p| p.get(i).copied())).unwrap_or(i);
    let canvas = NodeRef::<Canvas>::new();
    let wrap = NodeRef::<Div>::new();
    let hover = RwSignal::new(None::<(usize, usize)>);
    let zoom = RwSignal::new(1.0f64);
    // Bumped when the box is resized or the theme changes: both need a repaint.
    let repaint = RwSignal::new(0u32);
    let layout = StoredValue::new(None::<Layout>);
    listen_for_repaint(repaint);

    let valid = move || {
        let n = tokens.with(Vec::len);
        n > 0 && pattern.with(Vec::len) == n * n
    };

    // The box's width, from a ResizeObserver (reading `clientWidth` while the page is being
    // rebuilt forced a layout of the whole page inside the run's task: 40-76 ms at 128 tokens).
    let box_width = RwSignal::new(0.0f64);
    Effect::new(move |_| {
        if let Some(w) = wrap.get() {
            observe_width(&w, box_width);
        }
    });
    // Paint in a task right after the next frame, not in the task that changed the data nor in
    // the frame that renders the rest of the page: a run's answer, a head click or a hover only
    // schedule it, and several changes paint once.
    let frame = StoredValue::new(0u64);
    Effect::new(move |_| {
        repaint.track();
        let z = zoom.get();
        let width = box_width.get();
        let (tokens, pattern) = (tokens.get(), pattern.get());
        let (sel, hov) = (selected.get(), hover.get());
        let n = tokens.len();
        if n == 0 || pattern.len() != n * n {
            return;
        }
        let id = frame.get_value().wrapping_add(1);
        frame.set_value(id);
        super::after_next_frame(move || {
            // A newer change scheduled its own paint.
            if frame.try_get_value() != Some(id) {
                return;
            }
            if let Some(c) = canvas.get_untracked() {
                let l = paint(&c, width, &tokens, &pattern, sel, hov, z);
                layout.set_value(l);
            }
        });
    });

    let on_move = move |ev: leptos::ev::MouseEvent| {
        let cell = layout.get_value().and_then(|l| l.hit(ev.offset_x() as f64, ev.offset_y() as f64));
        if hover.get_untracked() != cell {
            hover.set(cell);
        }
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if let Some(q) = layout.get_value().and_then(|l| l.row(ev.offset_y() as f64)) {
            on_select.run(q);
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = tokens.with_untracked(Vec::len);
        let key = ev.key();
        // Up and down move the query; left and right still scroll the box.
        let vertical = matches!(key.as_str(), "ArrowUp" | "ArrowDown" | "Home" | "End");
        let rows: Vec<usize> = (0..n).collect();
        if let Some(q) = super::token_chips::step(&key, selected.get_untracked(), &rows).filter(|_| vertical) {
            ev.prevent_default();
            on_select.run(q);
        }
    };

    let readout = move || {
        let tokens = tokens.get();
        let pattern = pattern.get();
        let n = tokens.len();
        if n == 0 || pattern.len() != n * n {
            return String::new();
        }
        let quote = |i: usize| format!("\u{201c}{}\u{201d}", token_label(&tokens[i]));
        match hover.get() {
            Some((q, k)) if k > q => format!("query {} {} \u{2192} key {} {}: masked (a query sees only keys up to itself)", at(q), quote(q), at(k), quote(k)),
            Some((q, k)) => format!("query {} {} \u{2192} key {} {}: {:.3}", at(q), quote(q), at(k), quote(k), pattern[q * n + k]),
            None => {
                let q = selected.get().min(n - 1);
                let row = &pattern[q * n..q * n + q + 1];
                let (k, v) = row.iter().copied().enumerate().fold((0, f32::MIN), |best, (k, v)| if v > best.1 { (k, v) } else { best });
                format!("query {} {}: most attention on key {} {} ({v:.3}). Hover a cell for its weight.", at(q), quote(q), at(k), quote(k))
            }
        }
    };

    // The chosen row's weights as a table: what a screen reader reads instead of the picture.
    let values = move || {
        let tokens = tokens.get();
        let pattern = pattern.get();
        let n = tokens.len();
        if n == 0 || pattern.len() != n * n {
            return None;
        }
        let q = selected.get().min(n - 1);
        let caption = format!("Attention from query {} \u{201c}{}\u{201d} to each key up to it", at(q), token_label(&tokens[q]));
        let rows = values_html(&pattern[q * n..q * n + q + 1], |k| format!("key {} {}", at(k), token_label(&tokens[k])));
        Some(view! {
            // A table will not shrink to the 1 px box of `sr-only`: its wrapper does. Its rows
            // are one string (see `html.rs`).
            <div class="sr-only sr-lazy">
            <table class="hm-values" data-testid="heatmap-values" data-q=q>
                <caption>{caption}</caption>
                <thead><tr><th scope="col">"key"</th><th scope="col">"weight"</th></tr></thead>
                <tbody inner_html=rows></tbody>
            </table>
            </div>
        })
    };

    view! {
        <div class="heatmap-box" class:hidden=move || !valid()>
            <div class="hm-tools">
                <span class="axis-note">"rows: queries \u{2193}, columns: keys \u{2192}"</span>
                <button type="button" class="zoom" data-testid="heatmap-zoom-out" title="Smaller cells" aria-label="Zoom out"
                    on:click=move |_| zoom.update(|z| *z = (*z / 1.5).max(0.25))>"\u{2212}"</button>
                <button type="button" class="zoom" data-testid="heatmap-zoom-fit" title="Fit the box" on:click=move |_| zoom.set(1.0)>"Fit"</button>
                <button type="button" class="zoom" data-testid="heatmap-zoom-in" title="Larger cells" aria-label="Zoom in"
                    on:click=move |_| zoom.update(|z| *z = (*z * 1.5).min(8.0))>"+"</button>
            </div>
            <div
                class="heatmap-wrap"
                node_ref=wrap
                tabindex="0"
                role="region"
                aria-label="Attention pattern: query tokens on rows, key tokens on columns; the arrow keys move the query"
                on:keydown=on_key
            >
                <canvas
                    node_ref=canvas
                    class="heatmap"
                    data-testid="heatmap"
                    role="img"
                    aria-label=move || format!("Attention pattern over {} tokens; the table that follows lists the chosen query's weights", tokens.with(Vec::len))
                    on:mousemove=on_move
                    on:mouseleave=move |_| hover.set(None)
                    on:click=on_click
                ></canvas>
            </div>
            <p class="hm-readout" data-testid="heatmap-readout" aria-live="polite">{readout}</p>
            {values}
        </div>
    }
}

/// The chosen row's table body: one row per key up to the query (a query attends to nothing
/// after it), headed by `label(k)`.
pub fn values_html(row: &[f32], label: impl Fn(usize) -> String) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(row.len() * 90);
    for (k, v) in row.iter().enumerate() {
        let _ = write!(
            out,
            "<tr class=\"cell\" data-k=\"{k}\" data-value=\"{v:.6}\"><th scope=\"row\">{}</th><td>{v:.3}</td></tr>",
            super::html::escape(&label(k))
        );
    }
    out
}

/// Repaints on theme changes (the toggle dispatches `glassbox-theme`; the system's
/// `prefers-color-scheme` can change under a page too).
fn listen_for_repaint(repaint: RwSignal<u32>) {
    let Some(window) = web_sys::window() else { return };
    let bump = move |_: &web_sys::Event| repaint.update(|r| *r = r.wrapping_add(1));
    let theme = gloo_events::EventListener::new(&window, "glassbox-theme", bump);
    let scheme = window.match_media("(prefers-color-scheme: dark)").ok().flatten().map(|m| gloo_events::EventListener::new(&m, "change", bump));
    // Owned by the component: dropped (and so removed) when it unmounts.
    StoredValue::new_local((theme, scheme));
}

/// Keeps `width` equal to the element's content width (whole CSS px), as the browser lays it
/// out: the observer reports after layout, so nothing here forces one.
fn observe_width(el: &web_sys::HtmlDivElement, width: RwSignal<f64>) {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    let on_resize = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
        if let Ok(entry) = entries.get(0).dyn_into::<web_sys::ResizeObserverEntry>() {
            let w = entry.content_rect().width().floor();
            if w > 0.0 && (w - width.get_untracked()).abs() >= 1.0 {
                width.set(w);
            }
        }
    });
    let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else { return };
    observer.observe(el);
    // The closure must live as long as the observer; both go when the component does.
    let keep = StoredValue::new_local((observer, on_resize));
    on_cleanup(move || {
        keep.try_with_value(|(o, _)| o.disconnect());
    });
}

/// Reads the palette and the text colour from the canvas's computed style (one lookup).
fn colours(c: &web_sys::HtmlCanvasElement) -> (Palette, String) {
    let mut p = Palette::default();
    let Some(style) = web_sys::window().and_then(|w| w.get_computed_style(c).ok().flatten()) else { return (p, "#222".into()) };
    let var = |name: &str| style.get_property_value(name).ok().and_then(|v| parse_colour(&v));
    if let Some(c) = var("--panel") {
        p.background = c;
    }
    if let Some(c) = var("--heat") {
        p.heat = c;
    }
    if let Some(c) = var("--rule") {
        p.masked = c;
    }
    let ink = style.get_property_value("color").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "#222".into());
    (p, ink)
}

thread_local! {
    /// The `n x n` canvas the cells are written to before scaling (one per page, reused).
    static SCRATCH: std::cell::RefCell<Option<web_sys::HtmlCanvasElement>> = const { std::cell::RefCell::new(None) };
}

fn new_canvas() -> Option<web_sys::HtmlCanvasElement> {
    use wasm_bindgen::JsCast;
    web_sys::window()?.document()?.create_element("canvas").ok()?.dyn_into().ok()
}

/// Draws the grid, the labels, the chosen row and the hovered cell; returns the layout.
fn paint(
    c: &web_sys::HtmlCanvasElement,
    box_width: f64,
    tokens: &[String],
    pattern: &[f32],
    selected: usize,
    hover: Option<(usize, usize)>,
    zoom: f64,
) -> Option<Layout> {
    use wasm_bindgen::JsCast;
    let n = tokens.len();
    let ctx: web_sys::CanvasRenderingContext2d = c.get_context("2d").ok()??.dyn_into().ok()?;
    let font = format!("{LABEL_PX}px ui-monospace, monospace");
    ctx.set_font(&font);
    let labels: Vec<String> = tokens.iter().map(|t| token_label(t)).collect();
    let widest = labels.iter().map(|l| ctx.measure_text(l).map(|m| m.width()).unwrap_or(0.0)).fold(0.0, f64::max);
    let label = (widest + 10.0).clamp(28.0, 96.0);
    // The box is at most 80% of the window's height (main.css); Fit keeps the grid inside it.
    let height = web_sys::window().and_then(|w| w.inner_height().ok()).and_then(|h| h.as_f64()).map_or(720.0, |h| (h * 0.8).max(240.0));
    let layout = Layout::fit(n, if box_width > 0.0 { box_width } else { 640.0 }, height, label, zoom);
    let (w, h) = layout.size();
    let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()).clamp(1.0, 3.0);
    // Setting the size clears the canvas and resets the context's state; an unchanged size is
    // kept (setting it anyway gave the canvas a new backing store on every run and hover).
    let (cw, ch) = ((w * dpr).round() as u32, (h * dpr).round() as u32);
    if c.width() != cw || c.height() != ch {
        c.set_width(cw);
        c.set_height(ch);
    } else {
        let _ = ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        ctx.clear_rect(0.0, 0.0, cw as f64, ch as f64);
    }
    let style = web_sys::HtmlElement::style(c);
    let _ = style.set_property("width", &format!("{w}px"));
    let _ = style.set_property("height", &format!("{h}px"));
    let _ = ctx.scale(dpr, dpr);
    ctx.set_font(&font);
    let (colours, ink) = colours(c);

    // The cells: one pixel each on a scratch canvas, scaled up without smoothing.
    let scratch = SCRATCH.with(|s| s.borrow_mut().get_or_insert_with(|| new_canvas().expect("a canvas element")).clone());
    if scratch.width() != n as u32 || scratch.height() != n as u32 {
        scratch.set_width(n as u32);
        scratch.set_height(n as u32);
    }
    super::paint(&scratch, n, n, &cell_pixels(pattern, n, &colours));
    ctx.set_image_smoothing_enabled(false);
    let side = n as f64 * layout.cell;
    let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&scratch, layout.left, layout.top, side, side);

    // Labels: queries right-aligned left of their rows, keys written upwards above their columns.
    let accent = "#b4470f";
    ctx.set_text_baseline("middle");
    ctx.set_text_align("right");
    for (q, l) in labels.iter().enumerate() {
        if q % layout.label_step != 0 && q != selected {
            continue;
        }
        ctx.set_fill_style_str(if q == selected { accent } else { &ink });
        let _ = ctx.fill_text(l, layout.left - 4.0, layout.top + (q as f64 + 0.5) * layout.cell);
    }
    ctx.set_fill_style_str(&ink);
    ctx.set_text_align("left");
    for (k, l) in labels.iter().enumerate() {
        if k % layout.label_step != 0 {
            continue;
        }
        ctx.save();
        let _ = ctx.translate(layout.left + (k as f64 + 0.5) * layout.cell, layout.top - 4.0);
        let _ = ctx.rotate(-std::f64::consts::FRAC_PI_2);
        let _ = ctx.fill_text(l, 0.0, 0.0);
        ctx.restore();
    }

    // The chosen query's row, and the hovered cell.
    if selected < n {
        ctx.set_stroke_style_str("#e0662b");
        ctx.set_line_width(2.0);
        ctx.stroke_rect(layout.left + 1.0, layout.top + selected as f64 * layout.cell + 1.0, side - 2.0, layout.cell - 2.0);
    }
    if let Some((q, k)) = hover {
        ctx.set_stroke_style_str(&ink);
        ctx.set_line_width(1.0);
        ctx.stroke_rect(layout.left + k as f64 * layout.cell + 0.5, layout.top + q as f64 * layout.cell + 0.5, layout.cell - 1.0, layout.cell - 1.0);
    }
    let _ = c.set_attribute("data-n", &n.to_string());
    let _ = c.set_attribute("data-cell", &layout.cell.to_string());
    let _ = c.set_attribute("data-left", &layout.left.to_string());
    let _ = c.set_attribute("data-top", &layout.top.to_string());
    let _ = c.set_attribute("data-selected", &selected.to_string());
    Some(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_the_box_and_maps_points_to_cells() {
        // 20 tokens in a 500 px box beside a 40 px label column: 22 px cells.
        let l = Layout::fit(20, 500.0, 1000.0, 40.0, 1.0);
        assert_eq!(l.cell, 22.0);
        assert_eq!(l.size(), (40.0 + 20.0 * 22.0, 40.0 + 20.0 * 22.0));
        assert_eq!(l.hit(40.0, 40.0), Some((0, 0)));
        assert_eq!(l.hit(40.0 + 3.0 * 22.0 + 1.0, 40.0 + 5.0 * 22.0 + 21.0), Some((5, 3)));
        assert_eq!(l.hit(39.0, 50.0), None, "the label column is not a cell");
        assert_eq!(l.row(50.0), Some(0), "but its row is");
        assert_eq!(l.hit(50.0, 39.0), None);
        assert_eq!(l.hit(40.0 + 20.0 * 22.0, 50.0), None);
        assert_eq!(l.row(40.0 + 20.0 * 22.0), None);
        assert_eq!(l.label_step, 1);
    }

    #[test]
    fn a_long_prompt_keeps_cells_readable_and_labels_apart() {
        // 256 tokens in a phone-wide box: cells stay at the minimum (the box pans), and only
        // every second label is drawn so that they do not overlap.
        let l = Layout::fit(256, 360.0, 600.0, 40.0, 1.0);
        assert_eq!(l.cell, MIN_CELL);
        assert_eq!(l.label_step, 2);
        // A short, wide box: the height decides (33 tokens in 1000 x 700: 19 px, not 26).
        assert_eq!(Layout::fit(33, 1000.0, 700.0, 40.0, 1.0).cell, 19.0);
        // Zooming scales the fitted cell; a small prompt never gets giant cells at zoom 1.
        assert_eq!(Layout::fit(256, 360.0, 600.0, 40.0, 2.0).cell, 12.0);
        assert_eq!(Layout::fit(3, 1200.0, 900.0, 40.0, 1.0).cell, MAX_CELL);
        assert_eq!(Layout::fit(256, 360.0, 600.0, 40.0, 0.25).cell, 2.0);
    }

    #[test]
    fn the_screen_reader_table_lists_each_key_with_its_weight() {
        let html = super::values_html(&[0.25, 0.75], |k| if k == 0 { "key 0 BOS".into() } else { "key 1 <x>".into() });
        assert_eq!(
            html,
            "<tr class=\"cell\" data-k=\"0\" data-value=\"0.250000\"><th scope=\"row\">key 0 BOS</th><td>0.250</td></tr>\
             <tr class=\"cell\" data-k=\"1\" data-value=\"0.750000\"><th scope=\"row\">key 1 &lt;x&gt;</th><td>0.750</td></tr>"
        );
    }

    #[test]
    fn cells_shade_by_the_square_root_and_mask_the_future() {
        let p = Palette { background: [255, 255, 255], heat: [0, 0, 0], masked: [1, 2, 3] };
        let px = cell_pixels(&[1.0, 0.5, 0.25, 0.0], 2, &p);
        assert_eq!(&px[0..4], &[0, 0, 0, 255], "weight 1: the full heat colour");
        assert_eq!(&px[4..8], &[1, 2, 3, 255], "key after the query: masked");
        assert_eq!(&px[8..12], &[128, 128, 128, 255], "weight 0.25: half-way (its square root)");
        assert_eq!(&px[12..16], &[255, 255, 255, 255], "weight 0: the background");
        // A NaN weight is drawn as zero, not as garbage.
        assert_eq!(&cell_pixels(&[f32::NAN], 1, &p)[..], &[255, 255, 255, 255]);
    }

    #[test]
    fn colours_parse_as_the_stylesheet_writes_them() {
        assert_eq!(parse_colour("#fff"), Some([255, 255, 255]));
        assert_eq!(parse_colour(" #2b59c3"), Some([0x2b, 0x59, 0xc3]));
        assert_eq!(parse_colour("37, 80, 180"), Some([37, 80, 180]));
        assert_eq!(parse_colour("rgb(1, 2, 3)"), Some([1, 2, 3]));
        assert_eq!(parse_colour("blue"), None);
        assert_eq!(parse_colour("#12345"), None);
    }
}
