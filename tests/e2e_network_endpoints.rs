//! Endpoints as docker-compose uses them (issue 14, points 1 and 2): create-time
//! aliases, `network connect`/`disconnect` on created, running and stopped containers
//! (the network a container was created on included), `--network-alias`, `--ip`, every
//! endpoint in inspect and `GET /containers/json`, and published ports on user networks.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A /24 of its own for the test daemon's user network `k`.
fn user_subnet(d: &TestDaemon, k: u8) -> String {
    format!("{}.0/24", d.own_subnet24(11 + k as u16))
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

const HTTPD: &str = "echo hello > /tmp/index.html && exec httpd -f -p 80 -h /tmp";

/// `wget http://{host}/` from a throwaway container on `net`, retried while the server
/// comes up.
fn fetch_on(d: &TestDaemon, net: &str, host: &str) -> String {
    let url = format!("http://{host}/");
    let mut got = String::new();
    wait_until(Duration::from_secs(10), || {
        got = stdout(&d.berth(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "wget",
            "-qO-",
            &url,
        ]));
        got == "hello\n"
    });
    got
}

fn endpoint(d: &TestDaemon, name: &str, net: &str) -> serde_json::Value {
    d.inspect(name)["NetworkSettings"]["Networks"][net].clone()
}

fn listed_networks(d: &TestDaemon, name: &str) -> serde_json::Value {
    let (status, _, body) = d.request("GET", "/containers/json?all=1", None);
    assert_eq!(status, 200);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let row = rows
        .iter()
        .find(|r| r["Names"][0] == format!("/{name}").as_str())
        .unwrap_or_else(|| panic!("{name} not listed"));
    row["NetworkSettings"]["Networks"].clone()
}

#[test]
fn composes_dance_create_disconnect_connect_start() {
    let d = daemon();
    let net = "proj_default";
    d.berth_ok(&["network", "create", "--subnet", &user_subnet(&d, 0), net]);
    // create-time aliases are kept, without the short ID until the start
    let id = d.berth_ok(&[
        "create",
        "--name",
        "web",
        "--network",
        net,
        "--network-alias",
        "websvc",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let short = &id.trim()[..12];
    let ep = endpoint(&d, "web", net);
    assert_eq!(ep["Aliases"], serde_json::json!(["websvc"]));
    assert_eq!(ep["IPAddress"], "");
    assert_eq!(ep["NetworkID"], "");
    // disconnect from the network it was created on, twice
    d.berth_ok(&["network", "disconnect", net, "web"]);
    assert!(d.inspect("web")["NetworkSettings"]["Networks"]
        .get(net)
        .is_none());
    let out = d.berth(&["network", "disconnect", net, "web"]);
    assert!(
        stderr(&out).contains(&format!("is not connected to the network {net}")),
        "{}",
        stderr(&out)
    );
    // back with compose's aliases; Docker adds the short ID at connect
    d.berth_ok(&[
        "network", "connect", "--alias", "web", "--alias", "websvc", net, "web",
    ]);
    assert_eq!(
        endpoint(&d, "web", net)["Aliases"],
        serde_json::json!(["web", "websvc", short])
    );
    let out = d.berth(&["network", "connect", net, "web"]);
    assert!(
        stderr(&out).contains(&format!(
            "endpoint with name web already exists in network {net}"
        )),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["start", "web"]);
    assert_eq!(fetch_on(&d, net, "websvc"), "hello\n");
    assert_eq!(fetch_on(&d, net, short), "hello\n");
    // every endpoint field, in inspect and in the list
    let ep = endpoint(&d, "web", net);
    let netid = d.berth_ok(&["network", "inspect", "-f", "{{.Id}}", net]);
    assert_eq!(ep["NetworkID"], netid.trim());
    assert_eq!(
        ep["Gateway"],
        user_subnet(&d, 0).replace("0/24", "1").as_str()
    );
    let ip = ep["IPAddress"].as_str().unwrap().to_string();
    assert!(
        ip.starts_with(user_subnet(&d, 0).trim_end_matches("0/24")),
        "{ip}"
    );
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    assert!(
        ep["MacAddress"].as_str().unwrap().starts_with("02:42:"),
        "{ep}"
    );
    let listed = listed_networks(&d, "web");
    let row = &listed[net];
    for k in [
        "NetworkID",
        "EndpointID",
        "Gateway",
        "IPAddress",
        "MacAddress",
    ] {
        assert_eq!(row[k], ep[k], "{k} in the list: {listed}");
    }
    assert_eq!(row["Aliases"], serde_json::Value::Null);
    assert_eq!(row["IPAMConfig"], ep["IPAMConfig"], "{listed}");
    d.berth_ok(&["rm", "-f", "web"]);
    d.berth_ok(&["network", "rm", net]);
}

#[test]
fn disconnect_and_reconnect_running_and_stopped_with_ip() {
    let d = daemon();
    let sub = user_subnet(&d, 1);
    let prefix = sub.trim_end_matches("0/24").to_string();
    d.berth_ok(&["network", "create", "--subnet", &sub, "front"]);
    d.berth_ok(&["network", "create", "--subnet", &user_subnet(&d, 2), "back"]);
    d.run_detached(&[
        "--name",
        "srv",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(fetch_on(&d, "front", "srv"), "hello\n");
    // running: off the network it was created on (eth0 goes), then back at a chosen address
    d.berth_ok(&["network", "disconnect", "front", "srv"]);
    assert!(d.inspect("srv")["NetworkSettings"]["Networks"]
        .get("front")
        .is_none());
    let members = d.berth_ok(&["network", "inspect", "-f", "{{len .Containers}}", "front"]);
    assert_eq!(members.trim(), "0");
    let links = d.berth_ok(&["exec", "srv", "sh", "-c", "ip -o link | cut -d: -f2"]);
    assert_eq!(
        links
            .split_whitespace()
            .map(|l| l.split('@').next().unwrap())
            .collect::<Vec<_>>(),
        ["lo"]
    );
    let wanted = format!("{prefix}77");
    d.berth_ok(&[
        "network", "connect", "--ip", &wanted, "--alias", "api", "front", "srv",
    ]);
    let ep = endpoint(&d, "srv", "front");
    assert_eq!(ep["IPAddress"], wanted.as_str());
    assert_eq!(ep["IPAMConfig"]["IPv4Address"], wanted.as_str());
    assert_eq!(fetch_on(&d, "front", "api"), "hello\n");
    // an address outside the subnet, one taken, a link: refused in words
    let out = d.berth(&["network", "connect", "--ip", "192.0.2.9", "back", "srv"]);
    assert!(
        stderr(&out).contains("no configured subnet or ip-range contain the IP address 192.0.2.9"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "back",
        "busybox",
        "sleep",
        "60",
    ]);
    let taken = endpoint(&d, "other", "back")["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = d.berth(&["network", "connect", "--ip", &taken, "back", "srv"]);
    assert!(
        stderr(&out).contains("Address already in use"),
        "{}",
        stderr(&out)
    );
    // a malformed link is refused before anything changes
    let out = d.berth(&["network", "connect", "--link", ":o", "back", "srv"]);
    assert!(
        stderr(&out).contains("invalid link: :o"),
        "{}",
        stderr(&out)
    );
    // stopped: disconnect and reconnect, the next start uses it
    d.berth_ok(&["stop", "-t", "1", "srv"]);
    d.berth_ok(&["network", "disconnect", "front", "srv"]);
    d.berth_ok(&["network", "connect", "--alias", "again", "front", "srv"]);
    d.berth_ok(&["network", "connect", "back", "srv"]);
    d.berth_ok(&["start", "srv"]);
    assert_eq!(fetch_on(&d, "front", "again"), "hello\n");
    assert_eq!(fetch_on(&d, "back", "srv"), "hello\n");
    let listed = listed_networks(&d, "srv");
    assert!(
        listed["front"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with(&prefix),
        "{listed}"
    );
    assert!(
        listed["back"]["EndpointID"].as_str().unwrap().len() == 64,
        "{listed}"
    );
    d.berth_ok(&["rm", "-f", "srv", "other"]);
    d.berth_ok(&["network", "rm", "front", "back"]);
}

#[test]
fn aliases_on_the_default_bridge_are_refused() {
    let d = daemon();
    let out = d.berth(&["create", "--network-alias", "x", "busybox", "true"]);
    assert!(
        stderr(&out).contains(
            "network-scoped alias is supported only for containers in user defined networks"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ports_are_published_on_user_networks() {
    let d = daemon();
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &user_subnet(&d, 3),
        "pubnet",
    ]);
    d.run_detached(&[
        "--name",
        "p1",
        "--network",
        "pubnet",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let port: u16 = d
        .berth_ok(&["port", "p1", "80"])
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(port >= 32768, "{port}");
    let mut got = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            got = http_get(port);
            got.as_deref() == Some("hello\n")
        }),
        "{got:?}"
    );
    d.run_detached(&[
        "--name",
        "p2",
        "--network",
        "pubnet",
        "-P",
        "--expose",
        "80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let mapped = d.inspect("p2")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = mapped.parse().unwrap();
    assert!(wait_until(Duration::from_secs(10), || http_get(port)
        .as_deref()
        == Some("hello\n")));
    d.berth_ok(&["rm", "-f", "p1", "p2"]);
    d.berth_ok(&["network", "rm", "pubnet"]);
}

/// The addresses busybox's `nslookup NAME` prints in its answer section, from container `c`.
fn looked_up(d: &TestDaemon, c: &str, name: &str) -> Vec<String> {
    let out = d.berth(&["exec", c, "nslookup", "-timeout=2", name]);
    let text = stdout(&out);
    let answer = text
        .split_once(&format!("Name:\t{name}"))
        .map(|(_, a)| a)
        .unwrap_or("");
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("Address: "))
        .map(|a| a.trim().to_string())
        .collect()
}

#[test]
fn links_on_a_user_network_are_aliases_for_the_linking_container_only() {
    let d = daemon();
    let subnet = user_subnet(&d, 7);
    d.berth_ok(&["network", "create", "--subnet", &subnet, "lk"]);
    d.run_detached(&[
        "--name",
        "lkdb",
        "--network",
        "lk",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&[
        "--name",
        "lkweb",
        "--network",
        "lk",
        "--link",
        "lkdb:dbal",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&[
        "--name",
        "lkother",
        "--network",
        "lk",
        "busybox",
        "sleep",
        "300",
    ]);
    let db_ip = d.inspect("lkdb")["NetworkSettings"]["Networks"]["lk"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let web = d.inspect("lkweb");
    // as dockerd 20.10: the link lives in the endpoint, HostConfig.Links is null
    assert_eq!(
        web["NetworkSettings"]["Networks"]["lk"]["Links"],
        serde_json::json!(["lkdb:dbal"]),
        "{web}"
    );
    let host_links = &web["HostConfig"]["Links"];
    assert!(
        host_links.is_null() || host_links == &serde_json::json!([]),
        "{host_links}"
    );
    assert_eq!(looked_up(&d, "lkweb", "dbal"), vec![db_ip.clone()]);
    assert!(
        looked_up(&d, "lkother", "dbal").is_empty(),
        "the alias leaked to another container"
    );
    // a link added by `network connect --link` on a second network
    let subnet2 = user_subnet(&d, 8);
    d.berth_ok(&["network", "create", "--subnet", &subnet2, "lk2"]);
    d.berth_ok(&["network", "connect", "lk2", "lkdb"]);
    d.berth_ok(&["network", "connect", "--link", "lkdb:db2", "lk2", "lkother"]);
    let db_ip2 = d.inspect("lkdb")["NetworkSettings"]["Networks"]["lk2"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(looked_up(&d, "lkother", "db2"), vec![db_ip2]);
    let other = d.inspect("lkother");
    assert_eq!(
        other["NetworkSettings"]["Networks"]["lk2"]["Links"],
        serde_json::json!(["lkdb:db2"]),
        "{other}"
    );
    // links and host or container networking conflict, in Docker's words
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--link",
        "lkdb:x",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&out).contains("conflicting options: host type networking can't be used with links"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["rm", "-f", "lkdb", "lkweb", "lkother"]);
    d.berth_ok(&["network", "rm", "lk", "lk2"]);
}
