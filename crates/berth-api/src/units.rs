//! Docker's human-readable units (go-units), shared by the daemon (`ps` status strings)
//! and the CLI (`CREATED` columns).

use chrono::TimeDelta;

/// go-units `HumanDuration`: `Less than a second`, `3 seconds`, `About a minute`, …
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour here (half away from zero).
    let hours = (d.num_milliseconds() + 1_800_000) / 3_600_000;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_go_units() {
        assert_eq!(human_duration(TimeDelta::milliseconds(300)), "Less than a second");
        assert_eq!(human_duration(TimeDelta::seconds(1)), "1 second");
        assert_eq!(human_duration(TimeDelta::seconds(3)), "3 seconds");
        assert_eq!(human_duration(TimeDelta::seconds(59)), "59 seconds");
        assert_eq!(human_duration(TimeDelta::seconds(60)), "About a minute");
        assert_eq!(human_duration(TimeDelta::seconds(119)), "About a minute");
        assert_eq!(human_duration(TimeDelta::seconds(120)), "2 minutes");
        assert_eq!(human_duration(TimeDelta::minutes(59)), "59 minutes");
        assert_eq!(human_duration(TimeDelta::minutes(60)), "About an hour");
        assert_eq!(human_duration(TimeDelta::minutes(89)), "About an hour");
        assert_eq!(human_duration(TimeDelta::minutes(90)), "2 hours");
        assert_eq!(human_duration(TimeDelta::hours(47)), "47 hours");
        assert_eq!(human_duration(TimeDelta::hours(48)), "2 days");
        assert_eq!(human_duration(TimeDelta::days(14)), "2 weeks");
        assert_eq!(human_duration(TimeDelta::days(60)), "2 months");
        assert_eq!(human_duration(TimeDelta::days(800)), "2 years");
    }
}
