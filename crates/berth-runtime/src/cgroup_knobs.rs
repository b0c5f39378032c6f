//! cgroup knobs beyond the plain limits: the device rules in the order Docker shows them,
//! and the real-time scheduler budget (`--cpu-rt-*`).

use crate::cgroup::CgroupPaths;
use crate::error::{Result, RuntimeError};
use crate::spec::Resources;

/// The `devices.allow` lines: the defaults and the container's own, in the order
/// Docker's `devices.list` shows them (by type, major, minor), without duplicates.
pub(crate) fn device_allow_rules<'a>(defaults: &[&'a str], res: &'a Resources) -> Vec<&'a str> {
    let mut rules: Vec<&str> = defaults
        .iter()
        .copied()
        .chain(res.device_rules.iter().map(String::as_str))
        .collect();
    rules.sort_by_key(|r| device_rule_key(r));
    rules.dedup();
    rules
}

/// Sort key of a device rule `c 10:229 rwm`: type, then major and minor (`*` first).
fn device_rule_key(rule: &str) -> (String, i64, i64, String) {
    let mut it = rule.split(' ');
    let kind = it.next().unwrap_or_default().to_string();
    let (major, minor) = it
        .next()
        .and_then(|n| n.split_once(':'))
        .unwrap_or(("*", "*"));
    let num = |s: &str| s.parse::<i64>().unwrap_or(-1);
    (
        kind,
        num(major),
        num(minor),
        it.next().unwrap_or_default().to_string(),
    )
}

/// `--cpu-rt-period` / `--cpu-rt-runtime` (v1 `cpu.rt_*`, as runc writes them). The
/// kernel refuses a runtime its parent cgroup has no budget for: that error is runc's.
pub(crate) fn apply_rt(paths: &CgroupPaths, res: &Resources) -> Result<()> {
    if res.cpu_rt_period == 0 && res.cpu_rt_runtime == 0 {
        return Ok(());
    }
    let Some(dir) = paths.v1.get("cpu") else {
        return Err(RuntimeError::InvalidArgument(
            "Your kernel does not support cgroup cpu real-time runtime".into(),
        ));
    };
    let write = |file: &str, v: i64| -> Result<()> {
        let path = dir.join(file);
        std::fs::write(&path, v.to_string()).map_err(|e| {
            let why = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
                .desc()
                .to_lowercase();
            RuntimeError::Internal(format!(
                "unable to apply cgroup configuration: failed to write \"{v}\": write {}: {why}",
                path.display()
            ))
        })
    };
    if res.cpu_rt_period != 0 {
        write("cpu.rt_period_us", res.cpu_rt_period)?;
    }
    if res.cpu_rt_runtime != 0 {
        write("cpu.rt_runtime_us", res.cpu_rt_runtime)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_dockers_order() {
        let res = Resources {
            device_rules: vec!["c 10:229 r".into(), "c 1:3 rwm".into()],
            ..Default::default()
        };
        assert_eq!(
            device_allow_rules(
                &[
                    "c *:* m",
                    "b *:* m",
                    "c 136:* rwm",
                    "c 5:0 rwm",
                    "c 1:3 rwm"
                ],
                &res
            ),
            [
                "b *:* m",
                "c *:* m",
                "c 1:3 rwm",
                "c 5:0 rwm",
                "c 10:229 r",
                "c 136:* rwm"
            ]
        );
    }
}
