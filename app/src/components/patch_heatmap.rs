use std::sync::Arc;

use leptos::prelude::*;

use super::Legend;
use crate::causal::{PatchCell, PatchView};

/// A patching sweep's result as a labelled heatmap: layers (or layer x head) by positions
/// (token labels) or by heads. Shaded by the normalised effect (0 = the corrupted run, 1 = the
/// clean run; blue above 0, red below) or by the raw metric; hover shows both; clicking a cell
/// opens that patched run.
#[component]
pub fn PatchHeatmap(
    view: Arc<PatchView>,
    /// Shade by the raw metric instead of the normalised one.
    #[prop(into)]
    raw: Signal<bool>,
    #[prop(into)] picked: Signal<Option<PatchCell>>,
    on_cell: Callback<PatchCell>,
    /// A padded model's padding token: its positions get no column (the last position, where
    /// the readout is, stays).
    #[prop(optional_no_strip)]
    pad: Option<u32>,
) -> impl IntoView {
    let grid = view.grid();
    let cols: Vec<usize> = if grid.cols_are_positions && pad.is_some() && view.clean_ids.len() == grid.cols {
        crate::analysis::columns(&crate::analysis::shown_positions(&view.clean_ids, pad), grid.cols)
    } else {
        (0..grid.cols).collect()
    };
    let path = view.path.is_some();
    // Small grids (layer x head, a layer per row) carry their values as text too.
    let with_text = grid.rows * grid.cols <= 160 && !grid.cols_are_positions;
    let r = &view.result;
    let raw_scale = r.values.iter().copied().filter(|x| x.is_finite()).fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let header = cols
        .iter()
        .map(|&col| &grid.col_labels[col])
        .map(|c| {
            let shown = if grid.cols_are_positions { super::token_label(c.split_once(' ').map_or(c.as_str(), |x| x.1)) } else { c.clone() };
            view! { <th class="tok-col" title=c.clone()>{shown}</th> }
        })
        .collect_view();
    let rows = (0..grid.rows)
        .map(|row| {
            let cells = cols
                .iter()
                .map(|&col| {
                    let (i, cell) = view.cell(row, col);
                    let (value, norm) = (r.values[i], r.normalized[i]);
                    let where_ = match (cell.head, cell.pos) {
                        (Some(h), Some(p)) => format!("L{}H{h}, position {p}", cell.layer),
                        (Some(h), None) => format!("L{}H{h}, all positions", cell.layer),
                        (None, Some(p)) => format!("layer {}, position {p}", cell.layer),
                        (None, None) => format!("layer {}, all positions", cell.layer),
                    };
                    let title = if path {
                        if value.is_finite() {
                            format!("{where_} as the sender: metric {value:.4}, normalised {norm:.3} (0 no effect along the path, \u{2212}1 the whole corrupted run).")
                        } else {
                            format!("{where_} cannot reach the receivers (they are computed before it).")
                        }
                    } else {
                        format!("{where_}: metric {value:.4}, normalised {norm:.3} (corrupted 0, clean 1). Click to open this patched run.")
                    };
                    let shade = move || {
                        let x = if raw.get() { value / raw_scale } else { norm };
                        if x.is_finite() {
                            format!("{:.3}", x.clamp(-1.0, 1.0).abs())
                        } else {
                            "0".into()
                        }
                    };
                    let negative = move || if raw.get() { value < 0.0 } else { norm < 0.0 };
                    view! {
                        <td
                            class="pc"
                            class:neg=negative
                            class:picked=move || picked.get() == Some(cell)
                            class:txt=with_text
                            data-testid="patch-cell"
                            data-layer=cell.layer
                            data-head=cell.head.map(|h| h.to_string()).unwrap_or_default()
                            data-pos=cell.pos.map(|p| p.to_string()).unwrap_or_default()
                            data-value=format!("{value:.6}")
                            data-normalized=format!("{norm:.6}")
                            title=title
                            style:--a=shade
                            on:click=move |_| on_cell.run(cell)
                        >
                            {move || with_text.then(|| {
                                let x = if raw.get() { value } else { norm };
                                if x.is_finite() { format!("{x:.2}") } else { "\u{00b7}".to_string() }
                            })}
                        </td>
                    }
                })
                .collect_view();
            view! { <tr><th class="row-label">{grid.row_labels[row].clone()}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-wrap" tabindex="0">
            <table class="patch-grid" data-testid="patch-heatmap">
                <thead><tr><th></th>{header}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {move || if raw.get() {
            view! { <Legend label="metric of the patched run" low=format!("{:.2}", -raw_scale) high=format!("{raw_scale:.2}") palette="pdiv" /> }.into_any()
        } else if path {
            view! { <Legend label="normalised: 0 = no effect along the path, \u{2212}1 = the whole corrupted run" low="\u{2212}1" high="1" palette="pdiv" /> }.into_any()
        } else {
            view! { <Legend label="normalised: 0 = corrupted run, 1 = clean run" low="\u{2212}1" high="1" palette="pdiv" /> }.into_any()
        }}
    }
}
