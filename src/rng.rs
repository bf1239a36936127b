//! A tiny deterministic PRNG (xorshift64*) for jitter and sampling: no dependency, no shared state.

/// Advances `state` (which must be non-zero) and returns the next pseudo-random value.
pub fn next(state: &mut u64) -> u64 {
    debug_assert!(*state != 0, "xorshift state must be non-zero");
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}
