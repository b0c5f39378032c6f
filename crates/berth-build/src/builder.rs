//! The step executor (moby `builder/dockerfile/builder.go`, `internals.go`): the stages
//! the target needs (run by `stages`, independent ones at the same time), one
//! image per instruction committed through a [`Backend`],
//! the cache probed before each step, and Docker's progress texts written to an
//! [`Output`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_api::ContainerConfig;

use crate::args::BuildArgs;
use crate::copy::CopyPlan;
use crate::dockerfile::{Dockerfile, Instruction, Kind, Stage};
use crate::graph::StageGraph;
use crate::shell::process_word;
use crate::BuildError;

/// Docker's default PATH for Linux containers (`system.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A base image as a stage starts from it.
#[derive(Debug, Clone, Default)]
pub struct BaseImage {
    /// `sha256:…`; empty for `scratch`.
    pub id: String,
    pub config: ContainerConfig,
}

/// What a step commits.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The parent image (empty: none, a `FROM scratch` stage).
    pub parent: String,
    /// The image's config.
    pub config: ContainerConfig,
    /// The config the step ran with (its Cmd is the history's CreatedBy); the cache key.
    pub container_config: ContainerConfig,
    /// MAINTAINER.
    pub author: String,
}

/// What a step runs or writes in: a container for RUN, a workspace for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Run,
    Files,
    Meta,
}

/// The daemon's side of a build. Every method that takes a container takes an ID that
/// `create` returned.
pub trait Backend: Send {
    /// Resolves a base image (pulling it when missing, or always with `pull`), for
    /// `platform` (FROM --platform) when given.
    fn image(
        &mut self,
        name: &str,
        pull: bool,
        platform: Option<&str>,
        out: &mut dyn Output,
    ) -> impl Future<Output = Result<BaseImage, BuildError>> + Send;
    /// A child of `parent` whose container config matches (Docker's local cache).
    fn cached_child(
        &mut self,
        parent: &str,
        config: &ContainerConfig,
    ) -> impl Future<Output = Result<Option<String>, BuildError>> + Send;
    /// The image and its parents (for `cache-from`).
    fn ancestors(
        &mut self,
        image: &str,
    ) -> impl Future<Output = Result<Vec<String>, BuildError>> + Send;
    /// A container (RUN) or a workspace on top of `parent` with `config`.
    fn create(
        &mut self,
        parent: &str,
        config: &ContainerConfig,
        kind: StepKind,
    ) -> impl Future<Output = Result<String, BuildError>> + Send;
    /// Runs a RUN container to its end, streaming its output; returns the exit code.
    fn run(
        &mut self,
        container: &str,
        out: &mut dyn Output,
    ) -> impl Future<Output = Result<i64, BuildError>> + Send;
    /// Copies files into a workspace; `chown` is resolved in its filesystem.
    fn copy(
        &mut self,
        container: &str,
        plan: &CopyPlan,
        chown: Option<&str>,
    ) -> impl Future<Output = Result<(), BuildError>> + Send;
    /// Creates the WORKDIR in a workspace.
    fn mkdir(
        &mut self,
        container: &str,
        path: &str,
    ) -> impl Future<Output = Result<(), BuildError>> + Send;
    /// Commits a container or workspace as a new image; returns its ID.
    fn commit(
        &mut self,
        container: &str,
        req: &CommitRequest,
    ) -> impl Future<Output = Result<String, BuildError>> + Send;
    /// Removes a container or workspace.
    fn remove(&mut self, container: &str) -> impl Future<Output = Result<(), BuildError>> + Send;
    /// Tags an image.
    fn tag(
        &mut self,
        image: &str,
        reference: &str,
    ) -> impl Future<Output = Result<(), BuildError>> + Send;
    /// A host directory holding the filesystem of `image` (COPY --from).
    fn image_root(
        &mut self,
        image: &str,
    ) -> impl Future<Output = Result<PathBuf, BuildError>> + Send;
    /// Downloads an ADD URL; returns the file (named as the URL's last path element).
    fn download(&mut self, url: &str) -> impl Future<Output = Result<PathBuf, BuildError>> + Send;
    /// Mounts and network of the next RUN container ([`crate::run_step`]); backends
    /// without them refuse any.
    fn set_run_extras(&mut self, extras: crate::run_step::RunExtras) -> Result<(), BuildError> {
        if extras.is_empty() {
            Ok(())
        } else {
            Err(BuildError::invalid("this build backend has no RUN mounts"))
        }
    }
    /// A directory of this build for generated files (COPY here-documents).
    fn scratch(&mut self) -> PathBuf {
        std::env::temp_dir().join("berth-build-scratch")
    }
    /// A backend for one stage that runs beside others: same daemon and build, its own
    /// containers and workspaces. [`Backend::join`] takes it back when the stage ends.
    fn fork(&mut self) -> Self
    where
        Self: Sized;
    /// Takes back what a [`Backend::fork`] still holds (what the build's cleanup removes).
    fn join(&mut self, child: Self)
    where
        Self: Sized;
}

/// Where the progress goes.
pub trait Output: Send {
    /// A `{"stream": …}` message.
    fn stream(&mut self, text: &str);
    /// The `{"aux": {"ID": …}}` message.
    fn aux_id(&mut self, id: &str);
    /// A message passed through as it is (a pull's progress).
    fn raw(&mut self, _message: &serde_json::Value) {}
    /// True when the client went away.
    fn cancelled(&self) -> bool {
        false
    }
}

/// The options of `POST /build` the executor applies.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub cache_from: Vec<String>,
    pub quiet: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            tags: Vec::new(),
            no_cache: false,
            pull: false,
            rm: true,
            force_rm: false,
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            target: None,
            cache_from: Vec::new(),
            quiet: false,
        }
    }
}

/// The state of the stage being built (moby `dispatchState`).
#[derive(Debug, Clone, Default)]
pub struct StageState {
    pub image_id: String,
    pub config: ContainerConfig,
    pub maintainer: String,
    /// A CMD was set in this stage (a later ENTRYPOINT keeps it).
    pub cmd_set: bool,
}

impl StageState {
    pub fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// The first 12 hex digits of an ID.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Runs a build; returns the final image ID.
pub struct Builder<'a, B: Backend> {
    pub backend: &'a mut B,
    pub out: &'a mut dyn Output,
    pub opts: &'a BuildOptions,
    pub context: &'a Path,
    pub escape: char,
    pub args: BuildArgs,
    /// Finished stages: (name, image ID).
    pub stages: Vec<(Option<String>, String)>,
    /// Images allowed as cache hits with `cache-from`.
    pub cache_allowed: Option<Vec<String>>,
    /// The steps printed so far, shared by the stages that run at the same time.
    pub(crate) steps: Arc<AtomicUsize>,
    pub(crate) total: usize,
}

impl<'a, B: Backend> Builder<'a, B> {
    pub fn new(
        backend: &'a mut B,
        out: &'a mut dyn Output,
        opts: &'a BuildOptions,
        context: &'a Path,
    ) -> Self {
        Builder {
            backend,
            out,
            opts,
            context,
            escape: '\\',
            args: BuildArgs::new(opts.build_args.clone()),
            stages: Vec::new(),
            cache_allowed: None,
            steps: Arc::new(AtomicUsize::new(0)),
            total: 0,
        }
    }

    pub(crate) fn say(&mut self, text: &str) {
        if !self.opts.quiet {
            self.out.stream(text);
        }
    }

    pub(crate) fn check_cancel(&self) -> Result<(), BuildError> {
        if self.out.cancelled() {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The variables a step's words expand with: the config's Env, then the ARGs it does
    /// not override.
    pub(crate) fn expansion_env(&self, st: &StageState) -> Vec<String> {
        let mut env = st.config.env.clone();
        env.extend(self.args.step_env(&st.config.env));
        env
    }

    pub(crate) fn expand(&self, st: &StageState, word: &str) -> Result<String, BuildError> {
        process_word(word, &self.expansion_env(st), self.escape)
    }

    /// Builds the Dockerfile; returns the image ID. The stages the target needs run
    /// as soon as the stages they need are built (`stages`).
    pub async fn build(mut self, df: &Dockerfile) -> Result<String, BuildError> {
        self.escape = df.escape;
        for m in &df.meta_args {
            if let Kind::Arg(list) = &m.kind {
                for (k, v) in list {
                    let env = self.args.meta_env();
                    let v = match v {
                        Some(v) => Some(process_word(v, &env, self.escape)?),
                        None => None,
                    };
                    self.args.add_meta(k, v);
                }
            }
        }
        let last = match &self.opts.target {
            Some(t) if !t.is_empty() => df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
                .ok_or_else(|| {
                    BuildError::invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            _ => df.stages.len().saturating_sub(1),
        };
        let mut stages = df.stages[..=last.min(df.stages.len().saturating_sub(1))].to_vec();
        if !self.opts.labels.is_empty() {
            if let Some(s) = stages.last_mut() {
                s.instructions.push(labels_instruction(&self.opts.labels));
            }
        }
        let graph = StageGraph::new(&stages, &self.args.meta_env(), self.escape);
        let needed = if stages.is_empty() {
            Vec::new()
        } else {
            graph.needed(stages.len() - 1)
        };
        self.total = df.meta_args.len()
            + stages
                .iter()
                .zip(&needed)
                .filter(|(_, n)| **n)
                .map(|(s, _)| 1 + s.instructions.len())
                .sum::<usize>();
        // Docker counts the global ARGs as steps and prints them first.
        for m in &df.meta_args {
            self.step_header(m);
        }
        if !self.opts.cache_from.is_empty() {
            let mut allowed = Vec::new();
            for c in &self.opts.cache_from {
                if let Ok(a) = self.backend.ancestors(c).await {
                    allowed.extend(a);
                }
            }
            self.cache_allowed = Some(allowed);
        }
        let plan = crate::stages::Plan {
            stages: &stages,
            needed: &needed,
            parallel: graph.has_parallel(&needed),
            deps: &graph.deps,
        };
        let image = crate::stages::run(&mut self, plan).await?;
        if image.is_empty() {
            return Err(BuildError::failed(
                "No image was generated. Is your Dockerfile empty?",
            ));
        }
        let unused = self.args.unused();
        if !unused.is_empty() {
            self.say(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }
        self.out.aux_id(&image);
        if self.opts.quiet {
            self.out.stream(&format!("{image}\n"));
        } else {
            self.say(&format!("Successfully built {}\n", short(&image)));
        }
        for t in &self.opts.tags {
            self.backend.tag(&image, t).await?;
            self.say(&format!("Successfully tagged {t}\n"));
        }
        Ok(image)
    }

    /// Runs one stage: its FROM, then its instructions; returns its image.
    pub(crate) async fn build_stage(&mut self, stage: &Stage) -> Result<String, BuildError> {
        let mut st = self.from(&stage.from).await?;
        for ins in &stage.instructions {
            self.check_cancel()?;
            self.step_header(ins);
            self.dispatch(&mut st, ins).await?;
            self.say(&format!(" ---> {}\n", short(&st.image_id)));
        }
        Ok(st.image_id)
    }

    fn step_header(&mut self, ins: &Instruction) {
        let step = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        let text = format!("Step {}/{} : {}", step, self.total, ins.original);
        self.say(&text);
        self.say("\n");
    }

    async fn from(&mut self, ins: &Instruction) -> Result<StageState, BuildError> {
        self.check_cancel()?;
        self.step_header(ins);
        let Kind::From {
            image, platform, ..
        } = &ins.kind
        else {
            return Err(BuildError::failed("a stage must start with FROM"));
        };
        let name = process_word(image, &self.args.meta_env(), self.escape)?;
        if name.is_empty() {
            return Err(BuildError::invalid(format!(
                "base name ({image}) should not be blank"
            )));
        }
        let platform = match platform {
            Some(p) => Some(process_word(p, &self.args.meta_env(), self.escape)?),
            None => None,
        };
        let platform = platform.as_deref().filter(|p| !p.is_empty());
        self.args.reset_stage();
        let base = if name.eq_ignore_ascii_case("scratch") {
            BaseImage::default()
        } else if let Some((_, id)) = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(name.to_lowercase().as_str()))
        {
            let id = id.clone();
            self.backend.image(&id, false, None, &mut *self.out).await?
        } else {
            self.backend
                .image(&name, self.opts.pull, platform, &mut *self.out)
                .await?
        };
        let mut st = StageState {
            image_id: base.id.clone(),
            config: base.config.clone(),
            ..Default::default()
        };
        st.config.image = base.id.clone();
        if !st.config.env.iter().any(|e| e.starts_with("PATH=")) {
            st.config.env.insert(0, DEFAULT_PATH.into());
        }
        let triggers = st.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            let s = if triggers.len() == 1 { "" } else { "s" };
            self.say(&format!(
                "# Executing {} build trigger{s}\n",
                triggers.len()
            ));
            for t in &triggers {
                let ins = crate::dockerfile::parse_trigger(t)?;
                self.dispatch(&mut st, &ins).await?;
            }
        }
        // After the triggers: the stage's image (empty for scratch, as Docker prints it).
        self.say(&format!(" ---> {}\n", short(&st.image_id)));
        Ok(st)
    }
}

/// The LABEL step Docker appends for the `labels` option (moby `NodeFromLabels`).
fn labels_instruction(labels: &BTreeMap<String, String>) -> Instruction {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}='{v}'", crate::gofmt::quote(k)))
        .collect();
    Instruction {
        line: 0,
        original: format!("LABEL {}", pairs.join(" ")),
        kind: Kind::Label(
            labels
                .iter()
                .map(|(k, v)| (crate::gofmt::quote(k), format!("'{v}'")))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
