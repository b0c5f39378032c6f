//! Detaching from `run -it`, `start -ai`, `attach` and `exec -it` with the detach keys
//! (`--detach-keys`, else the config's `detachKeys`, else ctrl-p ctrl-q), watched on the
//! client side as the Docker CLI does, so the session ends even when the daemon keeps the
//! connection open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The Docker CLI's default: ctrl-p ctrl-q.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

static KEYS: Mutex<Option<Vec<u8>>> = Mutex::new(None);
static DETACHED: AtomicBool = AtomicBool::new(false);
static SPEC: Mutex<Option<String>> = Mutex::new(None);

/// The spec given by flag or config, to pass on to the daemon (`detachKeys`).
pub fn spec() -> Option<String> {
    SPEC.lock().ok().and_then(|s| s.clone())
}

/// Parses Docker's detach key spec (`ctrl-p,ctrl-q`, `a,ctrl-x`).
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    let invalid = || format!("Invalid detach keys ({keys}) provided");
    let mut out = Vec::new();
    for key in keys.split(',').map(str::trim) {
        if let Some(c) = key.strip_prefix("ctrl-") {
            out.push(match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(invalid()),
            });
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(invalid());
        }
    }
    Ok(out)
}

/// Picks the keys for this command: the flag, else the config's `detachKeys`. Returns the
/// spec to send to the daemon (`detachKeys=`), if any.
pub fn configure(flag: Option<&str>) -> Result<Option<String>, String> {
    let spec = flag
        .map(str::to_string)
        .or_else(|| crate::registry::load_config().string_field("detachKeys"));
    let keys = match &spec {
        Some(s) => parse(s)?,
        None => DEFAULT_KEYS.to_vec(),
    };
    if let Ok(mut k) = KEYS.lock() {
        *k = Some(keys);
    }
    if let Ok(mut s) = SPEC.lock() {
        s.clone_from(&spec);
    }
    Ok(spec)
}

fn keys() -> Vec<u8> {
    KEYS.lock()
        .ok()
        .and_then(|k| k.clone())
        .unwrap_or_else(|| DEFAULT_KEYS.to_vec())
}

/// Whether the last session ended because the user typed the detach keys.
pub fn detached() -> bool {
    DETACHED.load(Ordering::SeqCst)
}

pub(crate) fn mark_detached() {
    DETACHED.store(true, Ordering::SeqCst);
}

/// Holds back bytes that may start the sequence; `Some(bytes to send)` or `None` once
/// the sequence is complete.
#[derive(Debug)]
pub struct Escape {
    keys: Vec<u8>,
    held: usize,
}

impl Escape {
    pub fn new() -> Escape {
        Escape {
            keys: keys(),
            held: 0,
        }
    }

    pub fn with_keys(keys: Vec<u8>) -> Escape {
        Escape { keys, held: 0 }
    }

    /// Filters one read; `None` means detach.
    pub fn push(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        if self.keys.is_empty() {
            return Some(input.to_vec());
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return None;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return None;
                }
            } else {
                out.push(b);
            }
        }
        Some(out)
    }
}

impl Default for Escape {
    fn default() -> Self {
        Escape::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_as_docker() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert_eq!(
            parse("ctrl-pp").unwrap_err(),
            "Invalid detach keys (ctrl-pp) provided"
        );
    }

    #[test]
    fn sequence_is_held_back_and_detaches() {
        let mut e = Escape::with_keys(vec![0x10, 0x11]);
        assert_eq!(e.push(b"ab\x10"), Some(b"ab".to_vec()));
        assert_eq!(e.push(b"x"), Some(b"\x10x".to_vec()));
        assert_eq!(e.push(b"\x10"), Some(vec![]));
        assert_eq!(e.push(b"\x11"), None);
        let mut e = Escape::with_keys(vec![0x10, 0x11]);
        assert_eq!(e.push(b"\x10\x10\x11"), None);
    }
}
