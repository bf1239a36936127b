//! A core's two timer tasks: the sweeper (phase, byte-idle and stream-length timeouts, the end of the run,
//! Ctrl-C), which shuts sockets down instead of each user holding a timer, and the sampler of its open streams.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::signal;
use crate::worker::core::{CoreCtx, Expiry};

/// How often the sweeper checks pending connects against `--connect-timeout`.
const SWEEP_PERIOD: Duration = Duration::from_millis(10);

/// How often each core samples its open-stream count for the cross-core peak.
pub(crate) const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

pub(crate) async fn sample_active(ctx: Rc<CoreCtx>) {
    let start = ctx.timing.start;
    let mut tick = 0usize;
    loop {
        tick += 1;
        monoio::time::sleep_until((start + SAMPLE_PERIOD * tick as u32).into()).await;
        let mut core = ctx.core.borrow_mut();
        if core.finished {
            return;
        }
        // A late wake-up records under the tick it belongs to, keeping cores aligned.
        let now_tick = start.elapsed().as_nanos() / SAMPLE_PERIOD.as_nanos();
        tick = tick.max(now_tick as usize);
        core.rec.sample_active(tick);
    }
}

/// The core's one timer for its users: shuts down streams whose phase timed out, and at the end
/// of the run (or on Ctrl-C) every open socket, which wakes whatever the user awaits on it.
pub(crate) async fn sweep(ctx: Rc<CoreCtx>) {
    let cfg = &ctx.shared.cfg;
    let stream_timeouts = cfg.header_timeout.is_some()
        || cfg.first_event_timeout.is_some()
        || cfg.idle_timeout.is_some()
        || cfg.byte_idle_timeout.is_some()
        || cfg.stream_duration.is_some();
    loop {
        let next = Instant::now() + SWEEP_PERIOD;
        let wake = ctx.timing.deadline.map_or(next, |d| d.min(next));
        monoio::time::sleep_until(wake.into()).await;
        if ctx.core.borrow().finished {
            return;
        }
        let now = Instant::now();
        if ctx.timing.deadline.is_some_and(|d| now >= d) || signal::interrupted() {
            let mut core = ctx.core.borrow_mut();
            core.stopping = true;
            core.rec.open_at_end = core.rec.active;
            drop(core);
            for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
                slot.expire(Expiry::RunOver);
            }
            return;
        }
        // Without stream timeouts only pending connects can expire: skip the scan when none is.
        if !stream_timeouts && ctx.core.borrow().connecting == 0 {
            continue;
        }
        let now_ms = ctx.ms_since_start(now);
        let due = |deadline_ms: u64| deadline_ms != 0 && now_ms >= deadline_ms;
        for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
            if due(slot.deadline_ms.get()) {
                slot.expire(slot.deadline.get());
            } else if due(slot.byte_deadline_ms.get()) {
                slot.expire(Expiry::ByteIdleTimeout);
            } else if due(slot.session_deadline_ms.get()) {
                slot.expire(Expiry::SessionEnd);
            }
        }
    }
}
