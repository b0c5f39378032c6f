//! Forgetting a container's connection-tracking entries when its network goes down, as
//! dockerd does when it unmaps ports: otherwise a flow through a published port (an
//! established TCP connection lives 5 days, a UDP "stream" is refreshed by every packet)
//! keeps pointing at an address that is gone or, later, another container's. Through
//! `libnetfilter_conntrack.so.3` (Debian's `libnetfilter-conntrack3`), loaded with
//! `dlopen` at first use: one ctnetlink dump of the IPv4 table, then a delete per entry
//! that has the address on either side. No process is spawned; without the library
//! nothing is done (entries then expire on their own).
//!
//! A dump walks the kernel's whole conntrack hash (tens of ms), so it is kept off the stop
//! path: [`forget_later`] queues the addresses for one background thread, which forgets
//! every queued address in one dump; [`wait_forgotten`] (called before an address is
//! configured again) blocks until a queued address is done, so a new container's flows
//! are never the ones deleted.

use std::collections::HashSet;
use std::ffi::{c_int, c_uint, c_void};
use std::net::Ipv4Addr;
use std::sync::{Condvar, Mutex, OnceLock};

use crate::dl;
use std::time::Duration;

type Open = unsafe extern "C" fn(u8, c_uint) -> *mut c_void;
type Close = unsafe extern "C" fn(*mut c_void) -> c_int;
type Callback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;
type Register = unsafe extern "C" fn(*mut c_void, c_int, Callback, *mut c_void) -> c_int;
type Query = unsafe extern "C" fn(*mut c_void, c_int, *const c_void) -> c_int;
type GetU32 = unsafe extern "C" fn(*const c_void, c_int) -> u32;
type Clone = unsafe extern "C" fn(*const c_void) -> *mut c_void;
type Destroy = unsafe extern "C" fn(*mut c_void);

struct Lib {
    open: Open,
    close: Close,
    register: Register,
    query: Query,
    get_u32: GetU32,
    clone: Clone,
    destroy: Destroy,
}

// libnetfilter_conntrack.h
const CONNTRACK: u8 = 1; // NFNL_SUBSYS_CTNETLINK
const NFCT_T_ALL: c_int = 7;
const NFCT_CB_CONTINUE: c_int = 1;
const NFCT_Q_DESTROY: c_int = 2;
const NFCT_Q_DUMP: c_int = 5;
const ATTR_ORIG_IPV4_SRC: c_int = 0;
const ATTR_ORIG_IPV4_DST: c_int = 1;
const ATTR_REPL_IPV4_SRC: c_int = 2;
const ATTR_REPL_IPV4_DST: c_int = 3;

fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(|| {
        let h = dl::open("libnetfilter_conntrack.so.3")?;
        // SAFETY: each type is the C signature of libnetfilter_conntrack's public API.
        unsafe {
            Some(Lib {
                open: dl::function(h, "nfct_open")?,
                close: dl::function(h, "nfct_close")?,
                register: dl::function(h, "nfct_callback_register")?,
                query: dl::function(h, "nfct_query")?,
                get_u32: dl::function(h, "nfct_get_attr_u32")?,
                clone: dl::function(h, "nfct_clone")?,
                destroy: dl::function(h, "nfct_destroy")?,
            })
        }
    })
    .as_ref()
}

struct Dump {
    lib: &'static Lib,
    /// The addresses in network byte order, as the library returns them.
    addrs: Vec<u32>,
    matched: Vec<*mut c_void>,
}

unsafe extern "C" fn on_entry(_type: c_int, ct: *mut c_void, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Dump` registered by `forget`, alive for the whole query;
    // `ct` is an entry the library owns for this call, so a match is cloned.
    unsafe {
        let d = &mut *(data as *mut Dump);
        let hit = [
            ATTR_ORIG_IPV4_SRC,
            ATTR_ORIG_IPV4_DST,
            ATTR_REPL_IPV4_SRC,
            ATTR_REPL_IPV4_DST,
        ]
        .iter()
        .any(|a| d.addrs.contains(&(d.lib.get_u32)(ct, *a)));
        if hit {
            let c = (d.lib.clone)(ct);
            if !c.is_null() {
                d.matched.push(c);
            }
        }
    }
    NFCT_CB_CONTINUE
}

/// Deletes every IPv4 conntrack entry with one of `addrs` on either side, now; returns
/// how many.
pub fn forget(addrs: &[Ipv4Addr]) -> usize {
    let Some(l) = lib() else {
        return 0;
    };
    if addrs.is_empty() {
        return 0;
    }
    let mut dump = Dump {
        lib: l,
        addrs: addrs.iter().map(|a| u32::from(*a).to_be()).collect(),
        matched: Vec::new(),
    };
    let mut deleted = 0;
    // SAFETY: the handle is used by this function only and closed at its end; `dump`
    // outlives the query that calls back into it; each clone is destroyed once.
    unsafe {
        let h = (l.open)(CONNTRACK, 0);
        if h.is_null() {
            return 0;
        }
        (l.register)(
            h,
            NFCT_T_ALL,
            on_entry,
            &mut dump as *mut Dump as *mut c_void,
        );
        let family: u32 = libc::AF_INET as u32;
        if (l.query)(h, NFCT_Q_DUMP, &family as *const u32 as *const c_void) == 0 {
            for ct in &dump.matched {
                if (l.query)(h, NFCT_Q_DESTROY, *ct) == 0 {
                    deleted += 1;
                }
            }
        }
        for ct in dump.matched.drain(..) {
            (l.destroy)(ct);
        }
        (l.close)(h);
    }
    deleted
}

#[derive(Default)]
struct Queue {
    /// Queued or being forgotten.
    pending: HashSet<Ipv4Addr>,
    /// Not yet taken by the worker.
    queued: Vec<Ipv4Addr>,
}

fn queue() -> &'static (Mutex<Queue>, Condvar) {
    static Q: OnceLock<(Mutex<Queue>, Condvar)> = OnceLock::new();
    Q.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("berth-conntrack".into())
            .spawn(worker);
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting the conntrack clean-up thread");
        }
        Default::default()
    })
}

fn worker() {
    let (m, cv) = queue();
    loop {
        let batch = {
            let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
            while q.queued.is_empty() {
                q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::take(&mut q.queued)
        };
        let n = forget(&batch);
        tracing::debug!(addresses = ?batch, entries = n, "conntrack entries forgotten");
        let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
        for a in &batch {
            q.pending.remove(a);
        }
        cv.notify_all();
    }
}

/// Queues `addrs` for [`forget`] on the background thread.
pub fn forget_later(addrs: Vec<Ipv4Addr>) {
    if addrs.is_empty() || lib().is_none() {
        return;
    }
    let (m, cv) = queue();
    let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
    for a in addrs {
        if q.pending.insert(a) {
            q.queued.push(a);
        }
    }
    cv.notify_all();
}

/// The addresses queued by [`forget_later`] and not yet forgotten.
pub fn pending() -> Vec<Ipv4Addr> {
    if lib().is_none() {
        return Vec::new();
    }
    let (m, _) = queue();
    let q = m.lock().unwrap_or_else(|p| p.into_inner());
    q.pending.iter().copied().collect()
}

/// Blocks until `addr`, if queued by [`forget_later`], has been forgotten (at most 5 s).
pub fn wait_forgotten(addr: Ipv4Addr) {
    let (m, cv) = queue();
    let q = m.lock().unwrap_or_else(|p| p.into_inner());
    let _ = cv.wait_timeout_while(q, Duration::from_secs(5), |q| q.pending.contains(&addr));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_addresses_are_waited_for() {
        // an address no flow uses: forgetting it deletes nothing, waiting ends
        let a = Ipv4Addr::new(192, 0, 2, 254);
        forget_later(vec![a]);
        wait_forgotten(a);
        let (m, _) = queue();
        assert!(!m.lock().unwrap().pending.contains(&a));
    }
}
