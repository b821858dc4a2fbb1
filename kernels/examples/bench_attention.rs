//! Times causal attention on the default adapter: the fused `attention` kernel (one dispatch
//! per layer) against `attn_scores`, `softmax` and `attn_z` (three), GPT-2-small's heads.
//!
//!   WGPU_BACKEND=vulkan cargo run --release -p glassbox-kernels --example bench_attention
//!
//! For each context length: 2 warm-up runs, then 5 timed runs of 12 heads x d_head 64, each
//! one submission followed by a read-back of z (submission and read-back included); the
//! median is printed.

use std::time::Instant;

use glassbox_kernels::GpuContext;

fn main() {
    let ctx = pollster::block_on(GpuContext::new()).expect("no GPU adapter");
    println!("adapter: {} ({:?})", ctx.adapter_name(), ctx.adapter_info().backend);
    let (nh, dh) = (12usize, 64usize);
    for pos in [16usize, 64, 256, 1024] {
        let gen = |seed: usize| -> Vec<f32> { (0..pos * nh * dh).map(|i| (((i * 7919 + seed) % 1000) as f32 / 500.0) - 1.0).collect() };
        let shape = [pos, nh * dh];
        let (q, k, v) = (ctx.upload(&gen(1), &shape), ctx.upload(&gen(2), &shape), ctx.upload(&gen(3), &shape));
        for fused in [false, true] {
            let once = || {
                let mut r = ctx.recorder();
                let z = if fused {
                    r.attention(&q, &k, &v, 1, nh, nh, dh).2
                } else {
                    let s = r.attn_scores(&q, &k, 1, nh, nh, dh);
                    let p = r.softmax(&s);
                    r.attn_z(&p, &v, 1, nh, nh, dh)
                };
                r.submit();
                pollster::block_on(ctx.read(&[&z])).expect("read-back failed");
            };
            once();
            once();
            let mut ms: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    once();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            let what = if fused { "attention (fused)" } else { "attn_scores + softmax + attn_z" };
            println!("pos {pos:5}: {what}: {:.2} ms", ms[2]);
        }
    }
}
