//! Tiny deterministic PRNG steps over a caller-owned `u64` state, the seed mixing that starts them, and the
//! draws made from them: no dependency, no shared state.
//!
//! Two steps share the one state type. [`next`] (xorshift64*) serves jitter, arrivals, durations and template
//! randomness; [`next_xorshift64`] (plain xorshift64) draws synthetic prompts. They are different sequences, and
//! both are kept because a seed's outputs are pinned: changing the prompt step would change every synthetic prompt
//! (and so the prompt token counts) that a given `--seed` produces.

use std::time::Duration;

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

/// The golden ratio in 64 bits: multiplying by it spreads small, consecutive keys over the whole range.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A non-zero state for the draws of `key` (a core, or a user and stream) under `seed`: `seed` xor `key` times the
/// golden ratio, odd. Cheap and weakly mixed: callers that start a sequence from it take one [`next`] first, whose
/// output function finishes the mixing.
pub fn seed_state(seed: u64, key: u64) -> u64 {
    (seed ^ key.wrapping_mul(GOLDEN)) | 1
}

/// The state for one template slot of user `vu`'s stream `seq` under `seed`: a pure function of its inputs, so a
/// partly written request can be rendered again byte for byte, and never zero. Each input goes through splitmix64's
/// finalizer, so every input bit flips about half of the output bits: neighbouring users and streams draw unrelated
/// values from their first draw on. (Not [`seed_state`]: these states seed templates and prompts, and their values
/// for a given seed are kept as they were.)
pub fn stream_state(seed: u64, vu: u64, seq: u64, slot: u64) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let state =
        [vu, seq, slot].into_iter().fold(mix(seed ^ GOLDEN), |h, x| mix(h.wrapping_add(x).wrapping_add(GOLDEN)));
    if state == 0 { GOLDEN } else { state }
}

/// Uniform in `low..=high` to the millisecond (`low` when `high <= low`), from a hash of the seed, the user and its
/// stream number: no state per user, and the same seed draws the same durations (`--stream-duration` ranges,
/// think times).
pub fn uniform_duration(low: Duration, high: Duration, seed: u64, vu: u64, seq: u32) -> Duration {
    let span_ms = high.saturating_sub(low).as_millis() as u64;
    let mut state = seed_state(seed, (vu << 32) ^ u64::from(seq));
    // Mix once more: neighbouring users' first draws would be close otherwise.
    next(&mut state);
    low + Duration::from_millis(next(&mut state) % (span_ms + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn steps_match_reference_values() {
        let mut state = 1u64;
        assert_eq!(next_xorshift64(&mut state), 1082269761);
        assert_eq!(state, 1082269761);
        let mut state = 1u64;
        assert_eq!(next(&mut state), 5180492295206395165);
        assert_eq!(state, 33554433);
    }

    #[test]
    fn states_are_pinned_to_their_inputs() {
        // A seed's durations, arrivals, template values and prompts all start here.
        assert_eq!(seed_state(1, 1), 11400714819323198485);
        assert_eq!(seed_state(42, (7 << 32) ^ 3), 6174384234528994325);
        assert_eq!(stream_state(1, 0, 0, 0), 71079956591447702);
        assert_eq!(stream_state(42, 7, 3, u64::MAX), 5039893039739994936);
    }

    proptest! {
        #[test]
        fn states_are_never_zero_and_pure(seed in any::<u64>(), vu in any::<u64>(), seq in any::<u64>()) {
            let state = stream_state(seed, vu, seq, 0);
            prop_assert!(state != 0);
            prop_assert_eq!(state, stream_state(seed, vu, seq, 0));
            prop_assert!(seed_state(seed, vu) != 0);
        }
    }

    #[test]
    fn uniform_durations() {
        let ms = Duration::from_millis;
        // Pinned: a seed's stream lengths and think times.
        assert_eq!(uniform_duration(ms(100), ms(1100), 1, 0, 0), ms(766));
        assert_eq!(uniform_duration(ms(100), ms(1100), 42, 7, 3), ms(630));
        assert_eq!(uniform_duration(ms(5), ms(5), 42, 7, 3), ms(5));
        assert_eq!(uniform_duration(ms(9), ms(5), 42, 7, 3), ms(9));
        for vu in 0..200 {
            let d = uniform_duration(ms(10), ms(20), 3, vu, 1);
            assert!((ms(10)..=ms(20)).contains(&d), "{d:?}");
        }
    }
}
