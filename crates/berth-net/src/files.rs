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
    let mut options: Vec<&str> = Vec::new();
    for line in host.lines().map(str::trim) {
        if line.starts_with("search") {
            out.push_str(line);
            out.push('\n');
        } else if let Some(o) = line.strip_prefix("options") {
            options.extend(o.split_whitespace());
        }
    }
    // libnetwork's embedded-DNS file: `ndots:0` unless the host set ndots
    if !options.iter().any(|o| o.starts_with("ndots:")) {
        options.push("ndots:0");
    }
    out.push_str(&format!("options {}\n", options.join(" ")));
    out
}

/// The container's own DNS settings (`--dns`, `--dns-search`, `--dns-option`); each one
/// left empty is taken from the host's (filtered) `resolv.conf`, as libnetwork does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsSettings {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl DnsSettings {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

fn lines_with<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(key)).then_some(it)
        })
        .flatten()
        .collect()
}

/// libnetwork `resolvconf.Build`: `search`, the nameservers, then `options`.
fn build_resolv(servers: &[String], search: &[String], options: &[String]) -> String {
    let mut out = String::new();
    let search = search.join(" ");
    if !search.is_empty() && search.trim() != "." {
        out.push_str(&format!("search {search}\n"));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    let options = options.join(" ");
    if !options.trim().is_empty() {
        out.push_str(&format!("options {options}\n"));
    }
    out
}

/// The container's `resolv.conf` with `--dns*` settings (default bridge, `none`): what is
/// not set comes from the host's filtered file ([`resolv_conf`]).
pub fn resolv_conf_custom(host: &str, dns: &DnsSettings) -> String {
    if dns.is_empty() {
        return resolv_conf(host);
    }
    let filtered = resolv_conf(host);
    let pick = |mine: &[String], key: &str| -> Vec<String> {
        if mine.is_empty() {
            lines_with(&filtered, key)
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            mine.to_vec()
        }
    };
    build_resolv(
        &pick(&dns.servers, "nameserver"),
        &pick(&dns.search, "search"),
        &pick(&dns.options, "options"),
    )
}

/// The `resolv.conf` on a user network with `--dns*` settings: the embedded server as
/// the only nameserver (it forwards to the container's `--dns` servers);
/// search and options from the settings, else the host's.
pub fn resolv_conf_with_custom(host: &str, server: Ipv4Addr, dns: &DnsSettings) -> String {
    if dns.search.is_empty() && dns.options.is_empty() {
        return resolv_conf_with(host, server);
    }
    let pick = |mine: &[String], key: &str| -> Vec<String> {
        if mine.is_empty() {
            lines_with(host, key)
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            mine.to_vec()
        }
    };
    build_resolv(
        &[server.to_string()],
        &pick(&dns.search, "search"),
        &pick(&dns.options, "options"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn custom_dns_like_libnetwork() {
        let host = "nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n";
        let d = DnsSettings {
            servers: vec!["1.1.1.1".into(), "9.9.9.9".into()],
            search: vec!["a.example".into(), "b.example".into()],
            options: vec!["ndots:2".into(), "timeout:3".into()],
        };
        assert_eq!(
            resolv_conf_custom(host, &d),
            "search a.example b.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:2 timeout:3\n"
        );
        let only_servers = DnsSettings {
            servers: vec!["1.1.1.1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_custom(host, &only_servers),
            "search corp.example\nnameserver 1.1.1.1\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf_custom(host, &DnsSettings::default()),
            resolv_conf(host)
        );
    }

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
            "nameserver 10.9.0.1\nsearch a.b\noptions ndots:0\n"
        );
    }
}
