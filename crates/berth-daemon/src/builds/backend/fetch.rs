//! What a build brings in from outside: base images pulled from a registry (with the
//! build's credentials) and ADD's downloads.

use std::path::PathBuf;

use berth_build::builder::Output;
use berth_build::BuildError;
use http_body_util::BodyExt;

use super::{api, DaemonBackend};

impl DaemonBackend {
    /// Pulls a base image, its progress in the build's stream.
    pub(super) async fn pull(
        &mut self,
        name: &str,
        platform: berth_registry::Platform,
        out: &mut dyn Output,
    ) -> Result<(), BuildError> {
        let reference = berth_image::Reference::parse_normalized(name)
            .map_err(|e| BuildError::invalid(e.0))?
            .with_default_tag();
        // The Docker CLI keys Docker Hub as `https://index.docker.io/v1/`.
        let domain = reference.domain().to_string();
        let auth = self
            .auths
            .iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let k = k.split('/').next().unwrap_or_default();
                k == domain || (domain == "docker.io" && k == "index.docker.io")
            })
            .map(|(_, a)| a.clone());
        let resp = crate::distribution::pull::start(
            &self.d,
            crate::distribution::pull::PullRequest {
                reference,
                all_tags: false,
                platform,
                auth,
            },
        )
        .await
        .map_err(api)?;
        let mut body = resp.into_body();
        let mut pending = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                        error = Some(e.to_string());
                    } else {
                        out.raw(&v);
                    }
                }
            }
            if out.cancelled() {
                return Err(BuildError::Cancelled);
            }
        }
        match error {
            Some(e) => Err(BuildError::Failed(e)),
            None => Ok(()),
        }
    }

    /// ADD's download of `url` into the build's directory, with its Last-Modified time.
    pub(super) async fn fetch_url(&mut self, url: &str) -> Result<PathBuf, BuildError> {
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() || url.split("://").nth(1).is_none_or(|r| !r.contains('/')) {
            return Err(BuildError::invalid(format!(
                "cannot determine filename from url: {url}"
            )));
        }
        let (headers, body) = crate::routes::images::fetch_url_with_headers(url)
            .await
            .map_err(api)?;
        self.downloads += 1;
        // Forks of the backend download beside each other: the names must not meet.
        let dir = self.dir.join(format!(
            "download-{}-{}",
            self.downloads,
            hex::encode(rand::random::<[u8; 4]>())
        ));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&name);
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = body.into_data_stream();
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BuildError::failed(format!("reading {url}: {e}")))?;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(lm) = headers
            .get(http::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        {
            let t = filetime_from(lm.timestamp());
            let _ = nix::sys::stat::utimes(&path, &t, &t);
        }
        Ok(path)
    }
}

fn filetime_from(secs: i64) -> nix::sys::time::TimeVal {
    nix::sys::time::TimeVal::new(secs, 0)
}
