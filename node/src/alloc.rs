//! The global allocator: mimalloc, wrapped to count live heap bytes so that
//! `INFO memory`'s `used_memory` is the real figure, not an estimate.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use mimalloc::MiMalloc;

pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The most `LIVE` has been (INFO's `used_memory_peak`).
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// Raises the peak after live bytes grew to `now` (a plain load unless a
/// new peak is reached).
#[inline]
fn note_peak(now: isize) {
    if now > PEAK.load(Relaxed) {
        PEAK.fetch_max(now, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if plain(layout.align(), layout.size()) {
            // SAFETY: mi_malloc returns a block of at least `size` bytes
            // aligned as `plain` requires, or null.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        };
        if !p.is_null() {
            let size = layout.size() as isize;
            note_peak(LIVE.fetch_add(size, Relaxed) + size);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if plain(layout.align(), layout.size()) {
            // SAFETY: as `alloc`, zeroed.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        };
        if !p.is_null() {
            let size = layout.size() as isize;
            note_peak(LIVE.fetch_add(size, Relaxed) + size);
        }
        p
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = if plain(layout.align(), new_size) {
            // SAFETY: `ptr` is a live mimalloc block (from this allocator);
            // mi_realloc returns a block of `new_size` bytes aligned as
            // `plain` requires, with the contents moved, or null (and
            // `ptr` left as it was).
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        };
        if !p.is_null() {
            let grown = new_size as isize - layout.size() as isize;
            note_peak(LIVE.fetch_add(grown, Relaxed) + grown);
        }
        p
    }
}

/// The alignment every block of at least this size that `mi_malloc`
/// returns has (mimalloc's `MI_MAX_ALIGN_SIZE`, C's `max_align_t`).
const MIN_ALIGN: usize = 16;

/// Whether a block of `size` bytes aligned to `align` comes from plain
/// `mi_malloc`: mimalloc aligns a block to its size class, so a size that
/// is a multiple of an alignment up to `MIN_ALIGN` is served aligned. The
/// `mimalloc` crate asks `mi_malloc_aligned` for every block, and
/// mimalloc 3 serves a block above 1 KiB whose size class is not a power
/// of two by over-allocating `align - 1` more bytes, on a slower path and
/// into the next size class: 48 KiB (a slab chunk of 1024 keys) took
/// 56 KiB, 64 KiB took 80 KiB, 1280 bytes 1536.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && size >= align && size.is_multiple_of(align)
}

extern "C" {
    fn mi_malloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_zalloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_realloc(p: *mut std::ffi::c_void, size: usize) -> *mut std::ffi::c_void;
    /// mimalloc's collection of the calling thread's heap: with `force`,
    /// free pages are returned to the system at once (mimalloc otherwise
    /// does so lazily, only when the thread next allocates or frees).
    fn mi_collect(force: bool);
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// mimalloc (v3)'s `mi_option_arena_eager_commit`, the fifth entry of its
/// `mi_option_t`.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// Settles how mimalloc takes memory from the system. It must run before
/// the first allocation, when mimalloc reserves its first arena, i.e.
/// before `main`: the binary calls it from a constructor.
///
/// By default (on Linux, where memory is overcommitted) mimalloc commits
/// each arena whole when it reserves it; committed on demand instead, the
/// resident set follows the heap much more closely. Measured with 1M small
/// string keys: 9 MiB less RSS at start-up and 8-9 bytes less per key
/// (docs/BENCHMARKS.md, "String keys").
pub fn configure() {
    // SAFETY: mi_option_set only stores an option value; it is part of
    // the mimalloc library the global allocator is built on.
    unsafe { mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
}

/// Returns the calling thread's free heap pages to the system.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks the calling thread's own heap; it is
    // part of the mimalloc library the global allocator is built on.
    unsafe { mi_collect(true) }
}

/// Bytes currently allocated on the heap by this process.
pub fn used_memory() -> u64 {
    LIVE.load(Relaxed).max(0) as u64
}

/// The most bytes the heap has held since start-up.
pub fn used_memory_peak() -> u64 {
    PEAK.load(Relaxed).max(0) as u64
}

/// Resident set size, from /proc (0 where unavailable).
pub fn rss() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size and alignment a Rust type can ask for gets a block
    /// aligned as asked, whichever path serves it, and keeps its contents
    /// through reallocation.
    #[test]
    fn blocks_are_aligned_as_asked_on_every_path() {
        let a = Counting;
        for align in [1usize, 2, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 15, 16, 24, 48, 1000, 1025, 1720, 4103, 57344, 300_000] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc size {size} align {align}");
                    std::ptr::write_bytes(p, 0xab, size);
                    let bigger = size * 3 + 5;
                    let q = a.realloc(p, layout, bigger);
                    assert_eq!(q as usize % align, 0, "realloc size {bigger} align {align}");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xab));
                    a.dealloc(q, Layout::from_size_align(bigger, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed size {size} align {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }

    #[test]
    fn plain_malloc_serves_what_max_align_covers() {
        assert!(plain(8, 57344));
        assert!(plain(16, 16));
        assert!(!plain(16, 8));
        // A 24-byte class is only 8-aligned.
        assert!(!plain(16, 24));
        assert!(!plain(32, 64));
    }
}
