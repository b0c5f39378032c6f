"""Faults injected at a random instant of a round's operation. Each takes (daemon, rng)
and returns a short description of what it did. Add one with @fault("name", weight);
a fault that must undo something once the operation is over returns (description, after)."""

import os
import signal
import time

from daemon import CommandFailed

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


# A fault may return (description, after): `after()` runs once the round's operation has
# finished (or timed out), before the checks, and returns a list of problems.


def fill_disk(d):
    """Fills the daemon's tmpfs root with one file; returns its path."""
    path = os.path.join(d.root, "torture-fill")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        st = os.statvfs(d.root)
        try:
            os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize)
        except OSError:
            pass
        chunk = b"\0" * (1 << 20)
        while True:  # what fallocate left (or all of it, where it is refused)
            try:
                os.write(fd, chunk[:max(4096, min(len(chunk), os.statvfs(d.root).f_bavail
                                                  * st.f_frsize))])
            except OSError:
                break
    finally:
        os.close(fd)
    return path


@fault("full-disk", 2)
def full_disk(d, rng):
    if not d.disk_mib:
        return "no full disk (the root is no tmpfs: --disk-mib 0)"
    path = fill_disk(d)

    def after():
        os.remove(path)
        # Space is back: a write must work again without a restart.
        deadline = time.time() + 10
        while True:
            try:
                d.cli("volume", "create", "torture-space-back", timeout=30)
                d.cli("volume", "rm", "torture-space-back", timeout=30)
                return []
            except CommandFailed as e:
                if not d.alive():
                    return []  # the round's checks report a dead daemon
                if time.time() > deadline:
                    return [f"space came back, a write still fails: {e}"]
                time.sleep(0.5)

    return "disk full", after


# `stop -t 1` or `rm -f` of a container whose shim is frozen must finish within this.
FROZEN_BOUND = 20


@fault("frozen-shim", 2)
def frozen_shim(d, rng):
    """SIGSTOPs a shim, then stops or removes its container: that must finish (past the
    timeout the daemon kills the container's cgroup and the shim)."""
    pids = shim_pids(d)
    live = {}
    for cid, pid in pids.items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"shim" in f.read():
                    live[cid] = pid
        except OSError:
            pass
    if not live:
        return "no shim to freeze"
    cid = rng.choice(sorted(live))
    pid = live[cid]
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return "no shim to freeze"
    remove = rng.random() < 0.5
    args = ["rm", "-f", cid] if remove else ["stop", "-t", "1", cid]
    if remove:
        d.ledger.begin("container", cid)
    problems = []
    try:
        r = d.cli(*args, timeout=FROZEN_BOUND, check=False)
        if r.returncode == 0 and remove:
            d.ledger.absent("container", cid)
        elif r.returncode != 0 and d.alive() and "No such container" not in r.stderr:
            problems.append(f"berth {' '.join(args[:-1])} of a container with a frozen shim: "
                            f"{r.stderr.strip()}")
    except CommandFailed:
        if d.alive():
            problems.append(f"berth {' '.join(args[:-1])} of a container with a frozen shim "
                            f"did not finish within {FROZEN_BOUND} s")

    def after():
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        return problems

    return f"shim of {cid[:12]} frozen, then {args[0]}", after
