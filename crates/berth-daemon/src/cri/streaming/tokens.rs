//! The requests behind the streaming URLs: Exec, Attach and PortForward store their
//! validated request under a random single-use token; the URL carries the token. A
//! token not used within [`TOKEN_TTL`] is gone (the kubelet's cache keeps them a minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::session::{AttachTarget, ExecTarget};

pub const TOKEN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Pending {
    Exec(ExecTarget),
    Attach(AttachTarget),
    PortForward { sandbox_id: String },
}

#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, (Instant, Pending)>>,
}

impl Tokens {
    /// Stores `p`; returns its token.
    pub fn insert(&self, p: Pending) -> String {
        let token = hex::encode(rand::random::<[u8; 16]>());
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (at, _)| now.duration_since(*at) < TOKEN_TTL);
        m.insert(token.clone(), (now, p));
        token
    }

    /// Takes the request of `token` (once), if it has not expired.
    pub fn take(&self, token: &str) -> Option<Pending> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (at, p) = m.remove(token)?;
        (at.elapsed() < TOKEN_TTL).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use() {
        let t = Tokens::default();
        let a = t.insert(Pending::PortForward {
            sandbox_id: "p".into(),
        });
        let b = t.insert(Pending::PortForward {
            sandbox_id: "q".into(),
        });
        assert_ne!(a, b);
        assert!(
            matches!(t.take(&a), Some(Pending::PortForward { sandbox_id }) if sandbox_id == "p")
        );
        assert!(t.take(&a).is_none());
        assert!(t.take("nope").is_none());
    }
}
