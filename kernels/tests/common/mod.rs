//! Helpers shared by the kernel test binaries: one GpuContext per binary (creating devices on
//! lavapipe is slow), read-back, and seeded random inputs. If no adapter is found every GPU
//! test FAILS with the reason: an adapter is expected wherever these tests run.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;

use glassbox_kernels::{GpuContext, GpuTensor};
use rand::rngs::StdRng;
use rand::Rng;

pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let r = CTX.get_or_init(|| {
        let c = pollster::block_on(GpuContext::new()).map_err(|e| e.to_string())?;
        // Every kernel compiled at once, inside an error scope: a WGSL error fails here with
        // the compiler's message (a model compiles its kernels at first use).
        pollster::block_on(c.compile_all()).map_err(|e| e.to_string())?;
        eprintln!("kernel tests on adapter: {} ({:?})", c.adapter_name(), c.adapter_info().backend);
        Ok(c)
    });
    match r {
        Ok(c) => c,
        Err(e) => panic!(
            "GpuContext::new() failed, so the kernels cannot be tested: {e}\n\
             (expected a GPU adapter; on a CPU-only machine install mesa-vulkan-drivers and run \
             with WGPU_BACKEND=vulkan)"
        ),
    }
}

pub fn read(ts: &[&GpuTensor]) -> Vec<Vec<f32>> {
    pollster::block_on(ctx().read(ts)).expect("read-back failed")
}

pub fn read1(t: &GpuTensor) -> Vec<f32> {
    read(&[t]).pop().unwrap()
}

pub fn rand_vec(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}
