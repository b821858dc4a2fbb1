//! The GPU backend owns its context: dropping the backend, and every model and tensor made with
//! it, frees the device, its pipelines and its buffers. (It used to be leaked, one device per
//! `GpuBackend::new`; the app creates a backend each time it starts an engine.)
//!
//! One binary of its own, so that the process-wide count of live contexts sees only this file's
//! backends; the tests here take a lock for the same reason.

mod common;

use std::sync::{Arc, Mutex, Weak};

use glassbox_core::{GpuBackend, HookedTransformer, Intervention, InterventionOp, RunRequest};
use glassbox_kernels::GpuContext;

static LOCK: Mutex<()> = Mutex::new(());

fn new_gpu() -> GpuBackend {
    pollster::block_on(GpuBackend::new()).expect("no GPU adapter: install mesa-vulkan-drivers (lavapipe) and set WGPU_BACKEND=vulkan")
}

#[test]
fn dropping_the_backend_frees_its_context_every_time() {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = common::fixture("gpt2-tiny");
    let req = RunRequest::new(f.tokens.clone());
    let base = GpuContext::live_contexts();
    let mut first: Option<Vec<f32>> = None;
    for i in 0..20 {
        let gpu = new_gpu();
        assert_eq!(GpuContext::live_contexts(), base + 1, "iteration {i}: one context while the backend lives");
        let weak: Weak<GpuContext> = Arc::downgrade(gpu.context());
        let model = HookedTransformer::new(&gpu, f.cfg.clone(), &f.weights).unwrap();
        let out = pollster::block_on(model.run(&gpu, &req)).unwrap();
        assert!(out.logits.data.iter().all(|v| v.is_finite()), "iteration {i}: logits are finite");
        match &first {
            None => first = Some(out.logits.data.clone()),
            Some(l) => assert_eq!(&out.logits.data, l, "iteration {i}: a fresh backend computes the same logits"),
        }
        drop(out);
        drop(model);
        drop(gpu);
        assert!(weak.upgrade().is_none(), "iteration {i}: the context outlived its backend and model");
        assert_eq!(GpuContext::live_contexts(), base, "iteration {i}: a context is still alive after the drop");
    }
}

/// `destroy_device` (the app's way to simulate a lost device) still works on an owned context,
/// and a destroyed device's context is freed like any other. (Natively, recording on a destroyed
/// device panics inside wgpu's `create_buffer_init`, so no run is attempted here.)
#[test]
fn a_destroyed_device_is_still_freed() {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = common::fixture("gpt2-tiny");
    let base = GpuContext::live_contexts();
    let gpu = new_gpu();
    let weak = Arc::downgrade(gpu.context());
    let model = HookedTransformer::new(&gpu, f.cfg.clone(), &f.weights).unwrap();
    pollster::block_on(model.run(&gpu, &RunRequest::new(f.tokens.clone()))).unwrap();
    gpu.destroy_device();
    drop(model);
    drop(gpu);
    assert!(weak.upgrade().is_none(), "the context of a destroyed device outlived its backend");
    assert_eq!(GpuContext::live_contexts(), base);
}

/// GPU memory stays bounded under repetition: 500 runs (every hook cached) leave the live
/// storage-buffer bytes exactly where the first run left them, and dropping the model and
/// backend returns every byte they allocated.
#[test]
fn five_hundred_runs_leave_gpu_buffer_bytes_where_they_were() {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = common::fixture("gpt2-tiny");
    let base = GpuContext::live_buffer_bytes();
    let gpu = new_gpu();
    let model = HookedTransformer::new(&gpu, f.cfg.clone(), &f.weights).unwrap();
    let weights = GpuContext::live_buffer_bytes() - base;
    assert!(weights > 0, "the model's weights are counted as live GPU buffers");
    // Plain runs and runs with an intervention, alternately (an intervention uploads its own
    // buffers, which must go with the run).
    let plain = RunRequest::new(f.tokens.clone()).cache_all();
    let ablated = plain.clone().intervene(Intervention::new("blocks.0.attn.hook_z", InterventionOp::Zero).at_head(0));
    let mut after_first = 0;
    let (mut pooled_after_two, reuses) = (0, GpuContext::pool_reuses());
    for i in 0..500 {
        let out = pollster::block_on(model.run(&gpu, if i % 2 == 0 { &plain } else { &ablated })).unwrap();
        assert!(!out.cache.is_empty(), "run {i}: hooks were cached");
        drop(out);
        let live = GpuContext::live_buffer_bytes();
        if i == 0 {
            after_first = live;
        } else {
            assert_eq!(live, after_first, "run {i}: live GPU buffer bytes changed ({after_first} -> {live})");
        }
        // A run's dropped outputs wait in the context's pool for the next run, which takes them
        // again: after one run of each kind the pool stops growing.
        let pooled = GpuContext::pooled_buffer_bytes();
        assert!(pooled <= glassbox_kernels::MAX_POOLED_BYTES, "run {i}: {pooled} bytes pooled");
        if i == 1 {
            pooled_after_two = pooled;
        } else if i > 1 {
            assert_eq!(pooled, pooled_after_two, "run {i}: pooled GPU buffer bytes changed");
        }
    }
    assert!(pooled_after_two > 0, "op outputs went to the pool");
    assert!(GpuContext::pool_reuses() - reuses > 400 * 10, "later runs reused pooled buffers ({} reuses)", GpuContext::pool_reuses() - reuses);
    // Nothing of a run outlives it: after a run, only what the model holds is alive.
    assert_eq!(after_first - base, weights, "a run left buffers alive after its output was dropped");
    drop(model);
    drop(gpu);
    assert_eq!(GpuContext::live_buffer_bytes(), base, "dropping the model and backend freed every buffer");
    assert_eq!(GpuContext::pooled_buffer_bytes(), 0, "and their pool");
}

/// A backend compiles a kernel at its first dispatch: a fresh one has compiled none, a model
/// compiles the kernels its forward pass runs and no others, a second run compiles nothing
/// more, and `compile_all` (the kernel tests' check) compiles every one without an error.
#[test]
fn kernels_are_compiled_at_first_use_and_only_those_the_model_runs() {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let total = GpuContext::registered_kernels();
    for name in ["attn-only-tiny", "gpt2-tiny"] {
        let f = common::fixture(name);
        let gpu = new_gpu();
        assert_eq!(gpu.context().compiled_kernels(), 0, "{name}: a new backend compiles nothing");
        let model = HookedTransformer::new(&gpu, f.cfg.clone(), &f.weights).unwrap();
        let req = RunRequest::new(f.tokens.clone()).cache_all();
        pollster::block_on(model.run(&gpu, &req)).unwrap();
        let n = gpu.context().compiled_kernels();
        assert!(n > 0 && n < total, "{name}: {n} of {total} kernels compiled by one forward pass");
        pollster::block_on(model.run(&gpu, &req)).unwrap();
        assert_eq!(gpu.context().compiled_kernels(), n, "{name}: a second run compiles nothing more");
        pollster::block_on(gpu.context().compile_all()).expect("every kernel compiles");
        assert_eq!(gpu.context().compiled_kernels(), total);
        eprintln!("{name}: {n} of {total} kernels compiled by its forward pass");
    }
}
