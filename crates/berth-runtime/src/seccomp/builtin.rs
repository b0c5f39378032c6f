//! Docker's default seccomp profile as data (moby/profiles `seccomp/default.json`,
//! REFERENCE.md §4): EPERM by default, 361 syscalls always allowed, argument filters for
//! `socket`, `personality` and `clone`, `clone3` answering ENOSYS, and the groups that a
//! capability, an architecture or a kernel version turns on. [`super::Profile::rules_for`]
//! picks the groups for one container's capability set, as `seccomp.GetDefaultProfile`
//! does.

use super::{Arg, Filter, Profile, Rule};

/// Allowed for every container.
#[rustfmt::skip]
const ALWAYS: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
];

/// `(names, capability)`: allowed only with the capability.
const BY_CAPABILITY: &[(&[&str], &str)] = &[
    (&["open_by_handle_at"], "CAP_DAC_READ_SEARCH"),
    (
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        "CAP_SYS_ADMIN",
    ),
    (&["reboot"], "CAP_SYS_BOOT"),
    (&["chroot"], "CAP_SYS_CHROOT"),
    (
        &["delete_module", "init_module", "finit_module"],
        "CAP_SYS_MODULE",
    ),
    (&["acct"], "CAP_SYS_PACCT"),
    (
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        "CAP_SYS_PTRACE",
    ),
    (&["iopl", "ioperm"], "CAP_SYS_RAWIO"),
    (
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        "CAP_SYS_TIME",
    ),
    (&["vhangup"], "CAP_SYS_TTY_CONFIG"),
    (
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        "CAP_SYS_NICE",
    ),
    (&["syslog"], "CAP_SYSLOG"),
    (&["bpf"], "CAP_BPF"),
    (&["perf_event_open"], "CAP_PERFMON"),
];

/// `(names, Go architecture names)`: allowed only on those architectures.
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["sync_file_range2", "swapcontext"], &["ppc64le"]),
    (
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        &["arm", "arm64"],
    ),
    (&["arch_prctl"], &["amd64", "x32"]),
    (&["modify_ldt"], &["amd64", "x32", "x86"]),
    (
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        &["s390", "s390x"],
    ),
    (&["riscv_flush_icache"], &["riscv64"]),
];

/// `personality(2)` personas allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and the query 0xffffffff.
const PERSONAS: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `clone(2)` flags that make namespaces: refused without CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        ..Rule::default()
    }
}

fn arg(index: u32, value: u64, value_two: u64, op: &str) -> Arg {
    Arg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

fn caps(list: &[&str]) -> Filter {
    Filter {
        caps: list.iter().map(|s| s.to_string()).collect(),
        ..Filter::default()
    }
}

fn arches(list: &[&str]) -> Filter {
    Filter {
        arches: list.iter().map(|s| s.to_string()).collect(),
        ..Filter::default()
    }
}

/// The whole profile, before it is narrowed to a container's capabilities.
pub fn profile() -> Profile {
    let mut rules = vec![
        allow(ALWAYS),
        Rule {
            includes: Filter {
                min_kernel: Some("4.8".into()),
                ..Filter::default()
            },
            ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
        },
    ];
    // socket(2): every family but AF_ALG (38) and AF_VSOCK (40).
    for a in [
        arg(0, AF_ALG, 0, "SCMP_CMP_LT"),
        arg(0, AF_ALG + 1, 0, "SCMP_CMP_EQ"),
        arg(0, AF_VSOCK, 0, "SCMP_CMP_GT"),
    ] {
        rules.push(Rule {
            args: vec![a],
            ..allow(&["socket"])
        });
    }
    for persona in PERSONAS {
        rules.push(Rule {
            args: vec![arg(0, *persona, 0, "SCMP_CMP_EQ")],
            ..allow(&["personality"])
        });
    }
    for (names, on) in BY_ARCH {
        rules.push(Rule {
            includes: arches(on),
            ..allow(names)
        });
    }
    for (names, cap) in BY_CAPABILITY.iter().take(2) {
        rules.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    // clone(2) without namespace flags (s390 passes the flags second).
    rules.push(Rule {
        args: vec![arg(0, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ")],
        excludes: Filter {
            caps: vec!["CAP_SYS_ADMIN".into()],
            arches: vec!["s390".into(), "s390x".into()],
            min_kernel: None,
        },
        ..allow(&["clone"])
    });
    rules.push(Rule {
        args: vec![arg(1, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ")],
        includes: arches(&["s390", "s390x"]),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone"])
    });
    // clone3(2) cannot be filtered by flags: ENOSYS makes libc fall back to clone(2).
    rules.push(Rule {
        names: vec!["clone3".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..Rule::default()
    });
    for (names, cap) in BY_CAPABILITY.iter().skip(2) {
        rules.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        arch_map: vec![
            super::ArchMap::new("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            super::ArchMap::new("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
            super::ArchMap::new(
                "SCMP_ARCH_MIPS64",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
            ),
            super::ArchMap::new(
                "SCMP_ARCH_MIPS64N32",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
            ),
            super::ArchMap::new(
                "SCMP_ARCH_MIPSEL64",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
            ),
            super::ArchMap::new(
                "SCMP_ARCH_MIPSEL64N32",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
            ),
            super::ArchMap::new("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
            super::ArchMap::new("SCMP_ARCH_RISCV64", &[]),
            super::ArchMap::new("SCMP_ARCH_LOONGARCH64", &[]),
        ],
        syscalls: rules,
        ..Profile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_counts() {
        assert_eq!(ALWAYS.len(), 361);
        let p = profile();
        assert_eq!(p.syscalls.len(), 33);
        let admin = &BY_CAPABILITY[1];
        assert_eq!((admin.0.len(), admin.1), (26, "CAP_SYS_ADMIN"));
        let mut sorted = ALWAYS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALWAYS.len(), "a name is listed twice");
        for never in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "clone",
            "clone3",
            "personality",
            "socket",
            "ptrace",
            "bpf",
            "perf_event_open",
        ] {
            assert!(
                !ALWAYS.contains(&never),
                "{never} must not be allowed unconditionally"
            );
        }
    }
}
