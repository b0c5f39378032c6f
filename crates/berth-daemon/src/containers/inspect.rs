//! The read-only views: `GET /containers/json`, `/containers/{id}/json` and `top`.

use berth_api::{
    ContainerInspect, ContainerSummary, GraphDriver, SummaryHostConfig, SummaryNetworkSettings,
};
use chrono::{DateTime, Utc};

use super::record::{self, ContainerRecord};
use super::{filters, resolve_in, top, ContainerService, ListOptions};
use crate::error::{ApiError, ApiResult};
use crate::fsutil::dir_size;

impl ContainerService {
    /// `GET /containers/{id}/top`.
    /// Without `ps_args`, Docker's default `ps -ef` columns from `/proc`; with them, the
    /// host's `ps` as moby runs it.
    pub fn top(&self, name_or_id: &str, ps_args: &str) -> ApiResult<berth_api::TopResponse> {
        let rec = self.get(name_or_id)?;
        if rec.state.status == super::record::Status::Restarting {
            return Err(super::record::restarting_error(&rec.id));
        }
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let pids = top::container_pids(rec.state.pid);
        let ps_args = ps_args.trim();
        if !ps_args.is_empty() && ps_args != "-ef" {
            let (titles, processes) = top::ps_rows(ps_args, &pids).map_err(ApiError::internal)?;
            return Ok(berth_api::TopResponse { titles, processes });
        }
        Ok(berth_api::TopResponse {
            titles: top::TITLES.iter().map(|s| s.to_string()).collect(),
            processes: top::rows(&pids),
        })
    }

    fn summary(&self, rec: &ContainerRecord, size: bool, now: DateTime<Utc>) -> ContainerSummary {
        let (size_rw, size_root_fs) = if size { self.sizes(rec) } else { (None, None) };
        ContainerSummary {
            id: rec.id.clone(),
            names: vec![rec.name.clone()],
            image: rec.image.clone(),
            image_id: rec.image_id.clone(),
            command: rec.command_line(),
            created: rec.created.timestamp(),
            ports: self.net.summary_ports(rec),
            size_rw,
            size_root_fs,
            labels: rec.config.labels.clone(),
            state: rec.state.status.as_str().to_string(),
            status: rec.status_string(now),
            host_config: SummaryHostConfig {
                network_mode: rec.host_config.network_mode.clone(),
            },
            network_settings: SummaryNetworkSettings {
                networks: self.net.summary_networks(rec),
            },
            mounts: self.api_mounts(rec),
        }
    }

    fn sizes(&self, rec: &ContainerRecord) -> (Option<i64>, Option<i64>) {
        let rw = dir_size(&self.container_dir(&rec.id).join("upper"));
        let image: i64 = self
            .images
            .layer_dirs(&rec.image_id)
            .map(|dirs| dirs.iter().map(|d| dir_size(d)).sum())
            .unwrap_or(0);
        (Some(rw), Some(rw + image))
    }

    /// `GET /containers/json`.
    pub fn list(&self, opts: &ListOptions) -> ApiResult<Vec<ContainerSummary>> {
        filters::validate(&opts.filters)?;
        let records: Vec<ContainerRecord> = self.lock().values().map(|e| e.rec.clone()).collect();
        let created_of = |v: &str| -> ApiResult<DateTime<Utc>> {
            let entries = self.lock();
            let id = resolve_in(&entries, v)?;
            Ok(entries[&id].rec.created)
        };
        let first = |k: &str| opts.filters.get(k).and_then(|v| v.first()).cloned();
        let before = first("before").map(|v| created_of(&v)).transpose()?;
        let since = first("since").map(|v| created_of(&v)).transpose()?;
        let mut ancestors = Vec::new();
        for a in opts.filters.get("ancestor").into_iter().flatten() {
            ancestors.push(a.clone());
            if let Ok(img) = self.images.resolve(a) {
                ancestors.push(img.id);
            }
        }
        let ctx = filters::Context {
            before,
            since,
            ancestors,
        };
        let mut out: Vec<&ContainerRecord> = records
            .iter()
            .filter(|r| {
                opts.all
                    || opts.limit > 0
                    || opts.filters.contains_key("status")
                    || r.state.status.is_running()
            })
            .filter(|r| filters::matches(&opts.filters, &ctx, r))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created));
        if opts.limit > 0 {
            out.truncate(opts.limit as usize);
        }
        let now = Utc::now();
        Ok(out
            .into_iter()
            .map(|r| self.summary(r, opts.size, now))
            .collect())
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name_or_id: &str, size: bool) -> ApiResult<ContainerInspect> {
        let rec = self.get(name_or_id)?;
        let (size_rw, size_root_fs) = if size { self.sizes(&rec) } else { (None, None) };
        let dir = self.container_dir(&rec.id);
        let lower = self
            .images
            .layer_dirs(&rec.image_id)
            .map(|d| {
                d.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let mut gd = GraphDriver {
            name: "overlay2".into(),
            ..Default::default()
        };
        gd.data.insert("LowerDir".into(), lower);
        gd.data.insert(
            "MergedDir".into(),
            self.state_dir(&rec.id).join("rootfs").display().to_string(),
        );
        gd.data
            .insert("UpperDir".into(), dir.join("upper").display().to_string());
        gd.data
            .insert("WorkDir".into(), dir.join("work").display().to_string());
        Ok(ContainerInspect {
            id: rec.id.clone(),
            created: record::rfc3339_nanos(&rec.created),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: rec.api_state(),
            image: rec.image_id.clone(),
            resolv_conf_path: self.net.file_paths(&rec).0,
            hostname_path: self.net.file_paths(&rec).1,
            hosts_path: self.net.file_paths(&rec).2,
            // Docker shows no path for the local driver's file.
            log_path: if rec.host_config.log_config.kind == "local" {
                String::new()
            } else {
                rec.log_path.display().to_string()
            },
            name: rec.name.clone(),
            restart_count: rec.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: if rec.exec_ids.is_empty() {
                None
            } else {
                Some(rec.exec_ids.clone())
            },
            host_config: rec.host_config.clone(),
            graph_driver: gd,
            size_rw,
            size_root_fs,
            mounts: self.api_mounts(&rec),
            config: rec.config.clone(),
            network_settings: self.net.settings(&rec),
        })
    }
}
