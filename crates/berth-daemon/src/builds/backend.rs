//! The daemon's [`Backend`] for `berth-build`: RUN steps are real containers through
//! the container service (full isolation, the build's network mode and limits, output
//! streamed from the container's log), the other steps write into workspaces
//! ([`super::workspace`]), and every step is committed by the image store, whose
//! records are the build cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_api::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_build::builder::{Backend, BaseImage, CommitRequest, Output, StepKind};
use berth_build::copy::CopyPlan;
use berth_build::BuildError;
use http_body_util::BodyExt;

use super::run_mounts::{self, Applied};
use super::workspace::{extract_image, Workspace};
use crate::containers::logs::LogOptions;
use crate::containers::WaitCondition;
use crate::error::ApiError;
use crate::state::Daemon;

fn api(e: ApiError) -> BuildError {
    BuildError::Failed(e.message)
}

fn store(e: berth_image::ImageError) -> BuildError {
    BuildError::Failed(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::failed(format!("build task failed: {e}")))?
}

pub struct DaemonBackend {
    pub d: Daemon,
    /// This build's private directory (workspaces, stage roots, downloads).
    pub dir: PathBuf,
    /// Host config of the RUN containers (network mode, extra hosts, limits).
    pub host_config: HostConfig,
    /// Registry credentials for pulls, by registry (`X-Registry-Config`).
    pub auths: std::collections::BTreeMap<String, berth_api::AuthConfig>,
    pub platform: berth_registry::Platform,
    /// `SOURCE_DATE_EPOCH`: a reproducible build ([`berth_build::repro`]).
    pub epoch: Option<i64>,
    /// Build secrets by ID (`RUN --mount=type=secret`).
    pub secrets: std::collections::BTreeMap<String, Vec<u8>>,
    /// Mounts and network for the next RUN container.
    pending: Option<berth_build::run_step::RunExtras>,
    /// What RUN containers hold (cache leases, mount stubs) until they end.
    applied: HashMap<String, Applied>,
    workspaces: HashMap<String, Workspace>,
    /// RUN containers not removed yet.
    containers: Vec<String>,
    roots: HashMap<String, PathBuf>,
    downloads: usize,
}

impl DaemonBackend {
    pub fn new(d: Daemon, dir: PathBuf, host_config: HostConfig) -> Self {
        DaemonBackend {
            d,
            dir,
            host_config,
            auths: Default::default(),
            platform: berth_registry::Platform::host(),
            epoch: None,
            secrets: Default::default(),
            pending: None,
            applied: HashMap::new(),
            workspaces: HashMap::new(),
            containers: Vec::new(),
            roots: HashMap::new(),
            downloads: 0,
        }
    }

    /// Removes what a failed or cancelled build left: workspaces and the build's files.
    /// Containers of failed RUN steps stay (Docker keeps them unless `forcerm`).
    pub fn cleanup(&mut self) {
        self.applied.clear();
        for (_, ws) in self.workspaces.drain() {
            ws.remove();
        }
        self.d.builds.finish_build(&self.dir);
    }

    async fn pull(
        &mut self,
        name: &str,
        platform: berth_registry::Platform,
        out: &mut dyn Output,
    ) -> Result<(), BuildError> {
        let reference = berth_image::Reference::parse_normalized(name)
            .map_err(|e| BuildError::invalid(e.0))?
            .with_default_tag();
        // The Docker CLI keys Docker Hub as `https://index.docker.io/v1/`.
        let domain = reference.domain().to_string();
        let auth = self
            .auths
            .iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let k = k.split('/').next().unwrap_or_default();
                k == domain || (domain == "docker.io" && k == "index.docker.io")
            })
            .map(|(_, a)| a.clone());
        let resp = crate::distribution::pull::start(
            &self.d,
            crate::distribution::pull::PullRequest {
                reference,
                all_tags: false,
                platform,
                auth,
            },
        )
        .await
        .map_err(api)?;
        let mut body = resp.into_body();
        let mut pending = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                        error = Some(e.to_string());
                    } else {
                        out.raw(&v);
                    }
                }
            }
            if out.cancelled() {
                return Err(BuildError::Cancelled);
            }
        }
        match error {
            Some(e) => Err(BuildError::Failed(e)),
            None => Ok(()),
        }
    }
}

/// Splits multiplexed log frames (`[stream, 0, 0, 0, len BE u32]` + payload).
fn frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while buf.len() >= 8 {
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            break;
        }
        let payload = buf[8..8 + len].to_vec();
        out.push((buf[0], payload));
        buf.drain(..8 + len);
    }
    out
}

impl Backend for DaemonBackend {
    async fn image(
        &mut self,
        name: &str,
        pull: bool,
        platform: Option<&str>,
        out: &mut dyn Output,
    ) -> Result<BaseImage, BuildError> {
        let wanted = match platform {
            Some(p) => berth_registry::Platform::parse(p)
                .map_err(|e| BuildError::invalid(e.to_string()))?,
            None => self.platform.clone(),
        };
        let images = self.d.images.clone();
        let n = name.to_string();
        let local = blocking(move || images.resolve(&n).map_err(store)).await;
        // A local image of another platform than asked for is pulled again, as moby does.
        let other_platform = match (&local, platform) {
            (Ok(rec), Some(_)) => {
                rec.config.architecture != wanted.architecture || rec.config.os != wanted.os
            }
            _ => false,
        };
        let rec = match local {
            Ok(rec) if !pull && !other_platform => rec,
            _ => {
                self.pull(name, wanted, out).await?;
                let images = self.d.images.clone();
                let n = name.to_string();
                blocking(move || images.resolve(&n).map_err(store)).await?
            }
        };
        Ok(BaseImage {
            id: rec.id,
            config: rec.config.config,
        })
    }

    async fn cached_child(
        &mut self,
        parent: &str,
        config: &ContainerConfig,
    ) -> Result<Option<String>, BuildError> {
        let images = self.d.images.clone();
        let p = parent.to_string();
        let children = blocking(move || images.build_children(&p).map_err(store)).await?;
        let mut hits = children
            .into_iter()
            .filter(|(_, cc)| berth_build::cache::compare(cc, config))
            .map(|(id, _)| id);
        let hit = match self.epoch {
            None => hits.next(),
            Some(epoch) => {
                // A reproducible build takes only a step committed with its own epoch.
                let want = berth_build::repro::epoch_rfc3339(epoch);
                let mut found = None;
                for id in hits {
                    let images = self.d.images.clone();
                    let i = id.clone();
                    let created = blocking(move || images.resolve(&i).map_err(store))
                        .await?
                        .config
                        .created;
                    if created.as_deref() == Some(want.as_str()) {
                        found = Some(id);
                        break;
                    }
                }
                found
            }
        };
        if let Some(id) = &hit {
            // A use of the step: the cache collector keeps the recently used.
            let images = self.d.images.clone();
            let i = id.clone();
            blocking(move || images.touch_build_step(&i).map_err(store)).await?;
        }
        Ok(hit)
    }

    async fn ancestors(&mut self, image: &str) -> Result<Vec<String>, BuildError> {
        let images = self.d.images.clone();
        let i = image.to_string();
        blocking(move || images.ancestors(&i).map_err(store)).await
    }

    async fn create(
        &mut self,
        parent: &str,
        config: &ContainerConfig,
        kind: StepKind,
    ) -> Result<String, BuildError> {
        if kind == StepKind::Run {
            let mut cfg = config.clone();
            cfg.image = parent.to_string();
            cfg.attach_stdout = true;
            cfg.attach_stderr = true;
            // A RUN step is no service: the image's HEALTHCHECK is for the containers run
            // from the result (the committed config keeps it), not for the step.
            cfg.healthcheck = None;
            let mut hc = self.host_config.clone();
            let applied = match self.pending.take() {
                Some(extras) => {
                    run_mounts::apply(
                        &self.d,
                        &self.dir,
                        &self.secrets,
                        extras,
                        parent,
                        &mut cfg,
                        &mut hc,
                    )
                    .await?
                }
                None => Applied::default(),
            };
            let body = ContainerCreateBody {
                config: cfg,
                host_config: Some(hc),
                networking_config: None,
            };
            let id = self.d.containers.create(body, None).map_err(api)?.id;
            self.containers.push(id.clone());
            self.applied.insert(id.clone(), applied);
            return Ok(id);
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let lowers = if parent.is_empty() {
            Vec::new()
        } else {
            let images = self.d.images.clone();
            let p = parent.to_string();
            blocking(move || images.layer_dirs(&p).map_err(store)).await?
        };
        let ws = Workspace::create(self.dir.join(format!("ws-{}", &id[..12])), lowers)?;
        self.workspaces.insert(id.clone(), ws);
        Ok(id)
    }

    async fn run(&mut self, container: &str, out: &mut dyn Output) -> Result<i64, BuildError> {
        self.d.containers.start(container).await.map_err(api)?;
        let (_, mut rx) = self
            .d
            .containers
            .logs(
                container,
                LogOptions {
                    stdout: true,
                    stderr: true,
                    follow: true,
                    ..Default::default()
                },
            )
            .map_err(api)?;
        let mut buf = Vec::new();
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(b) => {
                        buf.extend_from_slice(&b);
                        for (stream, payload) in frames(&mut buf) {
                            let text = String::from_utf8_lossy(&payload);
                            if stream == 2 {
                                out.stream(&format!("\u{1b}[91m{text}\u{1b}[0m"));
                            } else {
                                out.stream(&text);
                            }
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if out.cancelled() {
                        let _ = self.d.containers.remove(container, true).await;
                        self.applied.remove(container);
                        self.containers.retain(|c| c != container);
                        return Err(BuildError::Cancelled);
                    }
                }
            }
        }
        let wait = self
            .d
            .containers
            .wait(container, WaitCondition::NotRunning)
            .map_err(api)?;
        let (code, error) = wait.await;
        // The step is over: its cache directories are free for others.
        if let Some(a) = self.applied.get_mut(container) {
            a.leases.clear();
        }
        if !error.is_empty() && code != 0 && code >= 126 {
            out.stream(&format!("{error}\n"));
        }
        Ok(code)
    }

    async fn copy(
        &mut self,
        container: &str,
        plan: &CopyPlan,
        chown: Option<&str>,
    ) -> Result<(), BuildError> {
        let ws = self
            .workspaces
            .get(container)
            .cloned()
            .ok_or_else(|| BuildError::failed("no such build workspace"))?;
        let mut plan = plan.clone();
        let chown = chown.map(str::to_string);
        let started = std::time::Instant::now();
        let _timer = scopeguard(
            move || tracing::debug!(elapsed = ?started.elapsed(), "build step files copied"),
        );
        let scratch = self.dir.clone();
        blocking(move || {
            let linker = ws.with_root(|root| {
                if let Some(c) = &chown {
                    plan.owner = Some(berth_build::copy::resolve_chown(root, c)?);
                }
                // Files of the build's scratch (context, stages, downloads) that land
                // unchanged are linked into the layer after the unmount, not copied.
                let mut linker = berth_build::link::Linker::new(&scratch, root, &ws.upper());
                berth_build::copy::copy_into_linking(root, &plan, linker.as_mut())?;
                Ok(linker)
            })?;
            if let Some(l) = linker {
                let n = l.len();
                l.finish(plan.owner.unwrap_or((0, 0)))
                    .map_err(|e| BuildError::failed(format!("failed to copy files: {e}")))?;
                tracing::debug!(linked = n, "build step files linked");
            }
            Ok(())
        })
        .await
    }

    async fn mkdir(&mut self, container: &str, path: &str) -> Result<(), BuildError> {
        let ws = self
            .workspaces
            .get(container)
            .cloned()
            .ok_or_else(|| BuildError::failed("no such build workspace"))?;
        let path = path.to_string();
        blocking(move || {
            ws.with_root(|root| {
                let mut cur = String::new();
                for comp in path.split('/').filter(|s| !s.is_empty()) {
                    cur.push('/');
                    cur.push_str(comp);
                    let p = berth_build::copy::scoped_join(root, &cur, true)?;
                    if !p.exists() {
                        std::fs::create_dir(&p)?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    async fn commit(&mut self, container: &str, req: &CommitRequest) -> Result<String, BuildError> {
        // A workspace's upper directory becomes the layer itself (it is removed next).
        let (upper, consume_upper) = match self.workspaces.get(container) {
            Some(ws) => (ws.upper(), true),
            None => (
                self.d.containers.container_dir(container).join("upper"),
                false,
            ),
        };
        if let Some(a) = self.applied.remove(container) {
            if !a.stubs.is_empty() {
                let (u, stubs) = (upper.clone(), a.stubs);
                blocking(move || {
                    run_mounts::remove_stubs(&u, &stubs);
                    Ok(())
                })
                .await?;
            }
        }
        let mut cc = req.container_config.clone();
        let mut container_id = container.to_string();
        let mut created = None;
        if let Some(epoch) = self.epoch {
            // Nothing of this host or run: no container ID or hostname, the epoch's
            // times in the layer and the config.
            container_id.clear();
            created = Some(berth_build::repro::epoch_rfc3339(epoch));
            let dir = upper.clone();
            blocking(move || {
                berth_build::repro::clamp_mtimes(&dir, epoch)
                    .map_err(|e| BuildError::failed(format!("clamping the layer's times: {e}")))
            })
            .await?;
        } else {
            cc.hostname = container.chars().take(12).collect();
        }
        let step = berth_image::BuildStepCommit {
            parent: req.parent.clone(),
            upper,
            created,
            container_id,
            config: req.config.clone(),
            container_config: cc,
            author: req.author.clone(),
            consume_upper,
            // a RUN step's container on a remapped daemon stores host ids
            unmap: self.d.containers.layer_unmap(container),
        };
        let images = self.d.images.clone();
        let started = std::time::Instant::now();
        let r = blocking(move || images.commit_build_step(&step).map_err(store)).await;
        tracing::debug!(elapsed = ?started.elapsed(), "build step committed");
        r
    }

    async fn remove(&mut self, container: &str) -> Result<(), BuildError> {
        if let Some(ws) = self.workspaces.remove(container) {
            blocking(move || {
                ws.remove();
                Ok(())
            })
            .await?;
            return Ok(());
        }
        self.containers.retain(|c| c != container);
        self.applied.remove(container);
        self.d.containers.remove(container, true).await.map_err(api)
    }

    async fn tag(&mut self, image: &str, reference: &str) -> Result<(), BuildError> {
        let images = self.d.images.clone();
        let (i, r) = (image.to_string(), reference.to_string());
        blocking(move || images.tag(&i, &r, "").map_err(store)).await?;
        let name = berth_image::Reference::parse_normalized(reference)
            .map(|r| r.familiar_string())
            .unwrap_or_else(|_| reference.to_string());
        if let Ok(id) = self.d.images.resolve_id(image) {
            self.d.emit_image_event("tag", &id, &name);
        }
        Ok(())
    }

    async fn image_root(&mut self, image: &str) -> Result<PathBuf, BuildError> {
        if let Some(p) = self.roots.get(image) {
            return Ok(p.clone());
        }
        let images = self.d.images.clone();
        let i = image.to_string();
        let layers = blocking(move || images.layer_dirs(&i).map_err(store)).await?;
        let dest = self.dir.join(format!(
            "stage-{}-{}",
            berth_build::builder::short(image),
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let d2 = dest.clone();
        blocking(move || extract_image(&layers, &d2)).await?;
        self.roots.insert(image.to_string(), dest.clone());
        Ok(dest)
    }

    fn fork(&mut self) -> Self {
        let mut child =
            DaemonBackend::new(self.d.clone(), self.dir.clone(), self.host_config.clone());
        child.auths = self.auths.clone();
        child.platform = self.platform.clone();
        child.epoch = self.epoch;
        child.secrets = self.secrets.clone();
        child.roots = self.roots.clone();
        child
    }

    fn join(&mut self, child: Self) {
        self.workspaces.extend(child.workspaces);
        self.containers.extend(child.containers);
        self.roots.extend(child.roots);
        self.applied.extend(child.applied);
    }

    fn set_run_extras(
        &mut self,
        extras: berth_build::run_step::RunExtras,
    ) -> Result<(), BuildError> {
        self.pending = (!extras.is_empty()).then_some(extras);
        Ok(())
    }

    fn scratch(&mut self) -> PathBuf {
        self.dir.clone()
    }

    async fn download(&mut self, url: &str) -> Result<PathBuf, BuildError> {
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() || url.split("://").nth(1).is_none_or(|r| !r.contains('/')) {
            return Err(BuildError::invalid(format!(
                "cannot determine filename from url: {url}"
            )));
        }
        let (headers, body) = crate::routes::images::fetch_url_with_headers(url)
            .await
            .map_err(api)?;
        self.downloads += 1;
        // Forks of the backend download beside each other: the names must not meet.
        let dir = self.dir.join(format!(
            "download-{}-{}",
            self.downloads,
            hex::encode(rand::random::<[u8; 4]>())
        ));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&name);
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = body.into_data_stream();
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BuildError::failed(format!("reading {url}: {e}")))?;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(lm) = headers
            .get(http::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        {
            let t = filetime_from(lm.timestamp());
            let _ = nix::sys::stat::utimes(&path, &t, &t);
        }
        Ok(path)
    }
}

/// Runs `f` when dropped (timing logs that hold however the step ends).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

fn filetime_from(secs: i64) -> nix::sys::time::TimeVal {
    nix::sys::time::TimeVal::new(secs, 0)
}
