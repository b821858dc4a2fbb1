//! How long a GPU context takes to start (issue 13's cold-load breakdown): the device alone,
//! which is what `GpuContext::new` does now (kernels compile at their first dispatch), and
//! compiling every kernel on top, which is what it used to do.
//!
//!   WGPU_BACKEND=vulkan cargo run --release -p glassbox-kernels --example bench_context
use std::time::Instant;

fn main() {
    for i in 0..4 {
        let t = Instant::now();
        let ctx = pollster::block_on(glassbox_kernels::GpuContext::new()).expect("a GPU adapter");
        let start = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        pollster::block_on(ctx.compile_all()).expect("every kernel compiles");
        let all = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "run {i}: context {start:.1} ms, then all {} kernels {all:.1} ms ({})",
            glassbox_kernels::GpuContext::registered_kernels(),
            ctx.adapter_name()
        );
    }
}
