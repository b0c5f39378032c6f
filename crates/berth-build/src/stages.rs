//! Runs the stages a build needs ([`crate::graph`]): each as soon as the stages it needs
//! are built, with a [`Backend::fork`] of its own, so that independent stages run at the
//! same time.
//!
//! The output stays readable: with one stage at a time it is Docker's classic stream,
//! unchanged; when the graph lets stages run together, every line a stage writes is
//! given whole, tagged with its stage (`[name] Step 3/9 : RUN …`, `[stage-1]  ---> …`
//! for an unnamed stage), and the build's last lines (`Successfully built …`) are not
//! tagged, so the Docker CLI still finds them.
//!
//! A stage that fails stops the others: they see the build as cancelled at their next
//! step (a running RUN is killed and removed), and the first real error is the build's.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::args::BuildArgs;
use crate::builder::{Backend, BuildOptions, Builder, Output};
use crate::dockerfile::Stage;
use crate::BuildError;

/// What to run.
pub(crate) struct Plan<'p> {
    pub stages: &'p [Stage],
    pub needed: &'p [bool],
    /// Stages may run at the same time (their lines are then tagged).
    pub parallel: bool,
    pub deps: &'p [BTreeSet<usize>],
}

/// The build's output, shared by the stages, and the flag that stops them.
struct Shared<'o> {
    out: Mutex<&'o mut dyn Output>,
    abort: AtomicBool,
}

impl<'o> Shared<'o> {
    fn lock(&self) -> MutexGuard<'_, &'o mut dyn Output> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One stage's output: whole lines, tagged when stages run together.
struct StageOutput<'s, 'o> {
    shared: &'s Shared<'o>,
    tag: Option<String>,
    partial: String,
}

impl StageOutput<'_, '_> {
    fn flush(&mut self) {
        if let Some(tag) = &self.tag {
            if !self.partial.is_empty() {
                let line = std::mem::take(&mut self.partial);
                self.shared.lock().stream(&format!("[{tag}] {line}\n"));
            }
        }
    }
}

impl Output for StageOutput<'_, '_> {
    fn stream(&mut self, text: &str) {
        let Some(tag) = &self.tag else {
            self.shared.lock().stream(text);
            return;
        };
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.shared.lock().stream(&format!("[{tag}] {line}"));
        }
    }
    fn aux_id(&mut self, id: &str) {
        self.shared.lock().aux_id(id);
    }
    fn raw(&mut self, message: &serde_json::Value) {
        self.shared.lock().raw(message);
    }
    fn cancelled(&self) -> bool {
        self.shared.abort.load(Ordering::SeqCst) || self.shared.lock().cancelled()
    }
}

/// What every stage's builder shares.
struct Common<'c> {
    opts: &'c BuildOptions,
    context: &'c Path,
    escape: char,
    args: BuildArgs,
    cache_allowed: Option<Vec<String>>,
    steps: Arc<AtomicUsize>,
    total: usize,
}

/// The tag of stage `i`: its name, or `stage-<i>`.
pub fn stage_tag(stages: &[Stage], i: usize) -> String {
    stages[i]
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{i}"))
}

type StageDone<B> = (usize, B, BuildArgs, Result<String, BuildError>);

async fn stage_task<B: Backend>(
    i: usize,
    stage: &Stage,
    mut backend: B,
    before: Vec<(Option<String>, String)>,
    tag: Option<String>,
    shared: &Shared<'_>,
    common: &Common<'_>,
) -> StageDone<B> {
    let mut out = StageOutput {
        shared,
        tag,
        partial: String::new(),
    };
    let mut builder = Builder {
        backend: &mut backend,
        out: &mut out,
        opts: common.opts,
        context: common.context,
        escape: common.escape,
        args: common.args.clone(),
        stages: before,
        cache_allowed: common.cache_allowed.clone(),
        steps: common.steps.clone(),
        total: common.total,
    };
    let result = builder.build_stage(stage).await;
    let args = builder.args;
    out.flush();
    (i, backend, args, result)
}

/// Keeps the error that explains the failure: a stage's own error over the
/// cancellation it caused in the others.
fn first_error(kept: Option<BuildError>, new: BuildError) -> Option<BuildError> {
    match kept {
        None | Some(BuildError::Cancelled) => Some(new),
        Some(k) => Some(k),
    }
}

/// Runs the plan's stages; returns the image of the last one.
pub(crate) async fn run<B: Backend>(
    b: &mut Builder<'_, B>,
    plan: Plan<'_>,
) -> Result<String, BuildError> {
    let n = plan.stages.len();
    let common = Common {
        opts: b.opts,
        context: b.context,
        escape: b.escape,
        args: b.args.clone(),
        cache_allowed: b.cache_allowed.clone(),
        steps: b.steps.clone(),
        total: b.total,
    };
    let shared = Shared {
        out: Mutex::new(&mut *b.out),
        abort: AtomicBool::new(false),
    };
    let mut done: Vec<Option<String>> = vec![None; n];
    let mut started = vec![false; n];
    let mut running = FuturesUnordered::new();
    let mut error: Option<BuildError> = None;
    loop {
        if error.is_none() {
            #[allow(clippy::needless_range_loop)] // `i` indexes four lists
            for i in 0..n {
                if !plan.needed[i] || started[i] {
                    continue;
                }
                if !plan.parallel && !running.is_empty() {
                    break;
                }
                if !plan.deps[i].iter().all(|d| done[*d].is_some()) {
                    continue;
                }
                started[i] = true;
                let before = (0..i)
                    .map(|j| {
                        (
                            plan.stages[j].name.clone(),
                            done[j].clone().unwrap_or_default(),
                        )
                    })
                    .collect();
                let tag = plan.parallel.then(|| stage_tag(plan.stages, i));
                let fork = b.backend.fork();
                running.push(stage_task(
                    i,
                    &plan.stages[i],
                    fork,
                    before,
                    tag,
                    &shared,
                    &common,
                ));
            }
        }
        let Some((i, fork, args, result)) = running.next().await else {
            break;
        };
        b.backend.join(fork);
        b.args.absorb_referenced(&args);
        match result {
            Ok(id) => done[i] = Some(id),
            Err(e) => {
                shared.abort.store(true, Ordering::SeqCst);
                error = first_error(error, e);
            }
        }
    }
    drop(running);
    if let Some(e) = error {
        return Err(e);
    }
    Ok(n.checked_sub(1)
        .and_then(|last| done[last].clone())
        .unwrap_or_default())
}
