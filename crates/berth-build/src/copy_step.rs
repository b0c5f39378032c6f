//! COPY and ADD steps (moby `dispatchCopy`/`dispatchAdd`), with BuildKit's extras:
//! `--chmod` (octal), `--exclude`, `--link` (accepted: with one layer per step the
//! result is the same files), `ADD --checksum` (checked against the downloaded file)
//! and here-document sources (`COPY <<EOF /dest`: a file named by the delimiter, mode
//! 0644, its body expanded unless the delimiter was quoted).
//!
//! The cache key keeps Docker's `#(nop) COPY <checksum> in <dest> ` and, only when
//! given, the `--chmod=`/`--exclude=` flags before the checksum.

use sha2::{Digest, Sha256};

use crate::builder::{Backend, Builder, StageState, StepKind};
use crate::copy::{hash_sources, resolve_sources, CopyPlan, Source};
use crate::dockerfile::CopySpec;
use crate::dockerignore::{clean, DockerIgnore};
use crate::BuildError;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// BuildKit's `--chmod` check (octal only in Berth).
pub fn parse_chmod(v: &str) -> Result<u32, BuildError> {
    let bad = || {
        BuildError::invalid(format!(
            "invalid chmod parameter: '{v}'. it should be octal string and between 0 and 07777"
        ))
    };
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        Ok(_) => Err(bad()),
        Err(_) if v.chars().all(|c| c.is_ascii_digit()) => Err(bad()),
        Err(_) => Err(BuildError::invalid(format!(
            "Berth does not support the symbolic --chmod={v}: give the mode in octal"
        ))),
    }
}

/// `--checksum=sha256:<hex>` (BuildKit `digest.Parse`).
pub fn parse_checksum(v: &str) -> Result<String, BuildError> {
    match v.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(v.to_string())
        }
        Some(("sha384" | "sha512", _)) => Err(BuildError::invalid(format!(
            "Berth checks only sha256 checksums, not {v}"
        ))),
        _ => Err(BuildError::invalid("invalid checksum digest format")),
    }
}

fn file_sha256(path: &std::path::Path) -> Result<String, BuildError> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

impl<B: Backend> Builder<'_, B> {
    async fn sources(
        &mut self,
        st: &StageState,
        spec: &CopySpec,
        add: bool,
        op: &str,
    ) -> Result<Vec<Source>, BuildError> {
        let mut sources = Vec::new();
        let root = match &spec.from {
            Some(from) => {
                let from = self.expand(st, from)?;
                let image = match from.parse::<usize>() {
                    Ok(i) if i < self.stages.len() => self.stages[i].1.clone(),
                    Ok(i) => {
                        return Err(BuildError::invalid(format!(
                            "invalid from flag value {i}: refers to current or future build stage"
                        )))
                    }
                    Err(_) => match self
                        .stages
                        .iter()
                        .rev()
                        .find(|(n, _)| n.as_deref() == Some(from.to_lowercase().as_str()))
                    {
                        Some((_, id)) => id.clone(),
                        None => {
                            self.backend
                                .image(&from, false, None, &mut *self.out)
                                .await?
                                .id
                        }
                    },
                };
                if image.is_empty() {
                    return Err(BuildError::invalid("COPY --from of an empty stage"));
                }
                self.backend.image_root(&image).await?
            }
            None => self.context.to_path_buf(),
        };
        let checksum = match &spec.checksum {
            Some(c) => {
                let c = self.expand(st, c)?;
                if spec.srcs.len() != 1 || !spec.heredocs.is_empty() {
                    return Err(BuildError::invalid(
                        "checksum can't be specified for multiple sources",
                    ));
                }
                if !is_url(&self.expand(st, &spec.srcs[0])?) {
                    return Err(BuildError::invalid(
                        "checksum requires HTTP(S) or Git sources",
                    ));
                }
                Some(parse_checksum(&c)?)
            }
            None => None,
        };
        let mut local = Vec::new();
        for s in &spec.srcs {
            let s = self.expand(st, s)?;
            if is_url(&s) {
                if !add {
                    return Err(BuildError::invalid("source can't be a URL for COPY"));
                }
                let file = self.backend.download(&s).await?;
                if let Some(want) = &checksum {
                    let got = file_sha256(&file)?;
                    if &got != want {
                        return Err(BuildError::failed(format!(
                            "digest mismatch for {s}: {got} (expected: {want})"
                        )));
                    }
                }
                sources.push(Source {
                    rel: file
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    host: file,
                    is_dir: false,
                });
            } else {
                local.push(s);
            }
        }
        if !local.is_empty() {
            sources.extend(resolve_sources(&root, &local, op)?);
        }
        sources.extend(self.heredoc_sources(st, spec)?);
        Ok(sources)
    }

    /// The here-documents of a COPY/ADD written as files in the build's scratch.
    fn heredoc_sources(
        &mut self,
        st: &StageState,
        spec: &CopySpec,
    ) -> Result<Vec<Source>, BuildError> {
        if spec.heredocs.is_empty() {
            return Ok(Vec::new());
        }
        let dir = self
            .backend
            .scratch()
            .join(format!("heredoc-{}", hex::encode(rand_bytes())));
        std::fs::create_dir_all(&dir)?;
        let env = self.expansion_env(st);
        let mut out = Vec::new();
        for h in &spec.heredocs {
            let mut data = h.data();
            if h.expand {
                data = crate::shell::process_heredoc(&data, &env)?;
            }
            let name = clean(&h.name).trim_start_matches('/').to_string();
            let host = dir.join(&name);
            if let Some(p) = host.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::write(&host, data.as_bytes())?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o644))?;
            out.push(Source {
                rel: name,
                host,
                is_dir: false,
            });
        }
        Ok(out)
    }

    pub(crate) async fn copy(
        &mut self,
        st: &mut StageState,
        spec: &CopySpec,
        add: bool,
    ) -> Result<(), BuildError> {
        let op = if add { "ADD" } else { "COPY" };
        let chmod = match &spec.chmod {
            Some(c) => Some(parse_chmod(&self.expand(st, c)?)?),
            None => None,
        };
        let exclude_words: Vec<String> = spec
            .exclude
            .iter()
            .map(|e| self.expand(st, e))
            .collect::<Result<_, _>>()?;
        let exclude = if exclude_words.is_empty() {
            None
        } else {
            Some(DockerIgnore::parse(&exclude_words.join("\n"))?)
        };
        let sources = self.sources(st, spec, add, op).await?;
        let dest_word = self.expand(st, &spec.dest)?;
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            let base = if st.config.working_dir.is_empty() {
                "/"
            } else {
                st.config.working_dir.as_str()
            };
            let mut d = clean(&format!("/{base}/{dest_word}"));
            if dest_word.ends_with('/') && !d.ends_with('/') {
                d.push('/');
            }
            d
        };
        let hash = hash_sources(&sources)?;
        let mut flags = String::new();
        if let Some(m) = chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        for e in &exclude_words {
            flags.push_str(&format!("--exclude={e} "));
        }
        let mut cc = st.config.clone();
        let mut cmd = st.shell();
        cmd.push(format!("#(nop) {op} {flags}{hash} in {dest_word} "));
        cc.cmd = Some(cmd);
        cc.image = st.image_id.clone();
        if let Some(hit) = self.cached(st, &cc).await? {
            st.image_id = hit;
            return Ok(());
        }
        let chown = match &spec.chown {
            Some(c) => Some(self.expand(st, c)?),
            None => None,
        };
        let plan = CopyPlan {
            sources,
            dest,
            owner: None,
            extract_archives: add,
            op: op.into(),
            chmod,
            exclude,
        };
        let id = self
            .backend
            .create(&st.image_id, &cc, StepKind::Files)
            .await?;
        if let Err(e) = self.backend.copy(&id, &plan, chown.as_deref()).await {
            let _ = self.backend.remove(&id).await;
            return Err(e);
        }
        self.finish(st, &id, cc, false).await
    }
}

fn rand_bytes() -> [u8; 8] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(t.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_and_checksum_words() {
        assert_eq!(parse_chmod("755").unwrap(), 0o755);
        assert_eq!(parse_chmod("0640").unwrap(), 0o640);
        assert_eq!(
            parse_chmod("99").unwrap_err().to_string(),
            "invalid chmod parameter: '99'. it should be octal string and between 0 and 07777"
        );
        assert!(parse_chmod("17777").is_err());
        assert!(parse_chmod("u+x")
            .unwrap_err()
            .to_string()
            .contains("octal"));
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse_checksum(&good).unwrap(), good);
        assert_eq!(
            parse_checksum("sha256:xyz").unwrap_err().to_string(),
            "invalid checksum digest format"
        );
    }
}
