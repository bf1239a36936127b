//! One timer per server core: connections wait for their next send time here instead of each
//! holding a monoio `Sleep` (640 bytes, most of an idle connection's memory).
//!
//! A min-heap of (deadline, waker) and one driver task that sleeps until the earliest deadline
//! and wakes whoever is due. A registration earlier than the driver's target wakes the driver.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct Entry {
    at: Instant,
    /// Registration order, so equal deadlines fire first-come first-served.
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The per-core timer. Lives in an `Rc` on one thread.
#[derive(Default)]
pub struct Timers {
    heap: RefCell<BinaryHeap<Reverse<Entry>>>,
    next_seq: Cell<u64>,
    /// The driver's waker and the deadline it sleeps towards (None: no deadline, idle).
    driver: RefCell<Option<Waker>>,
    driver_target: Cell<Option<Instant>>,
}

impl Timers {
    /// Completes at `at` (at once if it has passed).
    pub fn sleep_until(&self, at: Instant) -> SleepUntil<'_> {
        SleepUntil { timers: self, at, registered: false }
    }

    fn register(&self, at: Instant, waker: Waker) {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.heap.borrow_mut().push(Reverse(Entry { at, seq, waker }));
        if self.driver_target.get().is_none_or(|target| at < target)
            && let Some(driver) = self.driver.borrow_mut().take()
        {
            driver.wake();
        }
    }

    /// Wakes every entry that is due; returns the earliest deadline left.
    fn fire_due(&self, now: Instant) -> Option<Instant> {
        let mut heap = self.heap.borrow_mut();
        while let Some(Reverse(entry)) = heap.peek() {
            if entry.at > now {
                return Some(entry.at);
            }
            let Some(Reverse(entry)) = heap.pop() else { break };
            entry.waker.wake();
        }
        None
    }

    /// The driver: runs until the runtime is dropped.
    pub async fn drive(&self) {
        // One Sleep for the core's whole life, reset to each new target: nothing allocates per wait.
        let mut sleep = Box::pin(monoio::time::sleep_until(Instant::now().into()));
        loop {
            let target = self.fire_due(Instant::now());
            self.driver_target.set(target);
            if let Some(at) = target {
                sleep.as_mut().reset(at.into());
            }
            DriverWait { timers: self, sleep: target.map(|_| sleep.as_mut()) }.await;
        }
    }
}

/// Waits for the driver's target, or for a registration that needs an earlier one.
struct DriverWait<'a> {
    timers: &'a Timers,
    /// The driver's sleep, set to its target; None when idle (no target).
    sleep: Option<Pin<&'a mut monoio::time::Sleep>>,
}

impl Future for DriverWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let target = self.timers.driver_target.get();
        let earliest = self.timers.heap.borrow().peek().map(|Reverse(e)| e.at);
        if earliest.is_some_and(|at| target.is_none_or(|t| at < t)) {
            return Poll::Ready(());
        }
        if let Some(sleep) = self.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(());
        }
        *self.timers.driver.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A connection's wait for its next send time.
pub struct SleepUntil<'a> {
    timers: &'a Timers,
    at: Instant,
    registered: bool,
}

impl Future for SleepUntil<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if !self.registered {
            self.registered = true;
            self.timers.register(self.at, cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn sleepers_wake_in_deadline_order_and_on_time() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let result = crate::runtime::block_on(crate::runtime::Driver::Epoll, {
            let order = order.clone();
            async move {
                let timers = Rc::new(Timers::default());
                let driver = timers.clone();
                monoio::spawn(async move { driver.drive().await });
                let start = Instant::now();
                let mut tasks = Vec::new();
                // Registered longest first, so each one needs the driver woken earlier.
                for ms in [40u64, 30, 10, 20, 0] {
                    let (timers, order) = (timers.clone(), order.clone());
                    tasks.push(monoio::spawn(async move {
                        timers.sleep_until(start + Duration::from_millis(ms)).await;
                        order.borrow_mut().push((ms, start.elapsed()));
                    }));
                }
                for task in tasks {
                    task.await;
                }
            }
        });
        result.unwrap();
        let order = order.borrow();
        assert_eq!(order.iter().map(|(ms, _)| *ms).collect::<Vec<_>>(), [0, 10, 20, 30, 40]);
        for (ms, elapsed) in order.iter() {
            assert!(*elapsed >= Duration::from_millis(*ms), "{ms} ms woke after {elapsed:?}");
            assert!(*elapsed < Duration::from_millis(*ms + 500), "{ms} ms woke after {elapsed:?}");
        }
    }
}
