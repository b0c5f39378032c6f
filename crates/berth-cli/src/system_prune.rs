//! `berth system prune [-a] [--volumes] [--filter]… [-f]` as docker/cli's
//! `system/prune.go`: the warning listing what goes, then the prunes in Docker's order
//! (containers, networks, volumes with `--volumes`, images, build cache), each deleted
//! list as the single prune commands print it, and one total.

use berth_api::{
    ContainerPruneResponse, ImagePruneResponse, NetworkPruneResponse, VolumePruneResponse,
};
use clap::Args;
use http::Method;

use crate::client::{query, Client, NO_BODY};
use crate::{opts, Failure};

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

/// docker/cli's confirmation text (without the ` [y/N] ` the prompt adds).
pub fn warning(a: &SystemPruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if a.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if a.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut out = String::from("WARNING! This will remove:\n");
    for i in items {
        out.push_str(&format!("  - {i}\n"));
    }
    let mut filters: Vec<String> = Vec::new();
    for f in &a.filter {
        if let Some((k, v)) = f.split_once('=') {
            if ["label", "label!", "until"].contains(&k) {
                filters.push(format!("{k}={v}"));
            }
        }
    }
    filters.sort();
    if !filters.is_empty() {
        out.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in filters {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    out.push_str("\nAre you sure you want to continue?");
    out
}

/// `Header:` and the items, each on its line, and a blank line; empty when no items.
fn section(header: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = format!("{header}\n");
    for i in items {
        out.push_str(i);
        out.push('\n');
    }
    out.push('\n');
    out
}

fn filters_query(filters: &[String]) -> Result<String, Failure> {
    Ok(match opts::filters_json(filters)? {
        Some(f) => query(&[("filters", f)]),
        None => String::new(),
    })
}

pub async fn prune(c: &Client, a: &SystemPruneArgs) -> Result<i32, Failure> {
    if a.volumes
        && a.filter
            .iter()
            .any(|f| f.split('=').next() == Some("until"))
    {
        return Err(Failure::Msg(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"".into(),
        ));
    }
    if !a.force && !crate::confirm(&warning(a)) {
        return Ok(0);
    }
    let q = filters_query(&a.filter)?;
    let mut total: u64 = 0;

    let r: ContainerPruneResponse = c
        .typed(Method::POST, &format!("/containers/prune{q}"), NO_BODY)
        .await?;
    total += r.space_reclaimed;
    out!(
        "{}",
        section(
            "Deleted Containers:",
            &r.containers_deleted.unwrap_or_default()
        )
    );

    let r: NetworkPruneResponse = c
        .typed(Method::POST, &format!("/networks/prune{q}"), NO_BODY)
        .await?;
    out!(
        "{}",
        section("Deleted Networks:", &r.networks_deleted.unwrap_or_default())
    );

    if a.volumes {
        let r: VolumePruneResponse = c
            .typed(Method::POST, &format!("/volumes/prune{q}"), NO_BODY)
            .await?;
        total += r.space_reclaimed;
        out!(
            "{}",
            section("Deleted Volumes:", &r.volumes_deleted.unwrap_or_default())
        );
    }

    let mut image_filters = a.filter.clone();
    image_filters.push(format!("dangling={}", !a.all));
    let r: ImagePruneResponse = c
        .typed(
            Method::POST,
            &format!("/images/prune{}", filters_query(&image_filters)?),
            NO_BODY,
        )
        .await?;
    total += r.space_reclaimed;
    let mut lines = Vec::new();
    for it in r.images_deleted.unwrap_or_default() {
        if let Some(u) = it.untagged.filter(|s| !s.is_empty()) {
            lines.push(format!("untagged: {u}"));
        }
        if let Some(d) = it.deleted.filter(|s| !s.is_empty()) {
            lines.push(format!("deleted: {d}"));
        }
    }
    out!("{}", section("Deleted Images:", &lines));

    let (n, report) = crate::build::prune_cache(c, a.all, &a.filter).await?;
    total += n;
    out!("{report}");

    out!("{}", crate::formatters::reclaimed_space_line(total));
    Ok(0)
}

#[cfg(test)]
fn parse(args: &[&str]) -> SystemPruneArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        a: SystemPruneArgs,
    }
    let mut v = vec!["prune"];
    v.extend_from_slice(args);
    P::parse_from(v).a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_warning() {
        assert_eq!(
            warning(&parse(&[])),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue?"
        );
        assert_eq!(
            warning(&parse(&["-a", "--volumes", "--filter", "label=a=b"])),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=a=b\n\nAre you sure you want to continue?"
        );
    }

    #[test]
    fn sections() {
        assert_eq!(section("Deleted Networks:", &[]), "");
        assert_eq!(
            section("Deleted Networks:", &["a".into(), "b".into()]),
            "Deleted Networks:\na\nb\n\n"
        );
    }
}
