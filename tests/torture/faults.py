"""Faults injected at a random instant of a round's operation. Each takes (daemon, rng)
and returns a short description of what it did. Add one with @fault("name", weight);
the full-disk and frozen-shim faults plug in here the same way."""

import os
import signal

FAULTS = {}


def fault(name, weight=1):
    def register(f):
        FAULTS[name] = (f, weight)
        return f
    return register


@fault("none", 2)
def nothing(d, rng):
    return "nothing"


@fault("kill-daemon", 3)
def kill_daemon(d, rng):
    d.kill()
    return "daemon killed -9"


def shim_pids(d):
    base = os.path.join(d.exec_root, "containers")
    pids = {}
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return pids
    for n in names:
        try:
            with open(os.path.join(base, n, "shim.pid")) as f:
                pids[n] = int(f.read().strip())
        except (OSError, ValueError):
            pass
    return pids


@fault("kill-shim", 2)
def kill_shim(d, rng):
    pids = shim_pids(d)
    if not pids:
        return "no shim to kill"
    cid = rng.choice(sorted(pids))
    try:
        with open(f"/proc/{pids[cid]}/cmdline", "rb") as f:
            if b"shim" not in f.read():
                return "no shim to kill"
        os.kill(pids[cid], signal.SIGKILL)
    except (OSError, ProcessLookupError):
        return "no shim to kill"
    return f"shim of {cid[:12]} killed -9"


@fault("kill-client", 1)
def kill_client(d, rng):
    with d.lock:
        clients = sorted((c for c in d.clients if c.poll() is None), key=lambda c: c.pid)
    if not clients:
        return "no client to kill"
    c = rng.choice(clients)
    try:
        c.kill()
    except ProcessLookupError:
        return "no client to kill"
    return f"client {' '.join(c.args[3:5])} killed -9"
