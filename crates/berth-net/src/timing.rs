//! Step timings for the start and stop paths: a [`Step`] logs how long it lived at debug
//! level under the target `berth::timing` (`BERTH_LOG=berth::timing=debug`), so where a
//! `run --rm` spends its time can be read from a running daemon's log.

use std::time::Instant;

/// Logs `name` and the microseconds since [`Step::new`] when dropped.
pub struct Step {
    name: &'static str,
    started: Instant,
}

impl Step {
    pub fn new(name: &'static str) -> Self {
        Step {
            name,
            started: Instant::now(),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        tracing::debug!(
            target: "berth::timing",
            step = self.name,
            micros = self.started.elapsed().as_micros() as u64
        );
    }
}
