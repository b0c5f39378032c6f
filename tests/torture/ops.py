"""The random operations of a round. Each takes (daemon, rng) and drives the CLI; a
failure of the command itself is no failure of the round (the daemon may be killed under
it), only what is left afterwards counts. Add an operation with @op("name", weight)."""

import io
import os
import shutil
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


def acked(r):
    """The CLI answered success (the daemon acknowledged the change)."""
    return r is not None and r.returncode == 0


def last_word(r):
    words = r.stdout.split()
    return words[-1] if words else ""


@op("run", 4)
def run(d, rng):
    args = ["run", "-d"]
    volume = None
    if rng.random() < 0.5:
        args += ["-v", "/data"]
    if rng.random() < 0.5:
        volume = f"tv{rng.randrange(3)}"
        args += ["-v", f"{volume}:/named"]
        d.ledger.begin("volume", volume)
    if rng.random() < 0.5:
        args += ["-p", f"{rng.randrange(20000, 40000)}:80"]
    auto_remove = rng.random() < 0.3
    if auto_remove:
        args += ["--rm"]
    if rng.random() < 0.2:
        args += ["--restart", rng.choice(["always", "on-failure:2", "unless-stopped"])]
    nets = list_networks(d)
    if nets and rng.random() < 0.3:
        args += ["--network", rng.choice(nets)]
    cmd = rng.choice([["sleep", "1000"], ["sh", "-c", "sleep 0.3; exit 3"], ["true"]])
    r = try_cli(d, *args, "busybox", *cmd)
    if acked(r):
        if volume:
            d.ledger.present("volume", volume)
        if not auto_remove:
            d.ledger.present("container", last_word(r))


@op("create-start", 2)
def create_start(d, rng):
    r = try_cli(d, "create", "-p", f"{rng.randrange(20000, 40000)}:80", "-v", "/data",
                "busybox", "sleep", "1000")
    if acked(r):
        d.ledger.present("container", last_word(r))
        try_cli(d, "start", r.stdout.strip())


@op("rm", 3)
def rm(d, rng):
    cid = pick(rng, d.ids())
    if cid:
        d.ledger.begin("container", cid)
        if acked(try_cli(d, "rm", "-f", *(["-v"] if rng.random() < 0.5 else []), cid)):
            d.ledger.absent("container", cid)


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
        tag = f"torture-commit:{rng.randrange(3)}"
        d.ledger.begin("tag", tag)
        r = try_cli(d, "commit", cid, tag)
        if acked(r):
            d.ledger.present("tag", tag, last_word(r))


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
    tag = f"torture-import:{rng.randrange(3)}"
    d.ledger.begin("tag", tag)
    r = try_cli(d, "import", path, tag)
    if acked(r):
        d.ledger.present("tag", tag, last_word(r))


@op("rmi", 1)
def rmi(d, rng):
    r = try_cli(d, "images", "--format", "{{.Repository}}:{{.Tag}}")
    if r is not None:
        tags = [t for t in r.stdout.split() if "torture-" in t]
        tag = pick(rng, tags)
        if tag:
            d.ledger.begin("tag", tag)
            if acked(try_cli(d, "rmi", "-f", tag)):
                d.ledger.absent("tag", tag)


def list_networks(d):
    r = try_cli(d, "network", "ls", "--format", "{{.Name}}")
    return [n for n in (r.stdout.split() if r else []) if n.startswith("tnet")]


@op("network", 1)
def network(d, rng):
    nets = list_networks(d)
    if nets and rng.random() < 0.5:
        name = pick(rng, nets)
        d.ledger.begin("network", name)
        if acked(try_cli(d, "network", "rm", name)):
            d.ledger.absent("network", name)
    else:
        name = f"tnet{rng.randrange(1000)}"
        d.ledger.begin("network", name)
        r = try_cli(d, "network", "create", "--subnet", free_subnet(rng), name)
        if acked(r):
            d.ledger.present("network", name, last_word(r))


@op("volume", 1)
def volume(d, rng):
    name = f"tv{rng.randrange(3)}"
    d.ledger.begin("volume", name)
    if rng.random() < 0.5:
        if acked(try_cli(d, "volume", "create", name)):
            d.ledger.present("volume", name)
    else:
        if acked(try_cli(d, "volume", "rm", name)):
            d.ledger.absent("volume", name)


# ---- images through a registry, a build and a saved tarball --------------------------

def local_tags(d):
    r = try_cli(d, "images", "--format", "{{.Repository}}:{{.Tag}}")
    return [t for t in (r.stdout.split() if r else []) if not t.endswith(":<none>")]


@op("push", 1)
def push(d, rng):
    """Tags a local image into the registry's namespace and pushes it."""
    src = pick(rng, [t for t in local_tags(d) if "/" not in t])
    if not src:
        return
    ref = f"{d.registry.addr}/torture-push:{rng.randrange(3)}"
    d.ledger.begin("tag", ref)
    if not acked(try_cli(d, "tag", src, ref)):
        return
    d.ledger.present("tag", ref)
    d.ledger.begin("pushed", ref)
    if acked(try_cli(d, "push", ref, timeout=120)):
        d.ledger.present("pushed", ref)


@op("pull", 1)
def pull(d, rng):
    """Pulls a tag some push acknowledged (the setup pushed :0)."""
    pushed = [ref for ref, _ in d.ledger.items("pushed")]
    ref = pick(rng, pushed)
    if not ref:
        return
    if rng.random() < 0.5:
        # the pull writes the image, not only the tag
        d.ledger.begin("tag", ref)
        if not acked(try_cli(d, "rmi", "-f", ref)):
            return
        d.ledger.absent("tag", ref)
    d.ledger.begin("tag", ref)
    if acked(try_cli(d, "pull", ref, timeout=120)):
        d.ledger.present("tag", ref)


@op("build", 1)
def build(d, rng):
    ctx = os.path.join(d.dir, f"build-{rng.randrange(1 << 30)}")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "file"), "wb") as f:
        f.write(os.urandom(rng.randrange(1, 32 << 10)))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM busybox\nRUN echo {rng.randrange(1 << 30)} > /stamp\n"
                f"COPY file /file\nCMD [\"cat\", \"/stamp\"]\n")
    tag = f"torture-build:{rng.randrange(3)}"
    iid = os.path.join(ctx, "iid")
    d.ledger.begin("tag", tag)
    r = try_cli(d, "build", "-q", "--iidfile", iid, "-t", tag, ctx, timeout=120)
    if acked(r):
        try:
            with open(iid) as f:
                d.ledger.present("tag", tag, f.read().strip())
        except OSError:
            d.ledger.present("tag", tag)
    shutil.rmtree(ctx, ignore_errors=True)


@op("load", 1)
def load(d, rng):
    """Loads the tarball `berth save` wrote at setup (tag torture-save:1)."""
    tag, image_id = d.saved
    d.ledger.begin("tag", tag)
    if acked(try_cli(d, "load", "-i", d.saved_tar, timeout=120)):
        d.ledger.present("tag", tag, image_id)
