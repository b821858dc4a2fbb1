//! `C = A W` for row-major f32 `A [m, k]` (activations) and `W [k, n]` (weights), three ways,
//! exported to JavaScript (no imports): `gemm` (what candle calls), `packed_per_call` (the app's
//! own simd128 kernel, `core/src/cpu/matmul.rs`, compiled in here as it is, with W packed on
//! every call, as `gemm` packs it) and `prepacked` (the same kernel on a W packed once by
//! `prepack`, as the app packs weights at load). See `run.mjs`.

#![cfg(target_arch = "wasm32")]

#[path = "../../../../core/src/cpu/matmul.rs"]
#[allow(dead_code)] // the app's accessors (`dims`, `row`) are not timed here
mod matmul;

use matmul::PackedMatrix;

unsafe fn slice<'a>(p: *mut f32, n: usize) -> &'a mut [f32] {
    unsafe { core::slice::from_raw_parts_mut(p, n) }
}

#[no_mangle]
pub extern "C" fn alloc_f32(n: usize) -> *mut f32 {
    Box::leak(vec![0f32; n].into_boxed_slice()).as_mut_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn gemm(m: usize, k: usize, n: usize, a: *mut f32, b: *mut f32, c: *mut f32) {
    unsafe {
        gemm::gemm(m, n, k, c, 1, n as isize, false, a, 1, k as isize, b, 1, n as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
    }
}

#[no_mangle]
pub unsafe extern "C" fn packed_per_call(m: usize, k: usize, n: usize, a: *mut f32, b: *mut f32, c: *mut f32) {
    let (a, b, c) = unsafe { (slice(a, m * k), slice(b, k * n), slice(c, m * n)) };
    PackedMatrix::pack(k, n, b).matmul(m, a, c);
}

/// W packed once by `prepack`, for `prepacked`.
static mut PACKED: Option<PackedMatrix> = None;

#[no_mangle]
pub unsafe extern "C" fn prepack(k: usize, n: usize, b: *mut f32) {
    unsafe { PACKED = Some(PackedMatrix::pack(k, n, slice(b, k * n))) };
}

#[no_mangle]
#[allow(static_mut_refs)]
pub unsafe extern "C" fn prepacked(m: usize, k: usize, n: usize, a: *mut f32, _b: *mut f32, c: *mut f32) {
    let (a, c) = unsafe { (slice(a, m * k), slice(c, m * n)) };
    unsafe { PACKED.as_ref() }.expect("prepack first").matmul(m, a, c);
}
