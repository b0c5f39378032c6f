//! `GET /containers/{id}/top`: `ps -ef` style rows built from `/proc`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Local, TimeZone, Utc};

pub const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// Host pids of every process in the pid namespace of `init_pid` (the container's).
pub fn container_pids(init_pid: i64) -> Vec<i64> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{init_pid}/ns/pid")) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            if std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l == ns) {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids
}

/// Fields of `/proc/<pid>/stat` after the command name.
struct Stat {
    ppid: i64,
    tty_nr: i64,
    cpu_ticks: u64,
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] = state (field 3); field n is f[n - 3].
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        tty_nr: f.get(4)?.parse().ok()?,
        cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

fn user_names() -> HashMap<u32, String> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

fn boot_time() -> Option<i64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
}

/// `[DD-]HH:MM:SS` of CPU time, as ps prints it.
pub fn cpu_time(total_secs: u64) -> String {
    let (d, h, m, s) = (
        total_secs / 86400,
        total_secs / 3600 % 24,
        total_secs / 60 % 60,
        total_secs % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// ps's TTY column from `tty_nr`.
pub fn tty_name(tty_nr: i64) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        _ => "?".into(),
    }
}

/// ps's STIME: `HH:MM` today, `MonDD` otherwise.
pub fn start_time(started: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = Local.from_utc_datetime(&started.naive_utc());
    let today = Local.from_utc_datetime(&now.naive_utc());
    if local.date_naive() == today.date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%b%d").to_string()
    }
}

/// One row per pid, in `TITLES` order.
pub fn rows(pids: &[i64]) -> Vec<Vec<String>> {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let users = user_names();
    let btime = boot_time().unwrap_or(0);
    let now = Utc::now();
    let mut out = Vec::new();
    for &pid in pids {
        let dir = Path::new("/proc").join(pid.to_string());
        let Some(stat) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|t| parse_stat(&t))
        else {
            continue;
        };
        let uid = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| {
                        v.split_whitespace()
                            .next()
                            .and_then(|u| u.parse::<u32>().ok())
                    })
            })
            .unwrap_or(0);
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmd = if cmdline.is_empty() {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            format!("[{}]", comm.trim())
        } else {
            cmdline
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let start_secs = btime + (stat.start_ticks / hz) as i64;
        let started = DateTime::from_timestamp(start_secs, 0).unwrap_or(now);
        let elapsed = (now.timestamp() - start_secs).max(1) as u64;
        let cpu_secs = stat.cpu_ticks / hz;
        let c = stat.cpu_ticks * 100 / hz / elapsed;
        out.push(vec![
            users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()),
            pid.to_string(),
            stat.ppid.to_string(),
            c.to_string(),
            start_time(started, now),
            tty_name(stat.tty_nr),
            cpu_time(cpu_secs),
            cmd,
        ]);
    }
    out
}

/// `top` with `ps_args`, the way moby does it: runs the host's `ps` with those arguments
/// and keeps the rows whose PID column is one of `pids` (columns after the last title are
/// merged into the last one).
pub fn ps_rows(ps_args: &str, pids: &[i64]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let out = std::process::Command::new("ps")
        .args(ps_args.split_whitespace())
        .output()
        .map_err(|e| format!("Error running ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ps_output(&String::from_utf8_lossy(&out.stdout), pids)
}

pub fn parse_ps_output(
    text: &str,
    pids: &[i64],
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output".to_string())?;
    let mut rows = Vec::new();
    let mut previous_was_ours = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid_field) = fields.get(pid_index) else {
            continue;
        };
        let ours = if *pid_field == "-" {
            previous_was_ours
        } else {
            let pid: i64 = pid_field
                .parse()
                .map_err(|e| format!("Unexpected pid '{pid_field}': {e}"))?;
            previous_was_ours = pids.contains(&pid);
            previous_was_ours
        };
        if ours {
            let keep = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..keep].iter().map(|s| s.to_string()).collect();
            row.push(fields[keep..].join(" "));
            rows.push(row);
        }
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_names() {
        let text = "42 (a) b (c)) S 7 42 42 34816 42 4194560 100 0 0 0 150 50 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.ppid, 7);
        assert_eq!(s.tty_nr, 34816);
        assert_eq!(s.cpu_ticks, 200);
        assert_eq!(s.start_ticks, 12345);
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name(0), "?");
    }

    #[test]
    fn ps_output_is_filtered_by_pid() {
        let text = "  PID USER     COMMAND\n    1 root     init\n   42 root     sleep 60\n   43 nobody   x\n";
        let (titles, rows) = parse_ps_output(text, &[42]).unwrap();
        assert_eq!(titles, ["PID", "USER", "COMMAND"]);
        assert_eq!(
            rows,
            vec![vec!["42".to_string(), "root".into(), "sleep 60".into()]]
        );
        assert!(parse_ps_output("USER\nroot\n", &[1]).is_err());
    }

    #[test]
    fn cpu_time_format() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3725), "01:02:05");
        assert_eq!(cpu_time(90000), "1-01:00:00");
    }

    #[test]
    fn own_process_is_listed() {
        let me = std::process::id() as i64;
        let pids = container_pids(me);
        assert!(pids.contains(&me));
        let rows = rows(&[me]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), TITLES.len());
        assert_eq!(rows[0][1], me.to_string());
    }
}
