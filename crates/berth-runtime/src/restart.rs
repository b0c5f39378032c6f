//! Restart policies (`--restart`) and Docker's restart manager: which exits restart the
//! container and after how long (moby `restartmanager`). Pure logic, used by the shim
//! (which restarts containers itself, even while the daemon is down) and by the daemon
//! (which starts containers at its own start-up).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The first backoff delay; it doubles with each restart up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A container that ran at least this long restarts with the first delay again.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// A restart policy as the shim applies it (`HostConfig.RestartPolicy`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RestartPolicy {
    /// `no` (or empty), `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// With `on-failure`: the most restarts; 0 means no limit.
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    pub fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }

    /// Docker's checks of `HostConfig.RestartPolicy`, with its words.
    pub fn validate(&self) -> Result<(), String> {
        match self.name.as_str() {
            "always" | "unless-stopped" | "no" => {
                if self.maximum_retry_count != 0 {
                    return Err(format!(
                        "maximum retry count cannot be used with restart policy '{}'",
                        self.name
                    ));
                }
            }
            "on-failure" => {
                if self.maximum_retry_count < 0 {
                    return Err("maximum retry count cannot be negative".into());
                }
            }
            "" => {}
            other => return Err(format!("invalid restart policy '{other}'")),
        }
        Ok(())
    }

    /// Whether a container that is not running should be started when the daemon
    /// starts (moby `Container.ShouldRestart` at restore): `always`; `unless-stopped`
    /// unless the user stopped it; `on-failure` after a failure, below the limit.
    pub fn start_at_boot(
        &self,
        exit_code: i64,
        manually_stopped: bool,
        restart_count: i64,
    ) -> bool {
        let mut m = RestartManager::new(self.clone(), restart_count);
        m.should_restart(exit_code, manually_stopped, Duration::ZERO)
            .is_some()
    }
}

/// Docker's restart manager: the policy, the restarts so far and the backoff.
#[derive(Debug, Clone)]
pub struct RestartManager {
    pub policy: RestartPolicy,
    /// Restarts so far (`RestartCount`).
    pub count: i64,
    delay: Duration,
    cancelled: bool,
}

impl RestartManager {
    pub fn new(policy: RestartPolicy, count: i64) -> Self {
        RestartManager {
            policy,
            count,
            delay: Duration::ZERO,
            cancelled: false,
        }
    }

    /// No restart any more until the next start by the user (`stop`, `kill`).
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Decides after an exit: `Some(delay)` to restart after `delay` (the restart is
    /// counted), `None` to stay stopped. `ran_for` is how long the process ran.
    pub fn should_restart(
        &mut self,
        exit_code: i64,
        manually_stopped: bool,
        ran_for: Duration,
    ) -> Option<Duration> {
        if self.policy.is_none() || self.cancelled {
            return None;
        }
        if ran_for >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        let p = &self.policy;
        let restart = match p.name.as_str() {
            "always" => true,
            "unless-stopped" => !manually_stopped,
            "on-failure" => {
                let max = p.maximum_retry_count;
                (max == 0 || self.count < max) && exit_code != 0
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        self.count += 1;
        Some(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn validation_uses_dockers_words() {
        assert_eq!(
            policy("always", 2).validate().unwrap_err(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(
            policy("no", 1).validate().unwrap_err(),
            "maximum retry count cannot be used with restart policy 'no'"
        );
        assert_eq!(
            policy("on-failure", -1).validate().unwrap_err(),
            "maximum retry count cannot be negative"
        );
        assert_eq!(
            policy("bogus", 0).validate().unwrap_err(),
            "invalid restart policy 'bogus'"
        );
        // An empty name is "no", whatever the count (as dockerd accepts it).
        assert!(policy("", 2).validate().is_ok());
        assert!(policy("on-failure", 3).validate().is_ok());
        assert!(policy("unless-stopped", 0).validate().is_ok());
    }

    #[test]
    fn backoff_doubles_and_resets_after_ten_seconds() {
        let mut m = RestartManager::new(policy("always", 0), 0);
        let short = Duration::from_millis(5);
        let delays: Vec<_> = (0..4)
            .map(|_| m.should_restart(0, false, short).unwrap())
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(Duration::from_millis).to_vec()
        );
        assert_eq!(m.count, 4);
        assert_eq!(
            m.should_restart(1, false, Duration::from_secs(10)),
            Some(FIRST_DELAY)
        );
        for _ in 0..20 {
            m.should_restart(1, false, short);
        }
        assert_eq!(m.should_restart(1, false, short), Some(MAX_DELAY));
    }

    #[test]
    fn on_failure_counts_only_failures_up_to_the_limit() {
        let mut m = RestartManager::new(policy("on-failure", 2), 0);
        let t = Duration::ZERO;
        assert_eq!(m.should_restart(0, false, t), None);
        assert!(m.should_restart(3, false, t).is_some());
        assert!(m.should_restart(3, false, t).is_some());
        assert_eq!(m.should_restart(3, false, t), None);
        assert_eq!(m.count, 2);
        // 0 = no limit
        let mut m = RestartManager::new(policy("on-failure", 0), 50);
        assert!(m.should_restart(1, false, t).is_some());
        assert_eq!(m.count, 51);
    }

    #[test]
    fn manual_stops_and_cancel() {
        let t = Duration::ZERO;
        let mut m = RestartManager::new(policy("unless-stopped", 0), 0);
        assert_eq!(m.should_restart(0, true, t), None);
        assert!(m.should_restart(0, false, t).is_some());
        // `always` ignores the manual stop flag; only a cancel stops it.
        let mut m = RestartManager::new(policy("always", 0), 0);
        assert!(m.should_restart(0, true, t).is_some());
        m.cancel();
        assert_eq!(m.should_restart(0, true, t), None);
        let mut m = RestartManager::new(policy("no", 0), 0);
        assert_eq!(m.should_restart(1, false, t), None);
        assert_eq!(m.count, 0);
    }

    #[test]
    fn boot_decision() {
        assert!(policy("always", 0).start_at_boot(0, true, 0));
        assert!(policy("unless-stopped", 0).start_at_boot(0, false, 0));
        assert!(!policy("unless-stopped", 0).start_at_boot(137, true, 0));
        assert!(policy("on-failure", 3).start_at_boot(1, false, 2));
        assert!(!policy("on-failure", 3).start_at_boot(1, false, 3));
        assert!(!policy("on-failure", 0).start_at_boot(0, false, 0));
        assert!(!policy("no", 0).start_at_boot(1, false, 0));
    }
}
