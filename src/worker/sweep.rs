//! A core's timer tasks: the sweeper (phase, byte-idle and stream-length timeouts, pauses, the end of the run,
//! Ctrl-C), which shuts sockets down instead of each user holding a timer and sleeps until the earliest of them is
//! due, the interval snapshots, and the rest gate, which holds users that spent their read budget until the runtime
//! has turned its timers.

use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::signal;
use crate::units::micros_between;
use crate::worker::core::{CoreCtx, Expiry};

/// The least time between two sweeps: a deadline is enforced at most this late, and however many streams move their
/// deadlines, a core sweeps at most 100 times a second.
const SWEEP_SPACING: Duration = Duration::from_millis(10);

/// The longest the sweeper sleeps with nothing due: a bound on the timer wheel's reach, not a poll for work.
const SWEEP_IDLE_MAX: Duration = Duration::from_secs(3600);

/// `--report-interval`: at each interval's end (`every` apart on the run's clock, the same on every core), the core's
/// snapshot of that interval goes to the engine's collector. A late wake-up sends the interval it is in, so the
/// cores' indexes stay aligned; nothing here runs per event.
pub(crate) async fn snapshot_intervals(ctx: Rc<CoreCtx>, every: Duration) {
    let start = ctx.timing.start;
    let mut index = 0usize;
    loop {
        let due = start + every * (index as u32 + 1);
        monoio::time::sleep_until(due.into()).await;
        // How late the timer fired: a core too busy to park turns its timers late (the generator's own queueing).
        let loop_lag_us = micros_between(due, Instant::now());
        let mut core = ctx.core.borrow_mut();
        if core.finished {
            return;
        }
        let passed = (start.elapsed().as_nanos() / every.as_nanos()) as usize;
        index = index.max(passed.saturating_sub(1));
        // At the run's end the sweeper shuts every stream down first: that work is the end, not load.
        let loop_lag_us = if core.stopping { 0 } else { loop_lag_us };
        core.snapshot(index, (every * (index as u32 + 1)).as_micros() as u64, loop_lag_us);
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

/// The core's one timer for its users: shuts down streams whose phase timed out, ends pauses, and at the end of the
/// run (or on Ctrl-C) shuts every open socket, which wakes whatever the user awaits on it.
///
/// It sleeps until the earliest deadline pending (`SweepPlan`), at least `SWEEP_SPACING` after its last sweep, or
/// the run's end, or Ctrl-C (a descriptor the signal handler makes readable); a slot that sets a deadline earlier
/// than the plan wakes it to plan again. With nothing due, a core does not wake at all.
pub(crate) async fn sweep(ctx: Rc<CoreCtx>) {
    // SAFETY: `wake_fd` hands over a descriptor of its own, a socket.
    let interrupt = signal::wake_fd()
        .map(|fd| unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
        .and_then(|std| monoio::net::UnixStream::from_std(std).ok());
    // One readiness wait for the run: armed once, not per sweep (on io_uring each arming is an operation).
    let mut interrupted = std::pin::pin!(async {
        match &interrupt {
            Some(socket) => socket.readable(false).await.map_or((), |_| ()),
            None => std::future::pending().await,
        }
    });
    let mut last_sweep = Instant::now();
    loop {
        let planned_ms = ctx.sweep.at_ms.get();
        let due = match planned_ms {
            u64::MAX => last_sweep + SWEEP_IDLE_MAX,
            ms => ctx.timing.start + Duration::from_millis(ms),
        };
        let wake = due.max(last_sweep + SWEEP_SPACING);
        let wake = ctx.timing.deadline.map_or(wake, |d| d.min(wake));
        let mut sleep = std::pin::pin!(monoio::time::sleep_until(wake.into()));
        std::future::poll_fn(|cx| {
            if sleep.as_mut().poll(cx).is_ready() || interrupted.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // A deadline earlier than the plan came in meanwhile.
            if ctx.sweep.at_ms.get() < planned_ms {
                return Poll::Ready(());
            }
            ctx.sweep.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        ctx.sweep.waker.take();
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
        if now < wake {
            // Woken before the plan's time: an earlier deadline came in (plan again), or a spurious wake-up.
            continue;
        }
        last_sweep = now;
        ctx.sweep.at_ms.set(sweep_slots(&ctx, ctx.ms_since_start(now)));
    }
}

/// Ends what is due at `now_ms` (pauses, phase, byte-idle and stream-length deadlines) and returns the earliest
/// deadline still pending, in ms after the start (u64::MAX: none).
fn sweep_slots(ctx: &CoreCtx, now_ms: u64) -> u64 {
    let due = |deadline_ms: u64| deadline_ms != 0 && now_ms >= deadline_ms;
    let pending = |deadline_ms: u64| if deadline_ms == 0 { u64::MAX } else { deadline_ms };
    let mut earliest = u64::MAX;
    let pausing = ctx.core.borrow().pausing;
    if pausing > 0 {
        let mut core = ctx.core.borrow_mut();
        for slot in ctx.slots.iter() {
            let until_ms = slot.pause_until_ms.get();
            if due(until_ms) {
                slot.end_pause(&mut core);
            } else {
                earliest = earliest.min(pending(until_ms));
            }
        }
    }
    for slot in ctx.slots.iter().filter(|s| s.fd.get() >= 0) {
        let (phase_ms, byte_ms, session_ms) =
            (slot.deadline_ms.get(), slot.byte_deadline_ms.get(), slot.session_deadline_ms.get());
        if due(phase_ms) {
            slot.expire(slot.deadline.get());
        } else if due(byte_ms) {
            slot.expire(Expiry::ByteIdleTimeout);
        } else if due(session_ms) {
            slot.expire(Expiry::SessionEnd);
        } else {
            earliest = earliest.min(pending(phase_ms)).min(pending(byte_ms)).min(pending(session_ms));
        }
    }
    earliest
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use crate::runtime::{Driver, block_on};
    use std::future::Future;
    use std::task::Poll;

    use crate::worker::core::{Expiry, Pause, Rest, test_ctx};
    use crate::worker::sweep::{rest_gate, sweep, sweep_slots};

    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A deadline later than the sweeper's plan costs nothing (the sweeper, waking at the earlier one, plans again);
    /// an earlier one becomes the plan and wakes the sleeping sweeper, once.
    #[test]
    fn only_an_earlier_deadline_wakes_the_sweeper() {
        let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
        let woken = std::sync::Arc::new(CountingWaker(Default::default()));
        ctx.sweep.at_ms.set(100);
        ctx.sweep.waker.set(Some(woken.clone().into()));
        let count = || woken.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((ctx.due_at(0), ctx.due_at(100), ctx.due_at(250)), (0, 100, 250));
        assert_eq!((count(), ctx.sweep.at_ms.get()), (0, 100), "none, the same or later: no wake-up");
        assert_eq!(ctx.due_at(40), 40);
        assert_eq!((count(), ctx.sweep.at_ms.get()), (1, 40));
        assert_eq!(ctx.due_at(30), 30);
        assert_eq!((count(), ctx.sweep.at_ms.get()), (1, 30), "the waker was taken: one wake-up per sleep");
    }

    /// A sweep ends what is due and plans for the earliest deadline still pending, of any kind; with none left, it
    /// plans for nothing (u64::MAX), and the core sleeps.
    #[test]
    fn a_sweep_plans_for_the_earliest_deadline_left() {
        let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let slot = &ctx.slots[0];
        slot.fd.set(std::os::fd::AsRawFd::as_raw_fd(&socket));
        assert_eq!(sweep_slots(&ctx, 5), u64::MAX, "nothing armed");
        slot.deadline.set(Expiry::IdleTimeout);
        slot.deadline_ms.set(30);
        slot.byte_deadline_ms.set(20);
        slot.session_deadline_ms.set(45);
        assert_eq!(sweep_slots(&ctx, 10), 20);
        assert_eq!(slot.expired.get(), None);
        slot.byte_deadline_ms.set(0);
        assert_eq!(sweep_slots(&ctx, 29), 30);
        assert_eq!(sweep_slots(&ctx, 30), u64::MAX, "the idle timeout fired and disarmed the slot");
        assert_eq!(slot.expired.get(), Some(Expiry::IdleTimeout));
        slot.fd.set(-1);
    }

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

            // A core's context lives in one runtime: the sweeper's waker above belongs to the one that ended.
            let ctx = test_ctx("127.0.0.1:1".parse().unwrap(), b"", 0);
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
