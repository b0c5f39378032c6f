//! Seccomp as Docker applies it, compiled with libseccomp (the `libseccomp` crate over
//! the system's libseccomp, as runc does).
//!
//! A profile is Docker's JSON format ([`Profile`]); the built-in one is data in
//! [`builtin`]. [`Profile::rules_for`] narrows a profile to one process the way moby's
//! `seccomp.setupSeccomp` does (capabilities, architecture, kernel version in
//! `includes`/`excludes`), and [`compile`] turns the result into a filter the way runc's
//! `libcontainer/seccomp` does (unknown syscall names skipped, rules whose action is the
//! default dropped, one rule per argument when an argument index repeats).

pub mod builtin;

use crate::error::{Result, RuntimeError};
use caps::CapsHashSet;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::str::FromStr;

/// `null` reads as the default (Docker's JSON has `"args": null`).
fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A seccomp profile in Docker's JSON format.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<Rule>,
    #[serde(default, deserialize_with = "null_default")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub listener_path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub sub_architectures: Vec<String>,
}

impl ArchMap {
    pub(crate) fn new(arch: &str, subs: &[&str]) -> Self {
        ArchMap {
            architecture: arch.into(),
            sub_architectures: subs.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The old format's single name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "null_default")]
    pub includes: Filter,
    #[serde(default, deserialize_with = "null_default")]
    pub excludes: Filter,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// When a rule applies: every listed capability held (includes) or any held (excludes),
/// the architecture among `arches` (Go names: `amd64`, `arm64`, …), the kernel at least
/// `min_kernel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_default")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

/// What a rule's conditions are checked against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Go's name of the architecture (`amd64`).
    pub arch: &'static str,
    /// `CAP_*` names of the process's bounding set.
    pub caps: Vec<String>,
    pub kernel: (u32, u32),
}

impl Target {
    /// This machine, for a process with `caps`.
    pub fn native(caps: &CapsHashSet) -> Target {
        Target {
            arch: go_arch(),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            kernel: kernel_version(),
        }
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        _ => "",
    }
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.release().to_str().and_then(parse_kernel))
        .unwrap_or((0, 0))
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidArgument(msg.into())
}

impl Profile {
    /// Parses a profile as the daemon receives it, with moby's and runc's checks of
    /// its shape (so that a bad profile is refused at create, not at start).
    pub fn parse(json: &str) -> Result<Profile> {
        let p: Profile = serde_json::from_str(json)
            .map_err(|e| invalid(format!("Decoding seccomp profile failed: {e}")))?;
        if !p.architectures.is_empty() && !p.arch_map.is_empty() {
            return Err(invalid(
                "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'",
            ));
        }
        if !p.flags.is_empty() {
            return Err(invalid(format!(
                "seccomp flags {:?} are not supported by Berth",
                p.flags
            )));
        }
        if !p.listener_path.is_empty() {
            return Err(invalid(
                "seccomp notify (listenerPath) is not supported by Berth",
            ));
        }
        action(&p.default_action, p.default_errno_ret)?;
        for a in p.architectures.iter().chain(
            p.arch_map
                .iter()
                .flat_map(|m| std::iter::once(&m.architecture).chain(m.sub_architectures.iter())),
        ) {
            ScmpArch::from_str(a)
                .map_err(|_| invalid(format!("unknown seccomp architecture {a:?}")))?;
        }
        for r in &p.syscalls {
            if !r.name.is_empty() && !r.names.is_empty() {
                return Err(invalid(
                    "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'",
                ));
            }
            action(&r.action, r.errno_ret)?;
            for a in &r.args {
                compare(a)?;
            }
            for k in r
                .includes
                .min_kernel
                .iter()
                .chain(r.excludes.min_kernel.iter())
            {
                parse_kernel(k).ok_or_else(|| invalid(format!("invalid kernel version {k:?}")))?;
            }
        }
        Ok(p)
    }

    /// The profile for one process: rules whose `includes`/`excludes` do not hold for
    /// `t` are gone, and the architectures are the native one's entry of `archMap`.
    pub fn rules_for(&self, t: &Target) -> Profile {
        let holds = |caps: &[String]| caps.iter().all(|c| t.caps.contains(c));
        let at_least = |k: &Option<String>| {
            k.as_deref()
                .and_then(parse_kernel)
                .is_some_and(|min| t.kernel >= min)
        };
        let syscalls = self
            .syscalls
            .iter()
            .filter(|r| {
                let ex = &r.excludes;
                let excluded = ex.arches.iter().any(|a| a == t.arch)
                    || ex.caps.iter().any(|c| t.caps.contains(c))
                    || ex.min_kernel.is_some() && at_least(&ex.min_kernel);
                let inc = &r.includes;
                let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == t.arch))
                    && holds(&inc.caps)
                    && (inc.min_kernel.is_none() || at_least(&inc.min_kernel));
                !excluded && included
            })
            .cloned()
            .collect();
        let mut architectures = self.architectures.clone();
        for m in &self.arch_map {
            if m.architecture == native_scmp_arch() {
                architectures.push(m.architecture.clone());
                architectures.extend(m.sub_architectures.iter().cloned());
            }
        }
        Profile {
            architectures,
            arch_map: Vec::new(),
            syscalls,
            ..self.clone()
        }
    }
}

/// Checks a profile's JSON (for the daemon at create).
pub fn check_profile(json: &str) -> Result<()> {
    Profile::parse(json).map(|_| ())
}

fn action(name: &str, errno_ret: Option<u32>) -> Result<ScmpAction> {
    let errno = errno_ret.unwrap_or(libc::EPERM as u32);
    let value = i32::try_from(errno).map_err(|_| invalid(format!("invalid errnoRet {errno}")))?;
    if name == "SCMP_ACT_NOTIFY" {
        return Err(invalid(
            "seccomp notify (SCMP_ACT_NOTIFY) is not supported by Berth",
        ));
    }
    let value = matches!(name, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE").then_some(value);
    ScmpAction::from_str(name, value)
        .map_err(|_| invalid(format!("string {name} is not a valid action for seccomp")))
}

fn compare(a: &Arg) -> Result<ScmpArgCompare> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // Docker's `value` is the mask, `valueTwo` the value compared with.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(
                a.index,
                ScmpCompareOp::MaskedEqual(a.value),
                a.value_two,
            ))
        }
        other => {
            return Err(invalid(format!(
                "string {other} is not a valid operator for seccomp"
            )))
        }
    };
    if a.index > 5 {
        return Err(invalid(format!(
            "seccomp argument index {} is out of range",
            a.index
        )));
    }
    Ok(ScmpArgCompare::new(a.index, op, a.value))
}

fn seccomp_err(what: &str) -> impl Fn(libseccomp::error::SeccompError) -> RuntimeError + '_ {
    move |e| RuntimeError::Internal(format!("seccomp: {what}: {e}"))
}

/// Builds the filter of a narrowed profile ([`Profile::rules_for`]). It is not loaded.
pub fn compile(p: &Profile) -> Result<ScmpFilterContext> {
    let default = action(&p.default_action, p.default_errno_ret)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(seccomp_err("creating the filter"))?;
    // The runtime sets no_new_privs itself when asked to; libseccomp must not.
    ctx.set_ctl_nnp(false)
        .map_err(seccomp_err("clearing the NNP attribute"))?;
    for a in &p.architectures {
        let arch = ScmpArch::from_str(a)
            .map_err(|_| invalid(format!("unknown seccomp architecture {a:?}")))?;
        if !ctx.is_arch_present(arch).unwrap_or(false) {
            ctx.add_arch(arch)
                .map_err(seccomp_err("adding an architecture"))?;
        }
    }
    for r in &p.syscalls {
        let act = action(&r.action, r.errno_ret)?;
        if act == default {
            continue;
        }
        let conds: Vec<ScmpArgCompare> = r.args.iter().map(compare).collect::<Result<_>>()?;
        let repeated = r
            .args
            .iter()
            .any(|a| r.args.iter().filter(|b| b.index == a.index).count() > 1);
        let names = std::iter::once(&r.name)
            .filter(|n| !n.is_empty())
            .chain(r.names.iter());
        for name in names {
            // A name this libseccomp or this architecture does not know is skipped, as
            // runc does.
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let what = format!("adding a rule for {name}");
            if conds.is_empty() {
                ctx.add_rule(act, sys).map_err(seccomp_err(&what))?;
            } else if repeated {
                for c in &conds {
                    ctx.add_rule_conditional(act, sys, std::slice::from_ref(c))
                        .map_err(seccomp_err(&what))?;
                }
            } else {
                ctx.add_rule_conditional(act, sys, &conds)
                    .map_err(seccomp_err(&what))?;
            }
        }
    }
    Ok(ctx)
}

/// The filter for a process holding `caps` under `spec`; `None` when unconfined.
pub fn filter_for(
    spec: &crate::security::SeccompSpec,
    caps: &CapsHashSet,
) -> Result<Option<ScmpFilterContext>> {
    use crate::security::SeccompSpec;
    let profile = match spec {
        SeccompSpec::Unconfined => return Ok(None),
        SeccompSpec::Builtin => builtin::profile(),
        SeccompSpec::Profile(json) => Profile::parse(json)?,
    };
    compile(&profile.rules_for(&Target::native(caps))).map(Some)
}

/// The BPF program of `spec` for a process holding `caps` (`None` when unconfined).
/// libseccomp takes some 10 ms to build one, so programs are kept per profile and
/// capability set: a daemon builds each once and hands the bytes to its containers.
pub fn program(
    spec: &crate::security::SeccompSpec,
    caps: &CapsHashSet,
) -> Result<Option<std::sync::Arc<Vec<u8>>>> {
    use crate::security::SeccompSpec;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, u64), Arc<Vec<u8>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let name = match spec {
        SeccompSpec::Unconfined => return Ok(None),
        SeccompSpec::Builtin => String::new(),
        SeccompSpec::Profile(json) => json.clone(),
    };
    let key = (name, crate::capabilities::mask(caps));
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(Some(p));
    }
    let Some(ctx) = filter_for(spec, caps)? else {
        return Ok(None);
    };
    let fd = nix::sys::memfd::memfd_create(c"seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| RuntimeError::sys("memfd_create for the seccomp program", e))?;
    ctx.export_bpf(&fd)
        .map_err(seccomp_err("exporting the filter"))?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    use std::io::{Read, Seek};
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| RuntimeError::io("reading back", "the seccomp program", e))?;
    let program = Arc::new(bytes);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, program.clone());
    }
    Ok(Some(program))
}

/// Loads a BPF program ([`program`]) into this thread with seccomp(2) (needs
/// no_new_privs or CAP_SYS_ADMIN), as libseccomp's load does without TSYNC.
pub fn load_program(bpf: &[u8]) -> Result<()> {
    let len = bpf.len() / std::mem::size_of::<libc::sock_filter>();
    if bpf.is_empty()
        || !bpf
            .len()
            .is_multiple_of(std::mem::size_of::<libc::sock_filter>())
        || len > u16::MAX as usize
    {
        return Err(RuntimeError::InvalidArgument(format!(
            "seccomp program of {} bytes is not a BPF program",
            bpf.len()
        )));
    }
    let prog = libc::sock_fprog {
        len: len as u16,
        // The kernel only reads the program, and copies it before seccomp returns.
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` describes `bpf` (whole instructions, length checked), which outlives
    // the call; the kernel copies it in and keeps no pointer to it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    nix::errno::Errno::result(r)
        .map(drop)
        .map_err(|e| RuntimeError::sys("seccomp(SECCOMP_SET_MODE_FILTER)", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str]) -> Target {
        Target {
            arch: "amd64",
            caps: caps.iter().map(|s| s.to_string()).collect(),
            kernel: (6, 1),
        }
    }

    fn allowed(p: &Profile, name: &str) -> bool {
        p.syscalls
            .iter()
            .any(|r| r.action == "SCMP_ACT_ALLOW" && r.names.iter().any(|n| n == name))
    }

    #[test]
    fn capabilities_turn_groups_on() {
        let base = builtin::profile();
        let plain = base.rules_for(&target(&["CAP_CHOWN"]));
        for name in ["read", "execve", "clone", "socket", "personality", "ptrace"] {
            assert!(allowed(&plain, name), "{name}");
        }
        for name in [
            "mount",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "reboot",
            "chroot",
            "settimeofday",
            "keyctl",
        ] {
            assert!(!allowed(&plain, name), "{name}");
        }
        let clone3 = plain
            .syscalls
            .iter()
            .find(|r| r.names == ["clone3"])
            .unwrap();
        assert_eq!(
            (clone3.action.as_str(), clone3.errno_ret),
            ("SCMP_ACT_ERRNO", Some(38))
        );
        let clone = plain
            .syscalls
            .iter()
            .find(|r| r.names == ["clone"])
            .unwrap();
        assert_eq!(clone.args[0].value, 0x7E02_0000);
        assert_eq!(
            plain.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );

        let admin = base.rules_for(&target(&["CAP_SYS_ADMIN", "CAP_SYS_TIME"]));
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone3",
            "settimeofday",
            "clock_settime",
        ] {
            assert!(allowed(&admin, name), "{name}");
        }
        assert!(!admin
            .syscalls
            .iter()
            .any(|r| r.names == ["clone3"] && r.action == "SCMP_ACT_ERRNO"));
        assert!(!admin
            .syscalls
            .iter()
            .any(|r| r.names == ["clone"] && !r.args.is_empty()));
        let old = base.rules_for(&Target {
            kernel: (4, 4),
            ..target(&[])
        });
        assert!(!allowed(&old, "ptrace"));
    }

    #[test]
    fn the_builtin_profile_compiles_on_this_machine() {
        let p = builtin::profile().rules_for(&target(&["CAP_CHOWN"]));
        let ctx = compile(&p).unwrap();
        let mut bpf = tempfile::tempfile().unwrap();
        ctx.export_bpf(&bpf).unwrap();
        use std::io::{Seek, SeekFrom};
        // Hundreds of instructions of 8 bytes each.
        assert!(bpf.seek(SeekFrom::End(0)).unwrap() > 8 * 300);
    }

    #[test]
    fn programs_are_built_once_per_profile_and_capability_set() {
        use crate::security::SeccompSpec;
        let caps = crate::capabilities::compute(false, &[], &[]).unwrap();
        let a = program(&SeccompSpec::Builtin, &caps).unwrap().unwrap();
        let b = program(&SeccompSpec::Builtin, &caps).unwrap().unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(a.len() % 8, 0);
        // Hex in the exec helper's argv: far below the kernel's 128 KiB per argument.
        assert!(a.len() < 24 * 1024, "{} bytes", a.len());
        eprintln!("built-in program: {} bytes", a.len());
        let admin = crate::capabilities::compute(false, &["SYS_ADMIN".into()], &[]).unwrap();
        let c = program(&SeccompSpec::Builtin, &admin).unwrap().unwrap();
        assert_ne!(a, c);
        assert!(program(&SeccompSpec::Unconfined, &caps).unwrap().is_none());
        assert!(load_program(&a[..7]).is_err());
    }

    #[test]
    fn custom_profiles_are_checked_with_dockers_words() {
        let e = |j: &str| Profile::parse(j).unwrap_err().to_string();
        assert!(e("{bad").starts_with("Decoding seccomp profile failed: "));
        assert_eq!(
            e(r#"{"defaultAction":"SCMP_ACT_FOO"}"#),
            "string SCMP_ACT_FOO is not a valid action for seccomp"
        );
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#)
            .contains("use either 'architectures' or 'archMap'"));
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_FOO"}]}]}"#)
            .contains("SCMP_CMP_FOO"));
        let ok = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":null}]}"#;
        let p = Profile::parse(ok).unwrap();
        assert_eq!(p.syscalls[0].errno_ret, Some(13));
        compile(&p.rules_for(&target(&[]))).unwrap();
        // Docker's own JSON, written back and read again, is the same profile.
        let round = serde_json::to_string(&builtin::profile()).unwrap();
        assert_eq!(Profile::parse(&round).unwrap(), builtin::profile());
    }
}
