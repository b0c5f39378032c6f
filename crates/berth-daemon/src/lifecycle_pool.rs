//! Container lifecycle work (create, start, stop, kill, restart, remove, and the exits the
//! monitors process) runs on a runtime of its own whose threads run [`NICE_STEP`] nice
//! levels below the daemon's: the API runtime's two workers answer lists and inspects
//! without queueing behind the synchronous parts of a start (spec, mounts, spawn) and
//! get the CPU first when starts and reads compete for it (issue 17, point 8).
//!
//! A process forked from a lifecycle thread inherits its nice value. A shim keeps it while
//! it sets its container up, then gives the container (before its exec) and itself the
//! daemon's own back (`berth_runtime::shim::NICE_ENV`), so a container keeps the nice
//! value it would have under Docker (the daemon's). Other children get it back between
//! fork and exec ([`restore_nice`]).
//!
//! A lifecycle thread that takes a lock reads also take (the container table, the network
//! state) runs at the daemon's own priority until it lets go ([`Boost`], a priority
//! ceiling): at nice +10 a holder preempted by busier threads kept the lock for hundreds
//! of milliseconds under load, and every list and inspect (and the API runtime's two
//! workers, blocked on it) waited that long.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::OnceLock;

use crate::error::{ApiError, ApiResult};

/// How many nice levels lifecycle threads run below the daemon.
pub const NICE_STEP: i32 = 10;

static POOL: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static BASE_NICE: OnceLock<i32> = OnceLock::new();

thread_local! {
    /// This thread runs [`NICE_STEP`] below the daemon (a lifecycle runtime thread).
    static LOWERED: Cell<bool> = const { Cell::new(false) };
    /// How many [`Boost`]s this thread holds.
    static BOOSTS: Cell<u32> = const { Cell::new(0) };
}

/// Starts the lifecycle runtime (call once, outside any runtime). Without it (unit tests)
/// lifecycle work runs on the caller's runtime.
pub fn init() -> std::io::Result<()> {
    let _ = POOL.set(build(base_nice())?);
    Ok(())
}

/// The lifecycle runtime: two workers (and its blocking threads) at `base + NICE_STEP`.
fn build(base: i32) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berth-lifecycle")
        .on_thread_start(move || match set_thread_nice(base + NICE_STEP) {
            Ok(()) => LOWERED.with(|l| l.set(true)),
            Err(e) => tracing::warn!(error = %e, "lowering a lifecycle thread's priority"),
        })
        .enable_all()
        .build()
}

/// Spawns lifecycle work on the lifecycle runtime (or the current one without it).
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match POOL.get() {
        Some(rt) => rt.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Runs `fut` on the lifecycle runtime and returns its result. It runs to its end even
/// if the client goes away (a start or removal is never left half-done).
pub async fn run<F, T>(fut: F) -> ApiResult<T>
where
    F: Future<Output = ApiResult<T>> + Send + 'static,
    T: Send + 'static,
{
    spawn(fut)
        .await
        .map_err(|e| ApiError::internal(format!("the lifecycle task failed: {e}")))?
}

/// The daemon's nice value (what containers must run with).
pub fn base_nice() -> i32 {
    *BASE_NICE.get_or_init(current_nice)
}

/// In a child between fork and exec: back to `nice` (from [`base_nice`], read before the
/// fork). Only a raw syscall: async-signal-safe.
pub fn restore_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers; who = 0 is the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's nice value (on Linux nice is per thread).
pub fn current_nice() -> i32 {
    // SAFETY: errno is thread-local; getpriority may return -1 as a value, so errno is
    // cleared first and read after.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            return 0;
        }
        n
    }
}

fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    restore_nice(nice)
}

/// While alive, a lifecycle thread runs at the daemon's priority (a no-op on any other
/// thread). Take one before a lock that reads also wait for, drop it after the lock's
/// guard ([`Boosted`] does both). Not `Send`: it belongs to its thread.
pub struct Boost(PhantomData<*const ()>);

impl Boost {
    pub fn new() -> Boost {
        if LOWERED.with(Cell::get) && BOOSTS.with(|b| b.replace(b.get() + 1)) == 0 {
            // Raising a priority needs CAP_SYS_NICE: without it the thread stays lowered.
            let _ = set_thread_nice(base_nice());
        }
        Boost(PhantomData)
    }
}

impl Default for Boost {
    fn default() -> Self {
        Boost::new()
    }
}

impl Drop for Boost {
    fn drop(&mut self) {
        if LOWERED.with(Cell::get) && BOOSTS.with(|b| b.replace(b.get() - 1)) == 1 {
            let _ = set_thread_nice(base_nice() + NICE_STEP);
        }
    }
}

/// A lock guard held at the daemon's priority: see [`Boost`].
pub struct Boosted<G> {
    // Dropped first: the lock is released before the priority goes back down.
    guard: G,
    _boost: Boost,
}

impl<G> Boosted<G> {
    /// Takes the boost, then the lock (`lock`), so a holder is never lowered.
    pub fn lock(lock: impl FnOnce() -> G) -> Self {
        let boost = Boost::new();
        Boosted {
            guard: lock(),
            _boost: boost,
        }
    }
}

impl<G: std::ops::Deref> std::ops::Deref for Boosted<G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: std::ops::DerefMut> std::ops::DerefMut for Boosted<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_threads_run_below_the_daemon_and_children_get_its_nice_back() {
        let base = base_nice();
        let pool = build(base).expect("the lifecycle runtime");
        let (on_pool, child) = pool.block_on(async move {
            tokio::spawn(async move {
                let on_pool = current_nice();
                // A child forked here (as a shim is) runs at the daemon's nice again.
                let mut cmd = std::process::Command::new("sh");
                cmd.args(["-c", "cut -d' ' -f19 /proc/self/stat"]);
                // SAFETY: restore_nice is a single setpriority syscall.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                        restore_nice(base)
                    });
                }
                let out = cmd.output().expect("running sh");
                (
                    on_pool,
                    String::from_utf8_lossy(&out.stdout).trim().to_string(),
                )
            })
            .await
            .unwrap()
        });
        assert_eq!(on_pool, (base + NICE_STEP).min(19));
        assert_eq!(child, base.to_string());
        pool.shutdown_background();
    }

    #[test]
    fn a_lifecycle_thread_holds_a_boosted_lock_at_the_daemons_priority() {
        let base = base_nice();
        let lowered = (base + NICE_STEP).min(19);
        let pool = build(base).expect("the lifecycle runtime");
        let lock = std::sync::Mutex::new(0);
        let seen = pool.block_on(async {
            let lock = &lock;
            let before = current_nice();
            let (outer, inner, after_inner) = {
                let mut g = Boosted::lock(|| lock.lock().unwrap());
                *g += 1;
                let outer = current_nice();
                let inner = {
                    let _nested = Boost::new();
                    current_nice()
                };
                (outer, inner, current_nice())
            };
            (before, outer, inner, after_inner, current_nice())
        });
        // block_on runs on this (test) thread, which is not lowered: no change.
        assert_eq!(seen, (seen.0, seen.0, seen.0, seen.0, seen.0));
        let on_pool = pool
            .block_on(async {
                tokio::spawn(async {
                    let m = std::sync::Mutex::new(());
                    let before = current_nice();
                    let (held, nested, still) = {
                        let _g = Boosted::lock(|| m.lock().unwrap());
                        let held = current_nice();
                        let nested = {
                            let _n = Boost::new();
                            current_nice()
                        };
                        (held, nested, current_nice())
                    };
                    (before, held, nested, still, current_nice())
                })
                .await
            })
            .unwrap();
        pool.shutdown_background();
        // Raising a priority needs CAP_SYS_NICE (root has it; the tests run as root).
        if nix::unistd::geteuid().is_root() {
            assert_eq!(on_pool, (lowered, base, base, base, lowered));
        }
        assert_eq!(*lock.lock().unwrap(), 1);
    }
}
