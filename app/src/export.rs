//! Export of what a view shows: a plain-data [`Figure`] (a heatmap, bars or a table, built by
//! `figures.rs` from the data the view already has) and its files. SVG and CSV and JSON are
//! pure functions of the figure; PNG draws the same [`Scene`] as the SVG on an offscreen
//! canvas (never an `<img>` of the SVG: the site's CSP allows no `blob:` or `data:` images).
//! Labels are the reader's text (prompts, tokens): in SVG they are XML-escaped, control
//! characters shown as their Unicode pictures; in CSV they are quoted as RFC 4180 says.

use serde::Serialize;

/// One exported figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// The file name's stem: `glassbox-<name>.<ext>` (e.g. `attention-L1H2`).
    pub name: String,
    pub title: String,
    #[serde(flatten)]
    pub body: Body,
    /// The view's own data, complete (JSON only), e.g. a patching sweep's normalised values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

/// What a figure draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// `values[row * col_labels.len() + col]`, row-major; NaN is a blank cell (`null` in JSON).
    Heatmap {
        row_axis: String,
        col_axis: String,
        row_labels: Vec<String>,
        col_labels: Vec<String>,
        values: Vec<f32>,
        scale: Scale,
        /// Text written in each cell (the logit lens's top token), or empty.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        cell_text: Vec<String>,
    },
    /// One bar per label.
    Bars { value_axis: String, labels: Vec<String>, values: Vec<f32> },
    /// Text cells.
    Table { header: Vec<String>, rows: Vec<Vec<String>> },
}

/// How a heatmap's values map to colour.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scale {
    /// 0 (white) to `hi` (dark blue), shaded by the square root as the page does (attention).
    Sequential { hi: f32 },
    /// `-limit` (red) through 0 (white) to `limit` (blue): patching, ablation, activations.
    Diverging { limit: f32 },
}

impl Scale {
    /// A diverging scale as wide as the largest finite magnitude of `values`.
    pub fn diverging_for(values: &[f32]) -> Scale {
        Scale::Diverging { limit: values.iter().copied().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs())).max(1e-6) }
    }

    fn color(self, v: f32) -> String {
        if !v.is_finite() {
            return "#eeeeee".into();
        }
        match self {
            Scale::Sequential { hi } => mix((33, 76, 150), (v / hi.max(1e-12)).clamp(0.0, 1.0).sqrt()),
            Scale::Diverging { limit } => {
                let x = (v / limit.max(1e-12)).clamp(-1.0, 1.0);
                if x >= 0.0 {
                    mix((33, 102, 172), x)
                } else {
                    mix((178, 24, 43), -x)
                }
            }
        }
    }

    fn ends(self) -> (f32, f32) {
        match self {
            Scale::Sequential { hi } => (0.0, hi),
            Scale::Diverging { limit } => (-limit, limit),
        }
    }
}

/// White mixed with `rgb` by `t` in 0..=1, as `#rrggbb`.
fn mix(rgb: (u8, u8, u8), t: f32) -> String {
    let c = |x: u8| (255.0 + (x as f32 - 255.0) * t).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", c(rgb.0), c(rgb.1), c(rgb.2))
}

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Png, Format::Svg, Format::Csv, Format::Json];

    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// The download's file name: `glassbox-<name>.<ext>`, the name kept to safe characters.
pub fn file_name(fig: &Figure, format: Format) -> String {
    let stem: String = fig.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' }).collect();
    format!("glassbox-{}.{}", stem.trim_matches(['-', '.']), format.ext())
}

// ---------------------------------------------------------------------------------------------
// CSV and JSON

/// One CSV field: quoted (quotes doubled) when it holds a comma, a quote, a line break or
/// surrounding space, as RFC 4180 says (an empty field is left empty).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number as CSV writes it: the shortest text that reads back as the same f32; blank for NaN.
fn csv_number(v: f32) -> String {
    if v.is_nan() {
        String::new()
    } else {
        v.to_string()
    }
}

/// The figure's numbers as CSV (lines end in CRLF): a heatmap has its column labels as the
/// first row and its row labels as the first column; bars are `label,value` rows; a table is
/// its header and rows.
pub fn to_csv(fig: &Figure) -> String {
    let mut lines: Vec<Vec<String>> = Vec::new();
    match &fig.body {
        Body::Heatmap { row_axis, col_axis, row_labels, col_labels, values, .. } => {
            lines.push(std::iter::once(format!("{row_axis} \\ {col_axis}")).chain(col_labels.iter().cloned()).collect());
            let cols = col_labels.len();
            for (r, label) in row_labels.iter().enumerate() {
                let row = values.get(r * cols..(r + 1) * cols).unwrap_or_default();
                lines.push(std::iter::once(label.clone()).chain(row.iter().map(|&v| csv_number(v))).collect());
            }
        }
        Body::Bars { value_axis, labels, values } => {
            lines.push(vec!["label".into(), value_axis.clone()]);
            lines.extend(labels.iter().zip(values).map(|(l, &v)| vec![l.clone(), csv_number(v)]));
        }
        Body::Table { header, rows } => {
            lines.push(header.clone());
            lines.extend(rows.iter().cloned());
        }
    }
    lines.iter().map(|l| l.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\r\n").collect()
}

/// The figure as JSON (its labels, values row-major, scale, and the view's own data).
pub fn to_json(fig: &Figure) -> String {
    serde_json::to_string_pretty(fig).unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// The scene: one layout, drawn as SVG text or on a canvas.

/// Text placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn svg(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }

    pub fn canvas(self) -> &'static str {
        match self {
            Anchor::Start => "left",
            Anchor::Middle => "center",
            Anchor::End => "right",
        }
    }
}

/// One thing drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A filled rectangle; a heatmap's cells carry (row, col, value).
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: String,
        stroke: Option<String>,
        cell: Option<(usize, usize, f32)>,
    },
    /// Text at (x, y) (its baseline); `rotate`: turned 90 degrees counter-clockwise about (x, y).
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        bold: bool,
        rotate: bool,
        fill: String,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        stroke: String,
    },
}

/// A figure laid out in CSS pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub width: f64,
    pub height: f64,
    pub items: Vec<Item>,
}

const FONT: f64 = 11.0;
/// Width of a character of the 11 px sans-serif font, a generous estimate.
const CHAR_W: f64 = 6.6;
const MARGIN: f64 = 12.0;
const LABEL_CHARS: usize = 24;
const INK: &str = "#222222";
const MUTED: &str = "#666666";

/// A label as drawn: control characters as their Unicode pictures, cut to `max` characters.
pub fn shown(s: &str, max: usize) -> String {
    let pictured: String = s
        .chars()
        .map(|c| match c {
            '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\u{7f}' => '\u{2421}',
            '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect();
    if pictured.chars().count() > max {
        pictured.chars().take(max.saturating_sub(1)).chain(std::iter::once('\u{2026}')).collect()
    } else {
        pictured
    }
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

fn text(x: f64, y: f64, s: impl Into<String>, anchor: Anchor) -> Item {
    Item::Text { x, y, text: s.into(), size: FONT, anchor, bold: false, rotate: false, fill: INK.into() }
}

/// A number as the figure writes it.
fn num(v: f32) -> String {
    if !v.is_finite() {
        "\u{b7}".into()
    } else if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// Lays a figure out: title on top, then the heatmap (with its colour scale), bars or table.
pub fn layout(fig: &Figure) -> Scene {
    let mut items = Vec::new();
    let title = shown(&fig.title, 120);
    let mut width = MARGIN * 2.0 + text_w(&title) * 1.1;
    items.push(Item::Text { x: MARGIN, y: MARGIN + 13.0, text: title, size: 14.0, anchor: Anchor::Start, bold: true, rotate: false, fill: INK.into() });
    let top = MARGIN + 26.0;
    let height;
    match &fig.body {
        Body::Heatmap { row_axis, col_axis, row_labels, col_labels, values, scale, cell_text } => {
            let (rows, cols) = (row_labels.len(), col_labels.len());
            let cell = (560.0 / rows.max(cols).max(1) as f64).floor().clamp(3.0, 28.0);
            // Every k-th label when cells are smaller than the font.
            let step = ((FONT + 2.0) / cell).ceil().max(1.0) as usize;
            let rl: Vec<String> = row_labels.iter().map(|l| shown(l, LABEL_CHARS)).collect();
            let cl: Vec<String> = col_labels.iter().map(|l| shown(l, LABEL_CHARS)).collect();
            let left = MARGIN + rl.iter().map(|l| text_w(l)).fold(text_w(row_axis).min(80.0), f64::max) + 8.0;
            let col_h = cl.iter().map(|l| text_w(l)).fold(0.0, f64::max) + 8.0;
            items.push(Item::Text {
                x: MARGIN,
                y: top + 12.0,
                text: shown(&format!("rows: {row_axis}; columns: {col_axis}"), 120),
                size: FONT,
                anchor: Anchor::Start,
                bold: false,
                rotate: false,
                fill: MUTED.into(),
            });
            let grid_top = top + 20.0 + col_h;
            for (c, l) in cl.iter().enumerate().filter(|(c, _)| c % step == 0) {
                let x = left + (c as f64 + 0.5) * cell + FONT * 0.35;
                items.push(Item::Text {
                    x,
                    y: grid_top - 4.0,
                    text: l.clone(),
                    size: FONT,
                    anchor: Anchor::Start,
                    bold: false,
                    rotate: true,
                    fill: INK.into(),
                });
            }
            for (r, l) in rl.iter().enumerate().filter(|(r, _)| r % step == 0) {
                items.push(text(left - 6.0, grid_top + (r as f64 + 0.5) * cell + FONT * 0.35, l.clone(), Anchor::End));
            }
            let texts = cell_text.len() == rows * cols && cell >= 20.0;
            for r in 0..rows {
                for c in 0..cols {
                    let v = values.get(r * cols + c).copied().unwrap_or(f32::NAN);
                    let (x, y) = (left + c as f64 * cell, grid_top + r as f64 * cell);
                    items.push(Item::Rect { x, y, w: cell, h: cell, fill: scale.color(v), stroke: None, cell: Some((r, c, v)) });
                    if texts {
                        let t = shown(&cell_text[r * cols + c], (cell / CHAR_W * 1.3) as usize);
                        let dark = matches!(scale, Scale::Sequential { hi } if (v / hi.max(1e-12)).sqrt() > 0.6)
                            || matches!(scale, Scale::Diverging { limit } if (v / limit.max(1e-12)).abs() > 0.6);
                        items.push(Item::Text {
                            x: x + cell / 2.0,
                            y: y + cell / 2.0 + 3.0,
                            text: t,
                            size: 8.0,
                            anchor: Anchor::Middle,
                            bold: false,
                            rotate: false,
                            fill: if dark { "#ffffff".into() } else { INK.into() },
                        });
                    }
                }
            }
            let grid_w = cols as f64 * cell;
            let grid_h = rows as f64 * cell;
            items.push(Item::Rect { x: left, y: grid_top, w: grid_w, h: grid_h, fill: "none".into(), stroke: Some("#999999".into()), cell: None });
            // The colour scale under the grid.
            let ly = grid_top + grid_h + 14.0;
            let (lo, hi) = scale.ends();
            let steps = 24;
            let lw = 8.0;
            for i in 0..steps {
                let v = lo + (hi - lo) * (i as f32 + 0.5) / steps as f32;
                items.push(Item::Rect { x: left + i as f64 * lw, y: ly, w: lw, h: 10.0, fill: scale.color(v), stroke: None, cell: None });
            }
            items.push(Item::Rect { x: left, y: ly, w: lw * steps as f64, h: 10.0, fill: "none".into(), stroke: Some("#999999".into()), cell: None });
            items.push(text(left - 4.0, ly + 9.0, num(lo), Anchor::End));
            items.push(text(left + lw * steps as f64 + 4.0, ly + 9.0, num(hi), Anchor::Start));
            width = width.max(left + grid_w.max(lw * steps as f64 + 60.0) + MARGIN);
            height = ly + 10.0 + MARGIN + 4.0;
        }
        Body::Bars { value_axis, labels, values } => {
            let labels: Vec<String> = labels.iter().map(|l| shown(l, LABEL_CHARS)).collect();
            let left = MARGIN + labels.iter().map(|l| text_w(l)).fold(0.0, f64::max) + 8.0;
            let area = 360.0;
            let finite = values.iter().copied().filter(|v| v.is_finite());
            let lo = finite.clone().fold(0f32, f32::min) as f64;
            let hi = finite.fold(0f32, f32::max) as f64;
            let span = (hi - lo).max(1e-12);
            let zero = left + area * (-lo / span);
            let row = 18.0;
            items.push(Item::Text {
                x: MARGIN,
                y: top + 12.0,
                text: shown(value_axis, 120),
                size: FONT,
                anchor: Anchor::Start,
                bold: false,
                rotate: false,
                fill: MUTED.into(),
            });
            let y0 = top + 22.0;
            for (i, (l, &v)) in labels.iter().zip(values).enumerate() {
                let y = y0 + i as f64 * row;
                items.push(text(left - 6.0, y + row / 2.0 + 4.0, l.clone(), Anchor::End));
                if v.is_finite() {
                    let end = left + area * ((v as f64 - lo) / span);
                    let (x, w) = if end >= zero { (zero, end - zero) } else { (end, zero - end) };
                    let fill = if v >= 0.0 { "#3b6fb6" } else { "#c0392b" };
                    items.push(Item::Rect { x, y: y + 2.0, w: w.max(0.5), h: row - 4.0, fill: fill.into(), stroke: None, cell: Some((i, 0, v)) });
                }
                items.push(text(left + area + 8.0, y + row / 2.0 + 4.0, num(v), Anchor::Start));
            }
            let bottom = y0 + labels.len() as f64 * row;
            items.push(Item::Line { x1: zero, y1: y0, x2: zero, y2: bottom, stroke: "#555555".into() });
            width = width.max(left + area + 8.0 + 10.0 * CHAR_W + MARGIN);
            height = bottom + MARGIN;
        }
        Body::Table { header, rows } => {
            let ncols = header.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
            let cellw = |r: &[String], c: usize| r.get(c).map_or(0.0, |s| text_w(&shown(s, 80)));
            let widths: Vec<f64> = (0..ncols).map(|c| rows.iter().map(|r| cellw(r, c)).fold(cellw(header, c), f64::max) + 16.0).collect();
            let row = 20.0;
            let mut y = top + 4.0;
            let all = std::iter::once((true, header)).chain(rows.iter().map(|r| (false, r)));
            for (i, (head, r)) in all.enumerate() {
                if !head && i % 2 == 0 {
                    items.push(Item::Rect { x: MARGIN, y, w: widths.iter().sum(), h: row, fill: "#f3f3f3".into(), stroke: None, cell: None });
                }
                let mut x = MARGIN;
                for (c, w) in widths.iter().enumerate() {
                    if let Some(s) = r.get(c) {
                        items.push(Item::Text {
                            x: x + 6.0,
                            y: y + 14.0,
                            text: shown(s, 80),
                            size: FONT,
                            anchor: Anchor::Start,
                            bold: head,
                            rotate: false,
                            fill: INK.into(),
                        });
                    }
                    x += w;
                }
                y += row;
                if head {
                    items.push(Item::Line { x1: MARGIN, y1: y, x2: MARGIN + widths.iter().sum::<f64>(), y2: y, stroke: "#555555".into() });
                }
            }
            width = width.max(MARGIN * 2.0 + widths.iter().sum::<f64>());
            height = y + MARGIN;
        }
    }
    Scene { width: width.ceil(), height: height.ceil(), items }
}

// ---------------------------------------------------------------------------------------------
// SVG

/// Text as XML character data or an attribute value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn px(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// The figure as a self-contained SVG document (no scripts, styles or outside references).
/// Heatmap cells are `<rect class="cell" data-row data-col data-value>`.
pub fn to_svg(fig: &Figure) -> String {
    let scene = layout(fig);
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n",
        w = px(scene.width),
        h = px(scene.height)
    ));
    s.push_str(&format!("<title>{}</title>\n", xml_escape(&shown(&fig.title, 400))));
    s.push_str(&format!("<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", px(scene.width), px(scene.height)));
    for item in &scene.items {
        match item {
            Item::Rect { x, y, w, h, fill, stroke, cell } => {
                let stroke = stroke.as_ref().map(|c| format!(" stroke=\"{c}\"")).unwrap_or_default();
                let data = match cell {
                    Some((r, c, v)) => format!(" class=\"cell\" data-row=\"{r}\" data-col=\"{c}\" data-value=\"{}\"", csv_number(*v)),
                    None => String::new(),
                };
                s.push_str(&format!("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"{stroke}{data}/>\n", px(*x), px(*y), px(*w), px(*h)));
            }
            Item::Text { x, y, text, size, anchor, bold, rotate, fill } => {
                let weight = if *bold { " font-weight=\"bold\"" } else { "" };
                let turn = if *rotate { format!(" transform=\"rotate(-90 {} {})\"", px(*x), px(*y)) } else { String::new() };
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{fill}\"{weight}{turn}>{}</text>\n",
                    px(*x),
                    px(*y),
                    px(*size),
                    anchor.svg(),
                    xml_escape(text)
                ));
            }
            Item::Line { x1, y1, x2, y2, stroke } => {
                s.push_str(&format!("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\"/>\n", px(*x1), px(*y1), px(*x2), px(*y2)));
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------------------------
// The browser: PNG on a canvas, downloads.

/// Draws the scene on a new offscreen canvas, `scale` device pixels per CSS pixel.
fn draw(scene: &Scene, scale: f64) -> Result<web_sys::HtmlCanvasElement, String> {
    use wasm_bindgen::JsCast;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let canvas: web_sys::HtmlCanvasElement = doc.create_element("canvas").map_err(|_| "no canvas")?.dyn_into().map_err(|_| "no canvas")?;
    canvas.set_width((scene.width * scale).ceil() as u32);
    canvas.set_height((scene.height * scale).ceil() as u32);
    let ctx: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok().flatten().ok_or("no 2d context")?.dyn_into().map_err(|_| "no 2d context")?;
    let _ = ctx.scale(scale, scale);
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(0.0, 0.0, scene.width, scene.height);
    for item in &scene.items {
        match item {
            Item::Rect { x, y, w, h, fill, stroke, .. } => {
                if fill != "none" {
                    ctx.set_fill_style_str(fill);
                    ctx.fill_rect(*x, *y, *w, *h);
                }
                if let Some(c) = stroke {
                    ctx.set_stroke_style_str(c);
                    ctx.set_line_width(1.0);
                    ctx.stroke_rect(*x, *y, *w, *h);
                }
            }
            Item::Text { x, y, text, size, anchor, bold, rotate, fill } => {
                ctx.set_font(&format!("{}{}px sans-serif", if *bold { "bold " } else { "" }, size));
                ctx.set_text_align(anchor.canvas());
                ctx.set_fill_style_str(fill);
                if *rotate {
                    ctx.save();
                    let _ = ctx.translate(*x, *y);
                    let _ = ctx.rotate(-std::f64::consts::FRAC_PI_2);
                    let _ = ctx.fill_text(text, 0.0, 0.0);
                    ctx.restore();
                } else {
                    let _ = ctx.fill_text(text, *x, *y);
                }
            }
            Item::Line { x1, y1, x2, y2, stroke } => {
                ctx.set_stroke_style_str(stroke);
                ctx.set_line_width(1.0);
                ctx.begin_path();
                ctx.move_to(*x1, *y1);
                ctx.line_to(*x2, *y2);
                ctx.stroke();
            }
        }
    }
    Ok(canvas)
}

/// Offers `blob` as a download named `name` (a temporary `<a download>` on an object URL).
pub fn download_blob(name: &str, blob: &web_sys::Blob) -> Result<(), String> {
    use wasm_bindgen::JsCast;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(|_| "no object URL")?;
    let a = doc.create_element("a").map_err(|_| "no link")?;
    let _ = a.set_attribute("href", &url);
    let _ = a.set_attribute("download", name);
    let _ = a.set_attribute("hidden", "");
    let body = doc.body().ok_or("no body")?;
    let _ = body.append_child(&a);
    // `click` through JS: HTMLElement's binding is not needed for one call.
    let click = js_sys::Reflect::get(&a, &"click".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(click) = click {
        let _ = click.call0(&a);
    }
    a.remove();
    // The download has started; the URL is freed a while later.
    gloo_timers::callback::Timeout::new(30_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}

/// Offers `bytes` as a download named `name`.
pub fn download_bytes(name: &str, bytes: &[u8]) -> Result<(), String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|_| "no blob")?;
    download_blob(name, &blob)
}

/// Saves the figure in `format` (PNG at twice the CSS size).
pub fn save(fig: &Figure, format: Format) -> Result<(), String> {
    let name = file_name(fig, format);
    match format {
        Format::Svg => download_bytes(&name, to_svg(fig).as_bytes()),
        Format::Csv => download_bytes(&name, to_csv(fig).as_bytes()),
        Format::Json => download_bytes(&name, to_json(fig).as_bytes()),
        Format::Png => {
            use wasm_bindgen::prelude::*;
            let canvas = draw(&layout(fig), 2.0)?;
            let done = Closure::once_into_js(move |blob: JsValue| {
                if let Ok(blob) = blob.dyn_into::<web_sys::Blob>() {
                    let _ = download_blob(&name, &blob);
                }
            });
            canvas.to_blob(done.unchecked_ref()).map_err(|_| "the canvas gave no PNG".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heatmap(labels: &[&str], values: Vec<f32>) -> Figure {
        Figure {
            name: "attention-L1H2".into(),
            title: "Attention".into(),
            body: Body::Heatmap {
                row_axis: "query".into(),
                col_axis: "key".into(),
                row_labels: labels.iter().map(|s| s.to_string()).collect(),
                col_labels: labels.iter().map(|s| s.to_string()).collect(),
                values,
                scale: Scale::Sequential { hi: 1.0 },
                cell_text: Vec::new(),
            },
            source: None,
        }
    }

    #[test]
    fn csv_quotes_labels_and_keeps_every_number() {
        let fig = heatmap(&["BOS", "a,b", "say \"hi\"\n"], vec![1.0, 0.0, f32::NAN, 0.25, 0.75, 0.0, 0.1, 0.2, 0.7]);
        let csv = to_csv(&fig);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        // Records end in CRLF; a quoted field keeps its own line break.
        assert_eq!(lines[0], "query \\ key,BOS,\"a,b\",\"say \"\"hi\"\"\n\"");
        assert_eq!(lines[1], "BOS,1,0,");
        assert_eq!(lines[2], "\"a,b\",0.25,0.75,0");
        assert_eq!(lines[3], "\"say \"\"hi\"\"\n\",0.1,0.2,0.7");
        assert_eq!(lines.len(), 5);
        assert_eq!(file_name(&fig, Format::Csv), "glassbox-attention-L1H2.csv");
        let bars = Figure {
            name: "x".into(),
            title: "t".into(),
            body: Body::Bars { value_axis: "probability".into(), labels: vec![" a".into(), "".into()], values: vec![0.5, -1.5e-7] },
            source: None,
        };
        assert_eq!(to_csv(&bars), "label,probability\r\n\" a\",0.5\r\n,-0.00000015\r\n");
    }

    #[test]
    fn svg_escapes_labels_and_has_a_cell_per_value() {
        let xss = "<img src=x onerror=alert(1)>";
        let mut fig = heatmap(&["BOS", xss, "\"><script>alert(2)</script>"], vec![0.5; 9]);
        fig.title = format!("Prompt {xss} & more");
        let svg = to_svg(&fig);
        assert!(!svg.contains("<img") && !svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(svg.contains("&quot;&gt;&lt;script&gt;"));
        assert!(svg.contains("&amp; more"));
        assert_eq!(svg.matches("class=\"cell\"").count(), 9);
        assert!(svg.contains("data-row=\"2\" data-col=\"1\" data-value=\"0.5\""));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        // Every element opened is closed: a crude well-formedness check.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        // Control characters (invalid in XML 1.0) are drawn as their pictures.
        assert_eq!(shown("a\nb\u{1}", 10), "a\u{240a}b\u{2401}");
        assert_eq!(shown("abcdef", 4), "abc\u{2026}");
    }

    #[test]
    fn json_has_labels_values_and_nan_as_null() {
        let fig = heatmap(&["a", "b"], vec![1.0, f32::NAN, 0.5, 0.5]);
        let v: serde_json::Value = serde_json::from_str(&to_json(&fig)).unwrap();
        assert_eq!(v["kind"], "heatmap");
        assert_eq!(v["row_labels"], serde_json::json!(["a", "b"]));
        assert_eq!(v["values"], serde_json::json!([1.0, null, 0.5, 0.5]));
        assert_eq!(v["scale"]["kind"], "sequential");
        assert_eq!(v["name"], "attention-L1H2");
    }

    #[test]
    fn layouts_fit_their_items() {
        let table = Figure {
            name: "t".into(),
            title: "Scrubbing".into(),
            body: Body::Table { header: vec!["hypothesis".into(), "loss recovered".into()], rows: vec![vec!["a".into(), "0.9".into()]] },
            source: None,
        };
        let big = heatmap(&["x"; 200], vec![0.1; 40_000]);
        for fig in [table, big, heatmap(&[], vec![])] {
            let scene = layout(&fig);
            assert!(scene.width > 0.0 && scene.height > 0.0);
            for item in &scene.items {
                if let Item::Rect { x, y, w, h, .. } = item {
                    assert!(x + w <= scene.width + 0.5 && y + h <= scene.height + 0.5, "{item:?} outside {}x{}", scene.width, scene.height);
                }
            }
        }
    }
}
