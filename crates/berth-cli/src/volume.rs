//! `berth volume create|ls|inspect|rm|prune`: Docker's volume commands, flags and output.

use std::collections::BTreeMap;

use berth_api::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value as Json};

use crate::client::{query, seg, Client, NO_BODY};
use crate::opts;
use crate::template::Format;
use crate::Failure;

/// `volume ls` default table.
pub const VOLUMES_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Specify volume name
    #[arg(long = "name")]
    pub name: Option<String>,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    pub volume: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

pub async fn dispatch(c: &Client, cmd: &VolumeCmd) -> Result<i32, Failure> {
    match cmd {
        VolumeCmd::Create(a) => create(c, a).await,
        VolumeCmd::Ls(a) => ls(c, a).await,
        VolumeCmd::Inspect(a) => inspect(c, a).await,
        VolumeCmd::Rm(a) => rm(c, a).await,
        VolumeCmd::Prune(a) => prune(c, a).await,
    }
}

/// `-o key=value` → driver options (Docker's `opts.MapOpts`).
fn driver_opts(list: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    list.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(Failure::Flag(opts::FlagError(format!(
                "invalid argument \"{o}\" for \"-o, --opt\" flag: bad format, expected key=value"
            )))),
        })
        .collect()
}

/// The `volume create` body.
pub fn create_body(a: &CreateArgs) -> Result<VolumeCreateRequest, Failure> {
    let name = match (&a.name, &a.volume) {
        (Some(n), Some(v)) if n != v => {
            return Err(Failure::Msg(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg".into(),
            ))
        }
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    Ok(VolumeCreateRequest {
        name,
        driver: a.driver.clone(),
        driver_opts: driver_opts(&a.opt)?,
        labels: opts::labels(&a.label),
    })
}

async fn create(c: &Client, a: &CreateArgs) -> Result<i32, Failure> {
    let body = create_body(a)?;
    let v: Volume = c
        .typed(Method::POST, "/volumes/create", Some(&body))
        .await?;
    println!("{}", v.name);
    Ok(0)
}

/// The fields `volume ls --format` can name (docker/cli `volumeContext`).
pub fn volume_row(v: &Volume) -> Json {
    let labels: Vec<String> = v
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let usage = v.usage_data.as_ref();
    let size = usage
        .map(|u| u.size)
        .filter(|s| *s >= 0)
        .map(|s| crate::units::human_size(s as f64))
        .unwrap_or_else(|| "N/A".into());
    let links = usage
        .map(|u| u.ref_count)
        .filter(|n| *n >= 0)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "N/A".into());
    json!({
        "Name": v.name, "Driver": v.driver, "Scope": v.scope, "Mountpoint": v.mountpoint,
        "Labels": labels.join(","), "Links": links, "Size": size,
        // Cluster volume fields (docker/cli 28 prints them as N/A for local volumes).
        "Group": "N/A", "Availability": "N/A", "Status": "N/A",
    })
}

pub fn volume_headers() -> Json {
    json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
        "Availability": "AVAILABILITY", "Status": "STATUS"})
}

async fn ls(c: &Client, a: &LsArgs) -> Result<i32, Failure> {
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        a.format.clone().unwrap_or_else(|| VOLUMES_TABLE.into())
    };
    let format = if format == "table" {
        VOLUMES_TABLE.to_string()
    } else {
        format
    };
    let tmpl = Format::parse_rows(&format).map_err(|e| Failure::Msg(e.to_string()))?;
    let q = match opts::filters_json(&a.filter)? {
        Some(f) => query(&[("filters", f)]),
        None => String::new(),
    };
    let mut list: VolumeListResponse = c.get_as(&format!("/volumes{q}")).await?;
    list.volumes.sort_by(|x, y| x.name.cmp(&y.name));
    let rows: Vec<Json> = list.volumes.iter().map(volume_row).collect();
    print!(
        "{}",
        tmpl.render(&rows, &volume_headers())
            .map_err(|e| Failure::Msg(e.to_string()))?
    );
    Ok(0)
}

async fn inspect(c: &Client, a: &InspectArgs) -> Result<i32, Failure> {
    let json_line = a.format.as_deref() == Some("json");
    let tmpl = a
        .format
        .as_deref()
        .filter(|_| !json_line)
        .map(Format::parse)
        .transpose()
        .map_err(|e| Failure::Msg(e.to_string()))?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match c.get(&format!("/volumes/{}", seg(n))).await {
            Ok(j) => found.push(j),
            Err(e) if e.status() == 404 => errors.push(format!("Error: No such volume: {n}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match tmpl {
        Some(t) => {
            for j in &found {
                println!("{}", t.execute(j).map_err(|e| Failure::Msg(e.to_string()))?);
            }
        }
        None if json_line => println!("{}", crate::system::inspect_json_line(&found)),
        None => println!("{}", crate::system::indent_json(&Json::Array(found))),
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure::Msg(errors.join("\n")))
    }
}

async fn rm(c: &Client, a: &RmArgs) -> Result<i32, Failure> {
    let q = if a.force {
        query(&[("force", "1".to_string())])
    } else {
        String::new()
    };
    let mut failed = false;
    for n in &a.names {
        match c
            .call(Method::DELETE, &format!("/volumes/{}{q}", seg(n)), NO_BODY)
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

async fn prune(c: &Client, a: &PruneArgs) -> Result<i32, Failure> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
    };
    if !a.force && !crate::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let q = match opts::filters_json(&filters)? {
        Some(f) => query(&[("filters", f)]),
        None => String::new(),
    };
    let r: VolumePruneResponse = c
        .typed(Method::POST, &format!("/volumes/prune{q}"), NO_BODY)
        .await?;
    print!("{}", prune_report(&r));
    Ok(0)
}

/// Docker's prune output: `Deleted Volumes:` and the names, a blank line, the total.
pub fn prune_report(r: &VolumePruneResponse) -> String {
    let mut out = String::new();
    if let Some(deleted) = r.volumes_deleted.as_ref().filter(|d| !d.is_empty()) {
        out.push_str("Deleted Volumes:\n");
        for d in deleted {
            out.push_str(d);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&crate::formatters::reclaimed_space_line(r.space_reclaimed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> VolumeCmd {
        let mut v = vec!["berth", "volume"];
        v.extend_from_slice(args);
        match crate::args::Cli::try_parse_from(v).unwrap().cmd {
            Some(crate::args::Cmd::Volume(c)) => c,
            other => panic!("not volume: {other:?}"),
        }
    }

    /// `volume create ARGS…`'s body.
    fn create(args: &[&str]) -> Result<VolumeCreateRequest, Failure> {
        let mut v = vec!["create"];
        v.extend_from_slice(args);
        match parse(&v) {
            VolumeCmd::Create(a) => create_body(&a),
            other => panic!("not volume create: {other:?}"),
        }
    }

    #[test]
    fn create_body_has_name_labels_and_opts() {
        let b = create(&[
            "--label",
            "a=b",
            "-o",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "data",
        ]);
        assert_eq!(
            serde_json::to_value(b.unwrap()).unwrap(),
            json!({"Name": "data", "Driver": "local", "DriverOpts": {"device": "tmpfs", "type": "tmpfs"},
                "Labels": {"a": "b"}})
        );
        assert!(create(&["--name", "x", "y"]).is_err());
        assert!(create(&["-o", "novalue"]).is_err());
        // What the Docker CLI sends for the same flags.
        let docker: VolumeCreateRequest = serde_json::from_str(include_str!(
            "../../berth-api/testdata/docker-cli-volume-create.json"
        ))
        .unwrap();
        let ours = create(&["--label", "a=b", "-o", "type=tmpfs", "typedrefvol2"]).unwrap();
        assert_eq!(ours, docker);
    }

    #[test]
    fn ls_table_has_dockers_columns() {
        let v: Volume =
            serde_json::from_value(json!({"Name":"data","Driver":"local","Labels":{"a":"b"}}))
                .unwrap();
        let rows = vec![volume_row(&v)];
        let out = Format::parse_rows(VOLUMES_TABLE)
            .unwrap()
            .render(&rows, &volume_headers())
            .unwrap();
        assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     data\n");
        assert_eq!(rows[0]["Labels"], "a=b");
    }

    #[test]
    fn prune_report_is_dockers() {
        let report = |j: Json| prune_report(&serde_json::from_value(j).unwrap());
        assert_eq!(
            report(json!({"VolumesDeleted":["a","b"],"SpaceReclaimed":2048})),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 2.048kB\n"
        );
        assert_eq!(
            report(json!({"VolumesDeleted":null,"SpaceReclaimed":0})),
            "Total reclaimed space: 0B\n"
        );
    }

    #[test]
    fn aliases_parse() {
        assert!(matches!(
            parse(&["ls", "-q", "--filter", "dangling=true"]),
            VolumeCmd::Ls(_)
        ));
        assert!(matches!(parse(&["list"]), VolumeCmd::Ls(_)));
        assert!(matches!(parse(&["remove", "-f", "x"]), VolumeCmd::Rm(_)));
        assert!(matches!(parse(&["prune", "-a", "-f"]), VolumeCmd::Prune(_)));
        assert!(matches!(
            parse(&["inspect", "-f", "{{.Name}}", "x"]),
            VolumeCmd::Inspect(_)
        ));
    }
}
