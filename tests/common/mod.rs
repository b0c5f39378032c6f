//! The one harness shared by every end-to-end test file (`tests/e2e_*.rs`).
//!
//! Each test starts its own daemon in its own temp dir ([`TestDaemon::start`]), so tests run
//! in parallel without seeing each other. Dropping the daemon cleans up everything it made,
//! also when the test panics: containers, the daemon, shims, container processes, mounts,
//! cgroups and the temp dir. When the test failed, the tail of the daemon's log is printed
//! into the test's output.
//!
//! Every command a test runs has a time limit ([`CMD_TIMEOUT`]): a hung CLI fails the test
//! with what it printed so far instead of hanging the suite.

#![allow(dead_code)]

pub mod build_context;
pub mod registry;
pub mod tmux;
pub mod venv;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `berth` binary built for this test run.
pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
/// The repository root.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Where the real Docker CLI lives on these machines.
pub const DOCKER_CLI: &str = "/usr/local/bin/docker";
/// The longest any single CLI command may take before the test fails.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the daemon may take to answer `/_ping`.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Every test daemon's dir is `/tmp/<TEMP_PREFIX>XXXXX` (scripts/test sweeps these).
pub const TEMP_PREFIX: &str = "be2e-";
/// A file in every test daemon's dir holding the pid of the test process that made it.
pub const HARNESS_MARKER: &str = ".berth-e2e-harness-pid";
/// What test daemons use in place of Docker Hub: a local port nothing listens on.
pub const NO_DOCKER_HUB: &str = "http://127.0.0.1:9";
/// Lines of the daemon log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// A Berth daemon of one test, with its own socket, root and exec-root in a temp dir.
pub struct TestDaemon {
    /// The temp dir holding everything of this daemon.
    pub dir: PathBuf,
    /// `<dir>/berth.sock`
    pub sock: PathBuf,
    /// `--root`: `<dir>/root`
    pub root: PathBuf,
    /// `--exec-root`: `<dir>/run`
    pub exec_root: PathBuf,
    /// The daemon's stdout and stderr.
    pub log: PathBuf,
    child: Option<Child>,
    /// `--bridge-name`: this daemon's own default bridge (`bt<6 hex>`); its nftables table
    /// is `berth_<bridge>`.
    pub bridge: String,
    /// `--bip`: this daemon's own subnet (a free `10.x.y.0/24`).
    pub bip: String,
    /// More daemon flags, after the ones above ([`Self::start_with_args`]).
    pub extra_args: Vec<String>,
    /// `--cri-socket`: `<dir>/cri.sock` for [`Self::start_cri`]; `None` turns CRI off
    /// (`--cri-socket ""`), so other tests never touch the default `/run/berth/cri.sock`.
    pub cri_sock: Option<PathBuf>,
    /// More environment for the daemon's next [`Self::start_daemon`] (for example
    /// `BERTH_TEST_CRASH_AT`).
    pub extra_env: Vec<(String, String)>,
    /// Every container ID this daemon was seen to have (for cleanup of cgroups).
    seen_ids: std::cell::RefCell<BTreeSet<String>>,
}

impl TestDaemon {
    /// Creates a temp dir and starts `berth daemon` on it; returns once `/_ping` answers.
    pub fn start() -> TestDaemon {
        Self::start_with_exec_root("run")
    }

    /// Like [`Self::start`], with `--exec-root <dir>/<exec_root>` (to test long paths).
    pub fn start_with_exec_root(exec_root: &str) -> TestDaemon {
        Self::start_with(exec_root, &[])
    }

    /// Like [`Self::start`], with more daemon flags (`--default-address-pool …`).
    pub fn start_with_args(extra_args: &[&str]) -> TestDaemon {
        Self::start_with("run", extra_args)
    }

    /// Like [`Self::start`], with `--root` on a tmpfs of its own of `mib` MiB, so a test
    /// can fill the daemon's disk. Dropping the daemon unmounts it with the rest.
    pub fn start_on_tmpfs(mib: u64) -> TestDaemon {
        Self::start_prepared("run", &[], |root| {
            fs::create_dir_all(root).expect("create the root");
            nix::mount::mount(
                Some("tmpfs"),
                root,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("size={mib}m,mode=0711").as_str()),
            )
            .unwrap_or_else(|e| panic!("mount a {mib} MiB tmpfs on {}: {e}", root.display()));
        })
    }

    fn start_with(exec_root: &str, extra_args: &[&str]) -> TestDaemon {
        Self::start_prepared(exec_root, extra_args, |_| {})
    }

    /// Like [`Self::start`], also serving CRI on [`Self::cri_sock`] (`<dir>/cri.sock`).
    pub fn start_cri() -> TestDaemon {
        Self::start_full("run", &[], true, |_| {})
    }

    /// Makes the temp dir, runs `prepare` on the root path, starts the daemon.
    fn start_prepared(
        exec_root: &str,
        extra_args: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> TestDaemon {
        Self::start_full(exec_root, extra_args, false, prepare)
    }

    fn start_full(
        exec_root: &str,
        extra_args: &[&str],
        cri: bool,
        prepare: impl FnOnce(&Path),
    ) -> TestDaemon {
        let dir = make_temp_dir();
        let cri_sock = cri.then(|| dir.join("cri.sock"));
        let mut d = TestDaemon {
            sock: dir.join("berth.sock"),
            root: dir.join("root"),
            exec_root: dir.join(exec_root),
            log: dir.join("daemon.log"),
            dir,
            child: None,
            bridge: format!("bt{:06x}", rand_u32() & 0xff_ffff),
            bip: free_test_subnet(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            cri_sock,
            extra_env: Vec::new(),
            seen_ids: Default::default(),
        };
        prepare(&d.root);
        d.start_daemon();
        d
    }

    /// `unix://<dir>/berth.sock`, for `-H` and `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Starts the daemon process on this daemon's dirs (again, after [`Self::kill_daemon`]).
    pub fn start_daemon(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let _ = fs::remove_file(&self.sock);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        let child = Command::new(BERTH)
            .arg("daemon")
            .arg("-H")
            .arg(self.host())
            .arg("--root")
            .arg(&self.root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--bridge-name")
            .arg(&self.bridge)
            .arg("--bip")
            .arg(&self.bip)
            // Tests never reach Docker Hub (nor look it up in DNS): docker.io names not
            // served by a test's own mirror fail fast on a closed local port.
            .arg("--docker-hub-url")
            .arg(NO_DOCKER_HUB)
            .arg("--cri-socket")
            .arg(self.cri_sock.as_deref().unwrap_or(Path::new("")))
            .args(&self.extra_args)
            .arg("--debug")
            .env("NO_COLOR", "1")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        loop {
            if let Ok((200, _, body)) = self.try_request("GET", "/_ping", None) {
                if body == b"OK" {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "berth daemon exited during start ({status})\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "berth daemon did not answer /_ping on {} within {:?}\n{}",
                    self.sock.display(),
                    DAEMON_START_TIMEOUT,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's pid, while it runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILLs the daemon (containers and shims must survive it) and reaps it.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon: SIGTERM, then SIGKILL after `grace`.
    pub fn stop_daemon(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `berth -H <sock> ARGS…` with no stdin; returns its output (any exit code).
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_with_stdin(args, None)
    }

    /// Runs `berth -H <sock> ARGS…` with `stdin` fed to it.
    pub fn berth_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(BERTH);
        cmd.arg("-H").arg(self.host()).args(args);
        // The CLI must use -H, not an inherited DOCKER_HOST, and its own config dir
        // (`login` writes credentials there), never the user's ~/.docker.
        cmd.env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.dir.join("docker-config"));
        let out = run_with_timeout(
            cmd,
            stdin,
            CMD_TIMEOUT,
            &format!("berth {}", args.join(" ")),
        );
        self.note_ids_from(&out);
        out
    }

    /// Runs `berth ARGS…`, asserts it succeeded, returns its stdout as a string.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert_success(&out, &format!("berth {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the real Docker CLI against this daemon (`DOCKER_HOST` set, BuildKit off).
    /// Call [`docker_cli_available`] (or `skip_unless_docker!`) first.
    pub fn docker(&self, args: &[&str]) -> Output {
        assert!(
            docker_cli_available(),
            "the Docker CLI is not at {DOCKER_CLI}"
        );
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_API_VERSION");
        let out = run_with_timeout(
            cmd,
            None,
            CMD_TIMEOUT,
            &format!("docker {}", args.join(" ")),
        );
        self.note_ids_from(&out);
        out
    }

    /// Runs `docker ARGS…`, asserts it succeeded, returns its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert_success(&out, &format!("docker {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports the busybox test image as `busybox:latest` with `CMD ["sh"]`, as the image
    /// script says (`berth import -c 'CMD ["sh"]' TAR busybox:latest`).
    pub fn import_busybox(&self) {
        let tar = busybox_tar();
        let tar = tar.to_str().expect("utf-8 path");
        self.berth_ok(&["import", "-c", "CMD [\"sh\"]", tar, "busybox:latest"]);
    }

    /// `berth inspect NAME` parsed; panics if it fails or is not a one-element array.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.berth_ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("berth inspect {name}: not JSON ({e}): {out}"));
        match v {
            serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("berth inspect {name}: expected a one-element array, got {other}"),
        }
    }

    /// The full ID of a container (by name or prefix), through `inspect`.
    pub fn full_id(&self, name: &str) -> String {
        let id = self.inspect(name)["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("inspect {name}: no Id"))
            .to_string();
        self.seen_ids.borrow_mut().insert(id.clone());
        id
    }

    /// `berth run -d busybox ARGS…`; returns the new container's full ID.
    pub fn run_detached(&self, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(extra);
        let out = self.berth_ok(&args);
        let id = out.trim().to_string();
        assert!(
            is_full_id(&id),
            "run -d printed {id:?}, not a 64-hex container ID"
        );
        id
    }

    /// An API call with an optional JSON body: the status and the JSON answer (Null when
    /// the answer is empty or not JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string());
        let (status, _, out) = self.request(method, path, body.as_deref().map(str::as_bytes));
        (
            status,
            serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The first three octets ("10.a.b") of a /24 of this daemon's own, `offset` /24s past
    /// its `--bip` (user networks of one test daemon never meet another's).
    pub fn own_subnet24(&self, offset: u16) -> String {
        let parts: Vec<u16> = self
            .bip
            .split(['.', '/'])
            .map(|p| p.parse().expect("the harness's --bip is a dotted quad"))
            .collect();
        format!("10.{}.{}", parts[1], (parts[2] + offset) % 256)
    }

    /// A raw HTTP/1.0 request to the daemon's socket: (status, headers (lowercased names), body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.try_request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log_tail()))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<RawResponse, String> {
        let mut s = UnixStream::connect(&self.sock).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: berth\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        if let Some(b) = body {
            s.write_all(b).map_err(|e| format!("write: {e}"))?;
        }
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
        parse_http_response(&raw)
    }

    /// The last lines of the daemon log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "---- last {} lines of the daemon log ({}) ----\n{}\n---- end of daemon log ----",
            lines.len() - from,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Records container IDs printed by a command (so cleanup can find their cgroups).
    fn note_ids_from(&self, out: &Output) {
        let text = String::from_utf8_lossy(&out.stdout);
        for word in text.split_whitespace() {
            if is_full_id(word) {
                self.seen_ids.borrow_mut().insert(word.to_string());
            }
        }
    }

    /// Every container ID known: seen in output, listed by the daemon, or on disk.
    fn known_ids(&self) -> BTreeSet<String> {
        let mut ids = self.seen_ids.borrow().clone();
        for base in [
            self.root.join("containers"),
            self.exec_root.clone(),
            self.exec_root.join("containers"),
        ] {
            if let Ok(rd) = fs::read_dir(&base) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if is_full_id(&name) {
                        ids.insert(name);
                    }
                }
            }
        }
        ids
    }

    /// Removes every container with `rm -f` through the daemon, if it still answers.
    fn remove_all_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let mut cmd = Command::new(BERTH);
        cmd.arg("-H")
            .arg(self.host())
            .args(["ps", "-a", "-q", "--no-trunc"]);
        let Ok(out) = try_run_with_timeout(cmd, None, Duration::from_secs(15)) else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for id in text.split_whitespace() {
            self.seen_ids.borrow_mut().insert(id.to_string());
            let mut cmd = Command::new(BERTH);
            cmd.arg("-H").arg(self.host()).args(["rm", "-f", id]);
            let _ = try_run_with_timeout(cmd, None, Duration::from_secs(20));
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("{}", self.log_tail());
        }
        self.remove_all_containers();
        self.stop_daemon(Duration::from_secs(5));
        let ids = self.known_ids();
        // Thaw and kill what is left in the containers' cgroups, then the processes that
        // belong to this temp dir (shims, exec helpers, container processes by their root).
        let cgroups: Vec<PathBuf> = ids.iter().flat_map(|id| cgroup_dirs_of(id)).collect();
        for cg in &cgroups {
            thaw_cgroup(cg);
            kill_cgroup_procs(cg);
        }
        kill_processes_under(&self.dir);
        std::thread::sleep(Duration::from_millis(100));
        unmount_under(&self.dir);
        for cg in cgroups.iter().rev() {
            remove_cgroup_tree(cg);
        }
        remove_test_network(&self.bridge);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("harness: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// A random number (from the kernel), for test bridge names and subnets.
fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b)
}

/// A random `10.x.y.0/24` (x in 100..=249) that no host route overlaps.
/// A random `10.x.y.0/24` (x in 100..=249) that no route of the host overlaps now.
pub fn free_test_subnet() -> String {
    let routes = Command::new("ip")
        .args(["-4", "-o", "route"])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let routes = String::from_utf8_lossy(&routes).to_string();
    loop {
        let r = rand_u32();
        let (x, y) = (100 + (r % 150), (r >> 8) % 256);
        let prefix = format!("10.{x}.{y}.");
        if !routes.contains(&prefix) && !routes.lines().any(|l| l.starts_with("10.0.0.0/8")) {
            return format!("10.{x}.{y}.0/24");
        }
    }
}

/// Deletes a test daemon's bridges (its default one and its user networks' `<bridge>-…`),
/// the veths still enslaved to them, and its nftables table.
pub fn remove_test_network(bridge: &str) {
    let link_names = |args: &[&str]| -> Vec<String> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    };
    let user_prefix = format!("{bridge}-");
    let mut bridges: Vec<String> = link_names(&["-o", "link", "show"])
        .into_iter()
        .filter(|n| n.starts_with(&user_prefix))
        .collect();
    bridges.push(bridge.to_string());
    for br in &bridges {
        for name in link_names(&["-o", "link", "show", "master", br]) {
            let _ = Command::new("ip").args(["link", "del", &name]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", br])
            .stderr(Stdio::null())
            .status();
    }
    let table = format!("berth_{bridge}");
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .stderr(Stdio::null())
        .status();
}

// ---- commands --------------------------------------------------------------------------------

/// Whether the real Docker CLI is installed.
pub fn docker_cli_available() -> bool {
    Path::new(DOCKER_CLI).exists()
}

/// Returns from the test (it passes, with a message saying why it did nothing) when the Docker
/// CLI is missing.
#[macro_export]
macro_rules! skip_unless_docker {
    () => {
        if !common::docker_cli_available() {
            eprintln!(
                "SKIPPED: the Docker CLI is not installed at {}",
                common::DOCKER_CLI
            );
            return;
        }
    };
}

/// Runs `cmd` with a time limit; panics (with what it printed) when it does not finish.
pub fn run_with_timeout(cmd: Command, stdin: Option<&[u8]>, limit: Duration, what: &str) -> Output {
    match try_run_with_timeout(cmd, stdin, limit) {
        Ok(out) => out,
        Err(e) => panic!("`{what}`: {e}"),
    }
}

fn try_run_with_timeout(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawn failed: {e}"))?;
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let out = out_t.join().unwrap_or_default();
                let err = err_t.join().unwrap_or_default();
                return Err(format!(
                    "did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait failed: {e}")),
        }
    };
    // A child that left a grandchild holding the pipes must not hang us either.
    let out = join_with_deadline(out_t, Instant::now() + Duration::from_secs(5));
    let err = join_with_deadline(err_t, Instant::now() + Duration::from_secs(5));
    Ok(Output {
        status,
        stdout: out,
        stderr: err,
    })
}

fn join_with_deadline(t: std::thread::JoinHandle<Vec<u8>>, deadline: Instant) -> Vec<u8> {
    while !t.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if t.is_finished() {
        t.join().unwrap_or_default()
    } else {
        b"<output still open after the process exited>".to_vec()
    }
}

/// Panics with the command's exit code, stdout and stderr unless it succeeded.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "`{what}` failed ({})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exit code (panics if killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP response as read off the socket: status, headers, body.
type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

fn parse_http_response(raw: &[u8]) -> Result<RawResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, raw[split + 4..].to_vec()))
}

// ---- the test image ------------------------------------------------------------------------

/// The busybox rootfs tar made by `scripts/make-test-image`, built once and shared by every
/// test process (a file lock serialises the build; the tar is rebuilt when the script is newer).
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&dir).expect("create CARGO_TARGET_TMPDIR");
        let tar = dir.join("busybox-rootfs.tar");
        let script = Path::new(REPO).join("scripts/make-test-image");
        assert!(
            script.exists(),
            "{} is missing: the test image cannot be made",
            script.display()
        );
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("busybox-rootfs.lock"))
            .expect("open lock file");
        flock(&lock);
        let fresh = match (fs::metadata(&tar), fs::metadata(&script)) {
            (Ok(t), Ok(s)) => t.modified().ok() >= s.modified().ok() && t.len() > 0,
            _ => false,
        };
        if !fresh {
            let tmp = dir.join(format!("busybox-rootfs.{}.tar", std::process::id()));
            let mut cmd = Command::new("bash");
            cmd.arg(&script).arg(&tmp);
            let out = run_with_timeout(
                cmd,
                None,
                Duration::from_secs(120),
                "scripts/make-test-image",
            );
            assert_success(&out, "scripts/make-test-image");
            fs::rename(&tmp, &tar).expect("rename test image into place");
        }
        tar
    })
    .clone()
}

fn flock(f: &fs::File) {
    use std::os::fd::AsRawFd;
    // Blocks until this process holds the lock; it is released when the file is closed, at
    // the end of the OnceLock's closure, after the tar is in place.
    // SAFETY: flock on an fd open for the call; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

// ---- the host's view: mounts, cgroups, processes -------------------------------------------

/// A fresh `/tmp/be2e-XXXXX`. Kept short: unix socket paths under it (the daemon's, and
/// the shims' under `--exec-root`) must fit in 107 bytes.
fn make_temp_dir() -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(5)
        .tempdir_in("/tmp")
        .expect("create temp dir")
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).ok();
    // Whose dir this is: scripts/test sweeps only dirs whose test process is gone.
    fs::write(dir.join(HARNESS_MARKER), std::process::id().to_string())
        .expect("write harness marker");
    dir
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Cgroup directories named `<id>` inside a directory named `berth`, in every hierarchy
/// under /sys/fs/cgroup (v1 controllers and the v2 mount), at any depth up to 8.
pub fn cgroup_dirs_of(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in rd.flatten() {
        find_berth_cgroup(&h.path(), id, 0, &mut found);
    }
    found
}

fn find_berth_cgroup(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let p = e.path();
        if e.file_name() == "berth" {
            let c = p.join(id);
            if c.is_dir() {
                found.push(c);
            }
        }
        find_berth_cgroup(&p, id, depth + 1, found);
    }
}

fn thaw_cgroup(cg: &Path) {
    let _ = fs::write(cg.join("freezer.state"), "THAWED");
    let _ = fs::write(cg.join("cgroup.freeze"), "0");
}

fn kill_cgroup_procs(cg: &Path) {
    let mut stack = vec![cg.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            for pid in text
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                signal(pid, libc::SIGKILL);
            }
        }
        if let Ok(rd) = fs::read_dir(&d) {
            stack.extend(
                rd.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path()),
            );
        }
    }
}

fn remove_cgroup_tree(cg: &Path) {
    if let Ok(rd) = fs::read_dir(cg) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..20 {
        if fs::remove_dir(cg).is_ok() || !cg.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("harness: could not remove cgroup {}", cg.display());
}

/// Pids of processes that belong to `dir`: a command line that names a path under it
/// (shims, exec helpers, the daemon) or a root directory under it (container processes).
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let prefix = dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let names_dir = String::from_utf8_lossy(&cmdline).contains(&prefix);
        let rooted = fs::read_link(format!("/proc/{pid}/root"))
            .map(|r| r.starts_with(dir))
            .unwrap_or(false);
        if names_dir || rooted {
            pids.push(pid);
        }
    }
    pids
}

fn kill_processes_under(dir: &Path) {
    for _ in 0..3 {
        let pids = processes_under(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill takes two integers and touches no memory.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
