"""One Berth daemon of a torture run: its own temp dir, socket, root, exec-root, bridge
and subnet (as tests/common's TestDaemon), killed and restarted at will, and removed with
everything it made at the end."""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time

NO_DOCKER_HUB = "http://127.0.0.1:9"


def free_subnet(rng=random):
    """A random 10.x.y.0/24 (x in 100..=249) that no host route overlaps."""
    routes = subprocess.run(["ip", "-4", "-o", "route"], capture_output=True, text=True).stdout
    while True:
        x, y = 100 + rng.randrange(150), rng.randrange(256)
        if f"10.{x}.{y}." not in routes:
            return f"10.{x}.{y}.0/24"


class Daemon:
    def __init__(self, berth, debug=False):
        self.berth = berth
        self.dir = tempfile.mkdtemp(prefix="btort-")
        self.sock = os.path.join(self.dir, "berth.sock")
        self.root = os.path.join(self.dir, "root")
        self.exec_root = os.path.join(self.dir, "run")
        self.log = os.path.join(self.dir, "daemon.log")
        self.bridge = "bt%06x" % random.getrandbits(24)
        self.bip = free_subnet(random.Random())
        self.debug = debug
        self.proc = None
        # Every container ID this daemon was seen to have (cgroup checks and cleanup).
        self.seen = set()
        # CLI processes running now (the kill-client fault picks one).
        self.clients = set()
        self.lock = threading.Lock()

    def host(self):
        return "unix://" + self.sock

    def start(self, env=None):
        assert self.proc is None
        try:
            os.remove(self.sock)
        except FileNotFoundError:
            pass
        args = [self.berth, "daemon", "-H", self.host(), "--root", self.root,
                "--exec-root", self.exec_root, "--bridge-name", self.bridge,
                "--bip", self.bip, "--docker-hub-url", NO_DOCKER_HUB, "--cri-socket", ""]
        if self.debug:
            args.append("--debug")
        e = dict(os.environ, NO_COLOR="1")
        e.update(env or {})
        log = open(self.log, "a")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, env=e, start_new_session=True)
        log.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError("the daemon exited during start:\n" + self.log_tail())
            r = self.cli("version", "--format", "{{.Server.Version}}", timeout=5, check=False)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon did not answer within 30 s:\n" + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.alive() else None

    def kill(self):
        """kill -9 of the daemon (containers and shims stay)."""
        if self.proc is not None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def reap(self):
        """Forgets a daemon process that died by itself."""
        if self.proc is not None and self.proc.poll() is not None:
            self.proc = None

    def stop(self, grace=10):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cli(self, *args, timeout=60, check=True, stdin=None):
        env = dict(os.environ, DOCKER_CONFIG=os.path.join(self.dir, "cli-config"))
        env.pop("DOCKER_HOST", None)
        p = subprocess.Popen([self.berth, "-H", self.host(), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
                             text=True, env=env)
        with self.lock:
            self.clients.add(p)
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            p.kill()
            p.communicate()
            raise CommandFailed(f"berth {' '.join(args)}: no answer within {timeout} s") from e
        finally:
            with self.lock:
                self.clients.discard(p)
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        if check and r.returncode != 0:
            raise CommandFailed(f"berth {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def ids(self, all_=True):
        r = self.cli("ps", "-q", "--no-trunc", *(["-a"] if all_ else []))
        ids = set(r.stdout.split())
        self.seen |= ids
        return ids

    def note_dirs(self):
        for sub in (os.path.join(self.root, "containers"), os.path.join(self.exec_root, "containers")):
            try:
                self.seen |= {n for n in os.listdir(sub) if len(n) == 64}
            except FileNotFoundError:
                pass

    def log_tail(self, lines=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # ---- cleanup (as TestDaemon's drop) -------------------------------------------------

    def destroy(self, keep=False):
        if self.alive():
            try:
                for cid in self.ids():
                    self.cli("rm", "-f", "-v", cid, check=False, timeout=30)
            except Exception:
                pass
        self.stop()
        self.note_dirs()
        from checks import cgroup_dirs, processes_under, mounts_under
        for cg in cgroup_dirs(self.seen):
            kill_cgroup(cg)
        for _ in range(3):
            for pid in processes_under(self.dir):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        for m in mounts_under(self.dir):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        for cg in sorted(cgroup_dirs(self.seen), key=len, reverse=True):
            remove_cgroup(cg)
        remove_network(self.bridge)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class CommandFailed(Exception):
    pass


def kill_cgroup(cg):
    for d, _, _ in os.walk(cg):
        for f in ("freezer.state", "cgroup.freeze"):
            try:
                with open(os.path.join(d, f), "w") as fh:
                    fh.write("THAWED" if f == "freezer.state" else "0")
            except OSError:
                pass
        try:
            with open(os.path.join(d, "cgroup.procs")) as fh:
                for pid in fh.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
        except OSError:
            pass


def remove_cgroup(cg):
    for d, _, _ in sorted(os.walk(cg), key=lambda t: len(t[0]), reverse=True):
        for _ in range(20):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def remove_network(bridge):
    def names(*args):
        out = subprocess.run(["ip", *args], capture_output=True, text=True).stdout
        return [l.split(": ")[1].split("@")[0] for l in out.splitlines() if ": " in l]
    bridges = [n for n in names("-o", "link", "show") if n.startswith(bridge + "-")] + [bridge]
    for br in bridges:
        for n in names("-o", "link", "show", "master", br):
            subprocess.run(["ip", "link", "del", n], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", br], stderr=subprocess.DEVNULL)
    subprocess.run(["nft", "delete", "table", "ip", "berth_" + bridge], stderr=subprocess.DEVNULL)
