//! The directories of `RUN --mount=type=cache`, kept across builds under
//! `<root>/builds/cache-mounts/<sha256(id)[..32]>/`: `data/` is what the step sees at
//! the target, `meta.json` the ID and the last use (unix seconds). They are bound into
//! the step's container, so they are never part of a layer or an image.
//!
//! Sharing, as BuildKit: `shared` lets concurrent steps use one directory, `locked`
//! serializes them (the lease holds the directory's lock until the step ends), and
//! `private` gives a step the directory when nobody else uses it, else a fresh one
//! of its own (under the build's directory, gone with the build). A new directory is
//! made under a temporary name and renamed into place once its mode, owner and seed
//! content are set, so a failure never leaves a half-made one.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_build::run_mount::Sharing;
use berth_build::BuildError;
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Entry {
    users: usize,
    lock: Arc<tokio::sync::Mutex<()>>,
}

pub struct CacheMounts {
    root: PathBuf,
    state: Mutex<HashMap<String, Entry>>,
}

/// What a new cache directory starts as.
pub struct CacheInit {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content copied in (`from=`/`source=`).
    pub seed: Option<PathBuf>,
    /// The step runs in this user namespace (`--userns-remap`): `uid`/`gid` are host
    /// ids already, and the seed's files (container ids, as layers keep them) are
    /// shifted to host ids.
    pub userns: Option<berth_runtime::userns::UserNamespace>,
}

/// One step's use of a cache directory; dropping it ends the use.
pub struct CacheLease {
    pub dir: PathBuf,
    key: Option<(Arc<CacheMounts>, String)>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for CacheLease {
    fn drop(&mut self) {
        if let Some((owner, key)) = self.key.take() {
            let mut st = owner.state();
            if let Some(e) = st.get_mut(&key) {
                e.users = e.users.saturating_sub(1);
            }
        }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::failed(format!("{what}: {e}"))
}

/// `cp -a` of a tree's content into `dst` (owners, modes, links kept).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), BuildError> {
    if src.is_dir() {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(format!("{}/.", src.display()))
            .arg(dst)
            .status()
            .map_err(|e| failed("copying a mount's content", e))?;
        if !status.success() {
            return Err(BuildError::failed(format!(
                "copying a mount's content from {} failed",
                src.display()
            )));
        }
    } else if src.exists() {
        let name = src.file_name().unwrap_or_default();
        std::fs::copy(src, dst.join(name)).map_err(|e| failed("copying a mount's content", e))?;
    }
    Ok(())
}

fn make_dir(dir: &Path, init: &CacheInit) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|e| failed("creating a cache mount", e))?;
    if let Some(seed) = &init.seed {
        copy_tree(seed, dir)?;
        if let Some(ns) = &init.userns {
            crate::userns_remap::shift_tree(ns, dir)
                .map_err(|e| failed("creating a cache mount", e))?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(init.mode))
        .map_err(|e| failed("creating a cache mount", e))?;
    std::os::unix::fs::chown(dir, Some(init.uid), Some(init.gid))
        .map_err(|e| failed("creating a cache mount", e))?;
    Ok(())
}

impl CacheMounts {
    pub fn open(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        // Directories a killed daemon was still making.
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(CacheMounts {
            root,
            state: Mutex::new(HashMap::new()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of a cache ID.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        let h = hex::encode(Sha256::digest(id.as_bytes()));
        self.root.join(&h[..32])
    }

    /// Takes a cache directory for one step. `private_dir`: where a private step's own
    /// directory goes when the shared one is in use.
    pub async fn acquire(
        self: &Arc<Self>,
        id: &str,
        sharing: Sharing,
        init: CacheInit,
        private_dir: PathBuf,
    ) -> Result<CacheLease, BuildError> {
        let (lock, in_use) = {
            let mut st = self.state();
            let e = st.entry(id.to_string()).or_default();
            (e.lock.clone(), e.users > 0)
        };
        if sharing == Sharing::Private && in_use {
            let data = private_dir;
            let me = self.clone();
            tokio::task::spawn_blocking(move || {
                let _ = &me;
                make_dir(&data, &init)?;
                Ok::<_, BuildError>(CacheLease {
                    dir: data,
                    key: None,
                    _guard: None,
                })
            })
            .await
            .map_err(|e| failed("cache mount task", e))?
        } else {
            let guard = if sharing == Sharing::Locked {
                Some(lock.lock_owned().await)
            } else {
                None
            };
            self.state().entry(id.to_string()).or_default().users += 1;
            let lease = CacheLease {
                dir: self.dir_of(id).join("data"),
                key: Some((self.clone(), id.to_string())),
                _guard: guard,
            };
            let base = self.dir_of(id);
            let id = id.to_string();
            tokio::task::spawn_blocking(move || {
                if !base.join("data").is_dir() {
                    let tmp = base
                        .with_extension(format!("tmp-{}", hex::encode(rand::random::<[u8; 6]>())));
                    let r = make_dir(&tmp.join("data"), &init).and_then(|_| {
                        std::fs::rename(&tmp, &base)
                            .map_err(|e| failed("creating a cache mount", e))
                    });
                    if r.is_err() {
                        let _ = std::fs::remove_dir_all(&tmp);
                    }
                    // Another build may have made it meanwhile: theirs is kept.
                    if base.join("data").is_dir() {
                        let _ = std::fs::remove_dir_all(&tmp);
                    } else {
                        r?;
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let meta = serde_json::json!({ "ID": id, "LastUsed": now });
                let _ = std::fs::write(base.join("meta.json"), meta.to_string());
                Ok::<_, BuildError>(())
            })
            .await
            .map_err(|e| failed("cache mount task", e))??;
            Ok(lease)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> CacheInit {
        CacheInit {
            mode: 0o700,
            uid: 0,
            gid: 0,
            seed: None,
            userns: None,
        }
    }

    #[tokio::test]
    async fn shared_private_and_locked() {
        let t = tempfile::tempdir().unwrap();
        let c = Arc::new(CacheMounts::open(t.path().join("cm")).unwrap());
        let a = c
            .acquire("x", Sharing::Shared, init(), t.path().join("p1"))
            .await
            .unwrap();
        assert!(a.dir.is_dir());
        let mode = std::fs::metadata(&a.dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        std::fs::write(a.dir.join("f"), "1").unwrap();
        // In use: a private user gets a fresh directory of its own.
        let p = c
            .acquire("x", Sharing::Private, init(), t.path().join("p2"))
            .await
            .unwrap();
        assert_ne!(p.dir, a.dir);
        assert!(!p.dir.join("f").exists());
        drop(p);
        drop(a);
        // Not in use: the private user gets the kept one.
        let p = c
            .acquire("x", Sharing::Private, init(), t.path().join("p3"))
            .await
            .unwrap();
        assert!(p.dir.join("f").exists());
        drop(p);
        // Locked: a second user waits for the first.
        let l1 = c
            .acquire("y", Sharing::Locked, init(), t.path().join("p4"))
            .await
            .unwrap();
        let c2 = c.clone();
        let p5 = t.path().join("p5");
        let waiter = tokio::spawn(async move {
            c2.acquire("y", Sharing::Locked, init(), p5)
                .await
                .map(|l| l.dir.clone())
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "a locked cache is one user at a time"
        );
        drop(l1);
        assert!(waiter.await.unwrap().is_ok());
        // Nothing half-made is left.
        let names: Vec<String> = std::fs::read_dir(t.path().join("cm"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }
}
