//! `berth search TERM`: the daemon's `GET /images/search` (the registry's v1 search API),
//! printed as docker/cli does.

use clap::Args;
use serde_json::{json, Value as Json};

use crate::client::{query, Client};
use crate::template::Format;
use crate::{opts, Failure};

const SEARCH_TABLE: &str = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, value_name = "int")]
    pub limit: Option<i64>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(value_name = "TERM")]
    pub term: String,
}

/// One result as docker/cli's search formatter shows it.
pub fn search_row(r: &Json, trunc: bool) -> Json {
    let desc = r
        .get("description")
        .and_then(Json::as_str)
        .unwrap_or("")
        .replace(['\n', '\r'], " ");
    let desc = if trunc {
        crate::formatters::ellipsis(&desc, 45)
    } else {
        desc
    };
    let ok = |k: &str| {
        if r.get(k).and_then(Json::as_bool).unwrap_or(false) {
            "[OK]"
        } else {
            ""
        }
    };
    json!({
        "Name": r.get("name").and_then(Json::as_str).unwrap_or(""),
        "Description": desc,
        "StarCount": r.get("star_count").and_then(Json::as_i64).unwrap_or(0).to_string(),
        "IsOfficial": ok("is_official"),
        "IsAutomated": ok("is_automated"),
    })
}

/// docker/cli 28's JSON of a result: `IsOfficial` as "true"/"false", no `IsAutomated`.
fn row_json(row: &Json) -> String {
    let official = if row["IsOfficial"] == "[OK]" {
        "true"
    } else {
        "false"
    };
    json!({
        "Description": row["Description"], "IsOfficial": official,
        "Name": row["Name"], "StarCount": row["StarCount"],
    })
    .to_string()
}

pub async fn search(c: &Client, a: &SearchArgs) -> Result<i32, Failure> {
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => SEARCH_TABLE,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let tmpl = Format::parse_rows(format).map_err(|e| Failure::Msg(e.to_string()))?;
    let mut pairs = vec![("term", a.term.clone())];
    if let Some(l) = a.limit {
        pairs.push(("limit", l.to_string()));
    }
    if let Some(f) = opts::filters_json(&a.filter)? {
        pairs.push(("filters", f));
    }
    let results = c.get(&format!("/images/search{}", query(&pairs))).await?;
    let rows: Vec<Json> = results
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| search_row(r, !a.no_trunc))
        .collect();
    let headers = json!({"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
        "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"});
    if tmpl.is_table() {
        out!(
            "{}",
            tmpl.render(&rows, &headers)
                .map_err(|e| Failure::Msg(e.to_string()))?
        );
        return Ok(0);
    }
    for row in &rows {
        let line = tmpl
            .execute_with_json(row, &row_json(row))
            .map_err(|e| Failure::Msg(e.to_string()))?;
        outln!("{line}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_docker_cli() {
        let r = json!({"name": "busybox", "description": "Busybox base image, with a long description that goes on", "star_count": 3000, "is_official": true, "is_automated": false});
        let row = search_row(&r, true);
        assert_eq!(
            row["Description"],
            "Busybox base image, with a long description …"
        );
        assert_eq!(row["StarCount"], "3000");
        assert_eq!(row["IsOfficial"], "[OK]");
        assert_eq!(row["IsAutomated"], "");
        let t = Format::parse_rows(SEARCH_TABLE).unwrap();
        let out = t
            .render(&[row], &json!({"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}))
            .unwrap();
        assert!(out.starts_with("NAME      DESCRIPTION"), "{out}");
    }
}
