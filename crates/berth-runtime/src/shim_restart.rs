//! The shim's run loop with the restart policy: after an exit, Docker's restart manager
//! decides; the shim tells `watch` clients (`exit` with `restarting`, then `start`),
//! waits the backoff while still serving its socket, and runs the container again.

use super::*;

impl Shim {
    /// The event loop; returns when the container has exited for good (no restart) and
    /// everything is told.
    pub(super) fn run(&mut self) {
        log(&format!(
            "container {} init pid {}",
            self.spec.id, self.init_pid
        ));
        loop {
            let status = loop {
                if let Some(s) = self.serve(None) {
                    break s;
                }
            };
            let exit = self.collect_exit(status);
            let ran_for = self.run_started.elapsed();
            // A start that failed (command not found) is not restarted, as in Docker.
            let delay = if exit.error.is_empty() {
                self.restart
                    .should_restart(exit.exit_code, self.manual, ran_for)
            } else {
                None
            };
            let Some(delay) = delay else {
                self.finish(exit);
                return;
            };
            log(&format!(
                "restarting the container in {delay:?} (restart {})",
                self.restart.count
            ));
            self.last_exit = Some(exit.clone());
            self.close_run_clients();
            self.broadcast("exit", true);
            let until = Instant::now() + delay;
            while Instant::now() < until && !self.restart.is_cancelled() {
                self.serve(Some(until));
            }
            if self.restart.is_cancelled() {
                self.finish(exit);
                return;
            }
            if let Err((error, code)) = self.respawn() {
                log(&format!("restarting the container: {error}"));
                let mut exit = exit;
                exit.error = error;
                exit.exit_code = code;
                exit.finished_at = jsonlog::format_time(chrono::Utc::now());
                self.finish(exit);
                return;
            }
            self.broadcast("start", false);
        }
    }

    /// The state as `watch` clients see it.
    pub(super) fn event(&self, kind: &str, restarting: bool) -> ShimEvent {
        ShimEvent {
            kind: kind.into(),
            running: self.init_pid > 0 && self.started,
            restarting,
            pid: if self.init_pid > 0 {
                self.init_pid as i64
            } else {
                0
            },
            started_at: self.started_at.clone(),
            restart_count: self.restart.count,
            exit: self.last_exit.clone(),
        }
    }

    /// Sends a [`ShimEvent`] to every `watch` client.
    fn broadcast(&mut self, kind: &str, restarting: bool) {
        let mut line = serde_json::to_vec(&self.event(kind, restarting)).unwrap_or_default();
        line.push(b'\n');
        for i in 0..self.clients.len() {
            if matches!(self.clients[i].state, ClientState::Watch) {
                self.clients[i].outbuf.extend_from_slice(&line);
                self.flush_client(i);
            }
        }
    }

    /// At an exit followed by a restart: attach clients end (as with Docker, an attach
    /// lasts one run); `wait` and `watch` clients stay.
    fn close_run_clients(&mut self) {
        for c in &mut self.clients {
            if matches!(c.state, ClientState::Attach { .. }) {
                let _ = c.stream.set_nonblocking(false);
                let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = c.stream.write_all(&c.outbuf);
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                c.dead = true;
            }
        }
        self.clients.retain(|c| !c.dead);
    }

    /// A restart by the policy: a new run, started at once. Err((message, exit code))
    /// when it could not be set up or its process could not start.
    fn respawn(&mut self) -> std::result::Result<(), (String, i64)> {
        // `update` may have changed the limits since the first run.
        if let Ok(spec) = read_spec(&self.state_dir) {
            self.spec.resources = spec.resources;
        }
        let (run, mut cleanup) =
            spawn_run(&self.spec, &self.state_dir).map_err(|e| (e.to_string(), 128))?;
        if let Err(e) = write_atomic(
            &self.state_dir.join(INIT_PID_FILE),
            run.init_pid.to_string().as_bytes(),
        ) {
            return Err((e.to_string(), 128));
        }
        cleanup.disarm();
        self.cgroups = run.cgroups;
        self.init_pid = run.init_pid;
        self.pidfd = run.pidfd;
        self.out = run.out;
        self.err = run.err;
        self.stdin = run.stdin;
        self.go = Some(run.go);
        self.status = Some(run.status);
        self.started = false;
        self.start_error.clear();
        self.start_exit_code = 0;
        log(&format!("container restarted, init pid {}", self.init_pid));
        let reply = self.start();
        if reply.error.is_empty() {
            Ok(())
        } else {
            // The init exits after a failed exec; reap it.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.init_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let mut st = 0;
            // SAFETY: `st` is a valid int for the kernel to write.
            unsafe { libc::waitpid(self.init_pid, &mut st, 0) };
            let _ = cgroup::remove(&self.cgroups);
            self.init_pid = 0;
            self.pidfd = None;
            self.out = None;
            self.err = None;
            self.stdin = None;
            let code = if reply.exit_code > 0 {
                reply.exit_code
            } else {
                128
            };
            Err((reply.error, code))
        }
    }
}
