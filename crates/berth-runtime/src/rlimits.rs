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
    for l in limits {
        let res = resource(&l.name).ok_or_else(|| {
            RuntimeError::InvalidArgument(format!("invalid ulimit type: {}", l.name))
        })?;
        setrlimit(res, value(l.soft), value(l.hard)).map_err(|e| {
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
