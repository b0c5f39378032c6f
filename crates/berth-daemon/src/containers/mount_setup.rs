//! Which mounts a container gets: resolved (volumes created, bind sources made) at
//! create, turned into runtime mounts at start, shown by `inspect`; and which containers
//! use which volume.

use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, HostConfig};
use berth_runtime::MountSpec;
use serde_json::Value;

use super::mounts::*;
use super::record::ContainerRecord;
use super::ContainerService;
use crate::error::{ApiError, ApiResult};
use crate::volumes::{copyup, CreateOptions};

impl ContainerService {
    /// Parses and checks every mount of a create request, then creates what they need
    /// (volumes, missing `-v` bind sources, copy-up). On error nothing is left behind.
    pub(crate) fn resolve_mounts(
        &self,
        hc: &HostConfig,
        config: &ContainerConfig,
        image_id: &str,
    ) -> ApiResult<Vec<MountPoint>> {
        let mut user: Vec<Parsed> = Vec::new();
        for b in &hc.binds {
            user.push(parse_bind(b)?);
        }
        for m in &hc.mounts {
            user.push(parse_api_mount(m)?);
        }
        let mut seen = std::collections::HashSet::new();
        for p in &user {
            if !seen.insert(p.point.destination.clone()) {
                return Err(ApiError::invalid(format!(
                    "Duplicate mount point: {}",
                    p.point.destination
                )));
            }
        }
        let mut tmpfs_dests = std::collections::HashSet::new();
        for dst in hc.tmpfs.keys() {
            check_target("tmpfs", dst)?;
            let d = clean(dst);
            if seen.contains(&d) {
                return Err(ApiError::invalid(format!("Duplicate mount point: {d}")));
            }
            tmpfs_dests.insert(d);
        }
        // Lowest priority first: image VOLUMEs, then --volumes-from, then -v/--mount.
        let mut all: Vec<Parsed> = Vec::new();
        if let Some(vols) = &config.volumes {
            for dst in vols.keys() {
                let d = clean(dst);
                if d == "/" || !dst.starts_with('/') {
                    continue;
                }
                all.push(Parsed {
                    point: MountPoint {
                        kind: "volume".into(),
                        destination: d,
                        driver: "local".into(),
                        mode: String::new(),
                        rw: true,
                        copy_data: true,
                        anonymous: true,
                        ..Default::default()
                    },
                    ..Default::default()
                });
            }
        }
        for spec in &hc.volumes_from {
            let (name, rw) = parse_volumes_from(spec)?;
            let other = self.get(&name)?;
            for mut p in other.mount_points.clone() {
                if let Some(rw) = rw {
                    p.rw = rw;
                    p.mode = if rw { "rw".into() } else { "ro".into() };
                }
                p.anonymous = false;
                p.copy_data = false;
                all.push(Parsed {
                    point: p,
                    ..Default::default()
                });
            }
        }
        all.extend(user);
        let mut points: Vec<Parsed> = Vec::new();
        for p in all {
            if tmpfs_dests.contains(&p.point.destination) {
                continue;
            }
            points.retain(|q| q.point.destination != p.point.destination);
            points.push(p);
        }
        for p in &points {
            if !p.volume_driver.is_empty() && p.volume_driver != "local" {
                return Err(ApiError::not_found(format!(
                    "error looking up volume plugin {0}: plugin \"{0}\" not found",
                    p.volume_driver
                )));
            }
            if p.point.kind == "volume" {
                crate::volumes::validate_options(&p.volume_options)?;
            }
        }
        self.materialize(
            points.into_iter().map(|p| (p.point.clone(), p)).collect(),
            image_id,
            self.remap(hc),
        )
    }

    fn materialize(
        &self,
        points: Vec<(MountPoint, Parsed)>,
        image_id: &str,
        remap: Option<&crate::userns_remap::Remap>,
    ) -> ApiResult<Vec<MountPoint>> {
        let mut out: Vec<MountPoint> = Vec::new();
        let result = (|| {
            let layers = self.images.layer_dirs(image_id).unwrap_or_default();
            for (mut point, parsed) in points {
                match point.kind.as_str() {
                    "bind" if parsed.create_source && !Path::new(&point.source).exists() => {
                        std::fs::create_dir_all(&point.source).map_err(|e| {
                            ApiError::internal(format!(
                                "error while creating mount source path '{}': {e}",
                                point.source
                            ))
                        })?;
                    }
                    "volume" => {
                        let vol = self.volumes.create(CreateOptions {
                            name: point.name.clone(),
                            driver: "local".into(),
                            labels: parsed.volume_labels.clone(),
                            options: parsed.volume_options.clone(),
                            anonymous: point.anonymous,
                        })?;
                        point.name = vol.name.clone();
                        out.push(point.clone());
                        let copy = point.copy_data && vol.driver_mount().is_none();
                        if copy {
                            let dst = self.volumes.data_dir(&vol.name);
                            copyup::copy_image_path(&layers, &point.destination, &dst).map_err(
                                |e| {
                                    ApiError::internal(format!(
                                        "copying image content into volume {}: {e}",
                                        vol.name
                                    ))
                                },
                            )?;
                        }
                        if vol.driver_mount().is_none() {
                            let data = self.volumes.data_dir(&vol.name);
                            self.prepare_remapped_volume(remap, &data, copy)?;
                        }
                        continue;
                    }
                    "image" => {
                        if remap.is_some() {
                            return Err(mount_error(
                                "image",
                                "image mounts are not supported with userns-remap",
                            ));
                        }
                        point.name = self.image_volume_check(&point.source, &point.subpath)?;
                    }
                    _ => {}
                }
                out.push(point);
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                self.drop_anonymous_volumes(&out);
                Err(e)
            }
        }
    }

    /// An image mount's image (its ID) and, with a subpath, that the directory exists in
    /// it (resolved as the runtime will, inside the image).
    fn image_volume_check(&self, image: &str, subpath: &str) -> ApiResult<String> {
        let id = self
            .images
            .resolve_id(image)
            // (not a 404: the CLI would take it for the container's image and pull that)
            .map_err(|_| mount_error("image", format!("No such image: {image}")))?;
        if !subpath.is_empty() {
            let layers = self.images.layer_dirs(&id).map_err(|e| {
                ApiError::internal(format!("reading the layers of image {image}: {e}"))
            })?;
            if !copyup::is_dir(&layers, &format!("/{subpath}")) {
                return Err(mount_error(
                    "image",
                    format!("subpath {subpath:?} is not a directory in image {image}"),
                ));
            }
        }
        Ok(id)
    }

    /// Removes the anonymous volumes among `points` that no container uses.
    pub(crate) fn drop_anonymous_volumes(&self, points: &[MountPoint]) {
        for p in points.iter().filter(|p| p.kind == "volume" && p.anonymous) {
            if self.volumes.get(&p.name).is_ok() && self.containers_using_volume(&p.name).is_empty()
            {
                if let Err(e) = self.volumes.remove(&p.name) {
                    tracing::warn!(volume = p.name, error = %e.message, "removing anonymous volume");
                }
            }
        }
    }

    /// IDs of the containers (running or not) whose mounts use volume `name`.
    pub fn containers_using_volume(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .lock()
            .values()
            .filter(|e| {
                e.rec
                    .mount_points
                    .iter()
                    .any(|p| p.kind == "volume" && p.name == name)
            })
            .map(|e| e.rec.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// `DELETE /containers/{id}?v=`: removes the container, then with `v` its
    /// anonymous volumes (never named ones).
    pub async fn remove_with_volumes(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> ApiResult<()> {
        let rec = self.get(name_or_id)?;
        self.remove(name_or_id, force).await?;
        if volumes {
            self.drop_anonymous_volumes(&rec.mount_points);
        }
        Ok(())
    }

    /// The runtime mounts of a container, in order: its mount points, then `--tmpfs`.
    pub(crate) fn runtime_mounts(&self, rec: &ContainerRecord) -> ApiResult<Vec<MountSpec>> {
        let mut out = Vec::new();
        for p in &rec.mount_points {
            let ro = if p.rw { "rw" } else { "ro" };
            match p.kind.as_str() {
                "bind" => out.push(MountSpec {
                    destination: p.destination.clone(),
                    kind: "bind".into(),
                    source: PathBuf::from(&p.source),
                    options: vec!["rbind".into(), ro.into(), p.propagation.clone()],
                    ..Default::default()
                }),
                "volume" => {
                    self.volumes.get(&p.name).map_err(|_| {
                        ApiError::not_found(format!(
                            "error while mounting volume '{}': volume {} not found",
                            p.destination, p.name
                        ))
                    })?;
                    // A volume with driver options is mounted on `_data` by
                    // [`Self::acquire_volumes`] before start.
                    out.push(MountSpec {
                        destination: p.destination.clone(),
                        kind: "bind".into(),
                        source: self.volumes.data_dir(&p.name),
                        options: vec!["rbind".into(), ro.into(), "rprivate".into()],
                        ..Default::default()
                    });
                }
                "image" => {
                    let layers = self.images.layer_dirs(&p.name).map_err(|_| {
                        ApiError::not_found(format!(
                            "error while mounting image volume '{}': No such image: {}",
                            p.destination, p.source
                        ))
                    })?;
                    out.push(MountSpec {
                        destination: p.destination.clone(),
                        kind: "image".into(),
                        options: vec!["ro".into()],
                        layers,
                        subpath: p.subpath.clone(),
                        ..Default::default()
                    });
                }
                _ => {
                    let mut opts = tmpfs_options(&p.tmpfs_options.join(","));
                    opts.push(ro.into());
                    out.push(MountSpec {
                        destination: p.destination.clone(),
                        kind: "tmpfs".into(),
                        source: PathBuf::new(),
                        options: opts,
                        ..Default::default()
                    });
                }
            }
        }
        for (dst, opts) in &rec.host_config.tmpfs {
            out.push(MountSpec {
                destination: clean(dst),
                kind: "tmpfs".into(),
                source: PathBuf::new(),
                options: tmpfs_options(opts),
                ..Default::default()
            });
        }
        Ok(out)
    }

    /// `GET /system/df`'s `Volumes`: every volume with `UsageData` (`Size` in bytes of
    /// its data, `RefCount` = containers using it), for `system df`.
    pub fn volumes_disk_usage(&self) -> Vec<berth_api::Volume> {
        self.volumes
            .list()
            .into_iter()
            .map(|r| {
                let refs = self.containers_using_volume(&r.name).len() as i64;
                let size = if r.driver_mount().is_some() {
                    -1
                } else {
                    self.volumes.size(&r.name)
                };
                r.to_api(self.volumes.dir(), Some((size, refs)))
            })
            .collect()
    }

    /// Before start: mounts the container's volumes that have driver options (the first
    /// user mounts, see [`crate::volumes::VolumeService::acquire`]). On error, what this
    /// call acquired is released.
    pub(crate) fn acquire_volumes(&self, rec: &ContainerRecord) -> ApiResult<()> {
        let names: Vec<&str> = rec
            .mount_points
            .iter()
            .filter(|p| p.kind == "volume")
            .map(|p| p.name.as_str())
            .collect();
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = self.volumes.acquire(name, &rec.id) {
                for n in &names[..i] {
                    self.volumes.release(n, &rec.id);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// After the container stopped (or failed to start): the last user unmounts.
    pub(crate) fn release_volumes(&self, id: &str) {
        let rec = self.lock().get(id).map(|e| e.rec.clone());
        if let Some(rec) = rec {
            for p in rec.mount_points.iter().filter(|p| p.kind == "volume") {
                self.volumes.release(&p.name, id);
            }
        }
    }

    /// At start-up: running containers are users of their mounted volumes; mounted
    /// volumes without a running user are unmounted.
    pub(crate) fn restore_volume_users(&self) {
        for e in self
            .lock()
            .values()
            .filter(|e| e.rec.state.status.is_running())
        {
            for p in e.rec.mount_points.iter().filter(|p| p.kind == "volume") {
                self.volumes.note_user(&p.name, &e.rec.id);
            }
        }
        self.volumes.unmount_unused();
    }

    /// Inspect's and list's `Mounts`.
    pub fn api_mounts(&self, rec: &ContainerRecord) -> Vec<Value> {
        rec.mount_points
            .iter()
            .map(|p| api_mount(p, self.volumes.dir()))
            .collect()
    }
}
