//! Active expiry: the timer task each shard thread runs to delete keys whose
//! deadline has passed without anybody touching them. Lazy expiry (on
//! lookup) lives in `store::db`; this module owns the pacing.
//!
//! Every `INTERVAL` a tick reads the clock once and deletes expired keys in
//! deadline order, at most `BUDGET` per round; while a round uses its whole
//! budget another follows, up to `MAX_ROUNDS`, yielding in between so the
//! thread's connections are served. Deadlines are Unix milliseconds taken
//! from the clock the task is given (`util::now_ms` in the server); the timer
//! itself is tokio's, so tests can drive it with paused time and a clock that
//! follows it.
//!
//! The same tick evicts while the node is over `maxmemory` (rounds of
//! `EVICT_ROUND_US`), so a shard nobody sends work to still gives memory
//! back, e.g. after CONFIG SET lowers the limit.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::shard::{LocalShard, NO_TX};

/// Time between ticks.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Keys deleted per round at most.
pub const BUDGET: usize = 2000;
/// Rounds per tick at most.
pub const MAX_ROUNDS: usize = 10;

/// Time one eviction round of a tick may take, in microseconds.
pub const EVICT_ROUND_US: u64 = 2000;

/// One tick at time `now`: returns how many keys were deleted.
pub async fn tick(shard: &LocalShard, now: u64) -> usize {
    // INFO's instantaneous rates sample here, every tick, as Redis's cron.
    shard
        .run(NO_TX, |sh| {
            let repl_input = sh.engine.as_ref().filter(|_| sh.id == 0).map_or(0, |e| e.repl.input_bytes.load(Relaxed));
            sh.rates.track(now, &sh.stats, repl_input)
        })
        .await;
    let mut total = 0;
    for round in 0..MAX_ROUNDS {
        if round > 0 {
            tokio::task::yield_now().await;
        }
        let n = shard
            .run(NO_TX, |sh| {
                sh.upkeep = true;
                sh.expire_cycle(now, BUDGET)
            })
            .await;
        total += n;
        if n < BUDGET {
            break;
        }
    }
    // A frequency sketch left from a policy no longer selected is freed.
    crate::store::sketch::fit(0);
    for round in 0..MAX_ROUNDS {
        if round > 0 {
            tokio::task::yield_now().await;
        }
        let n = shard
            .run(NO_TX, |sh| {
                sh.upkeep = true;
                if crate::shard::evict::over_limit(&sh.cfg) {
                    sh.evict_for(EVICT_ROUND_US)
                } else {
                    crate::shard::evict::note_exceeded(false);
                    0
                }
            })
            .await;
        if n == 0 {
            break;
        }
    }
    total
}

/// Runs ticks forever; `clock` gives the current Unix time in milliseconds.
pub async fn run(shard: Rc<LocalShard>, clock: impl Fn() -> u64) {
    let mut timer = tokio::time::interval(INTERVAL);
    // After a stall, resume the rhythm instead of firing a burst of ticks.
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        tick(&shard, clock()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use clap::Parser;
    use tokio::time::{sleep, Instant};

    use super::*;
    use crate::config::{Args, Config};
    use crate::shard::Shard;
    use crate::store::Value;

    /// Virtual Unix time at which the tests start.
    const BASE: u64 = 1_700_000_000_000;

    fn new_shard() -> Rc<LocalShard> {
        let cfg = Config::from_args(&Args::parse_from(["damselfly"])).expect("config");
        LocalShard::new(Shard::new(0, 1, Arc::new(cfg), crate::shard::scripts::Scripting::new(crate::commands::is_command)))
    }

    /// A wall clock that follows tokio's (paused) time from `BASE`.
    fn virtual_clock() -> impl Fn() -> u64 {
        let start = Instant::now();
        move || BASE + start.elapsed().as_millis() as u64
    }

    /// Adds `n` keys named `<prefix>:<i>` expiring at `at` (0 = never).
    async fn add_keys(shard: &LocalShard, prefix: &str, n: usize, at: u64) {
        shard
            .run(NO_TX, |sh| {
                for i in 0..n {
                    sh.db(0).insert_new(format!("{prefix}:{i}").as_bytes(), Value::Int(i as i64), at);
                }
            })
            .await;
    }

    async fn len(shard: &LocalShard) -> usize {
        shard.run(NO_TX, |sh| sh.db(0).len()).await
    }

    #[tokio::test(start_paused = true)]
    async fn keys_disappear_after_their_deadline_untouched() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let shard = new_shard();
                add_keys(&shard, "short", 500, BASE + 250).await;
                add_keys(&shard, "long", 300, BASE + 1_050).await;
                add_keys(&shard, "forever", 200, 0).await;
                tokio::task::spawn_local(run(shard.clone(), virtual_clock()));

                sleep(Duration::from_millis(240)).await;
                assert_eq!(len(&shard).await, 1000, "nothing is due yet");
                // The first tick after the deadline (at 300 ms) removes them.
                sleep(Duration::from_millis(70)).await;
                assert_eq!(len(&shard).await, 500);
                sleep(Duration::from_millis(700)).await;
                assert_eq!(len(&shard).await, 500, "the 1050 ms keys wait for their deadline");
                sleep(Duration::from_millis(100)).await;
                assert_eq!(len(&shard).await, 200);
                assert_eq!(shard.run(NO_TX, |sh| sh.counted_stats().expired_keys).await, 800);
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_is_bounded_and_the_next_one_continues() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let shard = new_shard();
                let per_tick = BUDGET * MAX_ROUNDS;
                add_keys(&shard, "due", per_tick + 1500, BASE + 10).await;
                add_keys(&shard, "kept", 10, 0).await;
                tokio::task::spawn_local(run(shard.clone(), virtual_clock()));

                // Ticks at 0 ms (nothing due), 100 ms, 200 ms.
                sleep(Duration::from_millis(150)).await;
                assert_eq!(len(&shard).await, 1500 + 10, "one tick deletes at most {per_tick}");
                sleep(Duration::from_millis(100)).await;
                assert_eq!(len(&shard).await, 10);
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn tick_reports_what_it_deleted() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let shard = new_shard();
                add_keys(&shard, "a", BUDGET + 5, BASE).await;
                assert_eq!(tick(&shard, BASE - 1).await, 0);
                assert_eq!(tick(&shard, BASE).await, BUDGET + 5);
                assert_eq!(tick(&shard, BASE + 1).await, 0);
            })
            .await;
    }
}
