//! Issue 18, point 4: Berth's help against the real Docker CLI 28's: every command and
//! every `run`/`create` flag Docker lists is Berth's or listed as not supported, and the
//! management commands have descriptions.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn help_of(bin: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.args(args).arg("--help").env_remove("DOCKER_HOST");
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, &format!("{bin} {args:?} --help"));
    assert_success(&out, &format!("{bin} {args:?} --help"));
    stdout(&out)
}

/// The long flags an option table lists (`  -d, --detach`, `      --name string`).
fn flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = if t.len() > 4 && t.starts_with('-') && t.as_bytes()[2] == b',' {
                t[4..].trim_start()
            } else {
                t
            };
            t.strip_prefix("--")
                .map(|r| r.split([' ', '=', '<']).next().unwrap_or("").to_string())
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// The command names of a help's command sections (Docker's several headings or clap's one).
fn commands(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_cmds = false;
    for l in help.lines() {
        if l.ends_with("Commands:") {
            in_cmds = true;
            continue;
        }
        if !l.starts_with("  ") {
            if !l.trim().is_empty() {
                in_cmds = false;
            }
            continue;
        }
        if in_cmds {
            if let Some(w) = l.split_whitespace().next() {
                out.insert(w.trim_end_matches('*').to_string());
            }
        }
    }
    out
}

#[test]
fn run_and_create_flags_are_berths_or_listed_as_not_supported() {
    skip_unless_docker!();
    for cmd in [
        &["run"][..],
        &["create"],
        &["container", "run"],
        &["container", "create"],
    ] {
        let docker = flags(&help_of(DOCKER_CLI, cmd));
        let ours_help = help_of(BERTH, cmd);
        let ours = flags(&ours_help);
        let note = ours_help
            .lines()
            .find(|l| l.starts_with("Not supported by Berth"))
            .unwrap_or("");
        assert!(docker.len() > 90, "{cmd:?}: {docker:?}");
        for f in &docker {
            assert!(
                ours.contains(f)
                    || note.contains(&format!("--{f},"))
                    || note.ends_with(&format!("--{f}")),
                "{cmd:?}: docker's --{f} is neither Berth's nor listed as not supported"
            );
        }
        // What the note lists really is refused.
        for f in note
            .split(": ")
            .nth(1)
            .unwrap_or("")
            .split(", ")
            .filter(|f| !f.is_empty())
        {
            assert!(
                !ours.contains(f.trim_start_matches("--")),
                "{f} is listed but defined"
            );
        }
    }
}

#[test]
fn commands_are_berths_or_listed_and_described() {
    skip_unless_docker!();
    let docker = commands(&help_of(DOCKER_CLI, &[]));
    let ours_help = help_of(BERTH, &[]);
    let ours = commands(&ours_help);
    let note = ours_help
        .lines()
        .find(|l| l.starts_with("Not supported by Berth"))
        .unwrap_or("");
    assert!(docker.len() > 50, "{docker:?}");
    for c in &docker {
        assert!(
            ours.contains(c) || note.split([' ', ',']).any(|w| w == c),
            "docker's `{c}` is neither Berth's nor listed as not supported"
        );
    }
    assert!(ours.contains("daemon"), "{ours_help}");
    // Management commands: every subcommand has a description, and Docker's are there.
    for group in [
        "container",
        "image",
        "volume",
        "network",
        "system",
        "context",
    ] {
        let help = help_of(BERTH, &[group]);
        let theirs = commands(&help_of(DOCKER_CLI, &[group]));
        let mut listed = BTreeSet::new();
        let mut in_cmds = false;
        for l in help.lines() {
            if l.ends_with("Commands:") {
                in_cmds = true;
                continue;
            }
            if in_cmds && l.starts_with("  ") {
                let mut words = l.split_whitespace();
                let name = words.next().unwrap_or("").to_string();
                assert!(
                    words.next().is_some(),
                    "`{group} {name}` has no description:\n{help}"
                );
                listed.insert(name);
            } else if in_cmds && !l.trim().is_empty() {
                in_cmds = false;
            }
        }
        assert!(!help.contains("Flags shared by"), "{help}");
        let missing: Vec<&String> = theirs.difference(&listed).collect();
        eprintln!("{group}: docker subcommands Berth lacks: {missing:?}");
    }
    assert!(help_of(BERTH, &["system"]).contains("\n\nManage Docker\n\n"));
}

/// The lines of a help page Docker's layout fixes: the usage line and the aliases.
fn usage_and_aliases(help: &str, bin: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("Usage:") {
            out.push(l.replace(bin, "CLI"));
        }
        if *l == "Aliases:" {
            out.push(lines.get(i + 1).unwrap_or(&"").replace(bin, "CLI"));
        }
    }
    out
}

/// Every leaf command path of Berth's CLI, found through its help pages.
fn berth_command_paths(prefix: &[&str], out: &mut Vec<Vec<String>>) {
    let subs = commands(&help_of(BERTH, prefix));
    if subs.is_empty() {
        out.push(prefix.iter().map(|s| s.to_string()).collect());
        return;
    }
    for s in subs.iter().filter(|s| *s != "daemon") {
        let mut p = prefix.to_vec();
        p.push(s);
        berth_command_paths(&p, out);
    }
}

#[test]
fn pages_are_laid_out_as_dockers() {
    skip_unless_docker!();
    // The top-level page: Docker's headings in Docker's order (Swarm's are not Berth's).
    let headings = |help: &str| -> Vec<String> {
        help.lines()
            .filter(|l| l.ends_with(':') && !l.starts_with(' '))
            .map(str::to_string)
            .collect()
    };
    let docker_top = help_of(DOCKER_CLI, &[]);
    let ours_top = help_of(BERTH, &[]);
    let theirs: Vec<String> = headings(&docker_top)
        .into_iter()
        .filter(|h| h != "Swarm Commands:")
        .collect();
    let ours: Vec<String> = headings(&ours_top)
        .into_iter()
        .filter(|h| h != "Berth Commands:")
        .collect();
    assert_eq!(ours, theirs, "{ours_top}");
    assert_eq!(
        usage_and_aliases(&ours_top, "berth"),
        usage_and_aliases(&docker_top, "docker")
    );
    // Every command: the same usage line and the same aliases.
    let mut paths = Vec::new();
    berth_command_paths(&[], &mut paths);
    assert!(paths.len() > 90, "{paths:?}");
    for p in &paths {
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        let ours = help_of(BERTH, &p);
        let theirs = help_of(DOCKER_CLI, &p);
        assert_eq!(
            usage_and_aliases(&ours, "berth"),
            usage_and_aliases(&theirs, "docker"),
            "berth {p:?} --help:\n{ours}"
        );
    }
}
