//! Dockerfile instructions applied to an image config (`import --change`, `commit
//! --change`), as moby's `BuildFromConfig` does: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
//! LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Anything else is refused with
//! `<instr> is not a valid change command`.
//!
//! Lines are joined with `\n`; `\` at a line end continues it, `#` starts a comment line.
//! Shell forms of CMD/ENTRYPOINT become `["/bin/sh", "-c", "<text>"]`. An ENTRYPOINT
//! clears CMD unless a CMD came earlier in the same changes (as in a Dockerfile).

use std::collections::BTreeMap;

use berth_api::ContainerConfig;
use serde_json::Value;

use crate::ImageError;

const VALID: &[&str] = &[
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArgument(msg.into())
}

/// One logical instruction: keyword as written and the rest of the line.
fn logical_lines(changes: &[String]) -> Vec<(String, String)> {
    let text = changes.join("\n");
    let mut out = Vec::new();
    let mut acc = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if acc.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(cont) = line.trim_end().strip_suffix('\\') {
            acc.push_str(cont);
            continue;
        }
        acc.push_str(line);
        push_instruction(&mut out, &acc);
        acc.clear();
    }
    if !acc.trim().is_empty() {
        push_instruction(&mut out, &acc);
    }
    out
}

fn push_instruction(out: &mut Vec<(String, String)>, line: &str) {
    let line = line.trim();
    let (kw, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    };
    out.push((kw.to_string(), rest.to_string()));
}

/// `["a","b"]` → exec form; anything else is shell form.
fn exec_form(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

fn command_form(rest: &str) -> Vec<String> {
    exec_form(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn env_lookup(env: &[String], key: &str) -> Option<String> {
    env.iter().rev().find_map(|kv| {
        kv.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(str::to_string)
    })
}

/// Splits shell-like words: quotes removed, backslash escapes, `$VAR`/`${VAR}` expanded
/// from `env` (not inside single quotes).
fn words(s: &str, env: &[String]) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            (_, '$') => {
                in_word = true;
                let mut name = String::new();
                if chars.peek() == Some(&'{') {
                    chars.next();
                    for n in chars.by_ref() {
                        if n == '}' {
                            break;
                        }
                        name.push(n);
                    }
                    let (var, default) = match name.split_once(":-") {
                        Some((v, d)) => (v.to_string(), Some(d.to_string())),
                        None => (name.clone(), None),
                    };
                    match env_lookup(env, &var) {
                        Some(v) if !v.is_empty() || default.is_none() => cur.push_str(&v),
                        _ => cur.push_str(&default.unwrap_or_default()),
                    }
                } else {
                    while let Some(&n) = chars.peek() {
                        if n.is_ascii_alphanumeric() || n == '_' {
                            name.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if name.is_empty() {
                        cur.push('$');
                    } else {
                        cur.push_str(&env_lookup(env, &name).unwrap_or_default());
                    }
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(invalid(format!(
            "unexpected end of statement while looking for matching {}",
            quote.unwrap_or('"')
        )));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2=v2` or the legacy `k v...` form of ENV/LABEL.
fn key_values(
    instr: &str,
    rest: &str,
    env: &[String],
) -> Result<Vec<(String, String)>, ImageError> {
    let ws = words(rest, env)?;
    if ws.is_empty() {
        return Err(invalid(format!("{instr} requires at least one argument")));
    }
    if !ws[0].contains('=') {
        // Legacy `ENV key value with spaces`: the value is the raw rest after the key.
        let first = rest.split_whitespace().next().unwrap_or_default();
        let value = rest[first.len()..].trim();
        if value.is_empty() {
            return Err(invalid(format!("{instr} must have two arguments")));
        }
        let v = words(value, env)?.join(" ");
        return Ok(vec![(ws[0].clone(), v)]);
    }
    ws.iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(invalid(format!("{instr} names can not be blank"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(invalid(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

fn expose(ports: &mut BTreeMap<String, Value>, spec: &str) -> Result<(), ImageError> {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| invalid(format!("invalid containerPort: {spec}")))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(range)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(invalid(format!(
            "invalid range specified for container port: {spec}"
        )));
    }
    for p in lo..=hi {
        ports.insert(format!("{p}/{proto}"), Value::Object(Default::default()));
    }
    Ok(())
}

fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `time.ParseDuration` for the units a healthcheck uses; returns nanoseconds.
fn parse_duration(flag: &str, s: &str) -> Result<i64, ImageError> {
    let bad = || {
        invalid(format!(
            "Error parsing {flag}: time: invalid duration \"{s}\""
        ))
    };
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total as i64)
}

fn healthcheck(rest: &str) -> Result<Value, ImageError> {
    let mut obj = serde_json::Map::new();
    let mut rest = rest.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end]
            .split_once('=')
            .ok_or_else(|| invalid(format!("missing a value on flag: --{}", &flag[..end])))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            other => return Err(invalid(format!("unknown flag: {other}"))),
        };
        let v = if key == "Retries" {
            value
                .parse::<i64>()
                .map_err(|_| invalid(format!("invalid retries: {value}")))?
        } else {
            parse_duration(&format!("--{name}"), value)?
        };
        obj.insert(key.into(), v.into());
        rest = flag[end..].trim_start();
    }
    let (kw, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let test: Vec<String> = match kw.to_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() {
                return Err(invalid("HEALTHCHECK NONE takes no arguments"));
            }
            vec!["NONE".into()]
        }
        "CMD" => match exec_form(args) {
            Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            None => vec!["CMD-SHELL".into(), args.to_string()],
        },
        other => {
            return Err(invalid(format!(
                "Unknown type \"{other}\" in HEALTHCHECK (try CMD)"
            )))
        }
    };
    obj.insert(
        "Test".into(),
        serde_json::to_value(test).unwrap_or_default(),
    );
    Ok(Value::Object(obj))
}

fn check_signal(sig: &str) -> Result<(), ImageError> {
    let name = sig.strip_prefix("SIG").unwrap_or(sig).to_uppercase();
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let ok = NAMES.contains(&name.as_str())
        || sig.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n))
        || name.strip_prefix("RTMIN").is_some()
        || name.strip_prefix("RTMAX").is_some();
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("Invalid signal: {sig}")))
    }
}

/// Applies `changes` to `config`. On error `config` is left as it was.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ImageError> {
    let lines = logical_lines(changes);
    for (kw, _) in &lines {
        if !VALID.contains(&kw.to_lowercase().as_str()) {
            return Err(invalid(format!("{kw} is not a valid change command")));
        }
    }
    let mut c = config.clone();
    let mut cmd_set = false;
    for (kw, rest) in lines {
        let instr = kw.to_uppercase();
        match instr.as_str() {
            "CMD" => {
                c.cmd = Some(command_form(&rest));
                cmd_set = true;
            }
            "ENTRYPOINT" => {
                c.entrypoint = Some(command_form(&rest));
                if !cmd_set {
                    c.cmd = None;
                }
            }
            "ENV" => {
                for (k, v) in key_values("ENV", &rest, &c.env)? {
                    let entry = format!("{k}={v}");
                    match c
                        .env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => c.env.push(entry),
                    }
                }
            }
            "LABEL" => {
                for (k, v) in key_values("LABEL", &rest, &c.env)? {
                    c.labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                let specs = words(&rest, &c.env)?;
                if specs.is_empty() {
                    return Err(invalid("EXPOSE requires at least one argument"));
                }
                for spec in specs {
                    expose(ports, &spec)?;
                }
            }
            "WORKDIR" => {
                let w = words(&rest, &c.env)?.join(" ");
                if w.is_empty() {
                    return Err(invalid("WORKDIR requires exactly one argument"));
                }
                c.working_dir = if w.starts_with('/') {
                    clean_path(&w)
                } else {
                    clean_path(&format!("{}/{w}", c.working_dir))
                };
            }
            "USER" => {
                let u = words(&rest, &c.env)?.join(" ");
                if u.is_empty() {
                    return Err(invalid("USER requires exactly one argument"));
                }
                c.user = u;
            }
            "VOLUME" => {
                let vols = match exec_form(&rest) {
                    Some(v) => v,
                    None => words(&rest, &c.env)?,
                };
                if vols.is_empty() {
                    return Err(invalid("VOLUME requires at least one argument"));
                }
                let map = c.volumes.get_or_insert_with(BTreeMap::new);
                for v in vols {
                    if v.trim().is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    map.insert(v, Value::Object(Default::default()));
                }
            }
            "STOPSIGNAL" => {
                let s = words(&rest, &c.env)?.join(" ");
                check_signal(&s)?;
                c.stop_signal = Some(s);
            }
            "ONBUILD" => {
                let trigger = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_uppercase();
                match trigger.as_str() {
                    "" => return Err(invalid("ONBUILD requires at least one argument")),
                    "ONBUILD" => {
                        return Err(invalid(
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                        ))
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(invalid(format!(
                            "{trigger} isn't allowed as an ONBUILD trigger"
                        )))
                    }
                    _ => {}
                }
                c.on_build.get_or_insert_with(Vec::new).push(rest);
            }
            "HEALTHCHECK" => c.healthcheck = Some(healthcheck(&rest)?),
            _ => return Err(invalid(format!("{kw} is not a valid change command"))),
        }
    }
    *config = c;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, String> {
        let mut c = ContainerConfig::default();
        let ch: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &ch)
            .map(|_| c)
            .map_err(|e| e.to_string())
    }

    fn sv(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        assert_eq!(apply(&[r#"CMD ["sh"]"#]).unwrap().cmd, sv(&["sh"]));
        assert_eq!(
            apply(&["CMD echo hi there"]).unwrap().cmd,
            sv(&["/bin/sh", "-c", "echo hi there"])
        );
        let c = apply(&[r#"ENTRYPOINT ["/bin/top", "-b"]"#]).unwrap();
        assert_eq!(c.entrypoint, sv(&["/bin/top", "-b"]));
        let c = apply(&["CMD [\"-c\"]", "ENTRYPOINT top"]).unwrap();
        assert_eq!(c.cmd, sv(&["-c"]));
        assert_eq!(c.entrypoint, sv(&["/bin/sh", "-c", "top"]));
        let mut base = ContainerConfig {
            cmd: sv(&["old"]),
            ..Default::default()
        };
        apply_changes(&mut base, &["ENTRYPOINT [\"x\"]".to_string()]).unwrap();
        assert_eq!(base.cmd, None);
        assert_eq!(apply(&["cmd [\"lower\"]"]).unwrap().cmd, sv(&["lower"]));
    }

    #[test]
    fn env_forms() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "ENV C three  words",
            "ENV D=$A-${B}",
            "ENV A=9",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            vec!["A=9", "B=two words", "C=three words", "D=1-two words"]
        );
        assert!(apply(&["ENV A"]).unwrap_err().contains("two arguments"));
        assert_eq!(apply(&["ENV X='$A'"]).unwrap().env, vec!["X=$A"]);
    }

    #[test]
    fn expose_workdir_user_label_volume_stopsignal_onbuild() {
        let c = apply(&[
            "EXPOSE 80 53/udp 8000-8001/tcp",
            "WORKDIR /srv",
            "WORKDIR app/../www",
            "USER nobody",
            "LABEL a=b \"c d\"=e",
            "VOLUME /data /logs",
            "VOLUME [\"/x\"]",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo hi",
        ])
        .unwrap();
        let ports: Vec<_> = c.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.working_dir, "/srv/www");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(c.labels.get("c d").map(String::as_str), Some("e"));
        let vols: Vec<_> = c.volumes.unwrap().keys().cloned().collect();
        assert_eq!(vols, vec!["/data", "/logs", "/x"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, sv(&["RUN echo hi"]));
    }

    #[test]
    fn healthcheck_forms() {
        let c = apply(&["HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/"]).unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(
            h["Test"],
            serde_json::json!(["CMD-SHELL", "curl -f http://x/"])
        );
        assert_eq!(h["Interval"], 5_000_000_000i64);
        assert_eq!(h["Retries"], 3);
        let c = apply(&["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(c.healthcheck.unwrap()["Test"], serde_json::json!(["NONE"]));
    }

    #[test]
    fn refuses_other_instructions_in_dockers_words() {
        assert_eq!(
            apply(&["RUN echo hi"]).unwrap_err(),
            "RUN is not a valid change command"
        );
        assert_eq!(
            apply(&["from busybox"]).unwrap_err(),
            "from is not a valid change command"
        );
        assert_eq!(
            apply(&["CMD x", "COPY a b"]).unwrap_err(),
            "COPY is not a valid change command"
        );
        assert_eq!(
            apply(&["EXPOSE abc"]).unwrap_err(),
            "invalid containerPort: abc"
        );
        assert_eq!(
            apply(&["STOPSIGNAL NOPE"]).unwrap_err(),
            "Invalid signal: NOPE"
        );
        assert!(apply(&["ONBUILD ONBUILD RUN x"])
            .unwrap_err()
            .contains("Chaining"));
    }

    #[test]
    fn continuation_and_comments() {
        let c = apply(&["# comment\nCMD echo \\\n  hi"]).unwrap();
        assert_eq!(c.cmd, sv(&["/bin/sh", "-c", "echo   hi"]));
    }
}
