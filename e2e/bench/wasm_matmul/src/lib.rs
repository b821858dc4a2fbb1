//! `C = A B` for row-major f32 `A [m, k]` (activations) and `B [k, n]` (weights), three ways,
//! exported to JavaScript (no imports): `gemm` (what candle calls), `packed_per_call` (a blocked
//! simd128 kernel that packs B on every call, as `gemm` does) and `prepacked` (the same kernel
//! on a B packed once by `prepack`, as weights could be at load). See `run.mjs`.

#![cfg(target_arch = "wasm32")]

use core::arch::wasm32::*;

/// Rows of A per tile, vectors of 4 columns per tile (NR = 8 columns), depth of a k block.
const MR: usize = 4;
const NV: usize = 2;
const NR: usize = 4 * NV;
const KC: usize = 512;

/// The MR x NR tile of an A block `[kc][MR]` times a B panel `[kc][NR]`.
#[inline(always)]
unsafe fn tile(kc: usize, mut a: *const f32, mut b: *const f32) -> [[v128; NV]; MR] {
    let mut acc = [[f32x4_splat(0.0); NV]; MR];
    for _ in 0..kc {
        let bv: [v128; NV] = core::array::from_fn(|v| unsafe { v128_load(b.add(4 * v) as *const v128) });
        for (r, acc) in acc.iter_mut().enumerate() {
            let ar = unsafe { v128_load32_splat(a.add(r) as *const u32) };
            for v in 0..NV {
                acc[v] = f32x4_add(acc[v], f32x4_mul(ar, bv[v]));
            }
        }
        a = unsafe { a.add(MR) };
        b = unsafe { b.add(NR) };
    }
    acc
}

/// A's columns `pc..pc + kc`, MR rows at a time: `[block][kc][MR]`, rows past m zero.
fn pack_a(m: usize, k: usize, pc: usize, kc: usize, a: &[f32], out: &mut [f32]) {
    for (ib, block) in out.chunks_mut(kc * MR).take(m.div_ceil(MR)).enumerate() {
        for r in 0..MR {
            let i = ib * MR + r;
            for p in 0..kc {
                block[p * MR + r] = if i < m { a[i * k + pc + p] } else { 0.0 };
            }
        }
    }
}

/// B's rows `pc..pc + kc`, in panels of NR columns: `[panel][kc][NR]`, columns past n zero.
fn pack_b_block(k_row0: usize, kc: usize, n: usize, b: &[f32], out: &mut [f32]) {
    for q in 0..n.div_ceil(NR) {
        for p in 0..kc {
            for j in 0..NR {
                let col = q * NR + j;
                out[(q * kc + p) * NR + j] = if col < n { b[(k_row0 + p) * n + col] } else { 0.0 };
            }
        }
    }
}

/// C (+)= the A blocks times the B panels of one k block.
fn multiply_block(m: usize, n: usize, kc: usize, first: bool, a_pack: &[f32], b_pack: &[f32], c: &mut [f32]) {
    for q in 0..n.div_ceil(NR) {
        let (j0, panel) = (q * NR, &b_pack[q * kc * NR..(q + 1) * kc * NR]);
        let width = NR.min(n - j0);
        for ib in 0..m.div_ceil(MR) {
            let t = unsafe { tile(kc, a_pack[ib * kc * MR..].as_ptr(), panel.as_ptr()) };
            for (r, t) in t.iter().enumerate().take(m - ib * MR) {
                let mut sums = [0f32; NR];
                for (v, t) in t.iter().enumerate() {
                    unsafe { v128_store(sums.as_mut_ptr().add(4 * v) as *mut v128, *t) };
                }
                let out = &mut c[(ib * MR + r) * n + j0..(ib * MR + r) * n + j0 + width];
                if first {
                    out.copy_from_slice(&sums[..width]);
                } else {
                    out.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
                }
            }
        }
    }
}

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
    let mut a_pack = vec![0f32; m.div_ceil(MR) * MR * KC.min(k)];
    let mut b_pack = vec![0f32; n.div_ceil(NR) * NR * KC.min(k)];
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        pack_a(m, k, pc, kc, a, &mut a_pack);
        pack_b_block(pc, kc, n, b, &mut b_pack);
        multiply_block(m, n, kc, pc == 0, &a_pack, &b_pack, c);
    }
}

/// B packed once, every k block after the other (`prepack`), for `prepacked`.
static mut PACKED: Vec<f32> = Vec::new();

#[no_mangle]
pub unsafe extern "C" fn prepack(k: usize, n: usize, b: *mut f32) {
    let b = unsafe { slice(b, k * n) };
    let per_row = n.div_ceil(NR) * NR;
    let mut out = vec![0f32; k * per_row];
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        pack_b_block(pc, kc, n, b, &mut out[pc * per_row..(pc + kc) * per_row]);
    }
    unsafe { PACKED = out };
}

#[no_mangle]
#[allow(static_mut_refs)]
pub unsafe extern "C" fn prepacked(m: usize, k: usize, n: usize, a: *mut f32, _b: *mut f32, c: *mut f32) {
    let (a, c) = unsafe { (slice(a, m * k), slice(c, m * n)) };
    let per_row = n.div_ceil(NR) * NR;
    let mut a_pack = vec![0f32; m.div_ceil(MR) * MR * KC.min(k)];
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        pack_a(m, k, pc, kc, a, &mut a_pack);
        multiply_block(m, n, kc, pc == 0, &a_pack, unsafe { &PACKED[pc * per_row..(pc + kc) * per_row] }, c);
    }
}
