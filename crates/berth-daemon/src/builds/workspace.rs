//! Workspaces for the build steps that run nothing (COPY, ADD, WORKDIR and metadata
//! steps): a writable `upper/` over the parent image's layers, mounted as an overlay in
//! a private mount namespace of one short-lived thread (never visible on the host),
//! written to, unmounted; the `upper/` is what the step commits. And the extraction of a
//! stage's image into a directory for `COPY --from`.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use berth_build::BuildError;

/// One step's workspace: `<dir>/upper`, `<dir>/work`, `<dir>/mnt`.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub dir: PathBuf,
    /// The parent image's layers, top first.
    pub lowers: Vec<PathBuf>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::failed(format!("{what}: {e}"))
}

impl Workspace {
    pub fn create(dir: PathBuf, lowers: Vec<PathBuf>) -> Result<Self, BuildError> {
        for sub in ["upper", "work", "mnt"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| failed("creating a build workspace", e))?;
        }
        Ok(Workspace { dir, lowers })
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Runs `f` with the workspace's merged filesystem mounted; `f` gets its path.
    pub fn with_root<T: Send>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, BuildError> + Send,
    ) -> Result<T, BuildError> {
        if self.lowers.is_empty() {
            // FROM scratch: the upper directory is the whole filesystem.
            return f(&self.upper());
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                unshare(CloneFlags::CLONE_NEWNS).map_err(|e| failed("unshare", e))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| failed("making mounts private", e))?;
                let mnt = self.dir.join("mnt");
                let data = berth_runtime::mounts::overlay_options(
                    &self.lowers,
                    &self.upper(),
                    &self.dir.join("work"),
                );
                mount(
                    Some("overlay"),
                    &mnt,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(data.as_str()),
                )
                .map_err(|e| failed("mounting the build step's filesystem", e))?;
                let r = f(&mnt);
                let _ = umount2(&mnt, MntFlags::MNT_DETACH);
                r
            })
            .join()
            .unwrap_or_else(|_| Err(BuildError::failed("build workspace thread panicked")))
        })
    }

    /// Removes the workspace's files (overlay's `work/` may hold root-owned dirs).
    pub fn remove(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Extracts the merged filesystem of `layers` (top first) into `dest`, owners and modes
/// kept (COPY --from reads from there).
pub fn extract_image(layers: &[PathBuf], dest: &Path) -> Result<(), BuildError> {
    fs::create_dir_all(dest).map_err(|e| failed("creating a stage directory", e))?;
    let (reader, writer) = std::io::pipe().map_err(|e| failed("pipe", e))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let ordered: Vec<PathBuf> = layers.to_vec();
            berth_image::pack::export_merged(&ordered, writer).map(|_| ())
        });
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_unpack_xattrs(false);
        let r = ar
            .unpack(dest)
            .map_err(|e| failed("extracting a stage's image", e));
        drop(ar);
        let p = producer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("export thread panicked")));
        r?;
        p.map_err(|e| failed("exporting a stage's image", e))
    })
}
