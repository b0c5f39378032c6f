//! `POST /containers/create` and `rename`: a new record from the request and the image,
//! with a unique name.

use berth_api::{ContainerCreateBody, ErrorKind, IdResponse};
use chrono::Utc;

use super::record::{ContainerRecord, InternalOptions, StateRecord};
use super::{merge, names, remove_dir_all_quiet, resolve_in, ContainerService, Entry};
use crate::error::{ApiError, ApiResult};

impl ContainerService {
    /// `POST /containers/create`.
    pub fn create(&self, body: ContainerCreateBody, name: Option<&str>) -> ApiResult<IdResponse> {
        self.create_internal(body, name, InternalOptions::default())
    }

    /// A create with options the Engine API has not (the CRI server's pods and
    /// containers): `internal.pause` makes a pod sandbox, which names no image;
    /// `internal.uts_from` shares another container's UTS namespace (checked at create
    /// like `--ipc container:`, joined at start).
    pub fn create_internal(
        &self,
        body: ContainerCreateBody,
        name: Option<&str>,
        mut internal: InternalOptions,
    ) -> ApiResult<IdResponse> {
        let cri_log = internal.cri_log.take();
        let mut config = body.config;
        let mut hc = body.host_config.unwrap_or_default();
        let requested = match name.filter(|n| !n.is_empty()) {
            Some(n) => Some(names::normalize(n)?),
            None => None,
        };
        if config.image.is_empty() && !internal.pause {
            return Err(ApiError::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        let image = if internal.pause {
            None
        } else {
            Some(self.images.resolve(&config.image).map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    ApiError::not_found(format!(
                        "No such image: {}",
                        familiar_reference(&config.image)
                    ))
                } else {
                    ApiError::from(e)
                }
            })?)
        };
        merge::validate_host_config(&hc, &config)?;
        let uts_from = internal.uts_from.iter();
        for mode in [&hc.pid_mode, &hc.ipc_mode]
            .into_iter()
            .filter_map(|m| super::run_options::donor_name(m))
            .chain(uts_from.map(String::as_str))
        {
            // a 400, not a 404: clients pull the image on a 404 from create
            self.get(mode).map_err(|e| ApiError::invalid(e.message))?;
        }
        if hc.shm_size < 0 {
            return Err(ApiError::invalid("SHM size can not be less than 0"));
        }
        if hc.cgroupns_mode.is_empty() {
            // what the runtime gives every container
            hc.cgroupns_mode = "private".into();
        }
        if hc.ipc_mode.is_empty() {
            // the daemon's default-ipc-mode, as Docker records it
            hc.ipc_mode = "private".into();
        }
        if hc.shm_size == 0 {
            // Docker records its default (64 MiB) at create; inspect shows it.
            hc.shm_size = 67_108_864;
        }
        super::security_opts::validate(&hc, &self.config.security)?;
        super::userns::validate(self.config.userns_remap.as_ref(), &hc)?;
        let warnings = super::resource_options::check(&mut hc)?;
        // A network named in `--network` may not exist yet: moby checks it at start, not
        // here, and a 404 from create would make the Docker CLI pull the image.
        let (path, args, mount_points, image_id) = match &image {
            Some(image) => {
                merge::merge_image_config(&mut config, &image.config.config);
                let (path, args) = merge::entrypoint_and_args(&config)?;
                let mount_points = self.resolve_mounts(&hc, &config, &image.id)?;
                (path, args, mount_points, image.id.clone())
            }
            // The pause runs in place of a command; a sandbox mounts nothing of its own.
            None => {
                if !hc.binds.is_empty() || !hc.mounts.is_empty() || !hc.tmpfs.is_empty() {
                    return Err(ApiError::invalid("a pod sandbox takes no mounts"));
                }
                (
                    PAUSE_PATH.to_string(),
                    Vec::new(),
                    Vec::new(),
                    String::new(),
                )
            }
        };

        let id = hex::encode(rand::random::<[u8; 32]>());
        if config.hostname.is_empty() {
            // With the host's network, Docker shows the host's name (moby `daemon/create.go`).
            config.hostname = if hc.network_mode == "host" {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| id[..12].to_string())
            } else {
                id[..12].to_string()
            };
        }
        if hc.network_mode.is_empty() {
            // Docker records `default` (the bridge) when the client names no network
            hc.network_mode = "default".into();
        }
        super::log_config::resolve(&mut hc, &self.config.log)?;
        if cri_log.is_some() {
            // the CRI format at the kubelet's path, in place of the daemon's driver
            hc.log_config = berth_api::LogConfig {
                kind: super::log_config::CRI_DRIVER.into(),
                config: Default::default(),
            };
        }
        if hc.runtime.is_empty() {
            hc.runtime = merge::DEFAULT_RUNTIME.into();
        }
        let dir = self.container_dir(&id);
        // The `none` driver: no log file (the shim writes none for an empty path).
        let log_path =
            cri_log.unwrap_or_else(|| super::log_config::log_path(&dir, &id, &hc.log_config.kind));
        let mut rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            image: config.image.clone(),
            image_id,
            created: Utc::now(),
            path,
            args,
            config,
            host_config: hc,
            state: StateRecord::default(),
            restart_count: 0,
            has_been_manually_stopped: false,
            log_path,
            exec_ids: Vec::new(),
            mount_points,
            start_pending: false,
            internal,
        };

        let made = std::fs::create_dir_all(dir.join("upper"))
            .and_then(|_| std::fs::create_dir_all(dir.join("work")))
            .map_err(|e| ApiError::io(format!("mkdir {}", dir.display()), &e))
            .and_then(|_| self.prepare_remapped_dirs(&rec.host_config, &dir));
        if let Err(e) = made {
            remove_dir_all_quiet(&dir);
            self.drop_anonymous_volumes(&rec.mount_points);
            return Err(e);
        }
        let mut entries = self.lock();
        let name = match requested {
            Some(n) => {
                if let Some(other) = entries.values().find(|e| e.rec.name == n) {
                    let other = other.rec.id.clone();
                    drop(entries);
                    remove_dir_all_quiet(&dir);
                    self.drop_anonymous_volumes(&rec.mount_points);
                    return Err(ApiError::conflict(format!(
                        "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = format!("/{}", names::random_name(retry));
                    if !entries.values().any(|e| e.rec.name == n) {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        rec.name = name;
        let mut endpoints = body.networking_config.unwrap_or_default().endpoints_config;
        let mode = rec.host_config.network_mode.clone();
        if !rec.host_config.links.is_empty() && !matches!(mode.as_str(), "" | "default" | "bridge")
        {
            // Docker keeps links on a user network in the endpoint, not in HostConfig
            let links = std::mem::take(&mut rec.host_config.links);
            let ep = endpoints.entry(mode).or_default();
            ep.links.get_or_insert_with(Vec::new).extend(links);
        }
        if let Err(e) = self.net.set_create_config(&rec, &endpoints) {
            drop(entries);
            remove_dir_all_quiet(&dir);
            self.drop_anonymous_volumes(&rec.mount_points);
            return Err(e);
        }
        crate::crash_point::crash_point("create-before-record");
        // Staged under the lock (which orders it and holds the name), made durable after
        // it: lists and inspects never wait for this commit's fsync.
        let staged = self.store.stage_put(&rec);
        let staged = match staged {
            Ok(s) => {
                entries.insert(id.clone(), Entry::new(rec.clone()));
                drop(entries);
                let _t = berth_net::timing::Step::new("create.record_durable");
                self.store.wait(s)
            }
            Err(e) => {
                drop(entries);
                Err(e)
            }
        };
        if let Err(e) = staged {
            // Not durable: the container was never created.
            self.lock().remove(&id);
            self.net.release(&id);
            remove_dir_all_quiet(&dir);
            self.drop_anonymous_volumes(&rec.mount_points);
            return Err(e.into());
        }
        crate::crash_point::crash_point("create-after-record");
        self.emit_container_event(&rec, "create", &[]);
        Ok(IdResponse { id, warnings })
    }

    /// `POST /containers/create?platform=`: the image must be of that platform (moby
    /// 20.10 `GetImage`; a 404, so that the client pulls the right one).
    pub fn check_platform(&self, image: &str, platform: &str) -> ApiResult<()> {
        let wanted = berth_registry::Platform::parse(platform)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let Ok(img) = self.images.resolve(image) else {
            return Ok(()); // create answers "No such image"
        };
        let actual = berth_registry::Platform {
            os: img.config.os.clone(),
            architecture: img.config.architecture.clone(),
            variant: Some(img.config.variant.clone()).filter(|v| !v.is_empty()),
        };
        if wanted.match_rank(&actual).is_none() {
            return Err(ApiError::not_found(format!(
                "image with reference {image} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
            )));
        }
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> ApiResult<()> {
        if new_name.is_empty() {
            return Err(ApiError::invalid("Neither old nor new names may be empty"));
        }
        let new = names::normalize(new_name)?;
        let mut entries = self.lock();
        let id = resolve_in(&entries, name_or_id)?;
        if entries[&id].rec.name == new {
            return Err(ApiError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = entries.values().find(|e| e.rec.name == new) {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.rec.id
            )));
        }
        let entry = entries
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
        let old = std::mem::replace(&mut entry.rec.name, new);
        if let Err(e) = self.store.put(&entry.rec) {
            entry.rec.name = old;
            return Err(e.into());
        }
        self.emit_container_event(&entry.rec, "rename", &[("oldName", &old)]);
        Ok(())
    }
}

impl ContainerService {
    /// `DELETE /containers/{parent}/{alias}?link=1`: removes the legacy link `alias` of
    /// container `parent` (its `HostConfig.Links` entry; a running parent keeps its
    /// `/etc/hosts` line until its next start, as with Docker). Docker's texts.
    pub fn remove_link(&self, parent: &str, alias: &str) -> ApiResult<()> {
        let missing = || ApiError::not_found(format!("No such container: {parent}/{alias}"));
        let mut entries = self.lock();
        let id = resolve_in(&entries, parent).map_err(|_| missing())?;
        let entry = entries.get_mut(&id).ok_or_else(missing)?;
        let links = &entry.rec.host_config.links;
        let pos = links
            .iter()
            .position(|l| berth_net::links::parse_link(l).1 == alias)
            .ok_or_else(missing)?;
        let removed = entry.rec.host_config.links.remove(pos);
        if let Err(e) = self.store.put(&entry.rec) {
            entry.rec.host_config.links.insert(pos, removed);
            return Err(e.into());
        }
        Ok(())
    }
}

/// What a pod sandbox shows as its command (`ps`, inspect's `Path`): the pause is
/// Berth's own code, run by the init in place of a command.
pub const PAUSE_PATH: &str = "/pause";

/// `busybox` → `busybox:latest` for Docker's `No such image` message.
pub fn familiar_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') || name.starts_with("sha256:") {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}
