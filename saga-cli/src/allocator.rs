//! The process's memory allocator: mimalloc, told to give freed memory back soon.
//!
//! This is the binary's one `unsafe` block (the workspace forbids `unsafe`; this crate denies it
//! and allows it here): a call into mimalloc's C API that sets one of its options.

/// glibc's allocator spent about a third of the CPU of an imp-summoning run in malloc, free and
/// consolidation; mimalloc's thread-local free lists take most of that away.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `include/mimalloc.h` (the same in its v2 and v3).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before it gives them back to the system: mimalloc v2's
/// default. v3's default of a second kept `run imp-summoning --orders 10000` at 66-74 MB of
/// peak RSS, most of it pages freed within the last second; with 10 ms (and the runtime's
/// smaller relay window and page cache) it peaks at 45-48 MB, at the cost of more page faults
/// (see "Memory" in docs/design.md).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Tunes the allocator and the kernel's paging for this process; called first thing in `main`.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub(crate) fn tune() {
    // SAFETY: `mi_option_set_default` writes one entry of mimalloc's static option table, at an
    // index mimalloc checks against the table's bounds, unless the environment set that option;
    // it takes no pointer. It runs before `main` starts any thread, and mimalloc reads the
    // option afresh whenever it purges, so nothing has cached the old value.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS);
    }
    // The kernel backs a fault in a transparent huge page with 2 MiB of zeroed memory. mimalloc
    // returns freed pages to the kernel and faults them in again, so with huge pages on, zeroing
    // them took 11-15% of an imp-summoning run's CPU. Without them a fault zeroes 4 KiB.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
