//! One function per instruction (moby `dispatchers.go`) and the commit of a step
//! (`internals.go`): a metadata step commits the config with a `#(nop)` Cmd, RUN runs
//! a container, COPY/ADD and WORKDIR write into a workspace; each probes the cache first.

use berth_api::ContainerConfig;
use serde_json::{json, Value};

use crate::builder::{short, Backend, Builder, CommitRequest, StageState, StepKind};
use crate::dockerfile::{CommandForm, HealthSpec, Instruction, Kind};
use crate::dockerignore::clean;
use crate::gofmt;
use crate::BuildError;

/// How the comment sits in the Cmd of metadata steps: `["/bin/sh","-c","#(nop) ","CMD
/// …"]` (WORKDIR, COPY and ADD join the two: `"#(nop) WORKDIR …"`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Comment {
    Split,
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let kv = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = kv,
        None => env.push(kv),
    }
}

/// Docker's signal names and numbers (`signal.ParseSignal`).
fn valid_signal(s: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<i32>() {
        return n > 0 && n < 65;
    }
    let up = s.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
}

fn expose_ports(word: &str) -> Result<Vec<String>, BuildError> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(BuildError::invalid(format!("invalid proto: {proto}")));
    }
    let bad = || BuildError::invalid(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(BuildError::invalid(format!(
            "invalid range specified for containerPort: {ports}"
        )));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn health(spec: &HealthSpec, shell: &[String]) -> Result<Value, BuildError> {
    let _ = shell;
    let test: Vec<String> = match &spec.cmd {
        None => vec!["NONE".into()],
        Some(CommandForm::Exec(v)) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
        Some(CommandForm::Shell(s)) => vec!["CMD-SHELL".into(), s.clone()],
    };
    let mut h = serde_json::Map::new();
    h.insert("Test".into(), json!(test));
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
    ] {
        if let Some((_, v)) = spec.flags.iter().rev().find(|(n, _)| n == flag) {
            let d = gofmt::parse_duration(v).ok_or_else(|| {
                BuildError::invalid(format!("time: invalid duration {}", gofmt::quote(v)))
            })?;
            if d != 0 && d < 1_000_000 {
                return Err(BuildError::invalid(format!(
                    "Interval \"{flag}\" cannot be less than 1ms"
                )));
            }
            if d < 0 {
                return Err(BuildError::invalid(format!(
                    "Interval \"{flag}\" cannot be negative"
                )));
            }
            if d > 0 {
                h.insert(key.into(), json!(d));
            }
        }
    }
    if let Some((_, v)) = spec.flags.iter().rev().find(|(n, _)| n == "retries") {
        let r: i64 = v.parse().map_err(|_| {
            BuildError::invalid(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                gofmt::quote(v)
            ))
        })?;
        if r < 0 {
            return Err(BuildError::invalid("--retries cannot be negative"));
        }
        if r > 0 {
            h.insert("Retries".into(), json!(r));
        }
    }
    Ok(Value::Object(h))
}

/// `HEALTHCHECK %q` of moby's `*HealthConfig`.
fn health_comment(h: &Value) -> String {
    let test: Vec<String> = h["Test"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let d = |k: &str| gofmt::quote(&gofmt::duration(h[k].as_i64().unwrap_or(0)));
    format!(
        "HEALTHCHECK &{{{} {} {} {} {}}}",
        gofmt::quote_slice(&test),
        d("Interval"),
        d("Timeout"),
        d("StartPeriod"),
        gofmt::quote_rune(h["Retries"].as_i64().unwrap_or(0))
    )
}

impl<B: Backend> Builder<'_, B> {
    pub(crate) fn command(&self, st: &StageState, c: &CommandForm) -> Vec<String> {
        match c {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn commit_request(&self, st: &StageState, container_config: ContainerConfig) -> CommitRequest {
        let mut config = st.config.clone();
        config.image = st.image_id.clone();
        CommitRequest {
            parent: st.image_id.clone(),
            config,
            container_config,
            author: st.maintainer.clone(),
        }
    }

    /// Commits, removes the container (saying so when `announce`), and moves the stage on.
    pub(crate) async fn finish(
        &mut self,
        st: &mut StageState,
        id: &str,
        container_config: ContainerConfig,
        announce: bool,
    ) -> Result<(), BuildError> {
        let req = self.commit_request(st, container_config);
        let image = match self.backend.commit(id, &req).await {
            Ok(i) => i,
            Err(e) => {
                let _ = self.backend.remove(id).await;
                return Err(e);
            }
        };
        if self.opts.rm || self.opts.force_rm || !announce {
            self.backend.remove(id).await?;
            if announce {
                self.say(&format!("Removing intermediate container {}\n", short(id)));
            }
        }
        st.image_id = image;
        st.config.image = req.parent;
        Ok(())
    }

    /// A metadata-only step (moby `commit`).
    async fn commit_meta(
        &mut self,
        st: &mut StageState,
        comment: String,
        form: Comment,
    ) -> Result<(), BuildError> {
        let mut cc = st.config.clone();
        let mut cmd = st.shell();
        match form {
            Comment::Split => {
                cmd.push("#(nop) ".into());
                cmd.push(comment);
            }
        }
        cc.cmd = Some(cmd);
        cc.image = st.image_id.clone();
        if let Some(hit) = self.cached(st, &cc).await? {
            st.image_id = hit;
            return Ok(());
        }
        let id = self
            .backend
            .create(&st.image_id, &cc, StepKind::Meta)
            .await?;
        self.say(&format!(" ---> Running in {}\n", short(&id)));
        self.finish(st, &id, cc, true).await
    }

    pub(crate) async fn cached(
        &mut self,
        st: &StageState,
        cc: &ContainerConfig,
    ) -> Result<Option<String>, BuildError> {
        if self.opts.no_cache {
            return Ok(None);
        }
        let Some(hit) = self.backend.cached_child(&st.image_id, cc).await? else {
            return Ok(None);
        };
        if let Some(allowed) = &self.cache_allowed {
            if !allowed.contains(&hit) {
                return Ok(None);
            }
        }
        self.say(" ---> Using cache\n");
        Ok(Some(hit))
    }

    pub(crate) async fn dispatch(
        &mut self,
        st: &mut StageState,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        match &ins.kind {
            Kind::From { .. } => Err(BuildError::failed("FROM inside a stage")),
            Kind::Env(pairs) => {
                let env = self.expansion_env(st);
                let mut msg = String::from("ENV");
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let k = crate::shell::process_word(k, &env, self.escape)?;
                    let v = crate::shell::process_word(v, &env, self.escape)?;
                    msg.push_str(&format!(" {k}={v}"));
                    expanded.push((k, v));
                }
                for (k, v) in expanded {
                    set_env(&mut st.config.env, &k, &v);
                }
                self.commit_meta(st, msg, Comment::Split).await
            }
            Kind::Label(pairs) => {
                let mut msg = String::from("LABEL");
                for (k, v) in pairs {
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    msg.push_str(&format!(" {k}={v}"));
                    st.config.labels.insert(k, v);
                }
                self.commit_meta(st, msg, Comment::Split).await
            }
            Kind::Arg(list) => {
                let mut parts = Vec::new();
                for (k, v) in list {
                    let v = match v {
                        Some(v) => Some(self.expand(st, v)?),
                        None => None,
                    };
                    parts.push(match &v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    });
                    self.args.declare(k, v);
                }
                self.commit_meta(st, format!("ARG {}", parts.join(" ")), Comment::Split)
                    .await
            }
            Kind::Maintainer(m) => {
                st.maintainer = m.clone();
                self.commit_meta(st, format!("MAINTAINER {m}"), Comment::Split)
                    .await
            }
            Kind::Cmd(c) => {
                let cmd = self.command(st, c);
                st.config.cmd = Some(cmd.clone());
                st.cmd_set = true;
                self.commit_meta(
                    st,
                    format!("CMD {}", gofmt::quote_slice(&cmd)),
                    Comment::Split,
                )
                .await
            }
            Kind::Entrypoint(c) => {
                let ep = self.command(st, c);
                st.config.entrypoint = Some(ep.clone());
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                self.commit_meta(
                    st,
                    format!("ENTRYPOINT {}", gofmt::quote_slice(&ep)),
                    Comment::Split,
                )
                .await
            }
            Kind::Expose(words) => {
                let shown: Vec<String> = words
                    .iter()
                    .map(|w| self.expand(st, w))
                    .collect::<Result<_, _>>()?;
                let ports = st.config.exposed_ports.get_or_insert_with(Default::default);
                for w in &shown {
                    for p in expose_ports(w)? {
                        ports.insert(p, json!({}));
                    }
                }
                self.commit_meta(st, format!("EXPOSE {}", shown.join(" ")), Comment::Split)
                    .await
            }
            Kind::Volume(words) => {
                let mut vols = Vec::new();
                for w in words {
                    let v = self.expand(st, w)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::invalid(
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    vols.push(v);
                }
                let map = st.config.volumes.get_or_insert_with(Default::default);
                for v in &vols {
                    map.insert(v.clone(), json!({}));
                }
                self.commit_meta(
                    st,
                    format!("VOLUME {}", gofmt::plain_slice(&vols)),
                    Comment::Split,
                )
                .await
            }
            Kind::User(u) => {
                let u = self.expand(st, u)?;
                st.config.user = u.clone();
                self.commit_meta(st, format!("USER {u}"), Comment::Split)
                    .await
            }
            Kind::StopSignal(s) => {
                let s = self.expand(st, s)?;
                if !valid_signal(&s) {
                    return Err(BuildError::invalid(format!("Invalid signal: {s}")));
                }
                st.config.stop_signal = Some(s.clone());
                self.commit_meta(st, format!("STOPSIGNAL {s}"), Comment::Split)
                    .await
            }
            Kind::Healthcheck(spec) => {
                let h = health(spec, &st.shell())?;
                let msg = health_comment(&h);
                st.config.healthcheck = Some(h);
                self.commit_meta(st, msg, Comment::Split).await
            }
            Kind::Shell(words) => {
                st.config.shell = Some(words.clone());
                self.commit_meta(
                    st,
                    format!("SHELL {}", gofmt::plain_slice(words)),
                    Comment::Split,
                )
                .await
            }
            Kind::Onbuild(expr) => {
                let upper = expr.trim().to_string();
                let mut list = st.config.on_build.take().unwrap_or_default();
                list.push(upper.clone());
                st.config.on_build = Some(list);
                self.commit_meta(st, format!("ONBUILD {upper}"), Comment::Split)
                    .await
            }
            Kind::Workdir(w) => self.workdir(st, w).await,
            Kind::Run(spec) => self.run(st, spec).await,
            Kind::Copy(spec) => self.copy(st, spec, false).await,
            Kind::Add(spec) => self.copy(st, spec, true).await,
        }
    }

    async fn workdir(&mut self, st: &mut StageState, w: &str) -> Result<(), BuildError> {
        let w = self.expand(st, w)?;
        let dir = if w.starts_with('/') {
            clean(&w)
        } else {
            let base = if st.config.working_dir.is_empty() {
                "/"
            } else {
                st.config.working_dir.as_str()
            };
            clean(&format!("{base}/{w}"))
        };
        st.config.working_dir = dir.clone();
        let mut cc = st.config.clone();
        let mut cmd = st.shell();
        cmd.push(format!("#(nop) WORKDIR {dir}"));
        cc.cmd = Some(cmd);
        cc.image = st.image_id.clone();
        if let Some(hit) = self.cached(st, &cc).await? {
            st.image_id = hit;
            return Ok(());
        }
        let id = self
            .backend
            .create(&st.image_id, &cc, StepKind::Files)
            .await?;
        self.say(&format!(" ---> Running in {}\n", short(&id)));
        if let Err(e) = self.backend.mkdir(&id, &dir).await {
            let _ = self.backend.remove(&id).await;
            return Err(e);
        }
        self.finish(st, &id, cc, true).await
    }
}
