//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` Docker writes per container.

use std::net::Ipv4Addr;

/// Docker's `/etc/hosts`: the localhost lines, then `ip hostname` (when the container has
/// an address), then `extra` (`ip name [aliases…]`, for `--link` and `--add-host`).
pub fn hosts(hostname: &str, ip: Option<Ipv4Addr>, extra: &[(String, String)]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (addr, names) in extra {
        out.push_str(&format!("{addr}\t{names}\n"));
    }
    if let Some(ip) = ip {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// `/etc/hostname`: the name and a newline.
pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// The container's `resolv.conf` from the host's: nameservers on loopback (a local stub
/// resolver the container cannot reach) are dropped; with none left, Docker's defaults
/// (Google's public resolvers) are used. `search`/`options` lines are kept.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("nameserver") {
            let addr = rest.trim();
            if addr.starts_with("127.") || addr == "::1" || addr.is_empty() {
                continue;
            }
            servers += 1;
        }
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The `resolv.conf` of a container on a user network: the embedded DNS server as the
/// only nameserver, the host's `search`/`options` lines kept.
pub fn resolv_conf_with(host: &str, server: Ipv4Addr) -> String {
    let mut out = format!("nameserver {server}\n");
    for line in host.lines().map(str::trim) {
        if line.starts_with("search") || line.starts_with("options") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_docker() {
        let h = hosts(
            "abc123",
            Some(Ipv4Addr::new(172, 17, 0, 2)),
            &[("172.17.0.3".into(), "web web-alias".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(
            h.ends_with("172.17.0.3\tweb web-alias\n172.17.0.2\tabc123\n"),
            "{h}"
        );
        assert!(!hosts("abc123", None, &[]).contains("abc123"));
    }

    #[test]
    fn resolv_drops_loopback_servers() {
        let r =
            resolv_conf("# comment\nnameserver 127.0.0.53\noptions edns0\nsearch example.com\n");
        assert_eq!(
            r,
            "options edns0\nsearch example.com\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let r = resolv_conf("nameserver 10.0.0.1\nnameserver ::1\n");
        assert_eq!(r, "nameserver 10.0.0.1\n");
        assert_eq!(hostname("x"), "x\n");
        assert_eq!(
            resolv_conf_with(
                "nameserver 1.2.3.4\nsearch a.b\n",
                Ipv4Addr::new(10, 9, 0, 1)
            ),
            "nameserver 10.9.0.1\nsearch a.b\n"
        );
    }
}
