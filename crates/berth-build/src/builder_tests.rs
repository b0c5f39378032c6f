use super::*;
use crate::dockerfile::parse;
use std::collections::HashMap;

/// A fake daemon: images in a map, containers as names, RUN exit codes by command.
#[derive(Default)]
struct Fake {
    images: HashMap<String, (String, ContainerConfig, ContainerConfig)>,
    order: Vec<String>,
    containers: Vec<String>,
    removed: Vec<String>,
    runs: Vec<Vec<String>>,
    run_env: Vec<Vec<String>>,
    copies: Vec<CopyPlan>,
    tags: Vec<(String, String)>,
    next: usize,
    fail_cmd: Option<String>,
    forks: usize,
    /// `start <cmd>` / `end <cmd>` of every RUN, across forks.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// RUNs wait this many polls (a stage running beside another lets it go on).
    run_polls: usize,
}

/// A future that is pending `n` times, then ready.
struct Yield(usize);

impl Future for Yield {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 == 0 {
            return std::task::Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl Fake {
    fn with_busybox() -> Self {
        let mut f = Fake::default();
        let cfg = ContainerConfig {
            env: vec![DEFAULT_PATH.into()],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        f.images.insert(
            "sha256:busybox".into(),
            (String::new(), cfg, ContainerConfig::default()),
        );
        f
    }
}

impl Backend for Fake {
    async fn image(
        &mut self,
        name: &str,
        _pull: bool,
        _platform: Option<&str>,
        _out: &mut dyn Output,
    ) -> Result<BaseImage, BuildError> {
        let id = if name == "busybox" {
            "sha256:busybox".to_string()
        } else {
            name.to_string()
        };
        match self.images.get(&id) {
            Some((_, c, _)) => Ok(BaseImage {
                id,
                config: c.clone(),
            }),
            None => Err(BuildError::invalid(format!(
                "pull access denied for {name}"
            ))),
        }
    }
    async fn cached_child(
        &mut self,
        parent: &str,
        config: &ContainerConfig,
    ) -> Result<Option<String>, BuildError> {
        Ok(self
            .order
            .iter()
            .rev()
            .find(|id| {
                let (p, _, cc) = &self.images[*id];
                p == parent && crate::cache::compare(cc, config)
            })
            .cloned())
    }
    async fn ancestors(&mut self, image: &str) -> Result<Vec<String>, BuildError> {
        let mut out = Vec::new();
        let mut cur = image.to_string();
        while let Some((p, _, _)) = self.images.get(&cur) {
            out.push(cur.clone());
            cur = p.clone();
        }
        Ok(out)
    }
    async fn create(
        &mut self,
        _parent: &str,
        config: &ContainerConfig,
        kind: StepKind,
    ) -> Result<String, BuildError> {
        self.next += 1;
        let id = format!("{:064x}", self.next);
        if kind == StepKind::Run {
            self.runs.push(config.cmd.clone().unwrap_or_default());
            self.run_env.push(config.env.clone());
        }
        self.containers.push(id.clone());
        Ok(id)
    }
    async fn run(&mut self, _c: &str, out: &mut dyn Output) -> Result<i64, BuildError> {
        let cmd = self.runs.last().cloned().unwrap_or_default().join(" ");
        self.log.lock().unwrap().push(format!("start {cmd}"));
        out.stream("output");
        let failing = Some(&cmd) == self.fail_cmd.as_ref();
        Yield(if failing { 1 } else { self.run_polls }).await;
        if out.cancelled() {
            self.log.lock().unwrap().push(format!("killed {cmd}"));
            return Err(BuildError::Cancelled);
        }
        out.stream("\n");
        self.log.lock().unwrap().push(format!("end {cmd}"));
        Ok(if Some(cmd) == self.fail_cmd { 3 } else { 0 })
    }
    async fn copy(
        &mut self,
        _c: &str,
        plan: &CopyPlan,
        _chown: Option<&str>,
    ) -> Result<(), BuildError> {
        self.copies.push(plan.clone());
        Ok(())
    }
    async fn mkdir(&mut self, _c: &str, _p: &str) -> Result<(), BuildError> {
        Ok(())
    }
    async fn commit(&mut self, _c: &str, req: &CommitRequest) -> Result<String, BuildError> {
        self.next += 1;
        let id = format!("sha256:{:064x}", self.next);
        self.images.insert(
            id.clone(),
            (
                req.parent.clone(),
                req.config.clone(),
                req.container_config.clone(),
            ),
        );
        self.order.push(id.clone());
        Ok(id)
    }
    async fn remove(&mut self, c: &str) -> Result<(), BuildError> {
        self.removed.push(c.to_string());
        Ok(())
    }
    async fn tag(&mut self, image: &str, r: &str) -> Result<(), BuildError> {
        self.tags.push((image.into(), r.into()));
        Ok(())
    }
    async fn image_root(&mut self, _image: &str) -> Result<PathBuf, BuildError> {
        // Every stage's filesystem holds /x and /y.
        let dir = std::env::temp_dir().join(format!("berth-fake-root-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("x"), "x")?;
        std::fs::write(dir.join("y"), "y")?;
        Ok(dir)
    }
    async fn download(&mut self, _url: &str) -> Result<PathBuf, BuildError> {
        Err(BuildError::failed("no downloads in the fake"))
    }
    fn fork(&mut self) -> Self {
        self.forks += 1;
        Fake {
            images: self.images.clone(),
            order: self.order.clone(),
            next: self.next + 1_000_000 * self.forks,
            fail_cmd: self.fail_cmd.clone(),
            log: self.log.clone(),
            run_polls: self.run_polls,
            ..Default::default()
        }
    }
    fn join(&mut self, child: Self) {
        for id in child.order {
            if !self.order.contains(&id) {
                self.order.push(id);
            }
        }
        self.images.extend(child.images);
        self.containers.extend(child.containers);
        self.removed.extend(child.removed);
        self.runs.extend(child.runs);
        self.run_env.extend(child.run_env);
        self.copies.extend(child.copies);
        self.tags.extend(child.tags);
    }
}

#[derive(Default)]
struct Collect {
    text: String,
    aux: Vec<String>,
}

impl Output for Collect {
    fn stream(&mut self, text: &str) {
        self.text.push_str(text);
    }
    fn aux_id(&mut self, id: &str) {
        self.aux.push(id.to_string());
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    // A tiny executor: the fake never returns Pending.
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn raw() -> RawWaker {
        fn clone(_: *const ()) -> RawWaker {
            raw()
        }
        fn noop(_: *const ()) {}
        static VT: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        RawWaker::new(std::ptr::null(), &VT)
    }
    // SAFETY: the vtable's functions do nothing and never touch the null data pointer.
    let waker = unsafe { Waker::from_raw(raw()) };
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn build(
    fake: &mut Fake,
    text: &str,
    opts: &BuildOptions,
) -> (Result<String, BuildError>, Collect) {
    let df = parse(text).unwrap();
    let mut out = Collect::default();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("greeting"), "hello\n").unwrap();
    let r = block_on(Builder::new(fake, &mut out, opts, ctx.path()).build(&df));
    (r, out)
}

const DF: &str = "FROM busybox\nARG A=1\nENV X=1 Y=\"two words\" Z=$X\nWORKDIR /srv\nWORKDIR sub\nCOPY greeting /greeting\nRUN echo $A > /a\nENTRYPOINT echo hi\nCMD [\"cat\", \"/greeting\"]\n";

#[test]
fn docker_output_history_and_config() {
    let mut f = Fake::with_busybox();
    let opts = BuildOptions {
        tags: vec!["x:y".into()],
        ..Default::default()
    };
    let (r, out) = build(&mut f, DF, &opts);
    let id = r.unwrap();
    let lines: Vec<&str> = out.text.lines().collect();
    assert_eq!(lines[0], "Step 1/9 : FROM busybox");
    assert_eq!(lines[1], " ---> busybox");
    assert_eq!(lines[2], "Step 2/9 : ARG A=1");
    assert!(lines[3].starts_with(" ---> Running in "));
    assert!(lines[4].starts_with("Removing intermediate container "));
    assert!(out
        .text
        .contains("Step 6/9 : COPY greeting /greeting\n ---> "));
    assert!(out.text.contains("output\n"));
    assert!(out.text.ends_with(&format!(
        "Successfully built {}\nSuccessfully tagged x:y\n",
        short(&id)
    )));
    assert_eq!(out.aux, vec![id.clone()]);
    let (_, cfg, cc) = &f.images[&id];
    assert_eq!(
        cfg.cmd,
        Some(vec!["cat".to_string(), "/greeting".to_string()])
    );
    assert_eq!(
        cfg.entrypoint,
        Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "echo hi".to_string()
        ])
    );
    assert_eq!(cfg.working_dir, "/srv/sub");
    assert_eq!(
        cfg.env[1..],
        [
            "X=1".to_string(),
            "Y=two words".to_string(),
            "Z=".to_string()
        ]
    );
    assert_eq!(
        cc.cmd.clone().unwrap().join(" "),
        "/bin/sh -c #(nop)  CMD [\"cat\" \"/greeting\"]"
    );
    // RUN: the ARG in the environment and in the history prefix.
    assert_eq!(
        f.runs,
        vec![vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "echo $A > /a".into()
        ]]
    );
    assert!(f.run_env[0].contains(&"A=1".to_string()));
    let run_image = f
        .order
        .iter()
        .find(|i| f.images[*i].2.cmd.as_ref().is_some_and(|c| c[0] == "|1"))
        .unwrap();
    assert_eq!(
        f.images[run_image].2.cmd.clone().unwrap().join(" "),
        "|1 A=1 /bin/sh -c echo $A > /a"
    );
    // COPY: the destination and the checksum in the history.
    assert_eq!(f.copies[0].dest, "/greeting");
    let copy_image = f
        .order
        .iter()
        .find(|i| {
            f.images[*i]
                .2
                .cmd
                .as_ref()
                .is_some_and(|c| c[2].starts_with("#(nop) COPY file:"))
        })
        .unwrap();
    assert!(f.images[copy_image].2.cmd.clone().unwrap()[2].ends_with(" in /greeting "));
    assert_eq!(f.tags, vec![(id, "x:y".to_string())]);
}

#[test]
fn rebuild_is_all_cache_and_a_change_invalidates_the_rest() {
    let mut f = Fake::with_busybox();
    let opts = BuildOptions::default();
    let (first, _) = build(&mut f, DF, &opts);
    let n = f.containers.len();
    let (second, out) = build(&mut f, DF, &opts);
    assert_eq!(first.unwrap(), second.unwrap());
    assert_eq!(f.containers.len(), n, "no container for a cached build");
    assert_eq!(out.text.matches(" ---> Using cache").count(), 8);
    let changed = DF.replace("ENV X=1", "ENV X=2");
    let (_, out) = build(&mut f, &changed, &opts);
    assert_eq!(
        out.text.matches(" ---> Using cache").count(),
        1,
        "only ARG before the change"
    );
    let (_, out) = build(
        &mut f,
        DF,
        &BuildOptions {
            no_cache: true,
            ..Default::default()
        },
    );
    assert_eq!(out.text.matches("Using cache").count(), 0);
    let (_, out) = build(
        &mut f,
        DF,
        &BuildOptions {
            build_args: [("A".to_string(), Some("2".to_string()))].into(),
            ..Default::default()
        },
    );
    assert_eq!(
        out.text.matches("Using cache").count(),
        5,
        "the RUN sees another A"
    );
}

#[test]
fn copy_exclude_patterns_are_part_of_the_cache_key() {
    let mut f = Fake::with_busybox();
    let opts = BuildOptions::default();
    let df = |ex: &str| format!("FROM busybox\nCOPY {ex} greeting /g/\n");
    let (first, _) = build(&mut f, &df("--exclude=*.md"), &opts);
    let (again, out) = build(&mut f, &df("--exclude=*.md"), &opts);
    assert_eq!(first.unwrap(), again.unwrap());
    assert_eq!(out.text.matches(" ---> Using cache").count(), 1);
    // Only the exclude list changes: another step, not the cached one.
    for other in ["--exclude=greeting", "--exclude=*.md --exclude=x", ""] {
        let copies = f.copies.len();
        let (_, out) = build(&mut f, &df(other), &opts);
        assert_eq!(
            out.text.matches("Using cache").count(),
            0,
            "{other:?}: {}",
            out.text
        );
        assert_eq!(f.copies.len(), copies + 1, "{other:?} copies again");
    }
    let last = f.copies.last().unwrap();
    assert!(last.exclude.is_none());
    let (_, out) = build(&mut f, &df("--exclude=greeting"), &opts);
    assert_eq!(out.text.matches(" ---> Using cache").count(), 1);
}

#[test]
fn failing_run_and_errors() {
    let mut f = Fake::with_busybox();
    f.fail_cmd = Some("/bin/sh -c exit 3".into());
    let (r, _) = build(
        &mut f,
        "FROM busybox\nRUN exit 3\n",
        &BuildOptions::default(),
    );
    match r.unwrap_err() {
        BuildError::Step { message, code } => {
            assert_eq!(
                message,
                "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
            );
            assert_eq!(code, 3);
        }
        e => panic!("{e:?}"),
    }
    assert!(
        f.removed.is_empty(),
        "rm keeps a failed step's container, as Docker"
    );
    let (r, _) = build(
        &mut f,
        "FROM busybox\nRUN exit 3\n",
        &BuildOptions {
            force_rm: true,
            ..Default::default()
        },
    );
    assert!(r.is_err());
    assert_eq!(f.removed.len(), 1, "force-rm removes it");
    let (r, _) = build(
        &mut f,
        "FROM busybox AS a\nFROM busybox\n",
        &BuildOptions {
            target: Some("nope".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "failed to reach build target nope in Dockerfile"
    );
    let (r, _) = build(
        &mut f,
        "FROM busybox\nSTOPSIGNAL NOPE\n",
        &BuildOptions::default(),
    );
    assert_eq!(r.unwrap_err().to_string(), "Invalid signal: NOPE");
}

#[test]
fn stages_targets_labels_args_and_metadata() {
    let mut f = Fake::with_busybox();
    let text = "ARG BASE=busybox\nFROM ${BASE} AS one\nARG BASE\nRUN echo $BASE\nFROM one\nEXPOSE 80 90/udp 100-101\nVOLUME /data\nHEALTHCHECK --interval=5s --retries=3 CMD echo ok\nSTOPSIGNAL SIGKILL\nUSER 1000:1000\nONBUILD RUN echo child\nSHELL [\"/bin/sh\", \"-ec\"]\nCMD echo x\n";
    let opts = BuildOptions {
        labels: [("l".to_string(), "v".to_string())].into(),
        build_args: [("UNUSED".to_string(), Some("1".to_string()))].into(),
        ..Default::default()
    };
    let (r, out) = build(&mut f, text, &opts);
    let id = r.unwrap();
    assert!(
        out.text.contains("Step 14/14 : LABEL \"l\"='v'"),
        "{}",
        out.text
    );
    assert!(out
        .text
        .contains("[Warning] One or more build-args [UNUSED] were not consumed"));
    assert!(
        f.run_env[0].contains(&"BASE=busybox".to_string()),
        "a redeclared global ARG keeps its value"
    );
    let (_, cfg, _) = &f.images[&id];
    let ports: Vec<_> = cfg.exposed_ports.clone().unwrap().into_keys().collect();
    assert_eq!(ports, vec!["100/tcp", "101/tcp", "80/tcp", "90/udp"]);
    assert_eq!(cfg.labels.get("l").map(String::as_str), Some("v"));
    assert_eq!(cfg.stop_signal.as_deref(), Some("SIGKILL"));
    assert_eq!(cfg.user, "1000:1000");
    assert_eq!(cfg.on_build, Some(vec!["RUN echo child".to_string()]));
    assert_eq!(
        cfg.cmd,
        Some(vec!["/bin/sh".into(), "-ec".into(), "echo x".into()])
    );
    let hc = cfg.healthcheck.clone().unwrap();
    assert_eq!(hc["Interval"], 5_000_000_000i64);
    assert_eq!(hc["Retries"], 3);
    let hist: Vec<String> = f
        .order
        .iter()
        .map(|i| f.images[i].2.cmd.clone().unwrap_or_default().join(" "))
        .collect();
    assert!(hist.iter().any(|h| h == "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"echo ok\"] \"5s\" \"0s\" \"0s\" '\\x03'}"), "{hist:?}");
    assert!(hist
        .iter()
        .any(|h| h == "/bin/sh -c #(nop)  VOLUME [/data]"));
    // The child build runs the trigger.
    let (r, out) = build(
        &mut f,
        &format!("FROM {id}\nRUN true\n"),
        &BuildOptions::default(),
    );
    r.unwrap();
    assert!(
        out.text.contains("# Executing 1 build trigger\n"),
        "{}",
        out.text
    );
    assert!(f
        .runs
        .iter()
        .any(|r| r.last().map(String::as_str) == Some("echo child")));
}

const PARALLEL: &str = "FROM busybox AS a\nRUN sleep-a\nFROM busybox AS b\nRUN sleep-b\nFROM busybox AS unused\nRUN never\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=b /y /y\nRUN final\n";

#[test]
fn independent_stages_run_together_and_unneeded_ones_not_at_all() {
    let mut f = Fake::with_busybox();
    f.run_polls = 5;
    let (r, out) = build(&mut f, PARALLEL, &BuildOptions::default());
    r.unwrap();
    let log = f.log.lock().unwrap().clone();
    let pos = |e: &str| {
        let e = e.replacen(' ', " /bin/sh -c ", 1);
        log.iter()
            .position(|l| *l == e)
            .unwrap_or_else(|| panic!("{e} in {log:?}"))
    };
    // The two RUNs overlap: each starts before the other ends.
    assert!(pos("start sleep-a") < pos("end sleep-b"), "{log:?}");
    assert!(pos("start sleep-b") < pos("end sleep-a"), "{log:?}");
    assert!(pos("end sleep-a") < pos("start final") && pos("end sleep-b") < pos("start final"));
    assert!(!f
        .runs
        .iter()
        .any(|r| r.last().map(String::as_str) == Some("never")));
    // Every stage line is whole and tagged; the last lines are Docker's.
    let lines: Vec<&str> = out.text.lines().collect();
    let (body, tail) = lines.split_at(lines.len() - 1);
    assert!(tail[0].starts_with("Successfully built "), "{}", out.text);
    for l in body {
        assert!(
            l.starts_with("[a] ") || l.starts_with("[b] ") || l.starts_with("[stage-3] "),
            "untagged line {l:?} in\n{}",
            out.text
        );
    }
    assert!(out.text.contains("[a] output\n"), "{}", out.text);
    assert!(
        out.text.contains("[stage-3] Step 8/8 : RUN final\n"),
        "{}",
        out.text
    );
    assert!(out.text.contains("[b] Step "), "{}", out.text);
    assert_eq!(out.aux.len(), 1);
}

#[test]
fn a_failing_stage_stops_the_others() {
    let mut f = Fake::with_busybox();
    f.run_polls = 50;
    f.fail_cmd = Some("/bin/sh -c sleep-a".into());
    let (r, out) = build(&mut f, PARALLEL, &BuildOptions::default());
    match r {
        Err(BuildError::Step { message, code }) => {
            assert_eq!(code, 3);
            assert!(message.contains("sleep-a"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let log = f.log.lock().unwrap().clone();
    assert!(
        log.contains(&"killed /bin/sh -c sleep-b".to_string()),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("final")), "{log:?}");
    assert!(out.aux.is_empty());
    // The killed step's container is removed.
    assert_eq!(f.runs.len(), 2);
    assert!(!f.removed.is_empty(), "{:?}", f.removed);
}

#[test]
fn a_chain_keeps_dockers_classic_stream() {
    let mut f = Fake::with_busybox();
    f.run_polls = 3;
    let text = "FROM busybox AS skipped\nRUN never\nFROM busybox AS a\nRUN one\nFROM a\nRUN two\n";
    let (r, out) = build(&mut f, text, &BuildOptions::default());
    r.unwrap();
    assert!(!out.text.contains('['), "{}", out.text);
    assert!(
        out.text.starts_with("Step 1/4 : FROM busybox AS a\n"),
        "{}",
        out.text
    );
    assert!(out.text.contains("Step 4/4 : RUN two\n"), "{}", out.text);
    assert!(!f
        .runs
        .iter()
        .any(|r| r.last().map(String::as_str) == Some("never")));
    // A target builds only what it needs.
    let opts = BuildOptions {
        target: Some("skipped".into()),
        ..Default::default()
    };
    let (r, out) = build(&mut f, text, &opts);
    r.unwrap();
    assert!(out.text.contains("Step 2/2 : RUN never\n"), "{}", out.text);
}
