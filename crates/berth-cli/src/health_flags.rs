//! `--health-*` and `--no-healthcheck`: the create body's `Config.Healthcheck`, as the
//! Docker CLI builds it (docker/cli `parse` in `opts.go`).

use berth_api::units::go_quote;
use berth_api::HealthConfig;

use crate::args::ContainerOpts;
use crate::opts::FlagError;
use crate::units::parse_go_duration;

/// Go's `time.ParseDuration` error text for `v`.
fn duration_error(v: &str) -> String {
    let q = go_quote(v);
    let body = v.trim_start_matches(['-', '+']);
    let number_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    if number_end > 0 && number_end == body.len() {
        return format!("time: missing unit in duration {q}");
    }
    if number_end > 0 {
        let rest = &body[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return format!("time: unknown unit {} in duration {q}", go_quote(unit));
        }
    }
    format!("time: invalid duration {q}")
}

/// A duration flag in nanoseconds (0 when not given; negative ones are checked later).
fn duration_flag(flag: &str, v: Option<&str>) -> Result<i64, FlagError> {
    let Some(v) = v else { return Ok(0) };
    let ns = parse_go_duration(v).ok_or_else(|| {
        FlagError(format!(
            "invalid argument \"{v}\" for \"{flag}\" flag: {}",
            duration_error(v)
        ))
    })?;
    let ns = i64::try_from(ns).map_err(|_| {
        FlagError(format!(
            "invalid argument \"{v}\" for \"{flag}\" flag: time: invalid duration {}",
            go_quote(v)
        ))
    })?;
    Ok(ns)
}

/// `Config.Healthcheck` from the flags: `None` when none is given (the image's applies).
pub fn healthcheck(o: &ContainerOpts) -> Result<Option<HealthConfig>, FlagError> {
    let interval = duration_flag("--health-interval", o.health_interval.as_deref())?;
    let timeout = duration_flag("--health-timeout", o.health_timeout.as_deref())?;
    let start_period = duration_flag("--health-start-period", o.health_start_period.as_deref())?;
    let start_interval = duration_flag(
        "--health-start-interval",
        o.health_start_interval.as_deref(),
    )?;
    let retries = o.health_retries.unwrap_or(0);
    let cmd = o.health_cmd.as_deref().unwrap_or("");
    let any = !cmd.is_empty()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if o.no_healthcheck {
        if any {
            return Err(FlagError(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    for (value, flag) in [
        (interval, "--health-interval"),
        (timeout, "--health-timeout"),
        (retries, "--health-retries"),
        (start_period, "--health-start-period"),
        (start_interval, "--health-start-interval"),
    ] {
        if value < 0 {
            return Err(FlagError(format!("{flag} cannot be negative")));
        }
    }
    Ok(Some(HealthConfig {
        test: if cmd.is_empty() {
            Vec::new()
        } else {
            vec!["CMD-SHELL".into(), cmd.into()]
        },
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut ContainerOpts)) -> ContainerOpts {
        let mut o = ContainerOpts::default();
        f(&mut o);
        o
    }

    #[test]
    fn flags_build_dockers_healthcheck() {
        assert_eq!(healthcheck(&ContainerOpts::default()).unwrap(), None);
        let h = healthcheck(&opts(|o| {
            o.health_cmd = Some("curl -f http://x/".into());
            o.health_interval = Some("1s".into());
            o.health_retries = Some(2);
            o.health_start_period = Some("1m30s".into());
        }))
        .unwrap()
        .unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/"]);
        assert_eq!(
            (h.interval, h.retries, h.start_period),
            (1_000_000_000, 2, 90_000_000_000)
        );
        // Timings alone keep the image's command.
        let h = healthcheck(&opts(|o| o.health_timeout = Some("500ms".into())))
            .unwrap()
            .unwrap();
        assert!(h.test.is_empty());
        assert_eq!(h.timeout, 500_000_000);
        let none = healthcheck(&opts(|o| o.no_healthcheck = true))
            .unwrap()
            .unwrap();
        assert_eq!(none.test, vec!["NONE"]);
    }

    #[test]
    fn errors_use_dockers_words() {
        let err = |f: fn(&mut ContainerOpts)| healthcheck(&opts(f)).unwrap_err().0;
        assert_eq!(
            err(|o| o.health_interval = Some("-1s".into())),
            "--health-interval cannot be negative"
        );
        assert_eq!(
            err(|o| o.health_retries = Some(-1)),
            "--health-retries cannot be negative"
        );
        assert_eq!(
            err(|o| o.health_start_period = Some("-1s".into())),
            "--health-start-period cannot be negative"
        );
        assert_eq!(
            err(|o| {
                o.no_healthcheck = true;
                o.health_cmd = Some("x".into());
            }),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(
            err(|o| o.health_interval = Some("1x".into())),
            "invalid argument \"1x\" for \"--health-interval\" flag: time: unknown unit \"x\" in duration \"1x\""
        );
        assert_eq!(
            err(|o| o.health_timeout = Some("5".into())),
            "invalid argument \"5\" for \"--health-timeout\" flag: time: missing unit in duration \"5\""
        );
        assert_eq!(
            err(|o| o.health_timeout = Some("abc".into())),
            "invalid argument \"abc\" for \"--health-timeout\" flag: time: invalid duration \"abc\""
        );
    }
}
