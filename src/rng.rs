//! Tiny deterministic PRNG steps over a caller-owned `u64` state: no dependency, no shared state.
//!
//! Two steps share the one state type. [`next`] (xorshift64*) serves jitter, arrivals, durations and template
//! randomness; [`next_xorshift64`] (plain xorshift64) draws synthetic prompts. They are different sequences, and
//! both are kept because a seed's outputs are pinned: changing the prompt step would change every synthetic prompt
//! (and so the prompt token counts) that a given `--seed` produces.

/// xorshift64*: advances `state` (which must be non-zero) and returns the next pseudo-random value.
pub fn next(state: &mut u64) -> u64 {
    debug_assert!(*state != 0, "xorshift state must be non-zero");
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Plain xorshift64 (shifts 13, 7, 17): advances `state` (never zero) and returns the new state. The synthetic
/// prompts' sequence; see the module note for why it is not [`next`].
pub fn next_xorshift64(state: &mut u64) -> u64 {
    debug_assert!(*state != 0, "xorshift state must be non-zero");
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_reference_values() {
        let mut state = 1u64;
        assert_eq!(next_xorshift64(&mut state), 1082269761);
        assert_eq!(state, 1082269761);
        let mut state = 1u64;
        assert_eq!(next(&mut state), 5180492295206395165);
        assert_eq!(state, 33554433);
    }
}
