//! `system df [-v] [--format]` (docker/cli `formatter/disk_usage.go`) and Berth's hidden
//! `system check`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::args::DfArgs;
use crate::client::Client;
use crate::formatters::{all_fields, container_row, image_rows, images_headers, ps_headers};
use crate::template::Format;
use crate::units::human_size;
use crate::Failure;

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_RAW: &str = "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n";
const DF_IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const DF_CONTAINERS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const DF_VOLUMES_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const DF_CACHE_TABLE: &str =
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

fn df_headers() -> Json {
    json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"})
}

fn i(v: &Json, k: &str) -> i64 {
    v.get(k).and_then(Json::as_i64).unwrap_or(0)
}

fn list<'a>(v: &'a Json, k: &str) -> &'a [Json] {
    v.get(k)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Docker's `SIZE (PCT%)` for reclaimable space: the percentage only when `total > 0`,
/// integer-divided as Go does.
pub fn reclaimable_text(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable as f64)
    }
}

/// The four summary rows (Images, Containers, Local Volumes, Build Cache) of a
/// `GET /system/df` answer, with the sums docker/cli computes.
pub fn summary_rows(du: &Json) -> Vec<Json> {
    let row = |t: &str, total: usize, active: usize, size: String, recl: String| json!({"Type": t, "TotalCount": total.to_string(), "Active": active.to_string(), "Size": size, "Reclaimable": recl});
    // Images: the layers' real size; what an image used by a container holds on its
    // own (size minus shared size) is not reclaimable.
    let images = list(du, "Images");
    let layers = i(du, "LayersSize");
    let active_images = images.iter().filter(|im| i(im, "Containers") > 0).count();
    let used: i64 = images
        .iter()
        .filter(|im| i(im, "Containers") != 0 && i(im, "Size") != -1 && i(im, "SharedSize") != -1)
        .map(|im| i(im, "Size") - i(im, "SharedSize"))
        .sum();
    let img = row(
        "Images",
        images.len(),
        active_images,
        human_size(layers as f64),
        reclaimable_text(layers - used, layers),
    );

    let containers = list(du, "Containers");
    let running = |c: &Json| c.get("State").and_then(Json::as_str) == Some("running");
    let c_size: i64 = containers.iter().map(|c| i(c, "SizeRw")).sum();
    let c_recl: i64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| i(c, "SizeRw"))
        .sum();
    let cont = row(
        "Containers",
        containers.len(),
        containers.iter().filter(|c| running(c)).count(),
        human_size(c_size as f64),
        reclaimable_text(c_recl, c_size),
    );

    let volumes = list(du, "Volumes");
    let refs = |v: &Json| {
        v.pointer("/UsageData/RefCount")
            .and_then(Json::as_i64)
            .unwrap_or(0)
    };
    let vsize = |v: &Json| {
        v.pointer("/UsageData/Size")
            .and_then(Json::as_i64)
            .filter(|s| *s != -1)
            .unwrap_or(0)
    };
    let v_size: i64 = volumes.iter().map(vsize).sum();
    let v_recl: i64 = volumes.iter().filter(|v| refs(v) == 0).map(vsize).sum();
    let vol = row(
        "Local Volumes",
        volumes.len(),
        volumes.iter().filter(|v| refs(v) > 0).count(),
        human_size(v_size as f64),
        reclaimable_text(v_recl, v_size),
    );

    let cache = list(du, "BuildCache");
    let flag = |c: &Json, k: &str| c.get(k).and_then(Json::as_bool).unwrap_or(false);
    let b_size: i64 = cache
        .iter()
        .filter(|c| !flag(c, "Shared"))
        .map(|c| i(c, "Size"))
        .sum();
    let b_recl: i64 = cache
        .iter()
        .filter(|c| !flag(c, "Shared") && !flag(c, "InUse"))
        .map(|c| i(c, "Size"))
        .sum();
    let build = row(
        "Build Cache",
        cache.len(),
        cache.iter().filter(|c| flag(c, "InUse")).count(),
        human_size(b_size as f64),
        human_size(b_recl as f64),
    );
    vec![img, cont, vol, build]
}

fn render(format: &str, rows: &[Json], headers: &Json) -> Result<String, Failure> {
    let tmpl = Format::parse_rows(format).map_err(|e| Failure::Msg(e.to_string()))?;
    tmpl.render(rows, headers)
        .map_err(|e| Failure::Msg(e.to_string()))
}

/// The `-v` tables: images (first tag only), containers, volumes, build cache.
pub fn verbose_text(du: &Json, now: DateTime<Utc>) -> Result<String, Failure> {
    let mut out = String::from("Images space usage:\n\n");
    let images: Vec<Json> = list(du, "Images")
        .iter()
        .filter_map(|im| {
            let mut one = im.clone();
            let first: Vec<Json> = list(im, "RepoTags")
                .iter()
                .filter(|t| t.as_str() != Some("<none>:<none>"))
                .take(1)
                .cloned()
                .collect();
            one["RepoTags"] = Json::Array(first);
            one["RepoDigests"] = json!([]);
            image_rows(&one, true, false, now, &all_fields)
                .into_iter()
                .next()
        })
        .collect();
    out.push_str(&render(DF_IMAGES_TABLE, &images, &images_headers())?);
    out.push_str("\nContainers space usage:\n\n");
    let containers: Vec<Json> = list(du, "Containers")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["SizeRootFs"] = json!(0);
            container_row(&c, true, now, &all_fields)
        })
        .collect();
    out.push_str(&render(DF_CONTAINERS_TABLE, &containers, &ps_headers())?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    let volumes: Vec<Json> = list(du, "Volumes")
        .iter()
        .map(|v| {
            let size = v.pointer("/UsageData/Size").and_then(Json::as_i64).unwrap_or(-1);
            json!({
                "Name": v.get("Name").and_then(Json::as_str).unwrap_or_default(),
                "Links": v.pointer("/UsageData/RefCount").and_then(Json::as_i64).map(|n| n.to_string()).unwrap_or_else(|| "N/A".into()),
                "Size": if size == -1 { "N/A".to_string() } else { human_size(size as f64) },
            })
        })
        .collect();
    out.push_str(&render(
        DF_VOLUMES_TABLE,
        &volumes,
        &json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    )?);
    let cache_total: i64 = list(du, "BuildCache").iter().map(|c| i(c, "Size")).sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(cache_total as f64)
    ));
    let cache_headers = json!({"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
        "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"});
    let cache: Vec<Json> = list(du, "BuildCache")
        .iter()
        .map(|c| build_cache_row(c, now))
        .collect();
    out.push_str(&render(DF_CACHE_TABLE, &cache, &cache_headers)?);
    Ok(out)
}

/// docker/cli's `buildCacheContext` with `trunc`: the ID cut to 12 (a `*` when in
/// use), sizes with 3 digits, the times as `… ago`.
fn build_cache_row(c: &Json, now: DateTime<Utc>) -> Json {
    let s = |k: &str| c.get(k).and_then(Json::as_str).unwrap_or_default();
    let flag = |k: &str| c.get(k).and_then(Json::as_bool).unwrap_or(false);
    let id = s("ID");
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    let mut id: String = id.chars().take(12).collect();
    if flag("InUse") {
        id.push('*');
    }
    let since = |k: &str| {
        DateTime::parse_from_rfc3339(s(k))
            .map(|t| {
                format!(
                    "{} ago",
                    crate::units::human_duration(now - t.with_timezone(&Utc))
                )
            })
            .unwrap_or_default()
    };
    json!({
        "ID": id,
        "CacheType": s("Type"),
        "Size": crate::units::human_size_precision(i(c, "Size") as f64, 3),
        "CreatedSince": since("CreatedAt"),
        "LastUsedSince": since("LastUsedAt"),
        "UsageCount": i(c, "UsageCount").to_string(),
        "Shared": flag("Shared").to_string(),
        "Description": s("Description"),
        "Parent": s("Parent"),
    })
}

/// `system df [-v] [--format]`.
pub async fn df(c: &Client, a: &DfArgs) -> Result<i32, Failure> {
    let du = c.get("/system/df").await?;
    let format = a.format.clone().unwrap_or_else(|| "table".into());
    if a.verbose && (format == "table" || format.is_empty()) {
        print!("{}", verbose_text(&du, Utc::now())?);
        return Ok(0);
    }
    if a.verbose {
        // A custom template with -v sees the lists, as Docker's does.
        let tmpl = Format::parse(&format).map_err(|e| Failure::Msg(e.to_string()))?;
        println!(
            "{}",
            tmpl.execute(&du).map_err(|e| Failure::Msg(e.to_string()))?
        );
        return Ok(0);
    }
    let format = match format.as_str() {
        "" | "table" => DF_TABLE.to_string(),
        "raw" => DF_RAW.to_string(),
        "json" => "{{json .}}".to_string(),
        other => other.to_string(),
    };
    print!("{}", render(&format, &summary_rows(&du), &df_headers())?);
    Ok(0)
}

/// `system check`: prints each problem the daemon's image store check finds; exit 1 if any.
pub async fn check(c: &Client) -> Result<i32, Failure> {
    let r = c.get("/system/check").await?;
    let problems = list(&r, "Problems");
    if problems.is_empty() {
        println!("image store is consistent");
        return Ok(0);
    }
    for p in problems {
        println!("{}", p.as_str().unwrap_or_default());
    }
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_in_dockers_format() {
        assert_eq!(reclaimable_text(1_980_000, 1_980_000), "1.98MB (100%)");
        assert_eq!(reclaimable_text(0, 0), "0B");
        assert_eq!(reclaimable_text(1, 3), "1B (33%)");
    }

    #[test]
    fn summary_counts_layers_once_and_active_users() {
        let du = json!({
            "LayersSize": 3000,
            "Images": [
                {"Id": "sha256:a", "Size": 2000, "SharedSize": 1000, "Containers": 1, "RepoTags": ["a:1"]},
                {"Id": "sha256:b", "Size": 2000, "SharedSize": 1000, "Containers": 0, "RepoTags": []}
            ],
            "Containers": [
                {"Id": "c1", "State": "running", "SizeRw": 10},
                {"Id": "c2", "State": "exited", "SizeRw": 30}
            ],
            "Volumes": [],
            "BuildCache": []
        });
        let rows = summary_rows(&du);
        assert_eq!(
            rows[0],
            json!({"Type": "Images", "TotalCount": "2", "Active": "1", "Size": "3kB", "Reclaimable": "2kB (66%)"})
        );
        assert_eq!(
            rows[1],
            json!({"Type": "Containers", "TotalCount": "2", "Active": "1", "Size": "40B", "Reclaimable": "30B (75%)"})
        );
        assert_eq!(rows[2]["Type"], "Local Volumes");
        assert_eq!(rows[2]["Reclaimable"], "0B");
        assert_eq!(
            rows[3],
            json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"})
        );
        let text = render(DF_TABLE, &rows, &df_headers()).unwrap();
        assert!(text.contains("Build Cache     0         0         0B        0B"));
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let du = json!({"BuildCache": [
            {"ID": "0123456789abcdef0123", "Type": "regular", "Size": 100000, "InUse": true,
             "Shared": false, "CreatedAt": "2024-01-01T00:00:00Z",
             "LastUsedAt": "2024-01-01T00:00:50.5Z", "UsageCount": 2},
        ]});
        let v = verbose_text(&du, now).unwrap();
        assert!(
            v.contains("\nBuild cache usage: 100kB\n\nCACHE ID        CACHE TYPE   SIZE      CREATED              LAST USED       USAGE     SHARED\n0123456789ab*   regular      100kB     About a minute ago   9 seconds ago   2         false\n"),
            "{v}"
        );
        assert_eq!(
            text.lines().next().unwrap(),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
        );
        assert!(
            text.contains("Images          2         1         3kB       2kB (66%)"),
            "{text}"
        );
    }
}
