//! The shim's answers to control-socket requests: start, attach, wait, watch,
//! update, signal, resize and reopen-log.

use super::*;

impl Shim {
    pub(super) fn handle(&mut self, i: usize, req: Request, rest: Vec<u8>) {
        match req {
            Request::Start => {
                let reply = self.start();
                self.answer(i, &reply);
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let stdin = stdin && self.stdin.is_some();
                self.clients[i].state = ClientState::Attach {
                    stdin,
                    stdout,
                    stderr,
                    stdin_done: !stdin,
                };
                if !rest.is_empty() {
                    self.client_data(i, &rest);
                }
            }
            Request::Wait => self.clients[i].state = ClientState::Wait,
            Request::Watch => {
                self.clients[i].state = ClientState::Watch;
                let mut line = serde_json::to_vec(&self.event("state", self.init_pid <= 0))
                    .unwrap_or_default();
                line.push(b'\n');
                self.clients[i].outbuf.extend_from_slice(&line);
                self.flush_client(i);
            }
            Request::Update { restart } => {
                self.restart.policy = restart;
                self.answer(
                    i,
                    &Reply {
                        ok: true,
                        error: String::new(),
                    },
                );
            }
            Request::Signal {
                signal,
                manual,
                cancel_restart,
            } => {
                self.manual |= manual;
                if cancel_restart {
                    self.restart.cancel();
                }
                if self.init_pid <= 0 {
                    // Waiting to restart: no process to signal (Docker answers success).
                    self.answer(
                        i,
                        &Reply {
                            ok: true,
                            error: String::new(),
                        },
                    );
                    return;
                }
                // SAFETY: kill takes two integers; any signal number (real-time ones too,
                // which nix's Signal cannot name) is checked by the kernel.
                let r = unsafe { libc::kill(self.init_pid, signal) };
                let reply = if r == 0 {
                    Reply {
                        ok: true,
                        error: String::new(),
                    }
                } else {
                    Reply {
                        ok: false,
                        error: format!("cannot kill container: {}", Errno::last().desc()),
                    }
                };
                self.answer(i, &reply);
            }
            Request::Resize { height, width } => {
                let reply = self.resize(height, width);
                self.answer(i, &reply);
            }
            Request::ReopenLog => {
                let reply = match self.log.as_mut().map(|w| w.reopen()) {
                    None => Reply {
                        ok: false,
                        error: "the container has no log file".into(),
                    },
                    Some(Err(e)) => Reply {
                        ok: false,
                        error: format!("reopening {}: {e}", self.spec.log_path.display()),
                    },
                    Some(Ok(())) => Reply {
                        ok: true,
                        error: String::new(),
                    },
                };
                self.answer(i, &reply);
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) -> Reply {
        let (true, Some(master)) = (
            self.spec.process.tty,
            self.out.as_ref().or(self.stdin.as_ref()),
        ) else {
            return Reply {
                ok: false,
                error: "the container has no TTY".into(),
            };
        };
        if let Err(e) = crate::pty::set_size(master.as_raw_fd(), rows, cols) {
            return Reply {
                ok: false,
                error: e.to_string(),
            };
        }
        Reply {
            ok: true,
            error: String::new(),
        }
    }

    /// Releases the init; waits until its exec succeeded or failed.
    pub(super) fn start(&mut self) -> StartReply {
        if self.started {
            return StartReply {
                error: "container already started".into(),
                exit_code: 0,
            };
        }
        self.started = true;
        let Some(go) = self.go.take() else {
            return StartReply {
                error: "container init is gone".into(),
                exit_code: 0,
            };
        };
        // The container runs at the daemon's priority, and so does the shim from now
        // on (its restarts, logs and attaches); only its set-up ran below it.
        if let Some(nice) = self.nice.take() {
            if let Err(e) = set_nice(self.init_pid, nice) {
                return StartReply {
                    error: format!("setting the container's priority: {e}"),
                    exit_code: 0,
                };
            }
            if let Err(e) = set_nice(0, nice) {
                log(&format!("setting the shim's priority: {e}"));
            }
        }
        if write_fd(go.as_raw_fd(), b"s").is_err() {
            return StartReply {
                error: "container init exited before start".into(),
                exit_code: 0,
            };
        }
        drop(go);
        self.started_at = jsonlog::format_time(chrono::Utc::now());
        self.run_started = Instant::now();
        let Some(status) = self.status.take() else {
            return StartReply::default();
        };
        match read_status_line(status.as_raw_fd()) {
            None => StartReply::default(),
            Some(line) => {
                let mut parts = line.splitn(3, ' ');
                let (kind, code, msg) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
                let (exit_code, error) = match (kind, code.and_then(|c| c.parse::<i64>().ok())) {
                    (Some("exec"), Some(code)) => (code, msg.to_string()),
                    _ => (0, line.strip_prefix("error ").unwrap_or(&line).to_string()),
                };
                self.start_error = error.clone();
                self.start_exit_code = exit_code;
                StartReply { error, exit_code }
            }
        }
    }
}
