//! `berth completion bash|zsh|fish|powershell`: scripts generated from the clap definitions
//! (clap_complete). The bash script also completes container, image, volume and network
//! names by asking the daemon (`berth ps -a`, `berth images`, …) at completion time.

use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::Failure;

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum CompletionCmd {
    /// Generate the autocompletion script for bash
    Bash,
    /// Generate the autocompletion script for fish
    Fish,
    /// Generate the autocompletion script for powershell
    Powershell,
    /// Generate the autocompletion script for zsh
    Zsh,
}

/// Which commands take which kind of name as their operands.
const NAME_KINDS: &[(&str, &[&str])] = &[
    (
        "containers",
        &[
            "attach", "commit", "cp", "diff", "exec", "export", "inspect", "kill", "logs", "pause",
            "port", "rename", "restart", "rm", "start", "stats", "stop", "top", "unpause",
            "update", "wait",
        ],
    ),
    (
        "images",
        &["create", "history", "push", "rmi", "run", "save", "tag"],
    ),
    ("volumes", &[]),
    ("networks", &[]),
];

/// The bash code that adds daemon names to clap's completions.
fn bash_dynamic() -> String {
    let mut cases = String::new();
    for (kind, cmds) in NAME_KINDS {
        if !cmds.is_empty() {
            cases.push_str(&format!("        {}) kind={kind} ;;\n", cmds.join("|")));
        }
    }
    format!(
        r#"
# Names from the daemon (Berth): containers, images, volumes, networks.
_berth_names() {{
    case "$1" in
        containers) "${{COMP_WORDS[0]}}" ps -a --format '{{{{.Names}}}}' 2>/dev/null ;;
        images) "${{COMP_WORDS[0]}}" images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 2>/dev/null | grep -v '<none>' ;;
        volumes) "${{COMP_WORDS[0]}}" volume ls -q 2>/dev/null ;;
        networks) "${{COMP_WORDS[0]}}" network ls --format '{{{{.Name}}}}' 2>/dev/null ;;
    esac
}}
_berth_with_names() {{
    _berth "$@"
    local cur="${{COMP_WORDS[COMP_CWORD]}}"
    [[ "$cur" == -* ]] && return 0
    local words=() w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        [[ "$w" == -* ]] || words+=("$w")
    done
    local group="${{words[0]}}" cmd="${{words[0]}}" kind=""
    case "$group" in
        container|image|volume|network) cmd="${{words[1]}}" ;;
    esac
    case "$group:$cmd" in
        volume:inspect|volume:rm|volume:remove) kind=volumes ;;
        network:inspect|network:rm|network:remove|network:connect|network:disconnect) kind=networks ;;
        image:*) kind=images ;;
    esac
    if [[ -z "$kind" ]]; then
        case "$cmd" in
{cases}        esac
    fi
    [[ -z "$kind" ]] && return 0
    local IFS=$'\n'
    COMPREPLY+=($(compgen -W "$(_berth_names "$kind")" -- "$cur"))
}}
complete -F _berth_with_names -o bashdefault -o default berth
"#
    )
}

/// Prints the script for one shell.
pub fn completion(cmd: CompletionCmd) -> Result<i32, Failure> {
    let shell = match cmd {
        CompletionCmd::Bash => Shell::Bash,
        CompletionCmd::Fish => Shell::Fish,
        CompletionCmd::Powershell => Shell::PowerShell,
        CompletionCmd::Zsh => Shell::Zsh,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::args::Cli::command(), "berth", &mut buf);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if matches!(cmd, CompletionCmd::Bash) {
        text.push_str(&bash_dynamic());
    }
    out!("{text}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_script_knows_commands_and_asks_the_daemon_for_names() {
        let mut buf = Vec::new();
        clap_complete::generate(
            Shell::Bash,
            &mut crate::args::Cli::command(),
            "berth",
            &mut buf,
        );
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("_berth()"), "clap's function is _berth");
        for sub in ["context", "completion", "run", "ps", "volume", "network"] {
            assert!(text.contains(sub), "{sub}");
        }
        let dynamic = bash_dynamic();
        assert!(dynamic.contains("ps -a --format '{{.Names}}'"));
        assert!(dynamic.contains("attach|commit|cp"));
    }
}
