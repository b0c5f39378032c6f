//! Docker's help, where clap's derive cannot say it: the `run`/`create` flags and the
//! commands of the Docker CLI 28 that Berth does not have are listed in their `--help` as
//! not supported (using them is refused: `unknown flag`, exit 125). The lists are computed
//! from the clap definitions, so a flag that gets implemented leaves the list by itself.

use clap::Command;

/// Every long flag of `docker run --help` (Docker CLI 28).
pub const DOCKER_RUN_FLAGS: &[&str] = &[
    "add-host",
    "annotation",
    "attach",
    "blkio-weight",
    "blkio-weight-device",
    "cap-add",
    "cap-drop",
    "cgroup-parent",
    "cgroupns",
    "cidfile",
    "cpu-count",
    "cpu-percent",
    "cpu-period",
    "cpu-quota",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpu-shares",
    "cpus",
    "cpuset-cpus",
    "cpuset-mems",
    "detach",
    "detach-keys",
    "device",
    "device-cgroup-rule",
    "device-read-bps",
    "device-read-iops",
    "device-write-bps",
    "device-write-iops",
    "disable-content-trust",
    "dns",
    "dns-option",
    "dns-search",
    "domainname",
    "entrypoint",
    "env",
    "env-file",
    "expose",
    "gpus",
    "group-add",
    "health-cmd",
    "health-interval",
    "health-retries",
    "health-start-interval",
    "health-start-period",
    "health-timeout",
    "help",
    "hostname",
    "init",
    "interactive",
    "io-maxbandwidth",
    "io-maxiops",
    "ip",
    "ip6",
    "ipc",
    "isolation",
    "kernel-memory",
    "label",
    "label-file",
    "link",
    "link-local-ip",
    "log-driver",
    "log-opt",
    "mac-address",
    "memory",
    "memory-reservation",
    "memory-swap",
    "memory-swappiness",
    "mount",
    "name",
    "network",
    "network-alias",
    "no-healthcheck",
    "oom-kill-disable",
    "oom-score-adj",
    "pid",
    "pids-limit",
    "platform",
    "privileged",
    "publish",
    "publish-all",
    "pull",
    "quiet",
    "read-only",
    "restart",
    "rm",
    "runtime",
    "security-opt",
    "shm-size",
    "sig-proxy",
    "stop-signal",
    "stop-timeout",
    "storage-opt",
    "sysctl",
    "tmpfs",
    "tty",
    "ulimit",
    "use-api-socket",
    "user",
    "userns",
    "uts",
    "volume",
    "volume-driver",
    "volumes-from",
    "workdir",
];

/// `docker create` has `run`'s flags but these.
const RUN_ONLY: &[&str] = &["detach", "detach-keys", "sig-proxy"];

/// `docker --help`'s "Common Commands" (Docker CLI 28), in its order.
pub const DOCKER_COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

/// `docker --help`'s "Management Commands".
pub const DOCKER_MANAGEMENT: &[&str] = &[
    "builder",
    "checkpoint",
    "container",
    "context",
    "image",
    "manifest",
    "network",
    "plugin",
    "system",
    "trust",
    "volume",
];

/// `docker --help`'s "Swarm Commands" and "Commands".
const DOCKER_OTHER: &[&str] = &[
    "config", "node", "secret", "service", "stack", "swarm", "attach", "commit", "cp", "create",
    "diff", "events", "export", "history", "import", "inspect", "kill", "load", "logs", "pause",
    "port", "rename", "restart", "rm", "rmi", "save", "start", "stats", "stop", "tag", "top",
    "unpause", "update", "wait",
];

/// Docker's flags of `run` (or `create`) that `cmd` does not define.
pub fn unsupported_flags(cmd: &Command, run: bool) -> Vec<&'static str> {
    let ours: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    DOCKER_RUN_FLAGS
        .iter()
        .copied()
        .filter(|f| run || !RUN_ONLY.contains(f))
        .filter(|f| *f != "help" && !ours.contains(f))
        .collect()
}

/// Docker's commands that `cmd` does not have.
pub fn unsupported_commands(cmd: &Command) -> Vec<&'static str> {
    DOCKER_COMMON
        .iter()
        .chain(DOCKER_MANAGEMENT)
        .chain(DOCKER_OTHER)
        .copied()
        .filter(|c| cmd.find_subcommand(c).is_none())
        .collect()
}

fn note(what: &str, items: &[&str]) -> String {
    format!(
        "Not supported by Berth (refused when used): {what}{}",
        items.join(", ")
    )
}

fn with_flag_note(c: Command, run: bool) -> Command {
    let missing = unsupported_flags(&c, run);
    if missing.is_empty() {
        return c;
    }
    let items: Vec<String> = missing.iter().map(|f| format!("--{f}")).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    c.after_help(note("", &items))
}

/// The CLI's clap command with the "not supported" notes added to the top-level, `run`,
/// `create`, `container run` and `container create` help.
pub fn annotate(cli: Command) -> Command {
    let missing = unsupported_commands(&cli);
    let mut cli = if missing.is_empty() {
        cli
    } else {
        cli.after_help(note("commands ", &missing))
    };
    cli = cli
        .mut_subcommand("run", |c| with_flag_note(c, true))
        .mut_subcommand("create", |c| with_flag_note(c, false));
    cli.mut_subcommand("container", |c| {
        c.mut_subcommand("run", |r| with_flag_note(r, true))
            .mut_subcommand("create", |r| with_flag_note(r, false))
    })
}

/// Every help page as `--help` prints it: the notes of [`annotate`] in Docker's layout.
/// Built only when help is shown (parsing needs neither).
pub fn pages() -> Command {
    crate::help_layout::apply(annotate(
        <crate::args::Cli as clap::CommandFactory>::command(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_docker_run_flag_is_ours_or_listed() {
        let cli = annotate(crate::args::Cli::command());
        for (name, run) in [("run", true), ("create", false)] {
            let mut c = cli.find_subcommand(name).unwrap().clone();
            let help = c.render_help().to_string();
            for f in DOCKER_RUN_FLAGS {
                if !run && RUN_ONLY.contains(f) {
                    continue;
                }
                assert!(help.contains(&format!("--{f}")), "{name}: --{f}");
            }
        }
    }
}
