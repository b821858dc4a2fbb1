fn main() {
    let _ = glassbox_core::CpuBackend::new();
    leptos::mount::mount_to_body(|| leptos::view! { <p>"hi"</p> });
}
