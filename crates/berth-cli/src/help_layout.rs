//! Docker's layout of help pages, applied to clap's commands: the usage line first
//! (`Usage:  berth ps [OPTIONS]`), the description, an `Aliases:` block naming every path
//! that runs the same command, command lists sorted by name and, at the top, grouped under
//! Docker's headings (`Common Commands:`, `Management Commands:`, `Commands:`,
//! `Global Options:`).

use clap::Command;

use crate::help::{DOCKER_COMMON as COMMON, DOCKER_MANAGEMENT as MANAGEMENT};
use crate::usage;

/// Commands that are Berth's own (not in the Docker CLI).
const BERTH_ONLY: &[&str] = &["daemon"];

/// Top-level shortcuts and the management command each one is (`ps` is `container ls`).
const SHORTCUTS: &[(&str, &str)] = &[
    ("attach", "container attach"),
    ("commit", "container commit"),
    ("cp", "container cp"),
    ("create", "container create"),
    ("diff", "container diff"),
    ("exec", "container exec"),
    ("export", "container export"),
    ("kill", "container kill"),
    ("logs", "container logs"),
    ("pause", "container pause"),
    ("port", "container port"),
    ("ps", "container ls"),
    ("rename", "container rename"),
    ("restart", "container restart"),
    ("rm", "container rm"),
    ("run", "container run"),
    ("start", "container start"),
    ("stats", "container stats"),
    ("stop", "container stop"),
    ("top", "container top"),
    ("unpause", "container unpause"),
    ("update", "container update"),
    ("wait", "container wait"),
    ("build", "image build"),
    ("history", "image history"),
    ("images", "image ls"),
    ("import", "image import"),
    ("load", "image load"),
    ("pull", "image pull"),
    ("push", "image push"),
    ("rmi", "image rm"),
    ("save", "image save"),
    ("tag", "image tag"),
    ("events", "system events"),
    ("info", "system info"),
];

/// Docker's `build` is also `builder build`.
const EXTRA_ALIASES: &[(&str, &str)] = &[("image build", "builder build")];

/// A list of commands as cobra prints it: two spaces, the name padded, the description.
fn command_list<'a>(cmds: impl Iterator<Item = &'a Command>) -> String {
    let cmds: Vec<&Command> = cmds.filter(|c| !c.is_hide_set()).collect();
    let width = cmds
        .iter()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0)
        .max(11)
        + 1;
    cmds.iter()
        .map(|c| {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            format!("  {:width$}{about}", c.get_name())
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sorted(cmd: &Command) -> Vec<&Command> {
    let mut subs: Vec<&Command> = cmd.get_subcommands().collect();
    subs.sort_by_key(|c| c.get_name());
    subs
}

/// The top-level page, grouped as `docker --help` groups it.
fn top_template(cli: &Command) -> String {
    let named = |names: &[&str]| -> Vec<&Command> {
        names
            .iter()
            .filter_map(|n| cli.get_subcommands().find(|c| c.get_name() == *n))
            .collect()
    };
    let rest: Vec<&Command> = sorted(cli)
        .into_iter()
        .filter(|c| {
            let n = c.get_name();
            !COMMON.contains(&n) && !MANAGEMENT.contains(&n) && !BERTH_ONLY.contains(&n)
        })
        .collect();
    let mut sections = Vec::new();
    for (heading, cmds) in [
        ("Common Commands", named(COMMON)),
        ("Management Commands", named(MANAGEMENT)),
        ("Commands", rest),
        ("Berth Commands", named(BERTH_ONLY)),
    ] {
        if !cmds.is_empty() {
            sections.push(format!("{heading}:\n{}", command_list(cmds.into_iter())));
        }
    }
    format!(
        "\nUsage:  berth [OPTIONS] COMMAND\n\n{{about}}\n\n{}\n\nGlobal Options:\n{{options}}{{after-help}}\n\nRun 'berth COMMAND --help' for more information on a command.",
        sections.join("\n\n")
    )
}

/// Every path that runs the command at `path`, in Docker's order: the management path,
/// its aliases, then the top-level shortcut (and `builder build` for `image build`).
fn alias_paths(root: &Command, path: &str) -> Vec<String> {
    let canonical = SHORTCUTS
        .iter()
        .find(|(short, _)| *short == path)
        .map(|(_, long)| long.to_string())
        .unwrap_or_else(|| path.to_string());
    let Some((parent, _)) = canonical.split_once(' ') else {
        return Vec::new();
    };
    let mut out = vec![canonical.clone()];
    let leaf = canonical.rsplit(' ').next().unwrap_or("");
    if let Some(c) = root
        .find_subcommand(parent)
        .and_then(|p| p.find_subcommand(leaf))
    {
        out.extend(c.get_visible_aliases().map(|a| format!("{parent} {a}")));
    }
    if let Some((short, _)) = SHORTCUTS.iter().find(|(_, long)| *long == canonical) {
        out.push(short.to_string());
    }
    if let Some((_, extra)) = EXTRA_ALIASES.iter().find(|(p, _)| *p == canonical) {
        out.push(extra.to_string());
    }
    if out.len() < 2 {
        return Vec::new();
    }
    out
}

/// A leaf command's page: usage, description, aliases, options.
fn leaf_template(root: &Command, path: &str, cmd: &Command) -> String {
    let usage = match usage::spec(path) {
        Some(("", _)) => format!("berth {path}"),
        Some((tail, _)) => format!("berth {path} {tail}"),
        None => {
            let has_options = cmd
                .get_arguments()
                .any(|a| !a.is_positional() && a.get_id() != "help" && !a.is_hide_set());
            let mut parts = vec![format!("berth {path}")];
            if has_options {
                parts.push("[OPTIONS]".into());
            }
            for a in cmd.get_positionals() {
                let name = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
                let many = matches!(a.get_num_args(), Some(r) if r.max_values() > 1);
                let one = if many {
                    format!("{name} [{name}...]")
                } else {
                    name
                };
                parts.push(if a.is_required_set() {
                    one
                } else {
                    format!("[{one}]")
                });
            }
            parts.join(" ")
        }
    };
    let aliases = alias_paths(root, path);
    let aliases = if aliases.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = aliases.iter().map(|p| format!("berth {p}")).collect();
        format!("Aliases:\n  {}\n\n", list.join(", "))
    };
    let after = if cmd.get_after_help().is_some() {
        "\n\n{after-help}"
    } else {
        ""
    };
    format!("Usage:  {usage}\n\n{{about}}\n\n{aliases}Options:\n{{options}}{after}")
}

/// A management command's page: usage, description, its commands sorted.
fn group_template(path: &str, cmd: &Command) -> String {
    format!(
        "Usage:  berth {path} COMMAND\n\n{{about}}\n\nCommands:\n{}\n\nRun 'berth {path} COMMAND --help' for more information on a command.",
        command_list(sorted(cmd).into_iter())
    )
}

fn lay_out(root: &Command, cmd: Command, path: &str) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let template = if names.is_empty() {
        leaf_template(root, path, &cmd)
    } else {
        group_template(path, &cmd)
    };
    let mut cmd = cmd.help_template(template);
    for n in names {
        let sub_path = format!("{path} {n}");
        cmd = cmd.mut_subcommand(&n, |c| lay_out(root, c, &sub_path));
    }
    cmd
}

/// The CLI's clap command with Docker's layout on every page.
pub fn apply(cli: Command) -> Command {
    let root = cli.clone();
    let template = top_template(&cli);
    let names: Vec<String> = cli
        .get_subcommands()
        .filter(|c| c.get_name() != "daemon")
        .map(|c| c.get_name().to_string())
        .collect();
    let mut cli = cli.help_template(template);
    for n in names {
        let path = n.clone();
        cli = cli.mut_subcommand(&n, |c| lay_out(&root, c, &path));
    }
    cli
}
