//! Times `linear` (x @ w + b) on the default adapter.
//!
//!   WGPU_BACKEND=vulkan cargo run --release -p glassbox-kernels --example bench_linear
//!
//! For each shape and each kernel (tiled / row-block; `linear` picks row-block on CPU adapters
//! and for m < 64): 3 warm-up runs, then 20 timed runs. Two numbers:
//! * throughput: 20 linears recorded into ONE submission, synchronized by reading back the last
//!   output; total / 20 (includes one small read-back, amortized).
//! * latency: one linear per submission, each followed by a read-back of its output (so this
//!   includes submission and read-back overhead).

use std::time::Instant;

use glassbox_kernels::{GpuContext, LinearKernel};

fn main() {
    let ctx = pollster::block_on(GpuContext::new()).expect("no GPU adapter");
    println!("adapter: {} ({:?})", ctx.adapter_name(), ctx.adapter_info().backend);
    for &(m, k, n) in &[(1usize, 768usize, 3072usize), (16, 768, 3072), (64, 768, 768), (256, 768, 3072)] {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 1000) as f32 / 500.0) - 1.0).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 10) as f32 * 0.1).collect();
        let tx = ctx.upload(&x, &[m, k]);
        let tw = ctx.upload(&w, &[k, n]);
        let tb = ctx.upload(&b, &[n]);

        for kernel in [LinearKernel::Tiled, LinearKernel::RowBlock] {
            let run_batch = |reps: usize| {
                let mut r = ctx.recorder();
                let mut last = None;
                for _ in 0..reps {
                    last = Some(r.linear_with(&tx, &tw, Some(&tb), kernel));
                }
                r.submit();
                pollster::block_on(ctx.read(&[last.as_ref().unwrap()])).expect("read-back failed");
            };
            for _ in 0..3 {
                run_batch(1);
            }
            let reps = 20;
            let t0 = Instant::now();
            run_batch(reps);
            let batch_ms = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;

            let t0 = Instant::now();
            for _ in 0..reps {
                run_batch(1);
            }
            let single_ms = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;

            let gflops = 2.0 * (m * k * n) as f64 / (batch_ms * 1e-3) / 1e9;
            println!(
                "linear {m}x{k}x{n} {kernel:?}: {batch_ms:.2} ms/op in one submission \
             ({gflops:.2} GFLOP/s), {single_ms:.2} ms/op with a read-back each"
            );
        }
    }
}
