//! The RUN step (moby `dispatchRun`, with BuildKit's extras): the command (here-documents
//! folded in as BuildKit's `dispatchRun` does), the `--mount`s resolved to what the
//! backend mounts, `--network`, the cache probe and the container run.
//!
//! Here-documents (BuildKit semantics): a RUN whose whole command is one `<<EOF` runs
//! the body as the shell's script, or, when the body starts with `#!`, as a file
//! mounted read-only at `/dev/pipes/EOF` and run by the shell; any other form hands the
//! shell the command line followed by the bodies and terminators, for the shell to
//! read as here-documents.
//!
//! The cache key (the probe's Cmd) holds the mounts and network as written, after
//! variable expansion, and a digest of generated script files; never a secret's value.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::builder::{short, Backend, Builder, StageState, StepKind};
use crate::copy::scoped_join;
use crate::dockerfile::{CommandForm, RunSpec};
use crate::heredoc;
use crate::run_mount::{check_network, parse_mount, MountType, Sharing};
use crate::BuildError;

/// What one RUN mount becomes for the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    /// A host path (file or directory) bound at the target; `rw`: writable, but the
    /// backend gives the step a copy so nothing written survives.
    Bind { host: PathBuf, rw: bool },
    /// A cache directory the daemon keeps across builds. `seed`: the content a new
    /// cache starts with (`from=`/`source=`).
    Cache {
        id: String,
        sharing: Sharing,
        read_only: bool,
        mode: u32,
        uid: u32,
        gid: u32,
        seed: Option<PathBuf>,
    },
    /// A tmpfs (`size` in bytes, 0: no limit).
    Tmpfs { size: i64 },
    /// A secret of the build, by ID (as a file at the target, or in `env`).
    Secret {
        id: String,
        required: bool,
        env: Option<String>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Generated files (a here-document script) in a read-only directory.
    Files { files: Vec<(String, Vec<u8>, u32)> },
}

/// One mount of a RUN step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMountSpec {
    /// Absolute path in the container (empty for a secret given only as `env`).
    pub target: String,
    pub mount: ExtraMount,
}

/// What the next RUN container gets besides its config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunExtras {
    pub mounts: Vec<RunMountSpec>,
    /// `none`, `host` or `default`.
    pub network: Option<String>,
}

impl RunExtras {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty() && self.network.is_none()
    }
}

/// The command BuildKit runs for a RUN with here-documents; and the script file, for
/// the shebang form.
fn heredoc_command(spec: &RunSpec) -> Result<(String, Option<(String, String)>), BuildError> {
    let CommandForm::Shell(line) = &spec.cmd else {
        return Err(BuildError::invalid(format!(
            "parsing produced an invalid run command: {:?}",
            spec.cmd
        )));
    };
    if let (Some(only), [doc]) = (heredoc::parse_word(line.trim()), spec.heredocs.as_slice()) {
        if only.name == doc.name {
            let data = doc.data();
            if data.starts_with("#!") {
                return Ok((
                    format!("/dev/pipes/{}", doc.name),
                    Some((doc.name.clone(), data)),
                ));
            }
            return Ok((data, None));
        }
    }
    let mut full = line.clone();
    for d in &spec.heredocs {
        full.push('\n');
        full.push_str(&d.content);
        full.push_str(&d.name);
    }
    Ok((full, None))
}

impl<B: Backend> Builder<'_, B> {
    /// The image root a `from=` names: a stage of this build or an image.
    async fn mount_source_root(&mut self, from: &str) -> Result<PathBuf, BuildError> {
        let image = match self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(from.to_lowercase().as_str()))
        {
            Some((_, id)) => id.clone(),
            None => match from.parse::<usize>() {
                Ok(i) if i < self.stages.len() => self.stages[i].1.clone(),
                _ => {
                    self.backend
                        .image(from, false, None, &mut *self.out)
                        .await?
                        .id
                }
            },
        };
        if image.is_empty() {
            // A FROM scratch stage: an empty tree.
            let dir = self.backend.scratch().join("empty-stage");
            std::fs::create_dir_all(&dir)?;
            return Ok(dir);
        }
        self.backend.image_root(&image).await
    }

    /// Resolves the RUN's mounts and network; returns them and their cache-key words.
    async fn run_extras(
        &mut self,
        st: &StageState,
        spec: &RunSpec,
    ) -> Result<(RunExtras, Vec<String>), BuildError> {
        let mut extras = RunExtras::default();
        let mut key = Vec::new();
        let env = self.expansion_env(st);
        let escape = self.escape;
        let expand = |w: &str| crate::shell::process_word(w, &env, escape);
        for raw in &spec.mounts {
            let m = parse_mount(raw, &expand)?;
            key.push(format!("--mount={}", expand(raw)?));
            let abs = |t: &str| {
                if t.starts_with('/') {
                    crate::dockerignore::clean(t)
                } else {
                    let wd = if st.config.working_dir.is_empty() {
                        "/"
                    } else {
                        st.config.working_dir.as_str()
                    };
                    crate::dockerignore::clean(&format!("/{wd}/{t}"))
                }
            };
            let (target, mount) = match m.kind {
                MountType::Bind => {
                    let root = match &m.from {
                        Some(f) => self.mount_source_root(f).await?,
                        None => self.context.to_path_buf(),
                    };
                    let host = scoped_join(&root, &m.source, true)?;
                    if !host.exists() {
                        return Err(BuildError::failed(format!(
                            "failed to compute cache key: \"/{}\": not found",
                            m.source.trim_start_matches('/')
                        )));
                    }
                    (
                        abs(&m.target),
                        ExtraMount::Bind {
                            host,
                            rw: !m.read_only,
                        },
                    )
                }
                MountType::Cache => {
                    let seed = match &m.from {
                        Some(f) => {
                            let root = self.mount_source_root(f).await?;
                            Some(scoped_join(&root, &m.source, true)?)
                        }
                        None => None,
                    };
                    let mount = ExtraMount::Cache {
                        id: m.cache_id(),
                        sharing: m.sharing.unwrap_or_default(),
                        read_only: m.read_only,
                        mode: m.mode.unwrap_or(0o755),
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                        seed,
                    };
                    (abs(&m.target), mount)
                }
                MountType::Tmpfs => (abs(&m.target), ExtraMount::Tmpfs { size: m.size }),
                MountType::Secret => {
                    let target = if m.env.is_some() && m.target.is_empty() {
                        String::new()
                    } else {
                        abs(&m.secret_target())
                    };
                    let mount = ExtraMount::Secret {
                        id: m.secret_id(),
                        required: m.required,
                        env: m.env.clone(),
                        mode: m.mode.unwrap_or(0o400),
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                    };
                    (target, mount)
                }
                MountType::Ssh => {
                    return Err(BuildError::invalid(
                        "Berth does not support RUN --mount=type=ssh (no SSH agent forwarding)",
                    ))
                }
            };
            if target == "/" {
                return Err(BuildError::invalid(format!(
                    "invalid mount target {target:?}"
                )));
            }
            extras.mounts.push(RunMountSpec { target, mount });
        }
        if let Some(n) = &spec.network {
            let n = expand(n)?;
            check_network(&n)?;
            key.push(format!("--network={n}"));
            extras.network = Some(n);
        }
        Ok((extras, key))
    }

    pub(crate) async fn run(
        &mut self,
        st: &mut StageState,
        spec: &RunSpec,
    ) -> Result<(), BuildError> {
        if st.image_id.is_empty() {
            return Err(BuildError::failed(
                "RUN in a stage FROM scratch has no shell to run: the image is empty",
            ));
        }
        let (mut extras, mut key) = self.run_extras(st, spec).await?;
        let cmd = if spec.heredocs.is_empty() {
            self.command(st, &spec.cmd)
        } else {
            let (script, file) = heredoc_command(spec)?;
            if let Some((name, data)) = file {
                key.push(format!(
                    "--mount=type=heredoc,target=/dev/pipes/{name},sha256={}",
                    hex::encode(Sha256::digest(data.as_bytes()))
                ));
                extras.mounts.push(RunMountSpec {
                    target: "/dev/pipes".into(),
                    mount: ExtraMount::Files {
                        files: vec![(name, data.into_bytes(), 0o755)],
                    },
                });
            }
            self.command(st, &CommandForm::Shell(script))
        };
        let mut saved = self.args.history_prefix(&st.config.env);
        saved.extend(key);
        saved.extend(cmd.iter().cloned());
        let mut probe = st.config.clone();
        probe.cmd = Some(saved);
        probe.entrypoint = None;
        probe.image = st.image_id.clone();
        if let Some(hit) = self.cached(st, &probe).await? {
            st.image_id = hit;
            return Ok(());
        }
        let mut run_cfg = st.config.clone();
        run_cfg.cmd = Some(cmd.clone());
        run_cfg.entrypoint = None;
        run_cfg.env.extend(self.args.step_env(&st.config.env));
        run_cfg.image = st.image_id.clone();
        self.backend.set_run_extras(extras)?;
        let id = self
            .backend
            .create(&st.image_id, &run_cfg, StepKind::Run)
            .await?;
        self.say(&format!(" ---> Running in {}\n", short(&id)));
        let code = match self.backend.run(&id, &mut *self.out).await {
            Ok(c) => c,
            Err(e) => {
                let _ = self.backend.remove(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            if self.opts.force_rm {
                let _ = self.backend.remove(&id).await;
            }
            return Err(BuildError::Step {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    cmd.join(" ")
                ),
                code,
            });
        }
        self.finish(st, &id, probe, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heredoc::Heredoc;

    fn doc(name: &str, content: &str, chomp: bool) -> Heredoc {
        Heredoc {
            name: name.into(),
            expand: true,
            chomp,
            fd: 0,
            content: content.into(),
        }
    }

    fn spec(line: &str, docs: Vec<Heredoc>) -> RunSpec {
        RunSpec {
            heredocs: docs,
            ..RunSpec::plain(CommandForm::Shell(line.into()))
        }
    }

    #[test]
    fn heredoc_forms() {
        let (s, f) =
            heredoc_command(&spec("<<EOF", vec![doc("EOF", "echo a\necho b\n", false)])).unwrap();
        assert_eq!((s.as_str(), f), ("echo a\necho b\n", None));
        let (s, _) =
            heredoc_command(&spec("<<-EOF", vec![doc("EOF", "\techo a\n", true)])).unwrap();
        assert_eq!(s, "echo a\n");
        let (s, f) = heredoc_command(&spec(
            "<<EOF",
            vec![doc("EOF", "#!/usr/bin/env python3\nprint(1)\n", false)],
        ))
        .unwrap();
        assert_eq!(s, "/dev/pipes/EOF");
        assert_eq!(f.unwrap().1, "#!/usr/bin/env python3\nprint(1)\n");
        let (s, f) = heredoc_command(&spec(
            "<<A cat /dev/stdin; <<B cat",
            vec![doc("A", "one\n", false), doc("B", "two\n", false)],
        ))
        .unwrap();
        assert_eq!(s, "<<A cat /dev/stdin; <<B cat\none\nA\ntwo\nB");
        assert!(f.is_none());
        let (s, _) = heredoc_command(&spec(
            "python3 <<EOF",
            vec![doc("EOF", "print(1)\n", false)],
        ))
        .unwrap();
        assert_eq!(s, "python3 <<EOF\nprint(1)\nEOF");
    }
}
