//! `berth events` / `berth system events`: the daemon's events, past (`--since`,
//! `--until`) and live, one line each in the Docker CLI's format or `--format`.

use berth_api::EventMessage;
use chrono::{DateTime, Local, Utc};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value as Json};

use crate::client::{empty, query, Client};
use crate::opts::filters_json;
use crate::template::{Format, FormatError};
use crate::Failure;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

/// The Docker CLI's default line: `<time> <type> <action> <actor ID> (k=v, …)`, the time
/// in the local zone as Go's `2006-01-02T15:04:05.000000000Z07:00`.
pub fn pretty_line(ev: &EventMessage) -> String {
    let mut out = String::new();
    let when = if ev.time_nano != 0 {
        Some(DateTime::<Utc>::from_timestamp_nanos(ev.time_nano))
    } else if ev.time != 0 {
        DateTime::<Utc>::from_timestamp(ev.time, 0)
    } else {
        None
    };
    if let Some(t) = when {
        out.push_str(&go_rfc3339_nano_fixed(&t.with_timezone(&Local)));
        out.push(' ');
    }
    out.push_str(&format!("{} {} {}", ev.typ, ev.action, ev.actor.id));
    if !ev.actor.attributes.is_empty() {
        let attrs: Vec<String> = ev
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(" ({})", attrs.join(", ")));
    }
    out
}

fn go_rfc3339_nano_fixed(t: &DateTime<Local>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", t.format("%:z"))
    }
}

/// The event as Go's `events.Message` struct, for templates (`{{.Actor.ID}}`).
pub fn template_data(ev: &EventMessage) -> Json {
    json!({
        "Status": ev.status,
        "ID": ev.id,
        "From": ev.from,
        "Type": ev.typ,
        "Action": ev.action,
        "Actor": {"ID": ev.actor.id, "Attributes": ev.actor.attributes},
        "Scope": ev.scope,
        "Time": ev.time,
        "TimeNano": ev.time_nano,
    })
}

pub async fn events(c: &Client, a: &EventsArgs) -> Result<i32, Failure> {
    let now = Utc::now();
    let mut q = Vec::new();
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = value {
            q.push((
                key,
                crate::units::get_timestamp(v, now).map_err(Failure::Msg)?,
            ));
        }
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => match Format::parse(f) {
            Ok(t) => Some(t),
            // The Docker CLI's words and exit code.
            Err(FormatError::Parse(e) | FormatError::Exec(e)) => {
                eprintln!("Error parsing format: {e}");
                return Ok(64);
            }
        },
        None => None,
    };
    let res = c
        .send(Method::GET, &format!("/events{}", query(&q)), empty(), None)
        .await?;
    let mut pending: Vec<u8> = Vec::new();
    let mut failed = None;
    crate::client::for_each_chunk(res, |chunk| {
        pending.extend_from_slice(chunk);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            if failed.is_some() || line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let ev: EventMessage = match serde_json::from_slice(&line) {
                Ok(ev) => ev,
                Err(e) => {
                    failed = Some(format!("error decoding an event: {e}"));
                    continue;
                }
            };
            match &format {
                None => outln!("{}", pretty_line(&ev)),
                Some(f) => {
                    let raw = String::from_utf8_lossy(&line).trim_end().to_string();
                    match f.execute_with_json(&template_data(&ev), &raw) {
                        Ok(text) => outln!("{text}"),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
            }
        }
    })
    .await?;
    match failed {
        Some(e) => Err(Failure::Msg(e)),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EventMessage {
        serde_json::from_str(r#"{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web","image":"busybox"}},"scope":"local","time":1764763200,"timeNano":1764763200000000123}"#).unwrap()
    }

    #[test]
    fn the_default_line_is_the_docker_clis() {
        let line = pretty_line(&event());
        let expected_time = go_rfc3339_nano_fixed(
            &DateTime::<Utc>::from_timestamp_nanos(1_764_763_200_000_000_123).with_timezone(&Local),
        );
        assert_eq!(
            line,
            format!("{expected_time} container start abc (image=busybox, name=web)")
        );
        let utc = DateTime::<Utc>::from_timestamp_nanos(1_764_763_200_000_000_123);
        assert!(go_rfc3339_nano_fixed(&utc.with_timezone(&Local)).contains(".000000123"));
    }

    #[test]
    fn templates_see_go_field_names_and_json_prints_the_daemons_object() {
        let ev = event();
        let raw = serde_json::to_string(&ev).unwrap();
        let f = Format::parse(
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.ID}} {{.Status}}",
        )
        .unwrap();
        assert_eq!(
            f.execute_with_json(&template_data(&ev), &raw).unwrap(),
            "container start abc web abc start"
        );
        let f = Format::parse("{{json .}}").unwrap();
        assert_eq!(f.execute_with_json(&template_data(&ev), &raw).unwrap(), raw);
    }
}
