//! `--ulimit`: the resource limits set on the container's init before it runs the
//! process (runc `setupRlimits`). Limits not asked for are inherited from the shim; one
//! above the hard limit fails with EPERM unless the process may raise it
//! (`CAP_SYS_RESOURCE`), as with runc.

use nix::sys::resource::{setrlimit, Resource};

use crate::error::{Result, RuntimeError};
use crate::spec::Rlimit;

/// The resource for a go-units name.
pub fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

fn value(v: i64) -> u64 {
    if v < 0 {
        libc::RLIM_INFINITY
    } else {
        v as u64
    }
}

/// Sets every limit; the first failure in runc's words.
pub fn apply(limits: &[Rlimit]) -> Result<()> {
    apply_to(0, limits)
}

/// Sets every limit of process `pid` (0: this one). The shim sets a remapped container's
/// init's from outside (`prlimit`, as runc's parent does): inside its user namespace the
/// init may no longer raise a hard limit.
pub fn apply_to(pid: i32, limits: &[Rlimit]) -> Result<()> {
    for l in limits {
        let res = resource(&l.name).ok_or_else(|| {
            RuntimeError::InvalidArgument(format!("invalid ulimit type: {}", l.name))
        })?;
        let r = if pid == 0 {
            setrlimit(res, value(l.soft), value(l.hard))
        } else {
            let new = libc::rlimit {
                rlim_cur: value(l.soft),
                rlim_max: value(l.hard),
            };
            // SAFETY: prlimit reads one `rlimit` through a pointer valid for the call and
            // writes nothing (the old-limit pointer is null).
            let r = unsafe {
                libc::prlimit(
                    pid,
                    res as libc::__rlimit_resource_t,
                    &new,
                    std::ptr::null_mut(),
                )
            };
            nix::errno::Errno::result(r).map(drop)
        };
        r.map_err(|e| {
            RuntimeError::InvalidArgument(format!(
                "error setting rlimit type {}: {}",
                res as i32,
                e.desc().to_lowercase()
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_resources() {
        assert_eq!(resource("nofile"), Some(Resource::RLIMIT_NOFILE));
        assert_eq!(resource("nproc"), Some(Resource::RLIMIT_NPROC));
        assert!(resource("bogus").is_none());
        assert_eq!(value(-1), libc::RLIM_INFINITY);
    }
}
