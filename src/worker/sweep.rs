//! A core's timer tasks: the sweeper (phase, byte-idle and stream-length timeouts, the end of the run, Ctrl-C),
//! which shuts sockets down instead of each user holding a timer, the sampler of its open streams, and the rest
//! gate, which holds users that spent their read budget until the runtime has turned its timers.

use std::rc::Rc;
use std::task::Poll;
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

/// `--report-interval`: at each interval's end (`every` apart on the run's clock, the same on every core), the core's
/// snapshot of that interval goes to the engine's collector. A late wake-up sends the interval it is in, so the
/// cores' indexes stay aligned; nothing here runs per event.
pub(crate) async fn snapshot_intervals(ctx: Rc<CoreCtx>, every: Duration) {
    let start = ctx.timing.start;
    let mut index = 0usize;
    loop {
        monoio::time::sleep_until((start + every * (index as u32 + 1)).into()).await;
        let mut core = ctx.core.borrow_mut();
        if core.finished {
            return;
        }
        let passed = (start.elapsed().as_nanos() / every.as_nanos()) as usize;
        index = index.max(passed.saturating_sub(1));
        core.snapshot(index, (every * (index as u32 + 1)).as_micros() as u64);
        index += 1;
    }
}

/// Lets resting users (`core::Rest`: they spent their read budget) go once monoio has turned its timers and IO.
///
/// monoio fires timers only when it parks, and parks only when its run queue is empty. On epoll a readiness wait
/// on a socket with data waiting completes at once, so users flooded with data would stay in the queue forever (a
/// yield puts a task straight back), and the sweeper, -d and Ctrl-C with it, would never run. Resting users are
/// off the queue; the gate waits on a timer that is already due, which monoio registers in its wheel and fires when
/// it next parks: with a zero timeout, since it is due, and together with every other timer due (the sweeper's).
/// If the wheel was turned within the current millisecond, the timer fires at once instead: the others had their
/// turn just now. Either way the resting users go on within about a millisecond.
pub(crate) async fn rest_gate(ctx: Rc<CoreCtx>) {
    loop {
        std::future::poll_fn(|cx| {
            let mut core = ctx.core.borrow_mut();
            if core.resting.is_empty() {
                core.gate = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        let now = Instant::now();
        monoio::time::sleep_until(now.checked_sub(Duration::from_millis(1)).unwrap_or(now).into()).await;
        let mut core = ctx.core.borrow_mut();
        if core.finished {
            return;
        }
        core.rest_round = core.rest_round.wrapping_add(1);
        for user in core.resting.drain(..) {
            user.wake();
        }
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
            for slot in ctx.slots.iter() {
                slot.end_pause(&mut core);
            }
            drop(core);
            for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
                slot.expire(Expiry::RunOver);
            }
            return;
        }
        // Without stream timeouts only pending connects can expire and paused users wake: skip the scan when there
        // are none.
        let (connecting, pausing) = {
            let core = ctx.core.borrow();
            (core.connecting, core.pausing)
        };
        if !stream_timeouts && connecting == 0 && pausing == 0 {
            continue;
        }
        let now_ms = ctx.ms_since_start(now);
        let due = |deadline_ms: u64| deadline_ms != 0 && now_ms >= deadline_ms;
        if pausing > 0 {
            let mut core = ctx.core.borrow_mut();
            for slot in ctx.slots.iter().filter(|s| due(s.pause_until_ms.get())) {
                slot.end_pause(&mut core);
            }
        }
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use crate::runtime::{Driver, block_on};
    use std::future::Future;
    use std::task::Poll;

    use crate::worker::core::{Pause, Rest, test_ctx};
    use crate::worker::sweep::{rest_gate, sweep};

    /// A task that never waits for IO, only rests between rounds (a user flooded with data, on epoll), still lets a
    /// timer fire: a yield would put it straight back on monoio's run queue, which would then never drain, so the
    /// timer would fire only after the task's last round.
    #[test]
    fn a_resting_task_lets_timers_fire() {
        const ROUNDS: u32 = 1_000_000;
        for driver in [Driver::Epoll, Driver::IoUring] {
            let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
            let rounds = Rc::new(Cell::new(0));
            let slept = block_on(driver, async {
                monoio::spawn(rest_gate(ctx.clone()));
                let (ctx, counted) = (ctx.clone(), rounds.clone());
                monoio::spawn(async move {
                    while counted.get() < ROUNDS {
                        Rest::new(&ctx).await;
                        counted.set(counted.get() + 1);
                    }
                });
                let start = Instant::now();
                monoio::time::sleep(Duration::from_millis(20)).await;
                start.elapsed()
            })
            .expect("a runtime");
            assert!(slept >= Duration::from_millis(20), "{driver:?}");
            let done = rounds.get();
            assert!(0 < done && done < ROUNDS, "{driver:?}: the timer fired after {done} of {ROUNDS} rounds");
        }
    }

    /// A user's pause between streams is ended by the sweeper, no timer of its own: on time (not before), with the
    /// pause count back to 0; a pause dropped unfinished leaves nothing behind.
    #[test]
    fn the_sweeper_ends_a_users_pause() {
        for driver in [Driver::Epoll, Driver::IoUring] {
            let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
            let (paused, took) = block_on(driver, async {
                monoio::spawn(sweep(ctx.clone()));
                let start = Instant::now();
                let paused = Pause::new(&ctx, &ctx.slots[0], Duration::from_millis(30)).await;
                (paused, start.elapsed())
            })
            .expect("a runtime");
            assert!(paused, "{driver:?}: the run is not over");
            assert!(took >= Duration::from_millis(29), "{driver:?}: woke after {took:?}");
            assert_eq!((ctx.core.borrow().pausing, ctx.slots[0].pause_until_ms.get()), (0, 0), "{driver:?}");

            let pending = block_on(driver, async {
                let mut pause = Box::pin(Pause::new(&ctx, &ctx.slots[0], Duration::from_secs(60)));
                std::future::poll_fn(|cx| Poll::Ready(pause.as_mut().poll(cx).is_pending())).await
            })
            .expect("a runtime");
            assert!(pending);
            assert_eq!((ctx.core.borrow().pausing, ctx.slots[0].pause_until_ms.get()), (0, 0), "{driver:?}: dropped");
        }
    }
}
