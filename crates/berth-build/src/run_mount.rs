//! `RUN --mount=…` and `RUN --network=…` as BuildKit's Dockerfile frontend reads them
//! (`instructions/commands_runmount.go` `parseMount`, `commands_runnetwork.go`), with
//! its error texts. A mount is checked when the Dockerfile is parsed (a bad one is a 400
//! before the build starts) and read again with the step's variables when RUN runs.

use crate::dockerfile::CommandForm;
use crate::heredoc::Heredoc;
use crate::BuildError;

/// A RUN instruction: its command and BuildKit's extras.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    pub cmd: CommandForm,
    /// `--mount` values as written (variables expand when the step runs).
    pub mounts: Vec<String>,
    /// `--network` as written.
    pub network: Option<String>,
    /// The here-documents of the instruction line, in order.
    pub heredocs: Vec<Heredoc>,
}

impl RunSpec {
    pub fn plain(cmd: CommandForm) -> Self {
        RunSpec {
            cmd,
            mounts: Vec::new(),
            network: None,
            heredocs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// One `--mount`, read as BuildKit reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub from: Option<String>,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs `size=` in bytes (0: no limit).
    pub size: i64,
    pub id: String,
    pub sharing: Option<Sharing>,
    pub required: bool,
    /// secret `env=`.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

fn err(msg: impl Into<String>) -> BuildError {
    BuildError::invalid(msg.into())
}

/// Levenshtein distance (BuildKit's `suggest` uses it with a bound of 3).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// BuildKit `suggest.WrapError`: ` (did you mean x?)` for a close option.
fn suggest(msg: String, val: &str, options: &[&str]) -> BuildError {
    let mut best: Option<&str> = None;
    let mut min = 3;
    for o in options {
        if *o == val {
            return err(msg);
        }
        let d = distance(val, o);
        if d < min {
            min = d;
            best = Some(o);
        }
    }
    match best {
        Some(m) => err(format!("{msg} (did you mean {m}?)")),
        None => err(msg),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, BuildError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(err(format!("invalid value for {key}: {value}"))),
    }
}

/// go-units `RAMInBytes`: `512`, `64k`, `10m`, `1g` (binary multiples, optional `b`).
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().trim_end_matches("ib").trim_end_matches('b');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// Splits a CSV record (fields may be double-quoted).
fn csv_fields(val: &str) -> Result<Vec<String>, BuildError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = val.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(err(format!(
            "failed to parse csv mounts: parse error on line 1, column {}: extraneous or missing \" in quoted-field",
            val.len()
        )));
    }
    out.push(cur);
    Ok(out)
}

const TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING: &[&str] = &["shared", "private", "locked"];
const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// BuildKit `parseMount` with every value passed through `expand`.
pub fn parse_mount(
    val: &str,
    expand: &dyn Fn(&str) -> Result<String, BuildError>,
) -> Result<Mount, BuildError> {
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: String::new(),
        target: String::new(),
        read_only: false,
        size: 0,
        id: String::new(),
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in csv_fields(val)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                }
                "required" => {
                    return Err(err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    )))
                }
                _ => {
                    return Err(err(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        let value = expand(value)?;
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(suggest(
                            format!("unsupported mount type {value:?}"),
                            &value,
                            TYPES,
                        ))
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = value,
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => {
                m.read_only = parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                m.required = parse_bool(&key, &value)?;
            }
            "size" if m.kind == MountType::Tmpfs => {
                m.size = ram_in_bytes(&value)
                    .ok_or_else(|| err(format!("invalid value for {key}: {value}")))?;
            }
            "required" | "size" => {
                return Err(err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    m.kind.as_str()
                )))
            }
            "id" => m.id = value,
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(suggest(
                            format!("unsupported sharing value {value:?}"),
                            &value,
                            SHARING,
                        ))
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| err(format!("invalid value {value} for mode")))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| err(format!("invalid value {value} for uid")))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| err(format!("invalid value {value} for gid")))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(suggest(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    KEYS,
                ))
            }
        }
    }
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(err(format!(
                    "{name} not allowed for {:?} type mounts",
                    m.kind.as_str()
                )));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(err("secret mount should not have a from"));
        }
        if m.sharing.is_some() {
            return Err(err("secret mount should not define sharing"));
        }
        if m.source.is_empty() && m.target.is_empty() && m.id.is_empty() {
            return Err(err("invalid secret mount. one of source, target required"));
        }
        if !m.source.is_empty() && !m.id.is_empty() {
            return Err(err("both source and id can't be set"));
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.as_str()
        )));
    }
    if m.kind != MountType::Secret && m.target.is_empty() {
        // BuildKit fails later with "invalid mount target"; say it at parse time.
        return Err(err(format!("invalid mount target {:?}", m.target)));
    }
    Ok(m)
}

impl Mount {
    /// A secret's ID (BuildKit `dispatchSecret`): `id`, else `source`, else the target's
    /// base name.
    pub fn secret_id(&self) -> String {
        if !self.source.is_empty() {
            return self.source.clone();
        }
        if !self.id.is_empty() {
            return self.id.clone();
        }
        self.target
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// A secret's path in the container: the target, else `/run/secrets/<id>`.
    pub fn secret_target(&self) -> String {
        if self.target.is_empty() {
            let id = self.secret_id();
            let base = id.rsplit('/').next().unwrap_or_default().to_string();
            format!("/run/secrets/{base}")
        } else {
            self.target.clone()
        }
    }

    /// A cache mount's ID: `id`, else the cleaned target.
    pub fn cache_id(&self) -> String {
        if self.id.is_empty() {
            crate::dockerignore::clean(&self.target)
        } else {
            self.id.clone()
        }
    }
}

/// `--network=` (BuildKit `commands_runnetwork.go`).
pub fn check_network(value: &str) -> Result<(), BuildError> {
    match value {
        "default" | "none" | "host" => Ok(()),
        _ => Err(err(format!("invalid network mode {value:?}"))),
    }
}

/// Checks what can be checked before variables are known (a `$` defers a field).
pub fn check_at_parse(spec: &RunSpec) -> Result<(), BuildError> {
    for m in &spec.mounts {
        let m = parse_mount(m, &|v: &str| Ok(v.to_string()))?;
        if m.kind == MountType::Ssh {
            return Err(err(
                "Berth does not support RUN --mount=type=ssh (no SSH agent forwarding)",
            ));
        }
        if m.from
            .as_deref()
            .is_some_and(|f| f.find('$').is_some_and(|i| i != f.len() - 1))
        {
            return Err(err(
                "'from' doesn't support variable expansion, define alias stage instead",
            ));
        }
    }
    if let Some(n) = &spec.network {
        if !n.contains('$') {
            check_network(n)?;
        }
    }
    if !spec.heredocs.is_empty() && matches!(spec.cmd, CommandForm::Exec(_)) {
        return Err(err(format!(
            "parsing produced an invalid run command: {:?}",
            spec.cmd
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Mount, BuildError> {
        parse_mount(s, &|v: &str| Ok(v.to_string()))
    }

    #[test]
    fn cache_mounts() {
        let m =
            p("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000")
                .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.cache_id(), "pip");
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.uid, Some(1000));
        assert!(!m.read_only);
        assert_eq!(p("type=cache,target=/a/b/").unwrap().cache_id(), "/a/b");
    }

    #[test]
    fn defaults_and_secrets() {
        let b = p("target=/src,source=sub").unwrap();
        assert_eq!(b.kind, MountType::Bind);
        assert!(b.read_only);
        assert!(!p("type=bind,target=/src,rw").unwrap().read_only);
        let s = p("type=secret,id=tok").unwrap();
        assert_eq!(s.secret_id(), "tok");
        assert_eq!(s.secret_target(), "/run/secrets/tok");
        let s = p("type=secret,target=/etc/key,required").unwrap();
        assert_eq!(s.secret_id(), "key");
        assert!(s.required);
        let t = p("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(t.size, 64 << 20);
    }

    #[test]
    fn buildkit_error_texts() {
        let e = |s: &str| p(s).unwrap_err().to_string();
        assert_eq!(
            e("type=cach,target=/x"),
            "unsupported mount type \"cach\" (did you mean cache?)"
        );
        assert_eq!(e("type=nfs,target=/x"), "unsupported mount type \"nfs\"");
        assert_eq!(
            e("type=cache,target=/x,zzzzz=1"),
            "unexpected key 'zzzzz' in 'zzzzz=1'"
        );
        assert_eq!(
            e("type=cache,target=/x,trget=1"),
            "unexpected key 'trget' in 'trget=1' (did you mean target?)"
        );
        assert_eq!(
            e("type=cache,target=/x,sharing=all"),
            "unsupported sharing value \"all\""
        );
        assert_eq!(
            e("type=bind,target=/x,mode=0700"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            e("type=cache,target=/x,required"),
            "unexpected key 'required' for mount type 'cache'"
        );
        assert_eq!(
            e("type=cache,target=/x,bogus"),
            "invalid field 'bogus' must be a key=value pair"
        );
        assert_eq!(
            e("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            e("type=bind,target=/x,sharing=locked"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(e("type=cache,target=/x,mode=9"), "invalid value 9 for mode");
        assert_eq!(
            e("type=tmpfs,target=/x,size=lots"),
            "invalid value for size: lots"
        );
        assert_eq!(
            check_network("bridge").unwrap_err().to_string(),
            "invalid network mode \"bridge\""
        );
    }
}
