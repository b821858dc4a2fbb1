//! The native peer of `run.mjs`: `gemm` on one thread (AVX2 or AVX-512 with FMA, detected at run
//! time, as candle runs it natively) on the same shapes and values, median of 15 after 4
//! warm-ups; one JSON line per shape. `run.mjs` runs it after the browser.

use std::time::Instant;

fn main() {
    let shapes: Vec<[usize; 3]> = parse_shapes(&std::env::args().nth(1).expect("shapes as m,k,n;m,k,n"));
    for [m, k, n] in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![0f32; m * n];
        let mut times = Vec::new();
        for r in 0..19 {
            let t = Instant::now();
            // SAFETY: a, b and c hold [m, k], [k, n] and [m, n], row-major.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            if r >= 4 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        let ms = times[7];
        println!(
            "{{\"shape\":\"{m} x {k} x {n}\",\"native_gemm_ms\":{ms:.3},\"native_gemm_gflops\":{:.1},\"check\":{}}}",
            2.0 * (m * k * n) as f64 / ms / 1e6,
            c[m * n / 2]
        );
    }
}

fn parse_shapes(s: &str) -> Vec<[usize; 3]> {
    s.split(';')
        .map(|t| {
            let v: Vec<usize> = t.split(',').map(|x| x.parse().expect("a number")).collect();
            [v[0], v[1], v[2]]
        })
        .collect()
}
