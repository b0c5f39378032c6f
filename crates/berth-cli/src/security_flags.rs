//! `--security-opt` and `--sysctl` as the Docker CLI reads them: `seccomp=PATH` sends the
//! file's content (compacted JSON), and only sysctls Docker lets through are accepted
//! (docker/cli `opts.ValidateSysctl`); the daemon checks both again.

use std::collections::BTreeMap;

use crate::opts::FlagError;

/// docker/cli `parseSecurityOpts`.
pub fn security_opts(opts: &[String]) -> Result<Vec<String>, FlagError> {
    opts.iter()
        .map(|opt| {
            let split = opt.split_once('=').or_else(|| {
                if opt == "no-new-privileges" {
                    None
                } else {
                    opt.split_once(':')
                }
            });
            let (key, value) = match split {
                Some((k, v)) if !v.is_empty() => (k, v),
                _ if opt == "no-new-privileges" => return Ok(opt.clone()),
                _ => return Err(FlagError(format!("Invalid --security-opt: {opt:?}"))),
            };
            if key != "seccomp" || value == "builtin" || value == "unconfined" {
                return Ok(opt.clone());
            }
            let text = std::fs::read(value).map_err(|e| {
                FlagError(format!(
                    "opening seccomp profile ({value}) failed: open {value}: {}",
                    crate::io_error_text(&e)
                ))
            })?;
            let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                FlagError(format!(
                    "compacting json for seccomp profile ({value}) failed: {e}"
                ))
            })?;
            Ok(format!("seccomp={json}"))
        })
        .collect()
}

/// docker/cli `opts.ValidateSysctl`: the IPC sysctls, `net.*` and `fs.mqueue.*`.
pub fn sysctls(flags: &[String]) -> Result<BTreeMap<String, String>, FlagError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    flags
        .iter()
        .map(|f| {
            let refused = || {
                FlagError(format!(
                    "invalid argument \"{f}\" for \"--sysctl\" flag: sysctl '{f}' is not allowed"
                ))
            };
            let (k, v) = f.split_once('=').ok_or_else(refused)?;
            if IPC.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
                Ok((k.to_string(), v.to_string()))
            } else {
                Err(refused())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn seccomp_files_are_sent_as_their_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.json");
        std::fs::write(&p, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let opt = format!("seccomp={}", p.display());
        assert_eq!(
            security_opts(&s(&[
                &opt,
                "no-new-privileges",
                "seccomp=unconfined",
                "label:disable"
            ]))
            .unwrap(),
            s(&[
                "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
                "no-new-privileges",
                "seccomp=unconfined",
                "label:disable"
            ])
        );
        assert_eq!(
            security_opts(&s(&["foo"])).unwrap_err().0,
            "Invalid --security-opt: \"foo\""
        );
        assert_eq!(
            security_opts(&s(&["seccomp=/nonexistent"])).unwrap_err().0,
            "opening seccomp profile (/nonexistent) failed: open /nonexistent: no such file or directory"
        );
    }

    #[test]
    fn only_dockers_sysctls_pass() {
        let m = sysctls(&s(&["net.core.somaxconn=5", "kernel.sem=1 2 3 4"])).unwrap();
        assert_eq!(m["kernel.sem"], "1 2 3 4");
        assert_eq!(
            sysctls(&s(&["vm.swappiness=61"])).unwrap_err().0,
            "invalid argument \"vm.swappiness=61\" for \"--sysctl\" flag: sysctl 'vm.swappiness=61' is not allowed"
        );
        assert!(sysctls(&s(&["foo"])).is_err());
    }
}
