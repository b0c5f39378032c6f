//! `POST /build` and `POST /build/prune`.
//!
//! The context is received and the Dockerfile parsed before the answer starts, so a bad
//! request gets its HTTP status (400 for a parse error, 500 for a missing Dockerfile, as
//! dockerd 20.10); then the build runs in its own task and its messages stream back as
//! JSON lines (`stream`, `aux`, and `errorDetail` at the end of a failed build). A client
//! that goes away cancels the build at its next step (a running RUN is killed).

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use berth_api::HostConfig;
use berth_build::builder::{BuildOptions, Builder, Output};
use berth_build::BuildError;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::backend::DaemonBackend;
use super::context;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(super::prune::prune))
}

/// The query, keys repeated as sent.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    /// The first value, as Go's `FormValue` (docker-py sends `dockerfile` twice).
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn str(&self, k: &str) -> String {
        self.get(k).unwrap_or_default().to_string()
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn bool(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None | Some("") => default,
            Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
        }
    }
    fn int(&self, k: &str) -> ApiResult<i64> {
        match self.get(k) {
            None | Some("") => Ok(0),
            Some(v) => v.parse().map_err(|_| {
                ApiError::invalid(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            }),
        }
    }
    fn json<T: serde::de::DeserializeOwned + Default>(&self, k: &str) -> ApiResult<T> {
        match self.get(k) {
            None | Some("") | Some("null") => Ok(T::default()),
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ApiError::invalid(format!("invalid {k} specified: {e}"))),
        }
    }
}

/// Options Berth does not apply: refused when set to anything but their default.
fn refuse_unsupported(q: &Query) -> ApiResult<()> {
    if q.bool("squash", false) {
        return Err(ApiError::invalid(
            "squash is only supported with experimental mode",
        ));
    }
    if q.get("version") == Some("2") {
        return Err(ApiError::invalid(
            "BuildKit (version=2) is not supported by Berth: use the classic builder (version=1)",
        ));
    }
    for key in [
        "isolation",
        "cpusetmems",
        "cgroupparent",
        "securityopt",
        "outputs",
        "session",
        "remote",
    ] {
        let v = q.str(key);
        let default = v.is_empty()
            || (key == "isolation" && v == "default")
            || (key == "outputs" && v == "null");
        if !default && !(key == "remote" && (v.starts_with("http://") || v.starts_with("https://")))
        {
            return Err(ApiError::invalid(format!(
                "Berth does not support the build option {key}={v}"
            )));
        }
    }
    Ok(())
}

fn host_config(q: &Query) -> ApiResult<HostConfig> {
    let mut hc = HostConfig::default();
    let network = q.str("networkmode");
    hc.network_mode = if network.is_empty() || network == "default" {
        "bridge".into()
    } else {
        network
    };
    hc.extra_hosts = q
        .all("extrahosts")
        .iter()
        .flat_map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut res = serde_json::Map::new();
    for (key, field) in [
        ("memory", "Memory"),
        ("memswap", "MemorySwap"),
        ("cpushares", "CpuShares"),
        ("cpuperiod", "CpuPeriod"),
        ("cpuquota", "CpuQuota"),
        ("shmsize", "ShmSize"),
    ] {
        let v = q.int(key)?;
        if v != 0 {
            res.insert(field.into(), json!(v));
        }
    }
    let cpuset = q.str("cpusetcpus");
    if !cpuset.is_empty() {
        res.insert("CpusetCpus".into(), json!(cpuset));
    }
    let ulimits: Vec<Value> = q.json("ulimits")?;
    if !ulimits.is_empty() {
        res.insert("Ulimits".into(), json!(ulimits));
    }
    if !res.is_empty() {
        let mut v = serde_json::to_value(&hc)?;
        if let Some(obj) = v.as_object_mut() {
            obj.extend(res);
        }
        hc = serde_json::from_value(v)?;
    }
    Ok(hc)
}

/// Sends the build's messages as JSON lines; notices a client gone.
struct ChannelOutput {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl ChannelOutput {
    fn send(&self, v: &Value) {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        let _ = self.tx.send(Bytes::from(line));
    }
}

impl Output for ChannelOutput {
    fn stream(&mut self, text: &str) {
        self.send(&json!({ "stream": text }));
    }
    fn aux_id(&mut self, id: &str) {
        self.send(&json!({ "aux": { "ID": id } }));
    }
    fn raw(&mut self, message: &Value) {
        self.send(message);
    }
    fn cancelled(&self) -> bool {
        self.tx.is_closed()
    }
}

/// `X-Registry-Config`: base64url JSON of `{registry: AuthConfig}` (the credentials of
/// every registry the client knows; a pull of a base image picks its registry's).
fn registry_config(
    headers: &http::HeaderMap,
) -> ApiResult<BTreeMap<String, berth_api::AuthConfig>> {
    use base64::Engine;
    let Some(v) = headers.get("x-registry-config") else {
        return Ok(BTreeMap::new());
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::invalid("invalid X-Registry-Config header: not ASCII"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(text.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text.trim()))
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Config header: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Config header: {e}")))
}

fn options(q: &Query) -> ApiResult<BuildOptions> {
    let mut tags = Vec::new();
    for t in q.all("t").into_iter().filter(|t| !t.is_empty()) {
        let r = berth_image::Reference::parse_normalized(&t).map_err(|e| ApiError::invalid(e.0))?;
        if r.digest().is_some() {
            return Err(ApiError::invalid(format!("invalid reference format: {t}")));
        }
        tags.push(r.with_default_tag().familiar_string());
    }
    let build_args: BTreeMap<String, Option<String>> = q.json("buildargs")?;
    let labels: BTreeMap<String, String> = q.json("labels")?;
    let cache_from: Vec<String> = q.json("cachefrom")?;
    let target = q.str("target");
    Ok(BuildOptions {
        tags,
        no_cache: q.bool("nocache", false),
        pull: q.bool("pull", false),
        rm: q.bool("rm", true),
        force_rm: q.bool("forcerm", false),
        build_args,
        labels,
        target: (!target.is_empty()).then_some(target),
        cache_from,
        quiet: q.bool("q", false),
    })
}

/// What the query and headers ask for, checked before the body is read.
fn request_options(
    q: &Query,
    headers: &http::HeaderMap,
) -> ApiResult<(
    BuildOptions,
    HostConfig,
    berth_registry::Platform,
    BTreeMap<String, berth_api::AuthConfig>,
)> {
    refuse_unsupported(q)?;
    let opts = options(q)?;
    let hc = host_config(q)?;
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => berth_registry::Platform::parse(p)?,
        None => berth_registry::Platform::host(),
    };
    Ok((opts, hc, platform, registry_config(headers)?))
}

async fn build(
    State(d): State<Daemon>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let q = Query::parse(raw.as_deref());
    let (opts, hc, platform, auths, secrets) = match request_options(&q, req.headers())
        .and_then(|o| Ok((o, super::secrets::from_headers(req.headers())?)))
    {
        Ok(((o, h, p, a), s)) => (o, h, p, a, s),
        Err(e) => {
            // Take what the client is still sending off the connection first, so it
            // reads the error instead of a reset.
            crate::request_body::drain(req.into_body()).await;
            return Err(e);
        }
    };
    let dir = d.builds.new_build_dir()?;
    let ctx = dir.join("context");
    std::fs::create_dir_all(&ctx)?;
    let remote = q.str("remote");
    let body = if remote.is_empty() {
        req.into_body()
    } else {
        crate::request_body::drain(req.into_body()).await;
        crate::routes::images::fetch_url_with_headers(&remote)
            .await
            .map_err(|e| ApiError::invalid(format!("unable to prepare context: {}", e.message)))?
            .1
    };
    let reader = crate::request_body::blocking_reader(body);
    let dockerfile_name = q.str("dockerfile");
    let (c2, name) = (ctx.clone(), dockerfile_name.clone());
    let started = std::time::Instant::now();
    let received = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let r = context::receive(&mut reader, &c2);
        reader.drain_rest();
        r?;
        context::take_dockerfile(&c2, &name)
    })
    .await
    .map_err(|e| ApiError::internal(format!("build task failed: {e}")));
    let text = match received.and_then(|r| r) {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "build context received");
    let df = match berth_build::dockerfile::parse(&text) {
        Ok(df) => df,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiError::invalid(e.to_string()));
        }
    };
    let epoch = match berth_build::repro::epoch_from_args(&opts.build_args) {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiError::invalid(e.to_string()));
        }
    };
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let mut backend = DaemonBackend::new(d.clone(), dir, hc);
    backend.epoch = epoch;
    backend.auths = auths;
    backend.platform = platform;
    backend.secrets = secrets;
    // Held until the build ends: the cache collector waits for it.
    let hold = super::gc::BuildHold::take(d.builds.clone()).await;
    tokio::spawn(async move {
        let mut out = ChannelOutput { tx };
        let result = Builder::new(&mut backend, &mut out, &opts, &ctx)
            .build(&df)
            .await;
        match result {
            Ok(_) | Err(BuildError::Cancelled) => {}
            Err(BuildError::Step { message, code }) => out.send(&json!({
                "errorDetail": { "code": code, "message": message },
                "error": message,
            })),
            Err(e) => {
                let message = e.to_string();
                out.send(&json!({ "errorDetail": { "message": message }, "error": message }));
            }
        }
        backend.cleanup();
        // The build is over before its client hears the end of the stream.
        drop(hold);
        drop(out);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        [(http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_the_first_value_and_keeps_repeated_tags() {
        let q = Query::parse(Some("t=a:1&t=b&dockerfile=x&dockerfile=FROM+y&rm=0&q=1&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D"));
        let o = options(&q).unwrap();
        assert_eq!(o.tags, vec!["a:1", "b:latest"]);
        assert_eq!(q.str("dockerfile"), "x");
        assert!(!o.rm);
        assert!(o.quiet);
        assert_eq!(o.build_args.get("A"), Some(&Some("1".to_string())));
        assert_eq!(o.build_args.get("B"), Some(&None));
        assert!(options(&Query::parse(Some("t=UPPER"))).is_err());
    }

    #[test]
    fn unsupported_options_are_refused_not_ignored() {
        assert!(refuse_unsupported(&Query::parse(Some("squash=1"))).is_err());
        assert!(refuse_unsupported(&Query::parse(Some("version=2"))).is_err());
        assert!(refuse_unsupported(&Query::parse(Some("isolation=hyperv"))).is_err());
        assert!(refuse_unsupported(&Query::parse(Some("cgroupparent=/x"))).is_err());
        // The Docker CLI's defaults pass.
        assert!(refuse_unsupported(&Query::parse(Some(
            "version=1&isolation=&cgroupparent=&cpusetmems=&squash=0&outputs=null"
        )))
        .is_ok());
    }

    #[test]
    fn host_config_from_the_query() {
        let hc = host_config(&Query::parse(Some(
            "networkmode=none&extrahosts=a:1.2.3.4,b:5.6.7.8&memory=67108864&cpushares=512",
        )))
        .unwrap();
        assert_eq!(hc.network_mode, "none");
        assert_eq!(hc.extra_hosts, vec!["a:1.2.3.4", "b:5.6.7.8"]);
        let v = serde_json::to_value(&hc).unwrap();
        assert_eq!(v["Memory"], 67108864);
        assert_eq!(v["CpuShares"], 512);
        let default = host_config(&Query::parse(Some("networkmode=default"))).unwrap();
        assert_eq!(default.network_mode, "bridge");
    }
}
