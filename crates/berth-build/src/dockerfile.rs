//! The Dockerfile as the classic builder sees it: `parse-dockerfile` does the syntax
//! (directives, continuations, comments, flags, JSON forms, heredocs); this module turns
//! its tree into [`Instruction`]s with each one's line, its original text (for `Step n/m
//! : …`) and the flags Docker's classic builder accepts, and words its errors as moby's
//! `dockerfile parse error line N: …`.

use parse_dockerfile as pd;

use crate::heredoc::{self, Heredoc};
pub use crate::run_mount::RunSpec;
use crate::shell;
use crate::BuildError;

/// RUN, CMD and ENTRYPOINT (and HEALTHCHECK CMD) arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    pub from: Option<String>,
    pub chown: Option<String>,
    pub srcs: Vec<String>,
    pub dest: String,
    /// `--chmod` as written.
    pub chmod: Option<String>,
    /// `--link` (the classic layer model gives the same files either way).
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// `COPY <<EOF /dest`: here-documents as files named by their delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// None: `HEALTHCHECK NONE`.
    pub cmd: Option<CommandForm>,
    /// `--interval`, `--timeout`, `--start-period`, `--retries` as written.
    pub flags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Arg(Vec<(String, Option<String>)>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Run(RunSpec),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    Copy(CopySpec),
    Add(CopySpec),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    StopSignal(String),
    Healthcheck(HealthSpec),
    Shell(Vec<String>),
    Onbuild(String),
    Maintainer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the keyword.
    pub line: usize,
    /// The logical line, continuations joined (moby `node.Original`).
    pub original: String,
    pub kind: Kind,
}

impl Instruction {
    /// The keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            Kind::From { .. } => "FROM",
            Kind::Arg(_) => "ARG",
            Kind::Env(_) => "ENV",
            Kind::Label(_) => "LABEL",
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Shell(_) => "SHELL",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// One stage: its FROM and what follows.
#[derive(Debug, Clone)]
pub struct Stage {
    pub from: Instruction,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub escape: char,
    /// ARGs before the first FROM.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

fn parse_error(line: usize, msg: impl std::fmt::Display) -> BuildError {
    BuildError::invalid(format!("dockerfile parse error line {line}: {msg}"))
}

/// Removes `escape` + newline continuations and the comment and empty lines they span.
pub fn join_continuations(raw: &str, escape: char) -> String {
    let mut out = String::new();
    let mut first = true;
    for line in raw.split('\n') {
        let t = line.trim_start();
        if !first && (t.starts_with('#') || t.trim().is_empty()) {
            continue;
        }
        first = false;
        let trimmed = line.trim_end_matches([' ', '\t', '\r']);
        match trimmed.strip_suffix(escape) {
            Some(cont) => out.push_str(cont),
            None => {
                out.push_str(line.trim_end_matches('\r'));
            }
        }
    }
    out
}

/// The logical line starting at byte `start` (moby's `Original`).
fn logical_line(text: &str, start: usize, escape: char) -> String {
    let mut out = String::new();
    let mut first = true;
    for line in text[start..].split('\n') {
        let line = line.trim_end_matches('\r');
        let t = line.trim();
        if !first && (t.starts_with('#') || t.is_empty()) {
            continue;
        }
        first = false;
        let trimmed = line.trim_end_matches([' ', '\t']);
        match trimmed.strip_suffix(escape) {
            Some(cont) => out.push_str(cont),
            None => {
                out.push_str(line);
                break;
            }
        }
    }
    out.trim().to_string()
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

fn command(c: &pd::Command<'_>, escape: char) -> CommandForm {
    match c {
        pd::Command::Exec(v) => {
            CommandForm::Exec(v.value.iter().map(|s| s.value.to_string()).collect())
        }
        pd::Command::Shell(s) => CommandForm::Shell(join_continuations(s.value, escape)),
        _ => CommandForm::Shell(String::new()),
    }
}

fn flags(
    instr: &str,
    line: usize,
    given: &[pd::Flag<'_>],
    allowed: &[&str],
) -> Result<Vec<(String, String)>, BuildError> {
    let mut out = Vec::new();
    for f in given {
        let name = f.name.value.to_string();
        if matches!(
            name.as_str(),
            "security" | "parents" | "keep-git-dir" | "unpack"
        ) && allowed.contains(&name.as_str())
        {
            return Err(parse_error(
                line,
                format!("Berth does not support {instr} --{name}"),
            ));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(parse_error(line, format!("Unknown flag: {name}")));
        }
        out.push((
            name,
            f.value
                .as_ref()
                .map(|v| v.value.to_string())
                .unwrap_or_else(|| "\u{0}".into()),
        ));
    }
    Ok(out)
}

/// A boolean flag (`--link`, `--link=false`).
fn bool_flag(line: usize, flags: &[(String, String)], name: &str) -> Result<bool, BuildError> {
    match flag(flags, name) {
        None => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(parse_error(
            line,
            format!("expecting boolean value for flag {name}, not: {v}"),
        )),
    }
}

fn flag<'a>(flags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| if v == "\u{0}" { "" } else { v.as_str() })
}

fn flag_all(flags: &[(String, String)], name: &str) -> Vec<String> {
    flags
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| heredoc::restore(v))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn copy_spec(
    kw: &str,
    line: usize,
    options: &[pd::Flag<'_>],
    src: &[pd::Source<'_>],
    dest: &pd::UnescapedString<'_>,
    allowed: &[&str],
    docs: &[Heredoc],
) -> Result<CopySpec, BuildError> {
    let f = flags(kw, line, options, allowed)?;
    let mut srcs = Vec::new();
    let mut heredocs = Vec::new();
    for s in src {
        let pd::Source::Path(p) = s else {
            return Err(parse_error(line, "unexpected here-document"));
        };
        let word = heredoc::restore(&p.value);
        match heredoc::parse_word(&word) {
            Some(h) => match docs.iter().find(|d| d.name == h.name) {
                Some(d) => heredocs.push(Heredoc {
                    chomp: h.chomp,
                    expand: h.expand,
                    ..d.clone()
                }),
                None => srcs.push(word),
            },
            None => srcs.push(word),
        }
    }
    let dest = heredoc::restore(&dest.value);
    if heredoc::parse_word(&dest).is_some() {
        return Err(parse_error(
            line,
            format!("{kw} cannot accept a heredoc as a destination"),
        ));
    }
    Ok(CopySpec {
        from: flag(&f, "from").map(str::to_string),
        chown: flag(&f, "chown").map(str::to_string),
        srcs,
        dest,
        chmod: flag(&f, "chmod").map(str::to_string),
        link: bool_flag(line, &f, "link")?,
        exclude: flag_all(&f, "exclude"),
        checksum: flag(&f, "checksum").map(str::to_string),
        heredocs,
    })
}

/// The text after the keyword in a logical line.
fn after_keyword(original: &str) -> &str {
    original
        .find(char::is_whitespace)
        .map(|i| original[i..].trim_start())
        .unwrap_or("")
}

fn convert(
    text: &str,
    i: &pd::Instruction<'_>,
    escape: char,
    start: usize,
    docs: &std::collections::BTreeMap<usize, Vec<Heredoc>>,
) -> Result<Instruction, BuildError> {
    let line = line_of(text, start);
    let original = heredoc::restore(&logical_line(text, start, escape));
    let here: &[Heredoc] = docs.get(&line).map(Vec::as_slice).unwrap_or(&[]);
    let kind = match i {
        pd::Instruction::From(f) => {
            let fl = flags("FROM", line, &f.options, &["platform"])?;
            Kind::From {
                image: f.image.value.to_string(),
                name: f.as_.as_ref().map(|(_, n)| n.value.to_string()),
                platform: flag(&fl, "platform").map(str::to_string),
            }
        }
        pd::Instruction::Arg(a) => {
            let mut args = Vec::new();
            for w in shell::split_words(&a.arguments.value, escape) {
                match w.split_once('=') {
                    Some((k, v)) => args.push((k.to_string(), Some(v.to_string()))),
                    None => args.push((w, None)),
                }
            }
            if args.is_empty() {
                return Err(parse_error(line, "ARG requires exactly one argument"));
            }
            Kind::Arg(args)
        }
        pd::Instruction::Env(e) => Kind::Env(
            shell::name_values("ENV", &e.arguments.value, escape)
                .map_err(|err| parse_error(line, err))?,
        ),
        pd::Instruction::Label(l) => Kind::Label(
            shell::name_values("LABEL", &l.arguments.value, escape)
                .map_err(|err| parse_error(line, err))?,
        ),
        pd::Instruction::Run(r) => {
            let f = flags("RUN", line, &r.options, &["mount", "network", "security"])?;
            let cmd = match command(&r.arguments, escape) {
                CommandForm::Shell(s) => CommandForm::Shell(heredoc::restore(&s)),
                exec => exec,
            };
            let spec = RunSpec {
                cmd,
                mounts: flag_all(&f, "mount"),
                network: flag(&f, "network").map(str::to_string),
                heredocs: here.to_vec(),
            };
            crate::run_mount::check_at_parse(&spec).map_err(|e| parse_error(line, e))?;
            Kind::Run(spec)
        }
        pd::Instruction::Cmd(c) => Kind::Cmd(command(&c.arguments, escape)),
        pd::Instruction::Entrypoint(e) => Kind::Entrypoint(command(&e.arguments, escape)),
        pd::Instruction::Copy(c) => Kind::Copy(copy_spec(
            "COPY",
            line,
            &c.options,
            &c.src,
            &c.dest,
            &["from", "chown", "chmod", "link", "exclude", "parents"],
            here,
        )?),
        pd::Instruction::Add(a) => Kind::Add(copy_spec(
            "ADD",
            line,
            &a.options,
            &a.src,
            &a.dest,
            &[
                "chown",
                "chmod",
                "link",
                "checksum",
                "exclude",
                "keep-git-dir",
                "unpack",
                "parents",
            ],
            here,
        )?),
        pd::Instruction::Expose(e) => {
            Kind::Expose(e.arguments.iter().map(|s| s.value.to_string()).collect())
        }
        pd::Instruction::Volume(v) => Kind::Volume(match &v.arguments {
            pd::JsonOrStringArray::Json(a) => a.value.iter().map(|s| s.value.to_string()).collect(),
            pd::JsonOrStringArray::String(a) => a.iter().map(|s| s.value.to_string()).collect(),
        }),
        pd::Instruction::User(u) => Kind::User(u.arguments.value.to_string()),
        pd::Instruction::Workdir(w) => Kind::Workdir(w.arguments.value.to_string()),
        pd::Instruction::Stopsignal(s) => Kind::StopSignal(s.arguments.value.to_string()),
        pd::Instruction::Healthcheck(h) => {
            let fl = flags(
                "HEALTHCHECK",
                line,
                &h.options,
                &["interval", "timeout", "start-period", "retries"],
            )?;
            let cmd = match &h.arguments {
                pd::HealthcheckArguments::Cmd { arguments, .. } => Some(command(arguments, escape)),
                pd::HealthcheckArguments::None { .. } => {
                    if !fl.is_empty() {
                        return Err(parse_error(line, "HEALTHCHECK NONE takes no arguments"));
                    }
                    None
                }
                _ => None,
            };
            Kind::Healthcheck(HealthSpec { cmd, flags: fl })
        }
        pd::Instruction::Shell(s) => {
            Kind::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        pd::Instruction::Onbuild(o) => {
            match &*o.instruction {
                pd::Instruction::Onbuild(_) => {
                    return Err(parse_error(
                        line,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                pd::Instruction::From(_) => {
                    return Err(parse_error(
                        line,
                        "FROM isn't allowed as an ONBUILD trigger",
                    ))
                }
                pd::Instruction::Maintainer(_) => {
                    return Err(parse_error(
                        line,
                        "MAINTAINER isn't allowed as an ONBUILD trigger",
                    ))
                }
                _ => {}
            }
            Kind::Onbuild(after_keyword(&original).to_string())
        }
        pd::Instruction::Maintainer(m) => Kind::Maintainer(m.name.value.to_string()),
        _ => return Err(parse_error(line, "unknown instruction")),
    };
    Ok(Instruction {
        line,
        original,
        kind,
    })
}

fn keyword_start(i: &pd::Instruction<'_>) -> usize {
    match i {
        pd::Instruction::Add(x) => x.add.span.start,
        pd::Instruction::Arg(x) => x.arg.span.start,
        pd::Instruction::Cmd(x) => x.cmd.span.start,
        pd::Instruction::Copy(x) => x.copy.span.start,
        pd::Instruction::Entrypoint(x) => x.entrypoint.span.start,
        pd::Instruction::Env(x) => x.env.span.start,
        pd::Instruction::Expose(x) => x.expose.span.start,
        pd::Instruction::From(x) => x.from.span.start,
        pd::Instruction::Healthcheck(x) => x.healthcheck.span.start,
        pd::Instruction::Label(x) => x.label.span.start,
        pd::Instruction::Maintainer(x) => x.maintainer.span.start,
        pd::Instruction::Onbuild(x) => x.onbuild.span.start,
        pd::Instruction::Run(x) => x.run.span.start,
        pd::Instruction::Shell(x) => x.shell.span.start,
        pd::Instruction::Stopsignal(x) => x.stopsignal.span.start,
        pd::Instruction::User(x) => x.user.span.start,
        pd::Instruction::Volume(x) => x.volume.span.start,
        pd::Instruction::Workdir(x) => x.workdir.span.start,
        _ => 0,
    }
}

/// Docker's words for the parser's errors.
fn docker_error(text: &str, e: &pd::Error) -> BuildError {
    let msg = format!("{e:#}");
    let line = e.line();
    if let Some(rest) = msg.strip_prefix("unknown instruction '") {
        let word = rest.trim_end_matches('\'');
        return parse_error(
            line,
            format!("unknown instruction: {}", word.to_uppercase()),
        );
    }
    if msg == "expected at least one FROM instruction" || msg == "expected FROM" {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_lowercase();
        if first.is_empty() {
            return BuildError::invalid("the Dockerfile (Dockerfile) cannot be empty");
        }
        return BuildError::invalid(format!(
            "failed to process \"{}\": no build stage in current context",
            first
        ));
    }
    if msg.contains("requires at least one argument")
        || msg.contains("requires exactly one argument")
        || msg.contains("requires at least two arguments")
    {
        return parse_error(line, msg.replace(" instruction", ""));
    }
    if msg.contains("ONBUILD ONBUILD") {
        return parse_error(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if let Some(rest) = msg.strip_prefix("ONBUILD ") {
        if let Some(word) = rest.strip_suffix(" is not allowed") {
            return parse_error(line, format!("{word} isn't allowed as an ONBUILD trigger"));
        }
    }
    if line == 0 {
        return BuildError::invalid(format!("dockerfile parse error: {msg}"));
    }
    parse_error(line, msg)
}

/// Parses a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile, BuildError> {
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    }) {
        return Err(BuildError::invalid(
            "the Dockerfile (Dockerfile) cannot be empty",
        ));
    }
    // `# syntax=` and `# check=` are accepted; Berth always builds with its own
    // frontend (it never fetches the frontend image the directive names).
    let (text, docs) = heredoc::extract(text)?;
    let text = text.as_str();
    let parsed = pd::parse(text).map_err(|e| docker_error(text, &e))?;
    let escape = parsed
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in &parsed.instructions {
        let ins = convert(text, i, escape, keyword_start(i), &docs)?;
        match (&ins.kind, stages.last_mut()) {
            (Kind::From { name, .. }, _) => stages.push(Stage {
                name: name.clone().map(|n| n.to_lowercase()),
                from: ins,
                instructions: Vec::new(),
            }),
            (Kind::Arg(_), None) => meta_args.push(ins),
            (_, Some(stage)) => stage.instructions.push(ins),
            (_, None) => {
                return Err(BuildError::invalid(
                    "Please provide a source image with `from` prior to commit",
                ))
            }
        }
    }
    Ok(Dockerfile {
        escape,
        meta_args,
        stages,
    })
}

/// Parses one ONBUILD trigger (`RUN echo hi`) as an instruction of a stage.
pub fn parse_trigger(expr: &str) -> Result<Instruction, BuildError> {
    let text = format!("FROM scratch\n{expr}\n");
    let mut df = parse(&text)?;
    df.stages
        .pop()
        .and_then(|mut s| s.instructions.pop())
        .ok_or_else(|| BuildError::invalid(format!("invalid ONBUILD trigger: {expr}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_lines_and_originals() {
        let df = parse(
            "# escape=\\\nARG V=1\nFROM busybox:${V} AS Base\nRUN echo a \\\n  # inside\n  && echo b\nCMD [\"cat\", \"/x\"]\nFROM scratch\nCOPY --from=base --chown=1:2 /a /b /c/\n",
        )
        .unwrap();
        assert_eq!(df.meta_args.len(), 1);
        assert_eq!(df.stages.len(), 2);
        let s0 = &df.stages[0];
        assert_eq!(s0.name.as_deref(), Some("base"));
        assert_eq!(s0.from.line, 3);
        assert_eq!(s0.instructions[0].original, "RUN echo a   && echo b");
        assert_eq!(
            s0.instructions[0].kind,
            Kind::Run(RunSpec::plain(CommandForm::Shell(
                "echo a   && echo b".into()
            )))
        );
        assert_eq!(
            s0.instructions[1].kind,
            Kind::Cmd(CommandForm::Exec(vec!["cat".into(), "/x".into()]))
        );
        let Kind::Copy(c) = &df.stages[1].instructions[0].kind else {
            panic!("not a copy")
        };
        assert_eq!(c.from.as_deref(), Some("base"));
        assert_eq!(c.chown.as_deref(), Some("1:2"));
        assert_eq!(c.srcs, vec!["/a", "/b"]);
        assert_eq!(c.dest, "/c/");
    }

    #[test]
    fn docker_error_texts() {
        let e = parse("FROM busybox\nFROBNICATE x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unknown instruction: FROBNICATE"
        );
        let e = parse("FROM busybox\nRUN --mount=type=cachee,target=/x true\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unsupported mount type \"cachee\" (did you mean cache?)"
        );
        let e = parse("FROM busybox\nRUN --network=bridge true\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: invalid network mode \"bridge\""
        );
        let e = parse("FROM busybox\nRUN <<EOF\ntrue\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unterminated heredoc"
        );
        let e = parse("\n# only a comment\n").unwrap_err();
        assert_eq!(e.to_string(), "the Dockerfile (Dockerfile) cannot be empty");
        let e = parse("RUN true\n").unwrap_err();
        assert!(e.to_string().contains("no build stage"), "{e}");
        let e = parse("FROM busybox\nONBUILD ONBUILD RUN x\n").unwrap_err();
        assert!(e.to_string().contains("Chaining ONBUILD"), "{e}");
    }

    #[test]
    fn escape_directive_and_triggers() {
        let df = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.stages[0].instructions[0].kind,
            Kind::Run(RunSpec::plain(CommandForm::Shell("echo a   b".into())))
        );
        let t = parse_trigger("RUN echo child").unwrap();
        assert_eq!(
            t.kind,
            Kind::Run(RunSpec::plain(CommandForm::Shell("echo child".into())))
        );
        let df = parse(
            "FROM busybox\nONBUILD RUN echo hi\nVOLUME [\"/a\", \"/b\"]\nENV a=1 b=\"x y\"\n",
        )
        .unwrap();
        assert_eq!(
            df.stages[0].instructions[0].kind,
            Kind::Onbuild("RUN echo hi".into())
        );
        assert_eq!(
            df.stages[0].instructions[1].kind,
            Kind::Volume(vec!["/a".into(), "/b".into()])
        );
    }
}
