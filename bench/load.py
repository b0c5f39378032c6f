#!/usr/bin/env python3
"""Load generator of bench/load: C concurrent clients send N mixed Engine API requests to one
daemon over its unix socket and print one JSON summary line.

    bench/load.py SOCKET [--clients 50] [--requests 5000] [--lifecycle 0.1] [--label K=V]

Each client keeps one HTTP/1.1 connection (as docker-py and the Docker CLI's long-lived
clients do) and repeats, until N requests have been sent in all: with probability
`--lifecycle`, one container's create + start + wait + delete (4 requests, timed as one
operation); otherwise one read picked at random: `GET /containers/json?all=1`,
`GET /containers/{id}/json` of one of the containers made at set-up, or
`GET /images/json`. Reads therefore run while containers are being created and started.

Needs the image `--image` (default `busybox:latest`; its `true`) on the daemon. The containers made at set-up
and by the run carry `--label` (so only they are removed afterwards).
"""

import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time

API = "/v1.41"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Client:
    def __init__(self, path):
        self.path = path
        self.conn = None

    def call(self, method, url, body=None):
        """(status, parsed body or raw bytes); reconnects once on a dropped connection."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = UnixConnection(self.path)
            try:
                headers = {"Host": "docker"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, API + url, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, raw
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--lifecycle", type=float, default=0.1)
    ap.add_argument("--targets", type=int, default=10, help="containers made for inspects")
    ap.add_argument("--network", default="none")
    ap.add_argument("--image", default="busybox:latest")
    ap.add_argument("--label", default="berth-bench-load=1")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    lk, _, lv = args.label.partition("=")
    labels = {lk: lv}

    setup = Client(args.socket)
    targets = []
    for _ in range(args.targets):
        st, raw = setup.call("POST", "/containers/create", {
            "Image": args.image, "Cmd": ["true"], "Labels": labels,
            "HostConfig": {"NetworkMode": args.network}})
        if st != 201:
            sys.exit(f"load.py: set-up create failed: {st} {raw[:200]!r}")
        targets.append(json.loads(raw)["Id"])

    lock = threading.Lock()
    state = {"sent": 0}
    reads, cycles, errors = [], [], []

    def take(n):
        with lock:
            if state["sent"] >= args.requests:
                return False
            state["sent"] += n
            return True

    def read_op(c, rng):
        kind = rng.randrange(3)
        if kind == 0:
            url = "/containers/json?all=1"
        elif kind == 1:
            url = f"/containers/{rng.choice(targets)}/json"
        else:
            url = "/images/json"
        t0 = time.perf_counter()
        st, raw = c.call("GET", url)
        dt = time.perf_counter() - t0
        if st != 200:
            return None, f"GET {url}: {st} {raw[:200]!r}"
        return dt, None

    def lifecycle(c):
        t0 = time.perf_counter()
        st, raw = c.call("POST", "/containers/create", {
            "Image": args.image, "Cmd": ["true"], "Labels": labels,
            "HostConfig": {"NetworkMode": args.network}})
        if st != 201:
            return None, f"create: {st} {raw[:200]!r}"
        cid = json.loads(raw)["Id"]
        steps = [("POST", f"/containers/{cid}/start", 204),
                 ("POST", f"/containers/{cid}/wait", 200),
                 ("DELETE", f"/containers/{cid}?force=1", 204)]
        for method, url, want in steps:
            st, raw = c.call(method, url)
            if st != want:
                c.call("DELETE", f"/containers/{cid}?force=1")
                return None, f"{method} {url.split('/')[-1]}: {st} {raw[:200]!r}"
        return time.perf_counter() - t0, None

    def worker(i):
        rng = random.Random(args.seed * 1000 + i)
        c = Client(args.socket)
        while True:
            is_cycle = rng.random() < args.lifecycle
            if not take(4 if is_cycle else 1):
                return
            try:
                dt, err = lifecycle(c) if is_cycle else read_op(c, rng)
            except Exception as e:  # a dropped connection, a timeout
                dt, err = None, f"{type(e).__name__}: {e}"
            with lock:
                if err:
                    errors.append(err)
                elif is_cycle:
                    cycles.append(dt)
                else:
                    reads.append(dt)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0

    for cid in targets:
        setup.call("DELETE", f"/containers/{cid}?force=1")

    reads.sort()
    cycles.sort()
    ms = lambda v: None if v is None else round(v * 1000, 1)
    print(json.dumps({
        "requests": state["sent"],
        "seconds": round(elapsed, 2),
        "rps": round(state["sent"] / elapsed, 1),
        "reads": len(reads),
        "read_p50_ms": ms(percentile(reads, 50)),
        "read_p99_ms": ms(percentile(reads, 99)),
        "read_max_ms": ms(reads[-1] if reads else None),
        "cycles": len(cycles),
        "cycle_p50_ms": ms(percentile(cycles, 50)),
        "cycle_p99_ms": ms(percentile(cycles, 99)),
        "errors": len(errors),
        "first_errors": errors[:5],
    }))


if __name__ == "__main__":
    main()
