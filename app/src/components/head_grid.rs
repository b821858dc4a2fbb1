use std::sync::Arc;

use leptos::html::Canvas;
use leptos::prelude::*;

use crate::analysis::RunView;

/// Every head of a layer as a small picture of its attention pattern (query rows, key
/// columns, darker = more attention); clicking one shows it large.
#[component]
pub fn HeadGrid(
    #[prop(into)] run: Signal<Option<Arc<RunView>>>,
    #[prop(into)] layer: Signal<usize>,
    #[prop(into)] head: Signal<usize>,
    on_head: Callback<usize>,
) -> impl IntoView {
    // The thumbnails stay from run to run (a new canvas per head and run cost a layout, a paint
    // and a commit of new canvases in the frame that shows a run); only a new layer or head
    // count builds them again. Each repaints when the run changes.
    let shape = Memo::new(move |_| {
        let l = layer.get();
        run.with(|r| r.as_ref().map(|r| (l, r.n_heads(l))))
    });
    move || {
        let (l, n_heads) = shape.get()?;
        let n0 = run.with_untracked(|r| r.as_ref().map_or(0, |r| r.n_tokens())).to_string();
        let heads = (0..n_heads)
            .map(|h| {
                let canvas = NodeRef::<Canvas>::new();
                Effect::new(move |_| {
                    let Some(c) = canvas.get() else { return };
                    let Some(run) = run.get() else { return };
                    let n = run.n_tokens();
                    let pattern = run.head_pattern(l, h).map(<[f32]>::to_vec).unwrap_or_default();
                    super::after_next_frame(move || {
                        let rgba: Vec<u8> = pattern
                            .iter()
                            .flat_map(|&v| {
                                let a = v.clamp(0.0, 1.0).sqrt();
                                let shade = |full: f32| (255.0 - a * (255.0 - full)) as u8;
                                [shade(37.0), shade(99.0), shade(235.0), 255]
                            })
                            .collect();
                        if c.width() != n as u32 || c.height() != n as u32 {
                            c.set_width(n as u32);
                            c.set_height(n as u32);
                        }
                        super::paint(&c, n, n, &rgba);
                    });
                });
                view! {
                    <button
                        class="head-thumb"
                        class:selected=move || head.get() == h
                        aria-pressed=move || (head.get() == h).to_string()
                        data-testid="head-thumb"
                        data-head=h
                        title=format!("layer {l}, head {h}: click to show it large")
                        on:click=move |_| on_head.run(h)
                    >
                        <canvas node_ref=canvas class="thumb-canvas" width=n0.clone() height=n0.clone()></canvas>
                        <span class="thumb-label">{format!("L{l}H{h}")}</span>
                    </button>
                }
            })
            .collect_view();
        Some(view! { <div class="head-grid" data-testid="head-grid">{heads}</div> })
    }
}
