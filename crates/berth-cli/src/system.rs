//! System commands: version, info, inspect.

use serde::Serialize;
use serde_json::Value as Json;

use crate::args::InspectArgs;
use crate::client::{seg, ApiError, Client, API_PREFIX};
use crate::template::{tabwrite, Format};
use crate::Failure;

fn s(v: &Json, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn client_version_block(context: &str, api: &str) -> String {
    let ours = API_PREFIX.trim_start_matches("/v");
    let api = if api == ours {
        api.to_string()
    } else {
        format!("{api} (downgraded from {ours})")
    };
    format!(
        "Client:\n Version:\t{}\n API version:\t{api}\n OS/Arch:\tlinux/{}\n Context:\t{context}\n",
        env!("CARGO_PKG_VERSION"),
        go_arch()
    )
}

/// Docker's `reformatDate`: an RFC 3339 build time printed as Go's `time.ANSIC`.
fn ansic_date(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The server block as docker/cli marshals its `types.Version`: `BuildTime`,
/// `KernelVersion` and `Experimental` are `omitempty`.
fn go_omitempty_version(v: &Json) -> Json {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, val| {
            !(matches!(k.as_str(), "BuildTime" | "KernelVersion" | "Experimental")
                && matches!(val, Json::Null | Json::Bool(false))
                || val.as_str() == Some("") && matches!(k.as_str(), "BuildTime" | "KernelVersion"))
        });
    }
    v
}

/// `berth version`, in Docker's layout.
pub async fn version(c: &Client, context: &str, format: Option<&str>) -> Result<i32, Failure> {
    if format == Some("json") {
        // docker/cli's `--format json`: the Go structs' JSON (`ApiVersion`, no Platform).
        let server = c.get("/version").await;
        let api = c
            .api_version()
            .await
            .unwrap_or_else(|_| API_PREFIX.trim_start_matches("/v").to_string());
        let data = serde_json::json!({
            "Client": {
                "Version": env!("CARGO_PKG_VERSION"),
                "ApiVersion": api,
                "DefaultAPIVersion": API_PREFIX.trim_start_matches("/v"),
                "GitCommit": "",
                "GoVersion": "",
                "Os": "linux",
                "Arch": go_arch(),
                "BuildTime": "",
                "Context": context,
            },
            "Server": server.as_ref().ok().map(go_omitempty_version),
        });
        outln!("{data}");
        return server.map(|_| 0).map_err(Failure::from);
    }
    if let Some(f) = format {
        let tmpl = Format::parse(f).map_err(|e| Failure::Msg(e.to_string()))?;
        let server = c.get("/version").await;
        let client = serde_json::json!({
            "Platform": {"Name": ""},
            "Version": env!("CARGO_PKG_VERSION"),
            "APIVersion": c.api_version().await.unwrap_or_else(|_| API_PREFIX.trim_start_matches("/v").to_string()),
            "DefaultAPIVersion": API_PREFIX.trim_start_matches("/v"),
            "Os": "linux",
            "Arch": go_arch(),
            "Context": context,
        });
        // Templates see Go's field names: the daemon's JSON `ApiVersion` is `APIVersion`.
        let server_data = server.as_ref().ok().map(|v| {
            let mut v = v.clone();
            if let Some(obj) = v.as_object_mut() {
                if let Some(api) = obj.remove("ApiVersion") {
                    obj.insert("APIVersion".into(), api);
                }
            }
            v
        });
        let data = serde_json::json!({"Client": client, "Server": server_data});
        outln!(
            "{}",
            tmpl.execute(&data)
                .map_err(|e| Failure::Msg(e.to_string()))?
        );
        return server.map(|_| 0).map_err(Failure::from);
    }
    let server = c.get("/version").await;
    let api = c
        .api_version()
        .await
        .unwrap_or_else(|_| API_PREFIX.trim_start_matches("/v").to_string());
    let mut text = client_version_block(context, &api);
    let code = match &server {
        Ok(v) => {
            let platform = s(v, "/Platform/Name");
            text.push_str(&format!(
                "\nServer:{}\n",
                if platform.is_empty() {
                    String::new()
                } else {
                    format!(" {platform}")
                }
            ));
            let components = v
                .get("Components")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            for comp in &components {
                let name = s(comp, "/Name");
                text.push_str(&format!(" {name}:\n"));
                if name == "Engine" {
                    text.push_str(&format!("  Version:\t{}\n", s(comp, "/Version")));
                    text.push_str(&format!(
                        "  API version:\t{} (minimum version {})\n",
                        s(comp, "/Details/ApiVersion"),
                        s(comp, "/Details/MinAPIVersion")
                    ));
                    text.push_str(&format!(
                        "  Go version:\t{}\n",
                        s(comp, "/Details/GoVersion")
                    ));
                    text.push_str(&format!(
                        "  Git commit:\t{}\n",
                        s(comp, "/Details/GitCommit")
                    ));
                    text.push_str(&format!(
                        "  Built:\t{}\n",
                        ansic_date(&s(comp, "/Details/BuildTime"))
                    ));
                    text.push_str(&format!(
                        "  OS/Arch:\t{}/{}\n",
                        s(comp, "/Details/Os"),
                        s(comp, "/Details/Arch")
                    ));
                    text.push_str(&format!(
                        "  Experimental:\t{}\n",
                        s(comp, "/Details/Experimental")
                    ));
                } else {
                    text.push_str(&format!("  Version:\t{}\n", s(comp, "/Version")));
                    if let Some(d) = comp.get("Details").and_then(Json::as_object) {
                        for (k, v) in d {
                            text.push_str(&format!(
                                "  {k}:\t{}\n",
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())
                            ));
                        }
                    }
                }
            }
            0
        }
        Err(_) => 1,
    };
    out!("{}", tabwrite(&text, 20, 1));
    if let Err(e) = server {
        eprintln!("{e}");
    }
    Ok(code)
}

/// `berth info`: Docker's layout of the main fields.
pub async fn info(c: &Client, context: &str, format: Option<&str>) -> Result<i32, Failure> {
    if let Some(f) = format {
        let f = if f == "json" { "{{json .}}" } else { f };
        let tmpl = Format::parse(f).map_err(|e| Failure::Msg(e.to_string()))?;
        let mut info = c.get("/info").await?;
        if let Some(o) = info.as_object_mut() {
            o.insert(
                "ClientInfo".into(),
                serde_json::json!({
                    "Debug": false, "Version": env!("CARGO_PKG_VERSION"),
                    "DefaultAPIVersion": API_PREFIX.trim_start_matches("/v"), "GitCommit": "",
                    "GoVersion": "", "Os": "linux", "Arch": go_arch(), "BuildTime": "",
                    "Context": context, "Plugins": [], "Warnings": null,
                }),
            );
        }
        outln!(
            "{}",
            tmpl.execute(&info)
                .map_err(|e| Failure::Msg(e.to_string()))?
        );
        return Ok(0);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Client:\n Version:    {}\n Context:    {}\n Debug Mode: false\n\n",
        env!("CARGO_PKG_VERSION"),
        context
    ));
    let i = match c.get("/info").await {
        Ok(i) => i,
        Err(e) => {
            out!("{out}Server:\n");
            return Err(e.into());
        }
    };
    let n = |k: &str| i.get(k).and_then(Json::as_i64).unwrap_or(0);
    out.push_str("Server:\n");
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        n("Containers"),
        n("ContainersRunning"),
        n("ContainersPaused"),
        n("ContainersStopped")
    ));
    out.push_str(&format!(" Images: {}\n", n("Images")));
    out.push_str(&format!(" Server Version: {}\n", s(&i, "/ServerVersion")));
    out.push_str(&format!(" Storage Driver: {}\n", s(&i, "/Driver")));
    for pair in i
        .get("DriverStatus")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let Some([k, v]) = pair.as_array().map(|p| p.as_slice()) {
            out.push_str(&format!(
                "  {}: {}\n",
                k.as_str().unwrap_or(""),
                v.as_str().unwrap_or("")
            ));
        }
    }
    out.push_str(&format!(" Logging Driver: {}\n", s(&i, "/LoggingDriver")));
    out.push_str(&format!(" Cgroup Driver: {}\n", s(&i, "/CgroupDriver")));
    out.push_str(&format!(" Cgroup Version: {}\n", s(&i, "/CgroupVersion")));
    let words = |ptr: &str| -> Vec<String> {
        i.pointer(ptr)
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    if i.get("Plugins").is_some() {
        out.push_str(" Plugins:\n");
        out.push_str(&format!(
            "  Volume: {}\n",
            words("/Plugins/Volume").join(" ")
        ));
        out.push_str(&format!(
            "  Network: {}\n",
            words("/Plugins/Network").join(" ")
        ));
        let auth = words("/Plugins/Authorization");
        if !auth.is_empty() {
            out.push_str(&format!("  Authorization: {}\n", auth.join(" ")));
        }
        out.push_str(&format!("  Log: {}\n", words("/Plugins/Log").join(" ")));
    }
    let swarm = s(&i, "/Swarm/LocalNodeState");
    if !swarm.is_empty() {
        out.push_str(&format!(" Swarm: {swarm}\n"));
    }
    if let Some(rt) = i.get("Runtimes").and_then(Json::as_object) {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        out.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        out.push_str(&format!(" Default Runtime: {}\n", s(&i, "/DefaultRuntime")));
    }
    if i.get("InitBinary").is_some() {
        out.push_str(&format!(" Init Binary: {}\n", s(&i, "/InitBinary")));
        out.push_str(&format!(
            " containerd version: {}\n",
            s(&i, "/ContainerdCommit/ID")
        ));
        out.push_str(&format!(" runc version: {}\n", s(&i, "/RuncCommit/ID")));
        out.push_str(&format!(" init version: {}\n", s(&i, "/InitCommit/ID")));
    }
    let sec = words("/SecurityOptions");
    if !sec.is_empty() {
        out.push_str(" Security Options:\n");
        for opt in sec {
            for kv in opt.split(',') {
                let (k, v) = kv.split_once('=').unwrap_or(("name", kv));
                if k == "name" {
                    out.push_str(&format!("  {v}\n"));
                } else {
                    out.push_str(&format!("   {}: {v}\n", crate::template::title_case(k)));
                }
            }
        }
    }
    out.push_str(&format!(" Kernel Version: {}\n", s(&i, "/KernelVersion")));
    out.push_str(&format!(
        " Operating System: {}\n",
        s(&i, "/OperatingSystem")
    ));
    out.push_str(&format!(" OSType: {}\n", s(&i, "/OSType")));
    out.push_str(&format!(" Architecture: {}\n", s(&i, "/Architecture")));
    out.push_str(&format!(" CPUs: {}\n", n("NCPU")));
    out.push_str(&format!(
        " Total Memory: {}\n",
        crate::units::bytes_size(n("MemTotal") as f64)
    ));
    out.push_str(&format!(" Name: {}\n", s(&i, "/Name")));
    out.push_str(&format!(" ID: {}\n", s(&i, "/ID")));
    out.push_str(&format!(" Docker Root Dir: {}\n", s(&i, "/DockerRootDir")));
    let debug = i.get("Debug").and_then(Json::as_bool).unwrap_or(false);
    out.push_str(&format!(" Debug Mode: {debug}\n"));
    if debug {
        // docker/cli's extra lines for a daemon in debug mode.
        out.push_str(&format!("  File Descriptors: {}\n", n("NFd")));
        out.push_str(&format!("  Goroutines: {}\n", n("NGoroutines")));
        out.push_str(&format!("  System Time: {}\n", s(&i, "/SystemTime")));
        out.push_str(&format!("  EventsListeners: {}\n", n("NEventsListener")));
    }
    for (label, key) in [
        ("HTTP Proxy", "/HttpProxy"),
        ("HTTPS Proxy", "/HttpsProxy"),
        ("No Proxy", "/NoProxy"),
    ] {
        let v = s(&i, key);
        if !v.is_empty() {
            out.push_str(&format!(" {label}: {v}\n"));
        }
    }
    let labels = words("/Labels");
    if !labels.is_empty() {
        out.push_str(" Labels:\n");
        for l in labels {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out.push_str(&format!(
        " Experimental: {}\n",
        i.get("ExperimentalBuild")
            .and_then(Json::as_bool)
            .unwrap_or(false)
    ));
    let mut insecure = words("/RegistryConfig/InsecureRegistryCIDRs");
    if let Some(idx) = i
        .pointer("/RegistryConfig/IndexConfigs")
        .and_then(Json::as_object)
    {
        for (name, cfg) in idx {
            if cfg.get("Secure").and_then(Json::as_bool) == Some(false) {
                insecure.push(name.clone());
            }
        }
    }
    if !insecure.is_empty() {
        out.push_str(" Insecure Registries:\n");
        for r in insecure {
            out.push_str(&format!("  {r}\n"));
        }
    }
    let mirrors = words("/RegistryConfig/Mirrors");
    if !mirrors.is_empty() {
        out.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            out.push_str(&format!("  {m}\n"));
        }
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n\n",
        i.get("LiveRestoreEnabled")
            .and_then(Json::as_bool)
            .unwrap_or(false)
    ));
    out!("{out}");
    for w in i
        .get("Warnings")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

/// Indents JSON like Go's `json.Indent(…, "", "    ")`.
pub fn indent_json(v: &Json) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = v.serialize(&mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

async fn inspect_one(
    c: &Client,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Json, Failure> {
    let container = || async {
        let q = if size { "?size=1" } else { "" };
        c.get(&format!("/containers/{}/json{q}", seg(name))).await
    };
    let image = || async { c.get(&format!("/images/{}/json", seg(name))).await };
    match kind {
        Some("container") => Ok(container().await?),
        Some("image") => Ok(image().await?),
        Some("network") => Ok(c.get(&format!("/networks/{}", seg(name))).await?),
        Some(other) => Err(Failure::Msg(format!(
            "\"{other}\" is not a valid value for --type"
        ))),
        None => match container().await {
            Ok(j) => Ok(j),
            Err(e) if e.status() == 404 => match image().await {
                Ok(j) => Ok(j),
                Err(e) if e.status() == 404 => {
                    Err(Failure::Msg(format!("Error: No such object: {name}")))
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        },
    }
}

/// `inspect --format json` (Docker CLI 28): the array on one line, as Go marshals it.
pub fn inspect_json_line(found: &[Json]) -> String {
    serde_json::to_string(found)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `berth inspect`: a JSON array indented like Docker's, or `-f` per element.
pub async fn inspect(c: &Client, a: &InspectArgs) -> Result<i32, Failure> {
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
        match inspect_one(c, n, a.kind.as_deref(), a.size).await {
            Ok(j) => found.push(j),
            Err(Failure::Api(ApiError::Connect(h))) => {
                return Err(Failure::Api(ApiError::Connect(h)))
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    match tmpl {
        Some(t) => {
            for j in &found {
                match t.execute(j) {
                    Ok(s) => outln!("{s}"),
                    Err(e) => return Err(Failure::Msg(e.to_string())),
                }
            }
        }
        None if json_line => outln!("{}", inspect_json_line(&found)),
        None => outln!("{}", indent_json(&Json::Array(found))),
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure::Msg(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inspect_output_is_indented_like_docker() {
        let v = json!([{"Id": "abc", "Args": [], "State": {"Running": true}, "Labels": {}}]);
        assert_eq!(
            indent_json(&v),
            "[\n    {\n        \"Id\": \"abc\",\n        \"Args\": [],\n        \"State\": {\n            \"Running\": true\n        },\n        \"Labels\": {}\n    }\n]"
        );
        assert_eq!(indent_json(&json!([])), "[]");
    }

    #[test]
    fn version_block_is_aligned_at_column_20() {
        let out = tabwrite(&client_version_block("default", "1.45"), 20, 1);
        assert!(
            out.starts_with("Client:\n Version:           0.1.0\n API version:       1.45\n"),
            "{out}"
        );
        assert!(out.ends_with(" Context:           default\n"), "{out}");
        let out = tabwrite(&client_version_block("foo", "1.41"), 20, 1);
        assert!(
            out.contains(" API version:       1.41 (downgraded from 1.45)\n"),
            "{out}"
        );
    }
}
