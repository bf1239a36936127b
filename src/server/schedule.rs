//! When a generated stream sends each event and each heartbeat, as offsets from its first event: pure, no clock.
//!
//! Events sit on the `--interval` grid, and every `--pause-every` pause moves the rest of the grid later by
//! `--pause`: event N+1 after a pause comes `pause + interval` after event N, so the interval clock starts again
//! where the pause ends and the slots never drift. Heartbeats fall every `--heartbeat` from the pause's start (the
//! slot of the event before it), strictly before its end, so none is sent between ordinary events.

use std::time::Duration;

use super::config::Pauses;

/// A stream's timing, read by every connection of a core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) interval: Duration,
    pub(crate) pauses: Option<Pauses>,
}

impl Schedule {
    /// The slot of the event with `sent` events before it in this response: its place on the interval grid,
    /// shifted by every pause before it.
    pub(crate) fn event_offset(&self, sent: u64) -> Duration {
        let grid = self.interval.saturating_mul(clamp_u32(sent));
        match self.pauses {
            None => grid,
            Some(p) => grid.saturating_add(p.pause.saturating_mul(clamp_u32(sent / p.every_events.get()))),
        }
    }

    /// The `beat`th heartbeat (from 1) of the pause just before the event with `sent` events before it: `beat`
    /// heartbeat intervals after the pause's start (the slot of the event before it), if that is still inside the
    /// pause. None where no pause comes there, heartbeats are off, or the pause holds no more (past `u32::MAX`
    /// heartbeats, none). A connection counts `beat` up from 1 until None: its only state is that counter.
    pub(crate) fn heartbeat_offset(&self, sent: u64, beat: u64) -> Option<Duration> {
        debug_assert!(beat >= 1, "heartbeats count from 1");
        let Pauses { every_events, pause, heartbeat: Some(step) } = self.pauses? else { return None };
        if sent == 0 || !sent.is_multiple_of(every_events.get()) || step.is_zero() {
            return None;
        }
        let after_start = step.checked_mul(u32::try_from(beat).ok()?)?;
        (after_start < pause).then(|| self.event_offset(sent - 1).saturating_add(after_start))
    }
}

fn clamp_u32(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn schedule(every: u64, pause_ms: u64, heartbeat_ms: Option<u64>) -> Schedule {
        let pauses = Pauses {
            every_events: NonZeroU64::new(every).unwrap(),
            pause: ms(pause_ms),
            heartbeat: heartbeat_ms.map(ms),
        };
        Schedule { interval: ms(10), pauses: Some(pauses) }
    }

    #[test]
    fn each_pause_moves_every_later_slot() {
        let offsets = |s: &Schedule| (0..8).map(|sent| s.event_offset(sent).as_millis() as u64).collect::<Vec<_>>();
        let plain = Schedule { interval: ms(10), pauses: None };
        assert_eq!(offsets(&plain), [0, 10, 20, 30, 40, 50, 60, 70]);
        // Events 3 -> 4 and 6 -> 7 are 310 ms apart: the pause, then the interval again.
        assert_eq!(offsets(&schedule(3, 300, None)), [0, 10, 20, 330, 340, 350, 660, 670]);
        assert_eq!(offsets(&schedule(1, 5, None)), [0, 15, 30, 45, 60, 75, 90, 105]);
    }

    #[test]
    fn heartbeats_fall_inside_pauses_only() {
        let beats = |s: &Schedule, sent| {
            (1..).map_while(|beat| s.heartbeat_offset(sent, beat)).map(|d| d.as_millis() as u64).collect::<Vec<_>>()
        };
        let s = schedule(3, 300, Some(100));
        // The pause after event 3 (slot 20 ms) runs to 320 ms; a beat at 320 would be outside it.
        assert_eq!(beats(&s, 3), [120, 220]);
        assert_eq!(beats(&s, 6), [450, 550]);
        for sent in [0, 1, 2, 4, 5, 7] {
            assert_eq!(beats(&s, sent), [] as [u64; 0], "no pause before event {}", sent + 1);
        }
        assert_eq!(beats(&schedule(3, 300, None), 3), [] as [u64; 0], "heartbeats off");
        assert_eq!(beats(&schedule(2, 1000, Some(300)), 2), [310, 610, 910]);
        assert_eq!(beats(&schedule(2, 100, Some(100)), 2), [] as [u64; 0], "a beat at the pause's end is outside it");
    }

    #[test]
    fn endless_streams_saturate_instead_of_overflowing() {
        let s = Schedule { interval: Duration::MAX, pauses: None };
        assert_eq!(s.event_offset(u64::MAX), Duration::MAX);
        let s = schedule(1, 1, Some(1));
        assert!(s.event_offset(u64::MAX) > Duration::ZERO);
        assert_eq!(s.heartbeat_offset(u64::MAX - 1, 1), None, "a 1 ms beat is at the 1 ms pause's end");
        let s = schedule(1, 10_000, Some(1));
        assert!(s.heartbeat_offset(u64::MAX - 1, 9_999).is_some());
        assert_eq!(s.heartbeat_offset(1, u64::from(u32::MAX) + 1), None);
    }
}
