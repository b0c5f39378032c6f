"""What must hold after every round, whatever was killed: each check returns a list of
problems (empty when clean). Add a check by appending a function to CHECKS."""

import json
import os
import re
import subprocess

from acked import check_acked


def processes_under(dir_):
    """Pids whose command line names a path under dir_ or whose root is under it."""
    me = os.getpid()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        try:
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            root = ""
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except (OSError, IndexError):
            continue
        if dir_ in cmd or root.startswith(dir_ + "/"):
            pids.append(pid)
    return pids


def mounts_under(dir_):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split(" ")[4].replace("\\040", " ")
            if p == dir_ or p.startswith(dir_ + "/"):
                out.append(p)
    return sorted(set(out), key=lambda p: p.count("/"), reverse=True)


def cgroup_dirs(ids):
    """Directories <…>/berth/<id> under /sys/fs/cgroup for the given IDs."""
    found = []
    ids = set(ids)
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        if top.count("/") > 14:
            dirs[:] = []
            continue
        if os.path.basename(top) == "berth":
            found += [os.path.join(top, d) for d in dirs if d in ids]
            dirs[:] = [d for d in dirs if d not in ids]
    return found


class State:
    """What the daemon says: running containers, all containers, published ports."""

    def __init__(self, d):
        self.all = d.ids(all_=True)
        self.running = d.ids(all_=False)
        self.ports = set()
        if self.running:
            r = d.cli("inspect", *self.running, check=False)
            try:
                for c in json.loads(r.stdout or "[]"):
                    published = (c.get("NetworkSettings") or {}).get("Ports") or {}
                    for key, binds in published.items():
                        if binds:
                            # the rules name the host port and the container's
                            self.ports.add(key.split("/")[0])
                        for b in binds or []:
                            self.ports.add(b.get("HostPort"))
            except ValueError:
                pass


def owner(text, ids):
    return next((i for i in ids if i in text), None)


def check_processes(d, s):
    bad = []
    registry = d.registry.proc.pid if d.registry else None
    for pid in processes_under(d.dir):
        if pid in (d.pid(), registry):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if owner(cmd + " " + root, s.running) is None:
            bad.append(f"process {pid} of no running container: {cmd[:160]} (root {root})")
    return bad


def check_state_dirs(d, s):
    bad = []
    for sub, allowed, what in ((os.path.join(d.exec_root, "containers"), s.running, "state dir"),
                               (os.path.join(d.root, "containers"), s.all, "container dir"),
                               (os.path.join(d.exec_root, "netns"), s.running, "netns file")):
        try:
            names = os.listdir(sub)
        except FileNotFoundError:
            continue
        bad += [f"{what} {n} without a matching container" for n in names
                if len(n) == 64 and n not in allowed]
    return bad


def check_cgroups(d, s):
    return [f"cgroup {c} of a container that is not running"
            for c in cgroup_dirs(d.seen - s.running)]


def check_mounts(d, s):
    bad = []
    for m in mounts_under(d.dir):
        i = owner(m, d.seen)
        if i is not None and i not in s.running:
            bad.append(f"mount {m} of a container that is not running")
    return bad


def check_veths(d, s):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    bad = []
    bridges = {d.bridge} | {n for n in re.findall(r"^\d+: ([^:@]+)", out, re.M)
                            if n.startswith(d.bridge + "-")}
    for line in out.splitlines():
        m = re.match(r"^\d+: ([^:@]+)", line)
        master = re.search(r" master (\S+)", line)
        if not m or not master or master.group(1) not in bridges:
            continue
        name = m.group(1)
        prefix = name[2:13] if name.startswith("vb") else name[2:11]
        if not any(r.startswith(prefix) for r in s.running):
            bad.append(f"veth {name} on {master.group(1)} of no running container")
    return bad


def check_nft(d, s):
    out = subprocess.run(["nft", "list", "table", "ip", "berth_" + d.bridge],
                         capture_output=True, text=True).stdout
    ports = set(re.findall(r"dport (\d+)", out))
    return [f"nftables rule for port {p} that no running container publishes"
            for p in sorted(ports - s.ports)]


def check_system(d, s):
    r = d.cli("system", "check", check=False, timeout=120)
    if r.returncode != 0:
        return ["berth system check: " + (r.stdout + r.stderr).strip()[:500]]
    return []


CHECKS = [check_processes, check_state_dirs, check_cgroups, check_mounts, check_veths,
          check_nft, check_system, check_acked]
