//! `berth build` and `berth builder prune`, as the Docker CLI's classic builder does them:
//! the context directory is sent as a tar stream with `.dockerignore` applied (the
//! Dockerfile and `.dockerignore` themselves are always sent; the daemon drops them when
//! excluded), a Dockerfile outside the context or from stdin is added under a random
//! name, `-` reads a context tar or a Dockerfile from stdin, and a URL becomes `remote=`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value as Json;

use crate::client::{query, stream_body, Client};
use crate::jsonmessage::{Mode, Renderer};
use crate::Failure;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (Default is 'PATH/Dockerfile')
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Secret to expose to the build (id=x,src=FILE or id=x,env=VAR), for RUN
    /// --mount=type=secret
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    #[arg(value_name = "PATH | URL | -")]
    pub context: String,
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. 'until=24h')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

fn key_values(list: &[String], from_env: bool) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), Some(v.to_string()));
            }
            None if from_env => {
                out.insert(kv.clone(), std::env::var(kv).ok());
            }
            None => {
                out.insert(kv.clone(), Some(String::new()));
            }
        }
    }
    out
}

/// Appends `dir` (relative names) to the tar, `.dockerignore` applied.
fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    ignore: &berth_build::dockerignore::DockerIgnore,
    keep: &[String],
    skip: &[&str],
) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for n in names {
        let r = if rel.is_empty() {
            n
        } else {
            format!("{rel}/{n}")
        };
        if skip.contains(&r.as_str()) {
            continue;
        }
        let p = root.join(&r);
        let md = std::fs::symlink_metadata(&p)?;
        let excluded = ignore.excluded(&r) && !keep.contains(&r);
        // An excluded directory is still walked when an exception (or the Dockerfile,
        // which is always sent) may be inside it.
        let holds_kept = keep.iter().any(|k| k.starts_with(&format!("{r}/")));
        if excluded && !(md.is_dir() && (ignore.has_exceptions() || holds_kept)) {
            continue;
        }
        if md.is_dir() {
            if !excluded {
                tar.append_dir(&r, &p)?;
            }
            add_dir(tar, root, &r, ignore, keep, skip)?;
        } else if md.is_file() || md.file_type().is_symlink() {
            tar.append_path_with_name(&p, &r)?;
        }
    }
    Ok(())
}

/// Writes the context tar for `root` into `out`; returns the bytes written.
fn write_context(
    root: &Path,
    dockerfile_rel: &str,
    extra: Option<(String, Vec<u8>)>,
    out: impl Write,
) -> std::io::Result<u64> {
    let ignore_text = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    let ignore = berth_build::dockerignore::DockerIgnore::parse(&ignore_text)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let counter = Counter { inner: out, n: 0 };
    let mut tar = tar::Builder::new(counter);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    // The Dockerfile and .dockerignore are always sent (the daemon drops them when
    // excluded). A Dockerfile added from outside the context is named in the
    // .dockerignore sent (moby's CLI `AddDockerfileToBuildContext`), so the daemon drops
    // it from the context too.
    let keep = vec![dockerfile_rel.to_string(), ".dockerignore".to_string()];
    let skip: &[&str] = if extra.is_some() {
        &[".dockerignore"]
    } else {
        &[]
    };
    add_dir(&mut tar, root, "", &ignore, &keep, skip)?;
    if let Some((name, data)) = extra {
        let now = chrono::Utc::now().timestamp() as u64;
        let ignore_sent = format!("{ignore_text}\n{name}\n");
        for (n, d) in [
            (".dockerignore", ignore_sent.as_bytes()),
            (name.as_str(), &data[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(now);
            h.set_cksum();
            tar.append_data(&mut h, n, d)?;
        }
    }
    let c = tar.into_inner()?;
    Ok(c.n)
}

struct Counter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn random_name() -> String {
    let mut b = [0u8; 10];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    format!(
        ".dockerfile.{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// `berth build`.
pub async fn build(c: &Client, a: &BuildArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in &a.tags {
        // Checked here first, as the Docker CLI does (exit 125 with its words).
        if let Err(e) = berth_image::Reference::parse_normalized(t) {
            return Err(Failure::Flag(crate::opts::FlagError(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: {}",
                e.0
            ))));
        }
        q.push(("t", t.clone()));
    }
    let mut dockerfile = a.file.clone().unwrap_or_default();
    let mut size_line = true;
    let (tx_size, rx_size) = std::sync::mpsc::channel::<u64>();
    let body = if is_url(&a.context) {
        size_line = false;
        q.push(("remote", a.context.clone()));
        crate::client::empty()
    } else if a.context == "-" {
        if dockerfile == "-" {
            return Err(Failure::Msg(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            ));
        }
        // A tar (context) or a Dockerfile; either way the daemon tells them apart.
        stream_body(tokio::io::stdin())
    } else {
        let root = PathBuf::from(&a.context);
        if !root.is_dir() {
            return Err(Failure::Msg(format!(
                "unable to prepare context: path {:?} not found",
                a.context
            )));
        }
        let mut extra = None;
        let rel = if dockerfile == "-" {
            let mut text = Vec::new();
            std::io::stdin()
                .read_to_end(&mut text)
                .map_err(|e| Failure::Msg(format!("unable to read Dockerfile from stdin: {e}")))?;
            let name = random_name();
            extra = Some((name.clone(), text));
            name
        } else if dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            let p = PathBuf::from(&dockerfile);
            let abs_root = std::fs::canonicalize(&root).unwrap_or(root.clone());
            let abs = std::fs::canonicalize(&p)
                .or_else(|_| std::fs::canonicalize(root.join(&p)))
                .map_err(|_| Failure::Msg(format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {dockerfile}: no such file or directory")))?;
            match abs.strip_prefix(&abs_root) {
                Ok(r) => r.to_string_lossy().to_string(),
                Err(_) => {
                    let text = std::fs::read(&abs).map_err(|e| Failure::Msg(e.to_string()))?;
                    let name = random_name();
                    extra = Some((name.clone(), text));
                    name
                }
            }
        };
        dockerfile = rel.clone();
        let (reader, writer) = std::io::pipe().map_err(|e| Failure::Msg(e.to_string()))?;
        std::thread::spawn(move || {
            let n = write_context(
                &root,
                &rel,
                extra,
                std::io::BufWriter::with_capacity(256 << 10, writer),
            )
            .unwrap_or(0);
            let _ = tx_size.send(n);
        });
        let fd: std::os::fd::OwnedFd = reader.into();
        stream_body(tokio::fs::File::from_std(std::fs::File::from(fd)))
    };
    if !dockerfile.is_empty() {
        q.push(("dockerfile", dockerfile));
    }
    let args: BTreeMap<_, _> = key_values(&a.build_args, true);
    q.push((
        "buildargs",
        serde_json::to_string(&args).unwrap_or_default(),
    ));
    let labels: BTreeMap<String, String> = key_values(&a.labels, false)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    q.push(("labels", serde_json::to_string(&labels).unwrap_or_default()));
    q.push((
        "cachefrom",
        serde_json::to_string(&a.cache_from).unwrap_or_default(),
    ));
    q.push(("networkmode", a.network.clone()));
    for h in &a.add_host {
        q.push(("extrahosts", h.clone()));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    for (k, on) in [
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("q", a.quiet),
        ("forcerm", a.force_rm),
    ] {
        if on {
            q.push((k, "1".into()));
        }
    }
    q.push(("rm", if a.rm { "1" } else { "0" }.into()));
    if let Some(m) = &a.memory {
        q.push((
            "memory",
            crate::units::ram_in_bytes(m)
                .map_err(Failure::Msg)?
                .to_string(),
        ));
    }
    if let Some(s) = &a.shm_size {
        q.push((
            "shmsize",
            crate::units::ram_in_bytes(s)
                .map_err(Failure::Msg)?
                .to_string(),
        ));
    }
    if let Some(s) = a.cpu_shares {
        q.push(("cpushares", s.to_string()));
    }
    // Every credential the config knows, for the base images' pulls (the Docker CLI's
    // `X-Registry-Config`).
    let cfg = crate::registry::load_config();
    let mut auths = serde_json::Map::new();
    for key in cfg.auth_keys() {
        if let Ok(a) = crate::credentials::get(&cfg, &key) {
            auths.insert(key, serde_json::to_value(a).unwrap_or_default());
        }
    }
    let registry_config = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE
            .encode(serde_json::to_vec(&auths).unwrap_or_default())
    };
    let secrets = crate::build_secrets::read(&a.secrets).map_err(Failure::Msg)?;
    let secrets_header = crate::build_secrets::header_value(&secrets);
    let mut headers = vec![("X-Registry-Config", registry_config.as_str())];
    if !secrets.is_empty() {
        headers.push((crate::build_secrets::HEADER, secrets_header.as_str()));
    }
    let res = c
        .send_with_headers(
            Method::POST,
            &format!("/build{}", query(&q)),
            body,
            Some("application/x-tar"),
            &headers,
        )
        .await;
    if size_line && a.context != "-" && !a.quiet {
        if let Ok(n) = rx_size.recv_timeout(std::time::Duration::from_secs(5)) {
            outln!("Sending build context to Docker daemon  {}", human_size(n));
        }
    }
    let res = res?;
    let stdout = std::io::stdout();
    let mode = Mode {
        terminal: crate::terminal::is_tty(std::os::fd::AsFd::as_fd(&stdout)),
        width: crate::terminal::columns(std::os::fd::AsFd::as_fd(&stdout))
            .map(usize::from)
            .unwrap_or(200),
    };
    let mut renderer = Renderer::new(std::io::BufWriter::new(Stdout), mode);
    let mut body = res.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut image_id = String::new();
    let mut quiet_out = String::new();
    let mut failure: Option<(String, i64)> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Msg(e.to_string()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let Ok(msg) = serde_json::from_slice::<Json>(&line) else {
                continue;
            };
            if let Some(id) = msg.pointer("/aux/ID").and_then(Json::as_str) {
                image_id = id.to_string();
                continue;
            }
            if let Some(e) = msg.get("error").and_then(Json::as_str) {
                let code = msg
                    .pointer("/errorDetail/code")
                    .and_then(Json::as_i64)
                    .unwrap_or(1);
                failure = Some((e.to_string(), code));
                continue;
            }
            if a.quiet {
                if let Some(s) = msg.get("stream").and_then(Json::as_str) {
                    quiet_out.push_str(s);
                }
                continue;
            }
            renderer.feed(&line).map_err(|e| Failure::Msg(e.0))?;
        }
    }
    let _ = renderer.finish();
    if let Some((msg, code)) = failure {
        eprintln!("{msg}");
        return Ok(if code == 0 { 1 } else { code as i32 });
    }
    if a.quiet {
        out!("{quiet_out}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &image_id)
            .map_err(|e| Failure::Msg(format!("Failed to write image ID to file: {e}")))?;
    }
    Ok(0)
}

/// go-units `HumanSize` (four significant digits): `3.072kB`, `105.9MB`, `512B`.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = n as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    let digits = if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{size:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::stream::write_stdout(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `berth builder prune`.
pub async fn prune(c: &Client, a: &BuilderPruneArgs) -> Result<i32, Failure> {
    if !a.force {
        let prompt = if a.all {
            "WARNING! This will remove all build cache. Are you sure you want to continue?"
        } else {
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
        };
        if !crate::confirm(prompt) {
            return Ok(0);
        }
    }
    let (n, report) = prune_cache(c, a.all, &a.filter).await?;
    out!("{report}");
    outln!("Total reclaimed space: {}", crate::cp::human_size(n as i64));
    Ok(0)
}

/// `POST /build/prune`: the bytes freed and docker/cli's report of the deleted cache
/// objects (`Deleted build cache objects:`, the IDs, a blank line; empty when none).
pub async fn prune_cache(
    c: &Client,
    all: bool,
    filter: &[String],
) -> Result<(u64, String), Failure> {
    let mut filters: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Failure::Msg("bad format of filter (expected name=value)".into()))?;
        filters
            .entry(k.to_string())
            .or_default()
            .insert(v.to_string(), true);
    }
    let mut q = vec![(
        "filters",
        serde_json::to_string(&filters).unwrap_or_default(),
    )];
    if all {
        q.push(("all", "1".into()));
    }
    let v = c
        .json(
            Method::POST,
            &format!("/build/prune{}", query(&q)),
            None::<&()>,
        )
        .await?;
    let mut report = String::new();
    if let Some(list) = v.get("CachesDeleted").and_then(Json::as_array) {
        if !list.is_empty() {
            report.push_str("Deleted build cache objects:\n");
            for id in list.iter().filter_map(Json::as_str) {
                report.push_str(id);
                report.push('\n');
            }
            report.push('\n');
        }
    }
    let n = v.get("SpaceReclaimed").and_then(Json::as_u64).unwrap_or(0);
    Ok((n, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_build_args() {
        assert_eq!(human_size(3072), "3.072kB");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(105_900_000), "105.9MB");
        assert_eq!(human_size(1000), "1kB");
        std::env::set_var("BERTH_TEST_ARG", "fromenv");
        let kv = key_values(
            &[
                "A=1".into(),
                "BERTH_TEST_ARG".into(),
                "UNSET_BERTH_ARG".into(),
            ],
            true,
        );
        assert_eq!(kv["A"], Some("1".into()));
        assert_eq!(kv["BERTH_TEST_ARG"], Some("fromenv".into()));
        assert_eq!(kv["UNSET_BERTH_ARG"], None);
    }

    #[test]
    fn context_tar_applies_dockerignore_but_keeps_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "Dockerfile",
            ".dockerignore",
            "a.log",
            "keep.log",
            "src/x",
            "build/y",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        std::fs::write(
            d.path().join(".dockerignore"),
            "*.log\n!keep.log\nbuild\nDockerfile\n.dockerignore\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("docker")).unwrap();
        std::fs::write(d.path().join("docker/Dockerfile"), "FROM x").unwrap();
        let mut sub = Vec::new();
        let only = berth_build::dockerignore::DockerIgnore::parse("docker\n").unwrap();
        let mut tar = tar::Builder::new(&mut sub);
        add_dir(
            &mut tar,
            d.path(),
            "",
            &only,
            &["docker/Dockerfile".to_string()],
            &[],
        )
        .unwrap();
        tar.into_inner().unwrap();
        let names: Vec<String> = tar::Archive::new(&sub[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.contains(&"docker/Dockerfile".to_string()),
            "{names:?}"
        );
        std::fs::remove_dir_all(d.path().join("docker")).unwrap();
        let mut out = Vec::new();
        write_context(d.path(), "Dockerfile", None, &mut out).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![".dockerignore", "Dockerfile", "keep.log", "src", "src/x"]
        );
    }
}
