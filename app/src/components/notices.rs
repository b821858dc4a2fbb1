use leptos::prelude::*;

/// How serious a notice is (its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Info,
    Warning,
}

/// One message above the page's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
    /// Longer technical detail, shown folded.
    pub detail: Option<String>,
}

impl Notice {
    pub fn new(kind: NoticeKind, text: impl Into<String>) -> Notice {
        Notice { kind, text: text.into(), detail: None }
    }
    pub fn detail(mut self, d: impl Into<String>) -> Notice {
        self.detail = Some(d.into());
        self
    }
}

/// A list of notices (URL problems, backend fallbacks).
#[component]
pub fn Notices(
    /// The notices to show, in order.
    #[prop(into)]
    notices: Signal<Vec<Notice>>,
) -> impl IntoView {
    move || {
        notices
            .get()
            .into_iter()
            .map(|n| {
                let class = match n.kind {
                    NoticeKind::Info => "notice info",
                    NoticeKind::Warning => "notice warning",
                };
                view! {
                    <div class=class data-testid="notice" role="status">
                        <span>{n.text}</span>
                        {n.detail.map(|d| view! { <details><summary>"details"</summary><code>{d}</code></details> })}
                    </div>
                }
            })
            .collect_view()
    }
}
