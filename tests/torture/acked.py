"""Every change the daemon acknowledged, and the check that each still holds.

An operation calls `begin(kind, key)` before it sends a change (what the daemon holds for
that key is unknown from then on: the daemon or the client may be killed under it), then
`present(kind, key, value)` or `absent(kind, key)` once the CLI answered success. After
every round (so after every kill and restart) `check_acked` compares the daemon's lists
with what was acknowledged: a created container, volume, network or image tag that is
gone, or a removed one that is back, is a lost write.

Kinds: "container" (full ID), "volume" (name), "network" (name -> ID), "tag"
(repo:tag -> image ID, or ANY when only the tag was acknowledged), "pushed"
(repo:tag in the local registry)."""

import json
import threading
import urllib.request

ANY = object()


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        # kind -> key -> (True, value) present / (False, None) absent
        self.expect = {}

    def begin(self, kind, key):
        with self.lock:
            self.expect.get(kind, {}).pop(key, None)

    def present(self, kind, key, value=ANY):
        with self.lock:
            self.expect.setdefault(kind, {})[key] = (True, value)

    def absent(self, kind, key):
        with self.lock:
            self.expect.setdefault(kind, {})[key] = (False, None)

    def items(self, kind):
        with self.lock:
            return sorted(self.expect.get(kind, {}).items(), key=lambda kv: kv[0])

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.expect.values())


def _lines(d, *args):
    return d.cli(*args).stdout.splitlines()


def _compare(kind, expected, actual):
    """expected: [(key, (present, value))]; actual: {key: value}."""
    bad = []
    for key, (present, value) in expected:
        if present and key not in actual:
            bad.append(f"acknowledged {kind} {key} is gone")
        elif present and value is not ANY and actual[key] != value:
            bad.append(f"acknowledged {kind} {key} is {actual[key]}, not {value}")
        elif not present and key in actual:
            bad.append(f"{kind} {key} is back after its removal was acknowledged")
    return bad


def registry_has(registry, ref):
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    req = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                           "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status == 200
    except OSError:
        return False


def check_acked(d, s):
    led = d.ledger
    bad = _compare("container", led.items("container"), {c: True for c in s.all})
    if led.items("volume"):
        bad += _compare("volume", led.items("volume"),
                        {v: True for v in _lines(d, "volume", "ls", "-q")})
    if led.items("network"):
        nets = {}
        for line in _lines(d, "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}"):
            name, _, nid = line.partition(" ")
            nets[name] = nid
        bad += _compare("network", led.items("network"), nets)
    if led.items("tag"):
        tags = {}
        out = d.cli("images", "--no-trunc", "--format", "{{json .}}").stdout
        for line in out.splitlines():
            try:
                i = json.loads(line)
            except ValueError:
                continue
            if i.get("Tag") and i["Tag"] != "<none>":
                tags[f"{i['Repository']}:{i['Tag']}"] = i["ID"]
        bad += _compare("image tag", led.items("tag"), tags)
    for ref, _ in led.items("pushed"):
        if not registry_has(d.registry.addr, ref):
            bad.append(f"acknowledged push of {ref} is not in the registry")
    return bad
