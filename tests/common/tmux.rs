//! A tmux server of a test's own, for driving the CLI through a real terminal.

use std::process::Command;
use std::time::Duration;

use super::wait_until;

/// A tmux server of this test's own (`-L`), killed on drop; `None` where tmux is missing.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new(tag: &str) -> Option<Tmux> {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmux {
            socket: format!("berth-e2e-{tag}-{}", std::process::id()),
        })
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `shell_cmd` in a new window named `name`, 120x40.
    pub fn start(&self, name: &str, shell_cmd: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &format!("{shell_cmd}; echo EXIT=$?; sleep 60"),
        ]);
    }

    pub fn screen(&self, name: &str) -> String {
        self.cmd(&["capture-pane", "-p", "-t", name])
    }

    pub fn wait_for(&self, name: &str, text: &str) -> String {
        let mut last = String::new();
        let found = wait_until(Duration::from_secs(20), || {
            last = self.screen(name);
            last.contains(text)
        });
        assert!(found, "`{text}` never showed in {name}:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}
