//! Times the f32 `linear` against `linear_q8_0` / `linear_q4_0` (GGUF blocks dequantized in the
//! matmul) at GPT-2's MLP shape (k = 768, n = 3072) for m = 1, 16, 64 rows.
//!
//!   WGPU_BACKEND=vulkan cargo run --release -p glassbox-kernels --example bench_quant
//!
//! Per shape and kernel: 3 warm-up runs, then 20 timed runs, two ways (as bench_linear):
//! * batch: 20 ops recorded into ONE submission, synchronized by reading back the last output;
//!   total / 20.
//! * single: one op per submission, each followed by a read-back of its output.
//!
//! The f32 linear is `Recorder::linear` (its automatic kernel choice: the row block on CPU
//! adapters). Ratios are f32 time / quantized time (above 1: the quantized kernel is faster).

use std::time::Instant;

use glassbox_kernels::cpu::{quantize_q4_0, quantize_q8_0};
use glassbox_kernels::{GpuContext, GpuTensor, QuantFormat, Recorder};

const REPS: usize = 20;

/// (batch ms/op, single ms/op) of `op`.
fn time(ctx: &GpuContext, op: &dyn Fn(&mut Recorder<'_>) -> GpuTensor) -> (f64, f64) {
    let run = |reps: usize| {
        let mut r = ctx.recorder();
        let mut last = None;
        for _ in 0..reps {
            last = Some(op(&mut r));
        }
        r.submit();
        pollster::block_on(ctx.read(&[last.as_ref().unwrap()])).expect("read-back failed");
    };
    for _ in 0..3 {
        run(1);
    }
    let t0 = Instant::now();
    run(REPS);
    let batch = t0.elapsed().as_secs_f64() * 1e3 / REPS as f64;
    let t0 = Instant::now();
    for _ in 0..REPS {
        run(1);
    }
    let single = t0.elapsed().as_secs_f64() * 1e3 / REPS as f64;
    (batch, single)
}

fn main() {
    let ctx = pollster::block_on(GpuContext::new()).expect("no GPU adapter");
    println!("adapter: {} ({:?})", ctx.adapter_name(), ctx.adapter_info().backend);
    let (k, n) = (768usize, 3072usize);
    // W_t [n, k] (GGUF / nn.Linear layout) at GPT-2's weight scale; W = W_t^T [k, n] for f32.
    let wt: Vec<f32> = (0..n * k).map(|i| (((i * 104_729) % 1000) as f32 / 500.0 - 1.0) * 0.2).collect();
    let mut w = vec![0.0f32; k * n];
    for c in 0..n {
        for j in 0..k {
            w[j * n + c] = wt[c * k + j];
        }
    }
    let b: Vec<f32> = (0..n).map(|i| (i % 10) as f32 * 0.1).collect();
    let q8 = quantize_q8_0(&wt);
    let q4 = quantize_q4_0(&wt);
    println!("weights [{k} x {n}]: f32 {:.2} MB, Q8_0 {:.2} MB, Q4_0 {:.2} MB", (w.len() * 4) as f64 / 1e6, q8.len() as f64 / 1e6, q4.len() as f64 / 1e6);
    let tw = ctx.upload(&w, &[k, n]);
    let tq8 = ctx.upload_quant(QuantFormat::Q8_0, &q8, n, k);
    let tq4 = ctx.upload_quant(QuantFormat::Q4_0, &q4, n, k);
    let tb = ctx.upload(&b, &[n]);

    for m in [1usize, 16, 64] {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let tx = ctx.upload(&x, &[m, k]);
        let f32_t = time(&ctx, &|r| r.linear(&tx, &tw, Some(&tb)));
        let q8_t = time(&ctx, &|r| r.linear_quant(&tx, &tq8, Some(&tb)));
        let q4_t = time(&ctx, &|r| r.linear_quant(&tx, &tq4, Some(&tb)));
        let gflops = |ms: f64| 2.0 * (m * k * n) as f64 / (ms * 1e-3) / 1e9;
        println!("m = {m:>2}, k = {k}, n = {n}:");
        for (name, (batch, single)) in [("f32 linear", f32_t), ("q8_0", q8_t), ("q4_0", q4_t)] {
            println!(
                "  {name:<10} batch {batch:7.2} ms/op ({:6.2} GFLOP/s)  single {single:7.2} ms/op  \
                 f32/this: batch {:.2}x, single {:.2}x",
                gflops(batch),
                f32_t.0 / batch,
                f32_t.1 / single,
            );
        }
    }
}
