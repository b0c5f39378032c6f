//! The shim's clients of its control socket: accepting them, reading their requests
//! and attach stdin, and sending them the container's output and the answers.

use super::*;

/// A client's buffered output is dropped beyond this (a client that stopped reading).
const MAX_CLIENT_BUFFER: usize = 16 << 20;

impl Shim {
    pub(super) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(true);
                    set_cloexec(stream.as_raw_fd());
                    self.clients.push(Client {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        state: ClientState::Request,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log(&format!("accept: {e}"));
                    return;
                }
            }
        }
    }

    /// Reads what the container wrote; logs it and sends it to attach clients.
    /// Returns false at EOF.
    pub(super) fn pump_output(&mut self, stream: Stream) -> bool {
        let slot = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let Some(fd) = slot.as_ref().map(|f| f.as_raw_fd()) else {
            return false;
        };
        let mut buf = vec![0u8; 32 * 1024];
        match read_fd(fd, &mut buf) {
            Ok(0) => {
                *slot = None;
                self.end_log_stream(stream);
                false
            }
            Ok(n) => {
                self.emit(stream, &buf[..n]);
                true
            }
            Err(Errno::EAGAIN) => true,
            Err(e) => {
                log(&format!("reading container {}: {e}", stream.name()));
                *slot = None;
                self.end_log_stream(stream);
                false
            }
        }
    }

    fn emit(&mut self, stream: Stream, data: &[u8]) {
        if let Some(writer) = self.log.as_mut() {
            if let Err(e) = writer.write(stream, data) {
                log(&format!("writing {}: {e}", self.spec.log_path.display()));
            }
        }
        let frame = jsonlog::frame(stream, data);
        for c in &mut self.clients {
            if let ClientState::Attach { stdout, stderr, .. } = c.state {
                let wanted = match stream {
                    Stream::Stdout => stdout,
                    Stream::Stderr => stderr,
                };
                if wanted {
                    c.outbuf.extend_from_slice(&frame);
                    if c.outbuf.len() > MAX_CLIENT_BUFFER {
                        log("dropping an attach client that stopped reading");
                        c.dead = true;
                    }
                }
            }
        }
        for i in 0..self.clients.len() {
            self.flush_client(i);
        }
    }

    /// A stream ended: the log gets what is left of an unfinished line.
    pub(super) fn end_log_stream(&mut self, stream: Stream) {
        if let Some(writer) = self.log.as_mut() {
            if let Err(e) = writer.close_stream(stream) {
                log(&format!("writing {}: {e}", self.spec.log_path.display()));
            }
        }
    }

    pub(super) fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.outbuf.is_empty() && !c.dead {
            match c.stream.write(&c.outbuf) {
                Ok(0) => c.dead = true,
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => c.dead = true,
            }
        }
        if c.outbuf.is_empty() && matches!(c.state, ClientState::Closing) {
            c.dead = true;
        }
    }

    pub(super) fn flush_stdin(&mut self) {
        let Some(fd) = self.stdin.as_ref().map(|f| f.as_raw_fd()) else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match write_fd(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    fn close_stdin_if_once(&mut self) {
        if self.spec.process.stdin_once && !self.spec.process.tty {
            self.flush_stdin();
            // Remaining buffered bytes are given up: the client is gone.
            self.stdin_buf.clear();
            self.stdin = None;
        }
    }

    /// Reads what client `i` sent. `hung_up`: poll said the peer is gone (POLLHUP or
    /// POLLERR), which poll keeps reporting whatever the events asked, so at EOF the
    /// client is dropped (an attach client that only half-closed its side gets no
    /// POLLHUP and keeps receiving output).
    pub(super) fn read_client(&mut self, i: usize, hung_up: bool) {
        let mut buf = vec![0u8; 32 * 1024];
        let r = self.clients[i].stream.read(&mut buf);
        if hung_up && matches!(r, Ok(0)) {
            self.clients[i].dead = true;
        }
        match r {
            Ok(0) => {
                let c = &mut self.clients[i];
                match c.state {
                    ClientState::Attach {
                        stdin: true,
                        stdin_done: false,
                        ..
                    } => {
                        if let ClientState::Attach { stdin_done, .. } = &mut c.state {
                            *stdin_done = true;
                        }
                        self.close_stdin_if_once();
                    }
                    ClientState::Attach { .. } => {
                        if let ClientState::Attach { stdin_done, .. } = &mut c.state {
                            *stdin_done = true;
                        }
                    }
                    _ => c.dead = true,
                }
            }
            Ok(n) => self.client_data(i, &buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                let was_stdin = matches!(
                    self.clients[i].state,
                    ClientState::Attach {
                        stdin: true,
                        stdin_done: false,
                        ..
                    }
                );
                self.clients[i].dead = true;
                if was_stdin {
                    self.close_stdin_if_once();
                }
            }
        }
    }

    pub(super) fn client_data(&mut self, i: usize, data: &[u8]) {
        match self.clients[i].state {
            ClientState::Attach { stdin, .. } => {
                if stdin && self.stdin.is_some() {
                    self.stdin_buf.extend_from_slice(data);
                    self.flush_stdin();
                }
            }
            ClientState::Request => {
                self.clients[i].inbuf.extend_from_slice(data);
                let Some(pos) = self.clients[i].inbuf.iter().position(|b| *b == b'\n') else {
                    if self.clients[i].inbuf.len() > 64 * 1024 {
                        self.clients[i].dead = true;
                    }
                    return;
                };
                let rest = self.clients[i].inbuf.split_off(pos + 1);
                let line = std::mem::take(&mut self.clients[i].inbuf);
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => self.handle(i, req, rest),
                    Err(e) => self.answer(
                        i,
                        &Reply {
                            ok: false,
                            error: format!("bad request: {e}"),
                        },
                    ),
                }
            }
            // Anything else sent on a wait connection is ignored.
            ClientState::Wait | ClientState::Watch | ClientState::Closing => {}
        }
    }

    pub(super) fn answer<T: serde::Serialize>(&mut self, i: usize, reply: &T) {
        let c = &mut self.clients[i];
        if let Ok(mut line) = serde_json::to_vec(reply) {
            line.push(b'\n');
            c.outbuf.extend_from_slice(&line);
        }
        c.state = ClientState::Closing;
        self.flush_client(i);
    }
}
