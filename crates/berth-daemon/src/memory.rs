//! Gives the heap freed after a burst of requests back to the system.
//!
//! glibc keeps what a burst freed (in the arenas of the threads that served it) until
//! told otherwise, so the daemon's resident memory stays at its peak after a load has
//! gone. The daemon runs with glibc tunables that keep freed memory returnable
//! ([`run_with_tunables`]) and at most [`ARENA_MAX`] arenas, and every [`CHECK_EVERY`], if
//! the resident size grew by more than [`SLACK`] since the last trim, `malloc_trim`
//! returns the free pages; an idle daemon costs one small read of `/proc/self/statm` per
//! check.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(2);
const SLACK: u64 = 512 << 10;

/// At most this many malloc arenas. glibc gives each thread that allocates under
/// contention an arena of its own (up to 8 per core), and memory freed in one is reused
/// only by it: after a burst served by many blocking-pool and lifecycle threads, the
/// pages of a dozen part-empty arenas stay resident. Two keep the daemon's heap compact;
/// its threads mostly wait on I/O, so they rarely contend for an arena.
const ARENA_MAX: libc::c_int = 2;

/// The glibc tunables the daemon runs with. glibc reads them only when a process starts,
/// and none of them has a `mallopt`, so [`run_with_tunables`] re-executes the daemon once.
/// Measured with `bench/load` (50 clients, 5,000 requests), resident growth after the run:
/// +3.9 MB without them, +1.1 to +1.3 MB with them, at the same throughput.
/// - `tcache_count=0`: no per-thread cache of freed chunks. Each of the threads that serve
///   a burst keeps up to 7 chunks of each small size, which pin part-empty pages that
///   `malloc_trim` cannot return (they are not free to the arena).
/// - `trim_threshold`: a fixed 64 KiB (glibc raises it after every large block freed, so
///   the top of the heap stayed resident after a burst).
/// - `stack_cache_size=0`: the stacks of exited threads (the blocking pools') are unmapped,
///   not cached with their touched pages resident (glibc keeps up to 40 MiB of them).
const TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.trim_threshold=65536:\
                        glibc.pthread.stack_cache_size=0";

/// Set in the re-executed daemon's environment, so it knows it runs with [`TUNABLES`].
const REEXECUTED: &str = "BERTH_DAEMON_TUNED";

/// Re-executes this process with [`TUNABLES`] unless it already runs with them, or with
/// glibc tunables of the user's own (`GLIBC_TUNABLES` set: left as it is). In the
/// re-executed daemon, removes both variables again: its children (shims, hooks, the
/// tools it runs) start with the environment the daemon was started with. Call first
/// thing, while the process has one thread. Returns (with a warning) if the exec fails.
pub fn run_with_tunables() {
    if std::env::var_os(REEXECUTED).is_some() {
        std::env::remove_var(REEXECUTED);
        std::env::remove_var("GLIBC_TUNABLES");
        return;
    }
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if argv.is_empty() {
        return;
    }
    let arg0 = argv.remove(0);
    // `/proc/self/exe`: this very binary, even if its path was replaced since it started.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(argv)
        .env("GLIBC_TUNABLES", TUNABLES)
        .env(REEXECUTED, "1")
        .exec();
    eprintln!("berth daemon: running without malloc tunables: re-executing: {err}");
}

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
        let mut last = Sample::now();
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(now) = Sample::now() else {
                return;
            };
            if !should_trim(last, now) {
                continue;
            }
            last = tokio::task::spawn_blocking(|| {
                // SAFETY: malloc_trim only walks and releases the allocator's own free
                // memory; it is thread-safe and takes no pointers.
                unsafe { libc::malloc_trim(0) };
                Sample::now()
            })
            .await
            .ok()
            .flatten()
            .or(Some(now));
        }
    });
}

/// The resident size and the bytes malloc holds free, at one check.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    resident: u64,
    free_in_heap: u64,
}

impl Sample {
    fn now() -> Option<Sample> {
        Some(Sample {
            resident: resident_bytes()?,
            free_in_heap: free_in_heap(),
        })
    }
}

/// Trim when the resident size grew since the last trim (a burst is under way), or when
/// malloc holds more free memory than after it (a burst ended: its memory was freed but
/// stays resident, and the resident size no longer moves). `last` is the sample taken
/// right after the last trim (none yet: the first check trims when there is work).
fn should_trim(last: Option<Sample>, now: Sample) -> bool {
    let last = last.unwrap_or(Sample {
        resident: now.resident,
        free_in_heap: 0,
    });
    now.resident > last.resident + SLACK || now.free_in_heap > last.free_in_heap + SLACK
}

/// Bytes in malloc's free chunks (`mallinfo2().fordblks`, every arena).
fn free_in_heap() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics and returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks as u64
}

/// The process's resident set size (`/proc/self/statm`, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(resident_kb: u64, free_kb: u64) -> Sample {
        Sample {
            resident: resident_kb << 10,
            free_in_heap: free_kb << 10,
        }
    }

    #[test]
    fn trims_while_a_burst_grows_and_once_more_after_it_freed_its_memory() {
        // Quiet since the last trim: nothing to do.
        assert!(!should_trim(Some(s(24_000, 300)), s(24_100, 400)));
        // Growing: trim.
        assert!(should_trim(Some(s(24_000, 300)), s(30_000, 400)));
        // The burst is over: its memory is free but still resident, and the resident
        // size did not move since the last trim during the burst. Trim again.
        assert!(should_trim(Some(s(30_000, 300)), s(30_000, 6_000)));
        // After that trim, the free memory stays counted (trimmed pages stay free
        // chunks): no trim on every later check.
        assert!(!should_trim(Some(s(25_000, 6_000)), s(25_000, 6_000)));
        // The first check trims only when malloc holds free memory worth it.
        assert!(!should_trim(None, s(24_000, 100)));
        assert!(should_trim(None, s(24_000, 4_000)));
    }

    #[test]
    fn a_sample_reads_this_process() {
        let now = Sample::now().expect("/proc/self/statm");
        assert!(now.resident > 0);
    }
}
