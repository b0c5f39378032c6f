//! Docker's usage lines and argument-count rules, for its error texts:
//! `'berth stop' requires at least 1 argument` and `Usage:  berth stop [OPTIONS] …`.

/// How many positional arguments a command takes, as cobra words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    None,
    Exact(usize),
    AtLeast(usize),
    Range(usize, usize),
    AtMost(usize),
}

/// The usage tail and arity of a command path (`stop`, `container ls`, `image rm`).
pub fn spec(path: &str) -> Option<(&'static str, Arity)> {
    let by_path = match path {
        "network create" => Some(("[OPTIONS] NETWORK", Arity::Exact(1))),
        "network inspect" => Some(("[OPTIONS] NETWORK [NETWORK...]", Arity::AtLeast(1))),
        "network rm" | "network remove" => Some(("NETWORK [NETWORK...]", Arity::AtLeast(1))),
        "volume create" => Some(("[OPTIONS] [VOLUME]", Arity::AtMost(1))),
        "volume inspect" => Some(("[OPTIONS] VOLUME [VOLUME...]", Arity::AtLeast(1))),
        "volume rm" | "volume remove" => Some(("[OPTIONS] VOLUME [VOLUME...]", Arity::AtLeast(1))),
        "context create" | "context update" => Some(("[OPTIONS] CONTEXT", Arity::Exact(1))),
        "context inspect" => Some(("[OPTIONS] [CONTEXT] [CONTEXT...]", Arity::AtLeast(0))),
        "context rm" | "context remove" => Some(("CONTEXT [CONTEXT...]", Arity::AtLeast(1))),
        "builder prune" => Some(("", Arity::None)),
        "completion zsh" | "completion fish" | "completion powershell" => {
            Some(("[flags]", Arity::None))
        }
        _ => None,
    };
    if by_path.is_some() {
        return by_path;
    }
    let leaf = path.rsplit(' ').next().unwrap_or(path);
    let in_image = path.starts_with("image ");
    Some(match leaf {
        "run" | "create" => ("[OPTIONS] IMAGE [COMMAND] [ARG...]", Arity::AtLeast(1)),
        "start" | "stop" | "restart" | "kill" | "rm" | "remove" if !in_image => {
            ("[OPTIONS] CONTAINER [CONTAINER...]", Arity::AtLeast(1))
        }
        "rm" | "remove" | "rmi" => ("[OPTIONS] IMAGE [IMAGE...]", Arity::AtLeast(1)),
        "ps" | "ls" | "list" if !in_image && path != "images" => ("[OPTIONS]", Arity::None),
        "ls" | "list" | "images" => ("[OPTIONS] [REPOSITORY[:TAG]]", Arity::Range(0, 1)),
        "logs" | "attach" => ("[OPTIONS] CONTAINER", Arity::Exact(1)),
        "update" => ("[OPTIONS] CONTAINER [CONTAINER...]", Arity::AtLeast(1)),
        "wait" | "pause" | "unpause" => ("CONTAINER [CONTAINER...]", Arity::AtLeast(1)),
        "inspect" if in_image => ("[OPTIONS] IMAGE [IMAGE...]", Arity::AtLeast(1)),
        "inspect" if path.starts_with("container ") => {
            ("[OPTIONS] CONTAINER [CONTAINER...]", Arity::AtLeast(1))
        }
        "inspect" => ("[OPTIONS] NAME|ID [NAME|ID...]", Arity::AtLeast(1)),
        "rename" => ("CONTAINER NEW_NAME", Arity::Exact(2)),
        "port" => ("CONTAINER [PRIVATE_PORT[/PROTO]]", Arity::Range(1, 2)),
        "top" => ("CONTAINER [ps OPTIONS]", Arity::AtLeast(1)),
        "cp" => (
            "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
            Arity::Exact(2),
        ),
        "diff" => ("CONTAINER", Arity::Exact(1)),
        "exec" => ("[OPTIONS] CONTAINER COMMAND [ARG...]", Arity::AtLeast(2)),
        "tag" => ("SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", Arity::Exact(2)),
        "history" => ("[OPTIONS] IMAGE", Arity::Exact(1)),
        "import" => ("[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", Arity::AtLeast(1)),
        "version" | "info" | "prune" => ("[OPTIONS]", Arity::None),
        "pull" => ("[OPTIONS] NAME[:TAG|@DIGEST]", Arity::Exact(1)),
        "push" => ("[OPTIONS] NAME[:TAG]", Arity::Exact(1)),
        "login" => ("[OPTIONS] [SERVER]", Arity::AtMost(1)),
        "logout" => ("[SERVER]", Arity::AtMost(1)),
        "stats" => ("[OPTIONS] [CONTAINER...]", Arity::AtLeast(0)),
        "events" => ("[OPTIONS]", Arity::None),
        _ => return None,
    })
}

/// `Usage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]`.
pub fn usage_line(path: &str) -> String {
    match spec(path) {
        Some((tail, _)) if !tail.is_empty() => format!("Usage:  berth {path} {tail}"),
        _ => format!("Usage:  berth {path}"),
    }
}

/// cobra's argument-count error and the hint that follows it (`See …` after a minimum,
/// `Run …` otherwise).
pub fn arity_error(path: &str) -> String {
    let arity = spec(path).map(|(_, a)| a).unwrap_or(Arity::AtLeast(1));
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let (what, verb) = match arity {
        Arity::None => ("accepts no arguments".to_string(), "Run"),
        Arity::Exact(n) => (format!("requires {n} {}", plural(n)), "Run"),
        Arity::AtLeast(n) => (format!("requires at least {n} {}", plural(n)), "See"),
        Arity::Range(a, b) => (
            format!("requires at least {a} and at most {b} {}", plural(b)),
            "Run",
        ),
        // docker/cli 28's RequiresMaxArgs really prints "SRun".
        Arity::AtMost(n) => (format!("requires at most {n} {}", plural(n)), "SRun"),
    };
    format!(
        "berth: 'berth {path}' {what}\n\n{}\n\n{verb} 'berth {path} --help' for more information",
        usage_line(path)
    )
}

/// A refused flag: the message, the usage line and the `--help` hint.
pub fn flag_error(path: &str, msg: &str) -> String {
    format!(
        "{msg}\n\n{}\n\nRun 'berth {path} --help' for more information",
        usage_line(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_arity_texts() {
        assert_eq!(
            arity_error("stop"),
            "berth: 'berth stop' requires at least 1 argument\n\nUsage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth stop --help' for more information"
        );
        assert_eq!(
            arity_error("ps"),
            "berth: 'berth ps' accepts no arguments\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information"
        );
        assert!(arity_error("rename").starts_with("berth: 'berth rename' requires 2 arguments\n"));
        assert_eq!(
            usage_line("image ls"),
            "Usage:  berth image ls [OPTIONS] [REPOSITORY[:TAG]]"
        );
        assert_eq!(
            usage_line("container ls"),
            "Usage:  berth container ls [OPTIONS]"
        );
        assert_eq!(
            usage_line("images"),
            "Usage:  berth images [OPTIONS] [REPOSITORY[:TAG]]"
        );
        assert_eq!(
            flag_error("run", "unknown flag: --bogus"),
            "unknown flag: --bogus\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information"
        );
    }
}
