//! ssebench patch: cache prefetch hints, so that the misses on a batch of tasks' memory overlap instead of coming
//! one after another (see PATCH.md).

/// Cache line size assumed for the hints.
pub(crate) const LINE_BYTES: usize = 64;

/// Asks the CPU to bring the line holding `ptr` into its caches. A hint only: it never faults, reads nothing the
/// program can see, and does nothing on targets without one.
#[inline(always)]
pub(crate) fn line<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it does not dereference `ptr` in the language's sense and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Hints every line of `bytes` bytes from `ptr`.
#[inline(always)]
pub(crate) fn span<T>(ptr: *const T, bytes: usize) {
    let start = ptr.cast::<u8>();
    let mut offset = 0;
    while offset < bytes {
        line(start.wrapping_add(offset));
        offset += LINE_BYTES;
    }
}
