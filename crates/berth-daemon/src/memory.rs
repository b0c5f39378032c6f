//! Gives the heap freed after a burst of requests back to the system.
//!
//! glibc keeps what a burst freed (in the arenas of the threads that served it) until
//! told otherwise, so the daemon's resident memory stays at its peak after a load has
//! gone. Every [`CHECK_EVERY`], if the resident size grew by more than [`SLACK`] since the
//! last trim, `malloc_trim` returns the free pages; an idle daemon costs one small read
//! of `/proc/self/statm` per check.

use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(2);
const SLACK: u64 = 512 << 10;

/// At most this many malloc arenas. glibc gives each thread that allocates under
/// contention an arena of its own (up to 8 per core), and memory freed in one is reused
/// only by it: after a burst served by many blocking-pool and lifecycle threads, the
/// pages of a dozen part-empty arenas stay resident. Two keep the daemon's heap compact;
/// its threads mostly wait on I/O, so they rarely contend for an arena.
const ARENA_MAX: libc::c_int = 2;

/// Caps the malloc arenas: call first thing, before the daemon starts threads.
pub fn limit_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before other threads run.
    if unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) } != 1 {
        tracing::warn!("mallopt(M_ARENA_MAX) refused");
    }
}

/// Starts the trimmer on the current runtime.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut baseline = resident_bytes().unwrap_or(0);
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(now) = resident_bytes() else {
                return;
            };
            if now <= baseline + SLACK {
                continue;
            }
            baseline = tokio::task::spawn_blocking(|| {
                // SAFETY: malloc_trim only walks and releases the allocator's own free
                // memory; it is thread-safe and takes no pointers.
                unsafe { libc::malloc_trim(0) };
                resident_bytes()
            })
            .await
            .ok()
            .flatten()
            .unwrap_or(now);
        }
    });
}

/// The process's resident set size (`/proc/self/statm`, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
