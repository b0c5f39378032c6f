//! `cp` (docker/cli `cli/command/container/cp.go` with moby/go-archive's copy rules)
//! and `diff`.
//!
//! `cp CONTAINER:SRC DEST|-` downloads a tar of SRC (`GET /containers/{id}/archive`) and
//! extracts it so that DEST ends up as `cp -a` would make it; `cp SRC|- CONTAINER:DEST`
//! stats DEST in the container (`HEAD`), tars SRC with its entries renamed as needed and
//! uploads it into the right directory (`PUT`). The tar is held in memory.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use base64::Engine;
use http::Method;
use http_body_util::BodyExt;

use crate::args::CpArgs;
use crate::client::{query, seg, Client};
use crate::Failure;

mod local_tar;
mod paths;
use local_tar::{rebase_archive, tar_local, untar_local};
use paths::{
    clean, get_rebase_name, has_trailing_sep, resolve_local_path, specifies_current_dir,
    split_cp_arg, split_path_dir_entry,
};

const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_TYPE: u32 =
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/// The daemon's `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

fn decode_stat(v: Option<&http::HeaderValue>) -> PathStat {
    v.and_then(|h| {
        base64::engine::general_purpose::STANDARD
            .decode(h.as_bytes())
            .ok()
    })
    .and_then(|j| serde_json::from_slice(&j).ok())
    .unwrap_or_default()
}

/// go-units `HumanSizeWithPrecision(n, 3)`: `2.05kB`, `512B`.
pub fn human_size(n: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = n as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g3(size), UNITS[i])
}

/// Go's `%.3g`.
fn go_g3(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{x:.2e}"); // d.dde±X
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..3).contains(&exp) {
        let m = mant.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (2 - exp).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn summary(content: i64, transferred: i64, dest: &str) -> String {
    if content != transferred {
        format!(
            "Successfully copied {} (transferred {}) to {dest}\n",
            human_size(content),
            human_size(transferred)
        )
    } else {
        format!("Successfully copied {} to {dest}\n", human_size(content))
    }
}

async fn stat(
    c: &Client,
    container: &str,
    path: &str,
) -> Result<PathStat, crate::client::ApiError> {
    let q = query(&[("path", path.to_string())]);
    let res = c
        .send(
            Method::HEAD,
            &format!("/containers/{}/archive{q}", seg(container)),
            crate::client::empty(),
            None,
        )
        .await?;
    Ok(decode_stat(
        res.headers().get("X-Docker-Container-Path-Stat"),
    ))
}

/// `cp [-a] [-L] [-q] SRC DEST`
pub async fn cp(c: &Client, a: &CpArgs) -> Result<i32, Failure> {
    if a.source.is_empty() {
        return Err(Failure::Msg("source can not be empty".into()));
    }
    if a.destination.is_empty() {
        return Err(Failure::Msg("destination can not be empty".into()));
    }
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let (src_ctr, src_path) = split_cp_arg(&a.source);
    let (dst_ctr, dst_path) = split_cp_arg(&a.destination);
    match (src_ctr, dst_ctr) {
        (Some(ctr), None) => from_container(c, a, quiet, ctr, src_path, dst_path).await,
        (None, Some(ctr)) => to_container(c, a, quiet, ctr, src_path, dst_path).await,
        (Some(_), Some(_)) => Err(Failure::Msg(
            "copying between containers is not supported".into(),
        )),
        (None, None) => Err(Failure::Msg(
            "must specify at least one container source".into(),
        )),
    }
}

async fn from_container(
    c: &Client,
    a: &CpArgs,
    quiet: bool,
    ctr: &str,
    src: &str,
    dst: &str,
) -> Result<i32, Failure> {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        resolve_local_path(dst)?
    };
    let mut src = src.to_string();
    let mut rebase = None;
    if a.follow_link {
        if let Ok(st) = stat(c, ctr, &src).await {
            if st.mode & MODE_SYMLINK != 0 {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    let (parent, _) = split_path_dir_entry(&src);
                    target = clean(&format!("{parent}/{target}"));
                }
                let (t, r) = get_rebase_name(&src, &target);
                src = t;
                rebase = r;
            }
        }
    }
    let q = query(&[("path", src.clone())]);
    let res = c
        .send(
            Method::GET,
            &format!("/containers/{}/archive{q}", seg(ctr)),
            crate::client::empty(),
            None,
        )
        .await?;
    let st = decode_stat(res.headers().get("X-Docker-Container-Path-Stat"));
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Msg(e.to_string()))?
        .to_bytes();
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&body)
            .and_then(|_| out.flush())
            .map_err(|e| Failure::Msg(crate::io_error_text(&e)))?;
        return Ok(0);
    }
    let src_is_dir = st.mode & MODE_DIR != 0;
    let mut archive = body.to_vec();
    if let Some(r) = &rebase {
        let (_, src_base) = split_path_dir_entry(&src);
        archive = rebase_archive(&archive, &src_base, r)?;
    }
    let res = copy_to_local(&archive, &src, src_is_dir, rebase.as_deref(), &dst);
    if !quiet {
        let reported = if src_is_dir {
            body.len() as i64
        } else {
            st.size
        };
        eprint!("{}", summary(reported, body.len() as i64, &dst));
    }
    res.map(|_| 0)
}

/// go-archive `CopyTo`: where `dst` is resolved, the archive renamed to land as `dst`.
fn copy_to_local(
    archive: &[u8],
    src: &str,
    src_is_dir: bool,
    rebase: Option<&str>,
    dst: &str,
) -> Result<(), Failure> {
    // CopyInfoDestinationPath: follow a symlinked destination.
    let mut path = dst.to_string();
    let mut exists = false;
    let mut is_dir = false;
    for _ in 0..10 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)
                    .map_err(|e| Failure::Msg(crate::io_error_text(&e)))?
                    .display()
                    .to_string();
                path = if target.starts_with('/') {
                    target
                } else {
                    let (parent, _) = split_path_dir_entry(&path);
                    clean(&format!("{parent}/{target}"))
                };
            }
            Ok(m) => {
                exists = true;
                is_dir = m.is_dir();
                break;
            }
            Err(_) => {
                let (parent, _) = split_path_dir_entry(&path);
                match std::fs::metadata(&parent) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(Failure::Msg("not a directory".into())),
                    Err(e) => {
                        return Err(Failure::Msg(format!(
                            "stat {parent}: {}",
                            crate::io_error_text(&e)
                        )))
                    }
                }
                break;
            }
        }
    }
    let (dir, archive) =
        prepare_archive_copy(archive, src, src_is_dir, rebase, &path, exists, is_dir)?;
    untar_local(&archive, &dir)
}

/// go-archive `PrepareArchiveCopy`: the directory to extract into and the archive with
/// its top entry renamed as the destination needs.
fn prepare_archive_copy(
    archive: &[u8],
    src: &str,
    src_is_dir: bool,
    rebase: Option<&str>,
    dst: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> Result<(String, Vec<u8>), Failure> {
    let (dst_dir, dst_base) = split_path_dir_entry(dst);
    let (_, src_base) = split_path_dir_entry(src);
    let src_base = rebase.map(str::to_string).unwrap_or(src_base);
    if dst_exists && dst_is_dir {
        return Ok((dst.to_string(), archive.to_vec()));
    }
    if dst_exists && src_is_dir {
        return Err(Failure::Msg("cannot copy directory".into()));
    }
    if !dst_exists && !src_is_dir && (has_trailing_sep(dst) || specifies_current_dir(dst)) {
        return Err(Failure::Msg("no such directory".into()));
    }
    Ok((dst_dir, rebase_archive(archive, &src_base, &dst_base)?))
}

async fn to_container(
    c: &Client,
    a: &CpArgs,
    quiet: bool,
    ctr: &str,
    src: &str,
    dst: &str,
) -> Result<i32, Failure> {
    let src = if src == "-" {
        src.to_string()
    } else {
        resolve_local_path(src)?
    };
    let mut dst_info_path = dst.to_string();
    let mut dst_exists = false;
    let mut dst_is_dir = false;
    if let Ok(mut st) = stat(c, ctr, dst).await {
        let mut ok = true;
        if st.mode & MODE_SYMLINK != 0 {
            let mut target = st.link_target.clone();
            if !target.starts_with('/') {
                let (parent, _) = split_path_dir_entry(dst);
                target = clean(&format!("{parent}/{target}"));
            }
            dst_info_path = target.clone();
            match stat(c, ctr, &target).await {
                Ok(s) => st = s,
                Err(_) => ok = false,
            }
        }
        if ok {
            let kind = st.mode & MODE_TYPE;
            if kind != 0 && kind != MODE_DIR {
                return Err(Failure::Msg(format!(
                    "destination \"{ctr}:{dst}\" must be a directory or a regular file: got {}",
                    go_mode_string(st.mode)
                )));
            }
            dst_exists = true;
            dst_is_dir = kind == MODE_DIR;
        }
    }
    let (dir, body, content_size) = if src == "-" {
        if !dst_is_dir {
            return Err(Failure::Msg(format!(
                "destination \"{ctr}:{dst}\" must be a directory"
            )));
        }
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::Msg(crate::io_error_text(&e)))?;
        (dst_info_path.clone(), buf, None)
    } else {
        let (resolved, rebase) = if a.follow_link {
            let canon = std::fs::canonicalize(&src)
                .map_err(|e| Failure::Msg(format!("lstat {src}: {}", crate::io_error_text(&e))))?;
            let (r, n) = get_rebase_name(&src, &canon.display().to_string());
            (r, n)
        } else {
            (src.clone(), None)
        };
        let md = std::fs::symlink_metadata(&resolved)
            .map_err(|e| Failure::Msg(format!("lstat {resolved}: {}", crate::io_error_text(&e))))?;
        let size = local_content_size(Path::new(&resolved), &md);
        let tar = tar_local(&resolved, rebase.as_deref())?;
        let (dir, tar) = prepare_archive_copy(
            &tar,
            &resolved,
            md.is_dir(),
            rebase.as_deref(),
            &dst_info_path,
            dst_exists,
            dst_is_dir,
        )?;
        (dir, tar, Some(size))
    };
    let transferred = body.len() as i64;
    let mut q = vec![("path", dir), ("noOverwriteDirNonDir", "true".to_string())];
    if a.archive {
        q.push(("copyUIDGID", "true".to_string()));
    }
    let res = c
        .send(
            Method::PUT,
            &format!("/containers/{}/archive{}", seg(ctr), query(&q)),
            http_body_util::Full::new(bytes::Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
            Some("application/x-tar"),
        )
        .await;
    if !quiet {
        let reported = content_size.unwrap_or(transferred);
        eprint!(
            "{}",
            summary(reported, transferred, &format!("{ctr}:{dst_info_path}"))
        );
    }
    res?;
    Ok(0)
}

fn local_content_size(path: &Path, md: &std::fs::Metadata) -> i64 {
    if !md.is_dir() {
        return if md.is_file() { md.size() as i64 } else { 0 };
    }
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                total += local_content_size(&e.path(), &m);
            }
        }
    }
    total
}

/// Go's `FileMode.String()` type letter and permissions (`Lrwxrwxrwx` style is not
/// needed here: only non-regular, non-directory types reach it).
fn go_mode_string(mode: u32) -> String {
    let letters = "dalTLDpSugct?";
    let mut s = String::new();
    for (i, ch) in letters.chars().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            s.push(ch);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    let rwx = "rwxrwxrwx";
    for (i, ch) in rwx.chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { ch } else { '-' });
    }
    s
}

/// `diff CONTAINER`
pub async fn diff(c: &Client, container: &str) -> Result<i32, Failure> {
    let v = c
        .get(&format!("/containers/{}/changes", seg(container)))
        .await?;
    let mut out = std::io::stdout().lock();
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_u64() {
            Some(1) => 'A',
            Some(2) => 'D',
            _ => 'C',
        };
        let _ = writeln!(out, "{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.05kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(10_000), "10kB");
        assert_eq!(human_size(999_999), "1e+03kB");
    }

    #[test]
    fn summary_shows_transferred_when_it_differs() {
        assert_eq!(
            summary(9, 2048, "/x"),
            "Successfully copied 9B (transferred 2.05kB) to /x\n"
        );
        assert_eq!(
            summary(2048, 2048, "c:/x"),
            "Successfully copied 2.05kB to c:/x\n"
        );
    }

    #[test]
    fn prepare_copy_cases() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        // Into an existing dir: unchanged.
        let (d, _) = prepare_archive_copy(&tar, "/s/f", false, None, "/d", true, true).unwrap();
        assert_eq!(d, "/d");
        // To a new file name: renamed, extracted in the parent.
        let (d, t) = prepare_archive_copy(&tar, "/s/f", false, None, "/d/g", false, false).unwrap();
        assert_eq!(d, "/d");
        let names: Vec<String> = tar::Archive::new(&t[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["g"]);
        // A directory over an existing file, a file into a missing dir.
        assert!(prepare_archive_copy(&tar, "/s/d", true, None, "/d/file", true, false).is_err());
        let e =
            prepare_archive_copy(&tar, "/s/f", false, None, "/d/new/", false, false).unwrap_err();
        assert_eq!(e.to_string(), "no such directory");
    }
}
