//! The one driver task of a core's load shape: the closed model's users (`drive_users`), `--stages`
//! (`drive_stages`) and the open model's arrivals (`drive_arrivals`). Nothing here runs per event.

use std::rc::Rc;
use std::time::Instant;

use crate::plan::{self, Shard};
use crate::units::micros_between;
use crate::worker::core::{CoreCtx, Expiry, wait_until};
use crate::worker::user::{YieldNow, spawn_user};

/// The closed model: every virtual user runs from the start (or from its `--connect-rate` turn)
/// to the end.
pub(crate) async fn drive_users(ctx: &Rc<CoreCtx>, shard: &Shard) {
    let timing = ctx.timing;
    let mut users = Vec::with_capacity(shard.virtual_users);
    for local in 0..shard.virtual_users {
        // With --connect-rate, users are spawned when their turn comes: a waiting user costs nothing.
        if let Some(offset) = shard.first_start_offsets.get(local) {
            let start_at = timing.start + *offset;
            if timing.deadline.is_some_and(|d| start_at >= d) {
                break;
            }
            if !wait_until(ctx, start_at).await {
                break;
            }
        }
        users.push(spawn_user(ctx, local));
    }
    for user in users {
        user.await;
    }
}

/// `--stages`: at each stage's start, switch to its recorder, close the users a step down
/// removes, and start the ones a step up adds (at `--connect-rate`).
pub(crate) async fn drive_stages(ctx: &Rc<CoreCtx>, stage_users: &[usize]) {
    let windows = &ctx.shared.windows;
    let mut users: Vec<Option<monoio::task::JoinHandle<()>>> = (0..ctx.slots.len()).map(|_| None).collect();
    let mut running = 0;
    'stages: for (stage, (window, &target)) in windows.iter().zip(stage_users).enumerate() {
        let stage_start = ctx.timing.start + window.start;
        if !wait_until(ctx, stage_start).await {
            break;
        }
        if stage > 0 {
            let mut core = ctx.core.borrow_mut();
            let core = &mut *core;
            if let Some(snapshots) = &mut core.snapshots {
                snapshots.fold_stage_end(&core.rec);
            }
            let fresh = core.spare_recs.pop().expect("a recorder is allocated for every stage");
            let done = core.rec.next_stage(fresh, ctx.sample_tick(Instant::now()));
            core.done_recs.push(done);
        }
        ctx.core.borrow_mut().user_limit = target;
        // A step down: the users past the target stop; an open stream is closed now (counted as
        // open at the end of its stage, not as a failure), an idle user stops at its next start.
        for slot in ctx.slots.iter().take(running).skip(target).filter(|s| s.fd.get() >= 0) {
            slot.expire(Expiry::StageEnd);
        }
        let first_new = running.min(target);
        for (local, user) in users.iter_mut().enumerate().take(target).skip(first_new) {
            let global = ctx.global_index(local);
            let start_at = stage_start + window.start_offset(global);
            if !wait_until(ctx, start_at).await {
                break 'stages;
            }
            // A user stopped by an earlier step down may still be winding down; it carries on.
            if !ctx.slots[local].running.get() {
                *user = Some(spawn_user(ctx, local));
            }
        }
        running = target;
    }
    for user in users.into_iter().flatten() {
        user.await;
    }
}

/// The open model: a stream starts at each arrival, whether or not earlier ones have ended, in
/// a free slot; with every slot (`--max-streams`) busy the arrival is dropped and counted.
pub(crate) async fn drive_arrivals(ctx: &Rc<CoreCtx>, mut clock: plan::ArrivalClock) {
    /// Arrivals handled between two turns for the other tasks, when a backlog of due arrivals
    /// never lets this task sleep: the users and the sweeper must keep running meanwhile.
    const ARRIVALS_PER_TURN: u64 = 32;
    let mut streams: Vec<Option<monoio::task::JoinHandle<()>>> = (0..ctx.slots.len()).map(|_| None).collect();
    loop {
        let (number, offset) = clock.next_arrival();
        if number % (ARRIVALS_PER_TURN * ctx.threads as u64) == ctx.core_index as u64 && number > 0 {
            YieldNow(false).await;
        }
        let due = ctx.timing.start + offset;
        if ctx.timing.deadline.is_some_and(|d| due >= d) {
            break;
        }
        if !wait_until(ctx, due).await {
            break;
        }
        // Arrivals that fell due while this task waited for its turn start now, late: their
        // lag is measured, and their latencies count from `due`.
        let now = Instant::now();
        let mut core = ctx.core.borrow_mut();
        if !core.take_stream_slot() {
            break;
        }
        let Some(index) = core.free_slots.pop() else {
            core.rec.start_dropped();
            continue;
        };
        core.rec.start_on_schedule(micros_between(due, now));
        drop(core);
        ctx.slots[index].due_us.set(micros_between(ctx.timing.start, due));
        ctx.slots[index].arrival.set(number);
        // The previous stream in this slot has returned it, so its task is done.
        streams[index] = Some(spawn_user(ctx, index));
    }
    for stream in streams.into_iter().flatten() {
        stream.await;
    }
}
