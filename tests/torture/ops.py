"""The random operations of a round. Each takes (daemon, rng) and drives the CLI; a
failure of the command itself is no failure of the round (the daemon may be killed under
it), only what is left afterwards counts. Add an operation with @op("name", weight)."""

import io
import os
import tarfile

from daemon import CommandFailed, free_subnet

OPS = {}


def op(name, weight=1):
    def register(f):
        OPS[name] = (f, weight)
        return f
    return register


def pick(rng, items):
    items = sorted(items)
    return rng.choice(items) if items else None


def try_cli(d, *args, timeout=60):
    try:
        return d.cli(*args, timeout=timeout, check=False)
    except CommandFailed:
        return None


@op("run", 4)
def run(d, rng):
    args = ["run", "-d"]
    if rng.random() < 0.5:
        args += ["-v", "/data"]
    if rng.random() < 0.5:
        args += ["-v", f"tv{rng.randrange(3)}:/named"]
    if rng.random() < 0.5:
        args += ["-p", f"{rng.randrange(20000, 40000)}:80"]
    if rng.random() < 0.3:
        args += ["--rm"]
    if rng.random() < 0.2:
        args += ["--restart", rng.choice(["always", "on-failure:2", "unless-stopped"])]
    nets = list_networks(d)
    if nets and rng.random() < 0.3:
        args += ["--network", rng.choice(nets)]
    cmd = rng.choice([["sleep", "1000"], ["sh", "-c", "sleep 0.3; exit 3"], ["true"]])
    try_cli(d, *args, "busybox", *cmd)


@op("create-start", 2)
def create_start(d, rng):
    r = try_cli(d, "create", "-p", f"{rng.randrange(20000, 40000)}:80", "-v", "/data",
                "busybox", "sleep", "1000")
    if r is not None and r.returncode == 0:
        try_cli(d, "start", r.stdout.strip())


@op("rm", 3)
def rm(d, rng):
    cid = pick(rng, d.ids())
    if cid:
        try_cli(d, "rm", "-f", *(["-v"] if rng.random() < 0.5 else []), cid)


@op("stop", 1)
def stop(d, rng):
    cid = pick(rng, d.ids(all_=False))
    if cid:
        try_cli(d, "stop", "-t", "1", cid)


@op("start", 1)
def start(d, rng):
    cid = pick(rng, d.ids() - d.ids(all_=False))
    if cid:
        try_cli(d, "start", cid)


@op("exec", 2)
def exec_(d, rng):
    cid = pick(rng, d.ids(all_=False))
    if cid:
        if rng.random() < 0.5:
            try_cli(d, "exec", "-d", cid, "sleep", "100")
        else:
            try_cli(d, "exec", cid, "sh", "-c", "echo hi; sleep 0.5")


@op("commit", 1)
def commit(d, rng):
    cid = pick(rng, d.ids())
    if cid:
        try_cli(d, "commit", cid, f"torture-commit:{rng.randrange(3)}")


@op("import", 1)
def import_(d, rng):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(rng.randrange(1, 64 << 10))
        info = tarfile.TarInfo("blob")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path = os.path.join(d.dir, "import.tar")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    try_cli(d, "import", path, f"torture-import:{rng.randrange(3)}")


@op("rmi", 1)
def rmi(d, rng):
    r = try_cli(d, "images", "--format", "{{.Repository}}:{{.Tag}}")
    if r is not None:
        tags = [t for t in r.stdout.split() if t.startswith("torture-")]
        tag = pick(rng, tags)
        if tag:
            try_cli(d, "rmi", "-f", tag)


def list_networks(d):
    r = try_cli(d, "network", "ls", "--format", "{{.Name}}")
    return [n for n in (r.stdout.split() if r else []) if n.startswith("tnet")]


@op("network", 1)
def network(d, rng):
    nets = list_networks(d)
    if nets and rng.random() < 0.5:
        try_cli(d, "network", "rm", pick(rng, nets))
    else:
        try_cli(d, "network", "create", "--subnet", free_subnet(rng),
                f"tnet{rng.randrange(1000)}")


@op("volume", 1)
def volume(d, rng):
    name = f"tv{rng.randrange(3)}"
    if rng.random() < 0.5:
        try_cli(d, "volume", "create", name)
    else:
        try_cli(d, "volume", "rm", name)
