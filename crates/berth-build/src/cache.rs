//! The cache key of a step (moby `image/cache/compare.go`): a cached image is a child of
//! the same parent whose container config matches the step's, field by field, where the
//! Cmd carries the instruction (`#(nop) …`, the RUN command with its build args) and,
//! for COPY/ADD, the checksum of the files brought in.

use berth_api::ContainerConfig;

/// moby `compare`: true when two step configs are the same for the cache.
pub fn compare(a: &ContainerConfig, b: &ContainerConfig) -> bool {
    a.open_stdin == b.open_stdin
        && a.attach_stdin == b.attach_stdin
        && a.attach_stdout == b.attach_stdout
        && a.attach_stderr == b.attach_stderr
        && a.user == b.user
        && a.working_dir == b.working_dir
        && a.tty == b.tty
        && a.env == b.env
        && a.labels == b.labels
        && a.exposed_ports.clone().unwrap_or_default()
            == b.exposed_ports.clone().unwrap_or_default()
        && a.cmd.clone().unwrap_or_default() == b.cmd.clone().unwrap_or_default()
        && a.entrypoint.clone().unwrap_or_default() == b.entrypoint.clone().unwrap_or_default()
        && a.volumes.clone().unwrap_or_default() == b.volumes.clone().unwrap_or_default()
        && a.shell == b.shell
        && a.on_build == b.on_build
        && a.healthcheck == b.healthcheck
        && a.stop_signal == b.stop_signal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_env_and_labels_count() {
        let a = ContainerConfig {
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "#(nop) ".into(),
                "ENV a=1".into(),
            ]),
            env: vec!["a=1".into()],
            ..Default::default()
        };
        let mut b = a.clone();
        assert!(compare(&a, &b));
        b.hostname = "other".into();
        b.image = "sha256:x".into();
        assert!(compare(&a, &b), "hostname and image do not count");
        b.env.push("b=2".into());
        assert!(!compare(&a, &b));
        let mut c = a.clone();
        c.cmd = Some(vec!["true".into()]);
        assert!(!compare(&a, &c));
    }
}
