//! `--security-opt` and the daemon's security defaults, read as dockerd reads them
//! (moby `daemon/daemon_unix.go parseSecurityOpt`), into the [`SecuritySpec`] the
//! runtime applies.
//!
//! - `no-new-privileges`, `no-new-privileges=true|false` (`:` also accepted);
//! - `seccomp=unconfined`, `seccomp=builtin`, `seccomp=<profile JSON>` (the Docker CLI
//!   reads `seccomp=PATH` and sends the file's content);
//! - `label=disable` (or `disable`) and `apparmor=unconfined`: this host has neither
//!   SELinux nor AppArmor, so they ask for what already holds; other `label`/`apparmor`
//!   values are refused, never ignored.

use crate::error::{Result, RuntimeError};
use caps::CapsHashSet;
use serde::{Deserialize, Serialize};

/// How the container's processes are confined beyond namespaces and capabilities.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SecuritySpec {
    /// `PR_SET_NO_NEW_PRIVS` before exec: setuid bits and file capabilities stop working.
    pub no_new_privileges: bool,
    pub seccomp: SeccompSpec,
    /// The BPF program of `seccomp` for the container's capabilities, hex-encoded, as
    /// the daemon built it once ([`compile`]); empty: the runtime builds it itself.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub seccomp_program: String,
}

/// Fills in [`SecuritySpec::seccomp_program`] for a container whose processes hold
/// `caps` (the daemon, at start; programs are cached per profile and capability set).
pub fn compile(spec: &mut SecuritySpec, caps: &CapsHashSet) -> Result<()> {
    spec.seccomp_program = crate::seccomp::program(&spec.seccomp, caps)?
        .map(|p| hex::encode(p.as_slice()))
        .unwrap_or_default();
    Ok(())
}

/// The seccomp filter of the container's processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SeccompSpec {
    /// No filter (`--privileged`, `seccomp=unconfined`).
    #[default]
    Unconfined,
    /// Docker's default profile, computed from the process's capability set.
    Builtin,
    /// A profile in Docker's JSON format.
    Profile(String),
}

/// The daemon-wide settings (`dockerd --no-new-privileges`, `--seccomp-profile`, and
/// their daemon.json keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityDefaults {
    pub no_new_privileges: bool,
    /// The daemon's profile: `None` for the built-in one, or the content of
    /// `seccomp-profile` (`unconfined` and `builtin` keep their meaning).
    pub seccomp_profile: Option<String>,
    /// Where that profile came from, for `docker info` (`None`: built in).
    pub seccomp_profile_path: Option<String>,
}

impl SecurityDefaults {
    /// From `--no-new-privileges` and `--seccomp-profile PATH|unconfined|builtin`: the
    /// file is read and checked now, so a bad profile stops the daemon at start.
    pub fn load(no_new_privileges: bool, profile: Option<&str>) -> Result<SecurityDefaults> {
        let (content, path) = match profile {
            None | Some("") | Some("builtin") => (None, None),
            Some("unconfined") => (
                Some("unconfined".to_string()),
                Some("unconfined".to_string()),
            ),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| RuntimeError::io("opening seccomp profile", path, e))?;
                crate::seccomp::check_profile(&text)?;
                (Some(text), Some(path.to_string()))
            }
        };
        Ok(SecurityDefaults {
            no_new_privileges,
            seccomp_profile: content,
            seccomp_profile_path: path,
        })
    }

    /// What `docker info` lists under SecurityOptions for seccomp.
    pub fn info_security_option(&self) -> String {
        info_security_option(self.seccomp_profile_path.as_deref())
    }
}

/// What `docker info` shows for seccomp: `name=seccomp,profile=builtin` (or the
/// daemon's profile path, or `unconfined`).
pub fn info_security_option(profile_path: Option<&str>) -> String {
    format!("name=seccomp,profile={}", profile_path.unwrap_or("builtin"))
}

fn parse_bool(s: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn seccomp_from(value: &str) -> Result<SeccompSpec> {
    Ok(match value {
        "unconfined" => SeccompSpec::Unconfined,
        "builtin" | "" => SeccompSpec::Builtin,
        json => {
            crate::seccomp::check_profile(json)?;
            SeccompSpec::Profile(json.to_string())
        }
    })
}

/// Reads `HostConfig.SecurityOpt` over the daemon's defaults, with dockerd's errors.
/// `--privileged` runs without seccomp whatever was asked.
pub fn parse(
    opts: &[String],
    defaults: &SecurityDefaults,
    privileged: bool,
) -> Result<SecuritySpec> {
    let invalid = |n: u8, opt: &str| {
        Err(RuntimeError::InvalidArgument(format!(
            "invalid --security-opt {n}: {opt:?}"
        )))
    };
    let mut spec = SecuritySpec {
        no_new_privileges: defaults.no_new_privileges,
        seccomp: match &defaults.seccomp_profile {
            None => SeccompSpec::Builtin,
            Some(p) => seccomp_from(p)?,
        },
        seccomp_program: String::new(),
    };
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                spec.no_new_privileges = true;
                continue;
            }
            "disable" => continue,
            _ => {}
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return invalid(1, opt);
        };
        match key {
            "no-new-privileges" => match parse_bool(value) {
                Some(b) => spec.no_new_privileges = b,
                None => return invalid(2, opt),
            },
            "seccomp" => spec.seccomp = seccomp_from(value)?,
            "label" if value == "disable" => {}
            "label" => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "SELinux labels are not supported by Berth (this host has no SELinux): {opt:?}"
                )))
            }
            "apparmor" if value == "unconfined" => {}
            "apparmor" => {
                return Err(RuntimeError::InvalidArgument(format!(
                "AppArmor profiles are not supported by Berth (this host has no AppArmor): {opt:?}"
            )))
            }
            _ => return invalid(2, opt),
        }
    }
    if privileged {
        spec.seccomp = SeccompSpec::Unconfined;
    }
    Ok(spec)
}

/// no_new_privs and the seccomp filter of one process, applied in runc's order: the
/// filter is compiled before the user change; without no_new_privs it is loaded then
/// (loading needs CAP_SYS_ADMIN without it), with no_new_privs it is loaded last, right
/// before exec, so that as few syscalls as possible run under it.
pub(crate) struct Confinement {
    program: Option<Vec<u8>>,
    no_new_privileges: bool,
}

impl Confinement {
    /// Call while still root with every capability; `caps` is the set the filter is
    /// computed for.
    pub(crate) fn prepare(spec: &SecuritySpec, caps: &CapsHashSet) -> Result<Confinement> {
        let mut program = if spec.seccomp == SeccompSpec::Unconfined {
            None
        } else if spec.seccomp_program.is_empty() {
            crate::seccomp::program(&spec.seccomp, caps)?.map(|p| p.to_vec())
        } else {
            Some(hex::decode(&spec.seccomp_program).map_err(|e| {
                RuntimeError::InvalidArgument(format!("seccomp program in the spec: {e}"))
            })?)
        };
        if !spec.no_new_privileges {
            if let Some(p) = program.take() {
                crate::seccomp::load_program(&p)?;
            }
        }
        Ok(Confinement {
            program,
            no_new_privileges: spec.no_new_privileges,
        })
    }

    /// Call after the user change, just before exec.
    pub(crate) fn finish(self) -> Result<()> {
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| RuntimeError::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        }
        if let Some(p) = &self.program {
            crate::seccomp::load_program(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<SecuritySpec> {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse(&opts, &SecurityDefaults::default(), false)
    }

    #[test]
    fn no_new_privileges_forms() {
        assert!(!p(&[]).unwrap().no_new_privileges);
        for on in [
            &["no-new-privileges"][..],
            &["no-new-privileges:true"],
            &["no-new-privileges=1"],
        ] {
            assert!(p(on).unwrap().no_new_privileges, "{on:?}");
        }
        assert!(
            !p(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        let defaults = SecurityDefaults {
            no_new_privileges: true,
            ..SecurityDefaults::default()
        };
        assert!(parse(&[], &defaults, false).unwrap().no_new_privileges);
        let off = vec!["no-new-privileges=false".to_string()];
        assert!(!parse(&off, &defaults, false).unwrap().no_new_privileges);
    }

    #[test]
    fn dockerds_errors_for_unknown_options() {
        let e = |o: &[&str]| p(o).unwrap_err().to_string();
        assert_eq!(e(&["foo"]), "invalid --security-opt 1: \"foo\"");
        assert_eq!(e(&["foo=bar"]), "invalid --security-opt 2: \"foo=bar\"");
        assert_eq!(
            e(&["no-new-privileges=maybe"]),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(e(&["apparmor=docker-default"]).contains("AppArmor"));
        assert!(e(&["label=user:foo"]).contains("SELinux"));
    }

    #[test]
    fn what_docker_accepts_here() {
        for ok in [
            &["label=disable"][..],
            &["label:disable"],
            &["disable"],
            &["apparmor=unconfined"],
        ] {
            assert_eq!(p(ok).unwrap(), p(&[]).unwrap(), "{ok:?}");
        }
    }

    #[test]
    fn seccomp_choices() {
        assert_eq!(p(&[]).unwrap().seccomp, SeccompSpec::Builtin);
        assert_eq!(
            p(&["seccomp=unconfined"]).unwrap().seccomp,
            SeccompSpec::Unconfined
        );
        assert_eq!(
            p(&["seccomp=builtin"]).unwrap().seccomp,
            SeccompSpec::Builtin
        );
        let privileged = parse(&[], &SecurityDefaults::default(), true).unwrap();
        assert_eq!(privileged.seccomp, SeccompSpec::Unconfined);
        let defaults = SecurityDefaults::load(false, Some("unconfined")).unwrap();
        assert_eq!(
            parse(&[], &defaults, false).unwrap().seccomp,
            SeccompSpec::Unconfined
        );
        assert_eq!(
            defaults.info_security_option(),
            "name=seccomp,profile=unconfined"
        );
        assert_eq!(
            SecurityDefaults::default().info_security_option(),
            "name=seccomp,profile=builtin"
        );
        assert!(SecurityDefaults::load(false, Some("/nonexistent.json")).is_err());
    }
}
