//! A memory cap for fuzzing: a global allocator (declared by the binary and the tests) that
//! refuses any single allocation over [`MAX_ONE`] and any growth of the live total over
//! [`MAX_LIVE`]. A refusal prints which input asked (target and index, for `--only`) and aborts:
//! an allocation sized by a file's header is a finding even when the machine could afford it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation allowed (256 MiB: the fixtures need a few MB).
pub const MAX_ONE: usize = 256 << 20;
/// The largest live total allowed (2 GiB over all threads).
pub const MAX_LIVE: usize = 2 << 30;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK_ONE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CURRENT: Cell<(u64, u64)> = const { Cell::new((u64::MAX, 0)) };
}

/// Records which input this thread runs (for the message on a refusal).
pub fn set_current(target: u64, index: u64) {
    CURRENT.with(|c| c.set((target, index)));
}

/// The bytes allocated and not yet freed, over all threads.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The largest single allocation seen so far.
pub fn peak_allocation() -> usize {
    PEAK_ONE.load(Ordering::Relaxed)
}

/// Records a new largest allocation (a plain load first: an atomic read-modify-write on every
/// allocation would cost more than the fuzzing).
fn note_peak(size: usize) {
    if size > PEAK_ONE.load(Ordering::Relaxed) {
        PEAK_ONE.fetch_max(size, Ordering::Relaxed);
    }
}

/// The capped allocator.
pub struct Capped;

fn refuse(size: usize) {
    let (target, index) = CURRENT.try_with(|c| c.get()).unwrap_or((u64::MAX, 0));
    let name = super::Target::ALL.get(target as usize).map_or("?", |t| t.name());
    // Formatting integers and &str allocates nothing; stderr is unbuffered.
    let _ = writeln!(
        std::io::stderr(),
        "glassbox-fuzz: memory cap: an allocation of {size} bytes (live {} bytes) while running target {name} input #{index}; replay with --target {name} --only {index}",
        LIVE.load(Ordering::Relaxed)
    );
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        note_peak(size);
        if size > MAX_ONE || LIVE.fetch_add(size, Ordering::Relaxed) + size > MAX_LIVE {
            if size <= MAX_ONE {
                LIVE.fetch_sub(size, Ordering::Relaxed);
            }
            refuse(size);
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        note_peak(new_size);
        if new_size > old {
            let grow = new_size - old;
            if new_size > MAX_ONE || LIVE.fetch_add(grow, Ordering::Relaxed) + grow > MAX_LIVE {
                if new_size <= MAX_ONE {
                    LIVE.fetch_sub(grow, Ordering::Relaxed);
                }
                refuse(new_size);
                return std::ptr::null_mut();
            }
        } else {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            // The old block stays: undo the accounting.
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            } else {
                LIVE.fetch_add(old - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}
