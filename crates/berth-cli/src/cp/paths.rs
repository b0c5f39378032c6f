//! Paths as docker/cli and Go's `filepath` treat them: `CONTAINER:PATH` arguments, cleaning,
//! trailing separators and `/.`, and the renaming of archive entries when the copy gets a new
//! name.

use crate::Failure;

/// docker/cli `splitCpArg`: `CONTAINER:PATH`, or a local path (absolute, `./…`, or
/// without `:`).
pub(super) fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

pub(super) fn specifies_current_dir(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

pub(super) fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(super) fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

pub(super) fn go_base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

pub(super) fn go_dir(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => clean(&p[..i]),
        None => ".".into(),
    }
}

/// go-archive `SplitPathDirEntry`: the directory and base of a path, `x/.` kept as `.`.
pub(super) fn split_path_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) && cleaned != "." && !cleaned.ends_with("/.") {
        cleaned = if cleaned == "/" {
            "/.".into()
        } else {
            format!("{cleaned}/.")
        };
    }
    (go_dir(&cleaned), go_base(&cleaned))
}

/// go-archive `PreserveTrailingDotOrSeparator`.
pub(super) fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if specifies_current_dir(original) && !specifies_current_dir(&out) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if has_trailing_sep(original) && !has_trailing_sep(&out) {
        out.push('/');
    }
    out
}

pub(super) fn resolve_local_path(p: &str) -> Result<String, Failure> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir().map_err(|e| Failure::Msg(crate::io_error_text(&e)))?;
        clean(&format!("{}/{p}", cwd.display()))
    };
    Ok(preserve_trailing(&abs, p))
}

/// go-archive `GetRebaseName`.
pub(super) fn get_rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_sep(path) && !has_trailing_sep(&resolved) {
        resolved.push('/');
    }
    let rebase = (go_base(path) != go_base(&resolved)).then(|| go_base(path));
    (resolved, rebase)
}

/// An entry name with `old` as its first component renamed to `new`.
pub(super) fn rebase_name(name: &str, old: &str, new: &str) -> String {
    let name = name.strip_prefix("./").unwrap_or(name);
    // The daemon names the entries of `/` `/…` and those of `dir/.` `./…`.
    let name = if old == "/" {
        name.trim_start_matches('/')
    } else {
        name
    };
    let name = if name.is_empty() { "." } else { name };
    if old == "." || old == "/" {
        return if name == "." || name.is_empty() {
            new.to_string()
        } else {
            format!("{new}/{name}")
        };
    }
    if name == old || name == format!("{old}/") {
        return new.to_string();
    }
    match name.strip_prefix(&format!("{old}/")) {
        Some(rest) => format!("{new}/{rest}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_args_as_docker() {
        assert_eq!(split_cp_arg("c1:/tmp"), (Some("c1"), "/tmp"));
        assert_eq!(split_cp_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_cp_arg("./f:x"), (None, "./f:x"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }

    #[test]
    fn split_dir_entry_keeps_dot() {
        assert_eq!(split_path_dir_entry("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/"), ("/".into(), "/".into()));
    }

    #[test]
    fn rebase_renames_first_component() {
        assert_eq!(rebase_name("src", "src", "dst"), "dst");
        assert_eq!(rebase_name("src/a/b", "src", "dst"), "dst/a/b");
        assert_eq!(rebase_name("srcx/a", "src", "dst"), "srcx/a");
        assert_eq!(rebase_name("./a", ".", "dst"), "dst/a");
        assert_eq!(rebase_name(".", ".", "dst"), "dst");
        assert_eq!(rebase_name("/bin/sh", "/", "root"), "root/bin/sh");
        assert_eq!(rebase_name("/", "/", "root"), "root");
    }

    #[test]
    fn rebase_names_from_links() {
        assert_eq!(
            get_rebase_name("/a/link", "/b/target"),
            ("/b/target".into(), Some("link".into()))
        );
        assert_eq!(get_rebase_name("/a/t/", "/b/t"), ("/b/t/".into(), None));
    }

    #[test]
    fn clean_as_go() {
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean("a/.."), ".");
    }
}
