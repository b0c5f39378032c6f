//! A container on a `--userns-remap` daemon: whether it gets a user namespace
//! (`HostConfig.UsernsMode` `host` opts out), what Docker refuses with one, and the
//! files its remapped root must own or reach (see [`crate::userns_remap`]).
//!
//! The maps are decided at create and kept beside the container (`userns.json` in its
//! directory): its files hold those host ids, so it keeps them whatever the daemon's
//! setting later becomes (Docker instead hides the containers of another setting under
//! another root, `/var/lib/docker/<uid>.<gid>`).

use std::path::Path;

use berth_api::HostConfig;
use berth_runtime::userns::UserNamespace;
use berth_runtime::MountSpec;

use super::ContainerService;
use crate::error::{ApiError, ApiResult};
use crate::userns_remap::{self, Remap};

/// The remapping that applies to a container with `hc` (None: the host's namespace).
pub(crate) fn remap_for<'a>(remap: Option<&'a Remap>, hc: &HostConfig) -> Option<&'a Remap> {
    remap.filter(|_| hc.userns_mode != "host")
}

/// What dockerd 20.10 refuses with user namespaces (`verifyPlatformContainerSettings`),
/// in its words, then what Berth cannot do in one yet.
pub(crate) fn validate(remap: Option<&Remap>, hc: &HostConfig) -> ApiResult<()> {
    if remap_for(remap, hc).is_none() {
        return Ok(());
    }
    if hc.privileged {
        return Err(ApiError::invalid(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        ));
    }
    if hc.network_mode == "host" {
        return Err(ApiError::invalid(
            "cannot share the host's network namespace when user namespaces are enabled",
        ));
    }
    if hc.pid_mode == "host" {
        return Err(ApiError::invalid(
            "cannot share the host PID namespace when user namespaces are enabled",
        ));
    }
    for (flag, mode) in [("--pid", &hc.pid_mode), ("--ipc", &hc.ipc_mode)] {
        if mode.starts_with("container:") {
            // Docker then joins the other container's user namespace; Berth does not yet.
            return Err(ApiError::invalid(format!(
                "{flag} container: with user namespace remapping is not supported by Berth yet (use --userns host)"
            )));
        }
    }
    Ok(())
}

/// Beside the container's other files: the maps it was created with.
const USERNS_FILE: &str = "userns.json";

fn internal(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "{what} {} for the remapped root: {e}",
        path.display()
    ))
}

impl ContainerService {
    /// The daemon's remapping for a new container with `hc`.
    pub(crate) fn remap(&self, hc: &HostConfig) -> Option<&Remap> {
        remap_for(self.config.userns_remap.as_ref(), hc)
    }

    /// The maps container `id` was created with (None: the host's user namespace).
    pub fn userns_of(&self, id: &str) -> Option<UserNamespace> {
        let path = self.container_dir(id).join(USERNS_FILE);
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(ns) => Some(ns),
            Err(e) => {
                tracing::error!(id, error = %e, "unreadable {}", path.display());
                None
            }
        }
    }

    /// How its writable layer's ids go back to the container's for `commit` and
    /// `export` (None: not remapped, the layer holds the container's own ids).
    pub fn layer_unmap(&self, id: &str) -> Option<berth_image::pack::IdUnmap> {
        let ranges = |m: &[berth_runtime::userns::IdMapping]| {
            m.iter()
                .map(|r| (r.container_id, r.host_id, r.size))
                .collect()
        };
        self.userns_of(id).map(|ns| berth_image::pack::IdUnmap {
            uids: ranges(&ns.uid_map),
            gids: ranges(&ns.gid_map),
        })
    }

    /// At create: the container's directory reachable by its root, the writable layer's
    /// top owned by it (the rootfs's `/`).
    pub(super) fn prepare_remapped_dirs(&self, hc: &HostConfig, dir: &Path) -> ApiResult<()> {
        let Some(remap) = self.remap(hc) else {
            return Ok(());
        };
        let ns = &remap.ns;
        let file = dir.join(USERNS_FILE);
        let json = serde_json::to_vec(ns).map_err(|e| ApiError::internal(e.to_string()))?;
        std::fs::write(&file, json).map_err(|e| internal("writing", &file, e))?;
        userns_remap::share_dir(ns, dir).map_err(|e| internal("sharing", dir, e))?;
        let upper = dir.join("upper");
        userns_remap::give_to_root(ns, &upper).map_err(|e| internal("chown", &upper, e))
    }

    /// At start: the generated /etc files (hosts, hostname, resolv.conf) owned by the
    /// remapped root.
    pub(super) fn prepare_remapped_files(
        &self,
        ns: Option<&UserNamespace>,
        generated: &[MountSpec],
    ) -> ApiResult<()> {
        let Some(ns) = ns else {
            return Ok(());
        };
        for m in generated {
            if m.source.is_file() {
                userns_remap::give_to_root(ns, &m.source)
                    .map_err(|e| internal("chown", &m.source, e))?;
            }
        }
        Ok(())
    }

    /// A volume a remapped container mounts: its data directory, while still host root's
    /// (new), given to the remapped root, with the content copied from the image shifted.
    pub(super) fn prepare_remapped_volume(
        &self,
        remap: Option<&Remap>,
        data: &Path,
        copied: bool,
    ) -> ApiResult<()> {
        let Some(remap) = remap else {
            return Ok(());
        };
        use std::os::unix::fs::MetadataExt;
        // Still host root's: new (a volume given once is left as it is).
        if !std::fs::metadata(data).is_ok_and(|m| m.uid() == 0 && m.gid() == 0) {
            return Ok(());
        }
        if copied {
            userns_remap::shift_tree(&remap.ns, data).map_err(|e| internal("chown", data, e))
        } else {
            userns_remap::give_to_root(&remap.ns, data).map_err(|e| internal("chown", data, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::userns::{IdMapping, UserNamespace};

    fn remap() -> Remap {
        let m = vec![IdMapping {
            container_id: 0,
            host_id: 200000,
            size: 65536,
        }];
        Remap {
            name: "u:g".into(),
            ns: UserNamespace {
                uid_map: m.clone(),
                gid_map: m,
            },
        }
    }

    #[test]
    fn dockers_refusals_apply_only_with_a_namespace() {
        let r = remap();
        let hc = |f: &dyn Fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            h
        };
        let privileged = hc(&|h| h.privileged = true);
        assert_eq!(
            validate(Some(&r), &privileged).unwrap_err().message,
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"
        );
        let net = hc(&|h| h.network_mode = "host".into());
        assert_eq!(
            validate(Some(&r), &net).unwrap_err().message,
            "cannot share the host's network namespace when user namespaces are enabled"
        );
        let pid = hc(&|h| h.pid_mode = "host".into());
        assert_eq!(
            validate(Some(&r), &pid).unwrap_err().message,
            "cannot share the host PID namespace when user namespaces are enabled"
        );
        for h in [&privileged, &net, &pid] {
            assert!(validate(None, h).is_ok());
            let mut opted_out = h.clone();
            opted_out.userns_mode = "host".into();
            assert!(validate(Some(&r), &opted_out).is_ok());
            assert!(remap_for(Some(&r), &opted_out).is_none());
        }
        assert!(remap_for(Some(&r), &HostConfig::default()).is_some());
    }
}
