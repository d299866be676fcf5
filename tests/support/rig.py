"""A multi-host rig on one machine: Linux network namespaces, one per host (docs/deploy.md).

::

                        bridge "br0" in the state namespace, 10.R.S.0/24
       ┌───────────────────────┬──────────────────┬──────────────────┬──────────────┐
   driver .1 (this process)   state .2          host a .11         host b .12     console .20
                              Redis (AOF)        hitl worker        hitl worker    hitl console
                              PostgreSQL         own data dir       own data dir
                              sandbox site       own /tmp           own /tmp

Every process reaches the others by these addresses only: Redis, PostgreSQL, the sandbox and
the console bind their namespace's address, never loopback, so anything that works on one host
only (a Unix socket, a local file, ``localhost`` in a URL) fails here. Each host's processes
run with a private mount namespace (``ip netns exec`` makes one) where the host's own
directory is bind-mounted on ``/tmp``. The hosts share ``HITL_SECRET_KEY`` and nothing else.

``with Rig() as rig:`` builds it and tears everything down (processes, namespaces, files)
however the block ends; ``Rig.clean_stale()`` removes what a crashed earlier run left (its
namespaces are named ``hitlrig<pid>-...`` after a process that no longer exists).
Needs root (``ip netns``); ``python scripts/rig.py up`` runs one by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_DIR = ROOT / "projects" / "sandbox"
RIG_PROJECT = ROOT / "tests" / "support" / "rigproject"
PREFIX = "hitlrig"
_NS_RE = re.compile(rf"^{PREFIX}(\d+)-(\w+)$")
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def available() -> str | None:
    """None when the rig can run here, else why not."""
    if os.geteuid() != 0:
        return "the multi-host rig needs root (ip netns)"
    if shutil.which("ip") is None:
        return "the multi-host rig needs iproute2 (ip)"
    if not Path("/usr/bin/redis-server").exists():
        return "the multi-host rig needs Debian's redis-server (apt-get install redis-server)"
    return None


def _pid_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a killed rig's process may stay one
    until its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2:][:1] not in ("Z", "X")


def _ns_pids(ns: str) -> list[int]:
    out = _ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split()]


def _kill_ns(ns: str) -> None:
    """SIGKILL every process in the namespace, until none is left."""
    for _ in range(50):
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class Proc:
    """A process started in a namespace, with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.popen, self.log_path = name, popen, log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Host:
    """One crawler host: a namespace, an address, a data dir and a /tmp of its own."""

    def __init__(self, rig: Rig, name: str, address: str) -> None:
        self.rig, self.name, self.address = rig, name, address
        self.ns = f"{rig.prefix}-{name}"
        self.dir = rig.dir / name
        self.data_dir = self.dir / "data"
        self.tmp = self.dir / "tmp"
        self.hostname = f"rig-{name}"
        self.workers: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.rig.shared_env(), "HITL_DATA_DIR": str(self.data_dir), "TMPDIR": "/tmp",
                "HITL_JOB_DIR": str(self.rig.jobs_dir), **extra}

    def start_worker(self, *, queues: str = "crawls,webhooks", **extra: str) -> Proc:
        """``hitl worker --queues ...`` on this host."""
        proc = self.rig.spawn(self, [sys.executable, "-m", "hitl_console.cli", "worker", "--queues", queues],
                              self.env(**extra), f"{self.name}-worker{len(self.workers)}")
        self.workers.append(proc)
        return proc

    def kill_all(self) -> None:
        """SIGKILL every process of this host at once (a host lost)."""
        _kill_ns(self.ns)
        for proc in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)

    def pids(self) -> list[int]:
        return _ns_pids(self.ns)


class Rig:
    """The rig: call :meth:`start`, then :meth:`stop` in a ``finally`` (or use ``with``)."""

    def __init__(self, *, hosts: int = 2, console: bool = True, sandbox_options: dict[str, Any] | None = None,
                 secret_key: str | None = None) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}"
        net = random.Random().randrange(1, 250)
        self.subnet = f"10.{random.Random().randrange(200, 250)}.{net}"
        self.driver_ip = f"{self.subnet}.1"
        self.state_ip = f"{self.subnet}.2"
        self.console_ip = f"{self.subnet}.20"
        self.state_ns = f"{self.prefix}-state"
        self.console_ns = f"{self.prefix}-console"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/var/tmp"))
        self.hosts = [Host(self, chr(ord("a") + i), f"{self.subnet}.{11 + i}") for i in range(hosts)]
        self.with_console = console
        self.sandbox_options = {"pages": 6, "static_pages": 5000, **(sandbox_options or {})}
        self.secret_key = secret_key or "rig-secret-" + uuid.uuid4().hex
        self.procs: list[Proc] = []
        # HITL_JOB_DIR: one folder every host mounts at the same path (NFS in a real deployment)
        self.jobs_dir = self.dir / "shared" / "jobs"
        self.namespaces: list[str] = []
        self.redis_url = f"redis://{self.state_ip}:6379/0"
        self.database_url = f"postgresql://postgres@{self.state_ip}:5432/hitl"
        self.sandbox_url = f"http://{self.state_ip}:8999"
        self.console_url = f"http://{self.console_ip}:8000"

    # --- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Rig:
        hidden = [str(p) for p in (ROOT, Path(sys.executable)) if Path("/tmp") in (p, *p.parents)]
        if hidden:  # each host's /tmp is its own: a checkout or venv there is not in the hosts
            raise RuntimeError(f"the multi-host rig gives each host its own /tmp, which hides {hidden[0]} from "
                               "them: run the tests from a checkout (and venv) outside /tmp")
        self.clean_stale()
        try:
            self._network()
            self._redis()
            self._postgres()
            self._sandbox()
            self.hitl("db", "upgrade")
            if self.with_console:
                self._console()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every process, delete the namespaces (their veths go with them) and the files."""
        for ns in reversed(self.namespaces):
            _kill_ns(ns)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()
        _ip("link", "del", f"{self._short}d", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def clean_stale() -> list[str]:
        """Remove the namespaces (and their processes) of rigs whose process is gone."""
        removed = []
        for line in _ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            match = _NS_RE.match(name)
            if match and not _pid_alive(int(match.group(1))):
                _kill_ns(name)
                _ip("netns", "del", name, check=False)
                removed.append(name)
        for stale in Path("/var/tmp").glob(f"{PREFIX}*-*"):
            match = re.match(rf"{PREFIX}(\d+)-", stale.name)
            if match and not _pid_alive(int(match.group(1))):
                shutil.rmtree(stale, ignore_errors=True)
        return removed

    # --- the network --------------------------------------------------------------------------
    @property
    def _short(self) -> str:
        return f"hr{os.getpid() % 10**7}"  # interface names: 15 characters at most

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _attach(self, ns: str | None, ifname: str, address: str) -> None:
        """A veth pair: one end in ``ns`` (None: this namespace) with ``address``, the other
        on the state namespace's bridge."""
        peer = f"{ifname}p"
        _ip("link", "add", ifname, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.state_ns)
        _ip("-n", self.state_ns, "link", "set", peer, "master", "br0")
        _ip("-n", self.state_ns, "link", "set", peer, "up")
        where = [] if ns is None else ["-n", ns]
        if ns is not None:
            _ip("link", "set", ifname, "netns", ns)
        _ip(*where, "addr", "add", f"{address}/24", "dev", ifname)
        _ip(*where, "link", "set", ifname, "up")

    def _network(self) -> None:
        self.dir.chmod(0o755)
        self.jobs_dir.mkdir(parents=True)
        self._add_ns(self.state_ns)
        _ip("-n", self.state_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.state_ns, "addr", "add", f"{self.state_ip}/24", "dev", "br0")
        _ip("-n", self.state_ns, "link", "set", "br0", "up")
        self._attach(None, f"{self._short}d", self.driver_ip)  # this process: the operator's laptop
        for host in self.hosts:
            self._add_ns(host.ns)
            host.tmp.mkdir(parents=True, mode=0o1777)
            host.tmp.chmod(0o1777)
            host.data_dir.mkdir(parents=True)
            self._attach(host.ns, f"{self._short}{host.name}", host.address)
        if self.with_console:
            self._add_ns(self.console_ns)
            self._attach(self.console_ns, f"{self._short}c", self.console_ip)

    # --- processes ------------------------------------------------------------------------------
    def spawn(self, where: Host | str, cmd: list[str], env: dict[str, str], name: str, *,
              user: str | None = None) -> Proc:
        """Start ``cmd`` in a namespace; a host's gets its own /tmp (a private mount namespace)."""
        ns = where.ns if isinstance(where, Host) else where
        log = self.dir / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        inner = list(cmd)
        if user is not None:
            inner = ["runuser", "-u", user, "--", *inner]
        if isinstance(where, Host):  # its own hostname (UTS namespace) and its own /tmp
            inner = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && mount --bind "$1" /tmp && shift && exec "$@"',
                     where.hostname, str(where.tmp), *inner]
        with open(log, "ab") as out:
            popen = subprocess.Popen(["ip", "netns", "exec", ns, *inner], env=env, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def shared_env(self) -> dict[str, str]:
        """What every process of the rig shares: the state's addresses and the secret key."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("HITL_", "SCRAPY_"))}
        return {**keep, "PYTHONPATH": str(ROOT), "HITL_REDIS_URL": self.redis_url,
                "HITL_DATABASE_URL": self.database_url, "HITL_SECRET_KEY": self.secret_key,
                "PYTHONUNBUFFERED": "1", "NO_PROXY": "*", "RIG_SANDBOX_ADDRESS": self.state_ip}

    def driver_env(self) -> dict[str, str]:
        """The environment of a CLI run from this process (the operator's machine)."""
        return {**self.shared_env(), "HITL_DATA_DIR": str(self.dir / "driver")}

    def hitl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``hitl`` CLI from the driver, against the rig's state."""
        result = subprocess.run([sys.executable, "-m", "hitl_console.cli", *args], env=self.driver_env(),
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"hitl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def hitl_json(self, *args: str) -> Any:
        return json.loads(self.hitl(*args, "--json").stdout)

    def _wait(self, proc: Proc, ready: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{what} exited ({proc.popen.returncode}):\n{proc.log()[-3000:]}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not start within {timeout} s:\n{proc.log()[-3000:]}")

    def _redis(self) -> None:
        import redis

        data = self.dir / "redis"
        data.mkdir()
        proc = self.spawn(self.state_ns, ["/usr/bin/redis-server", "--bind", self.state_ip, "--port", "6379",
                                          "--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec",
                                          "--save", "", "--protected-mode", "no"], dict(os.environ), "redis")

        def ready() -> bool:
            with redis.Redis.from_url(self.redis_url, socket_timeout=2) as client:
                return not client.info().get("loading")

        self._wait(proc, ready, "redis-server")

    def _postgres(self) -> None:
        from tests.support.servers import _pg_bindir

        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        pg = self.dir / "pg"
        pg.mkdir()
        shutil.chown(pg, "postgres")
        subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(pg / "data"),
                        "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        with open(pg / "data" / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")
        proc = self.spawn(self.state_ns, [str(bindir / "postgres"), "-D", str(pg / "data"), "-p", "5432",
                                          "-h", self.state_ip, "-k", str(pg), "-c", "fsync=off",
                                          "-c", "synchronous_commit=off", "-c", "max_connections=200"],
                          dict(os.environ), "postgres", user="postgres")
        import psycopg

        admin = f"postgresql://postgres@{self.state_ip}:5432/postgres"

        def ready() -> bool:
            with psycopg.connect(admin, connect_timeout=2, autocommit=True) as conn:
                conn.execute("CREATE DATABASE hitl")
            return True

        self._wait(proc, ready, "PostgreSQL")

    def _sandbox(self) -> None:
        cmd = [sys.executable, "-m", "sandbox", "--host", self.state_ip, "--port", "8999"]
        for key, value in self.sandbox_options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value not in (None, False):
                cmd += [flag, str(value)]
        env = {**os.environ, "PYTHONPATH": str(SANDBOX_DIR)}
        proc = self.spawn(self.state_ns, cmd, env, "sandbox")
        self._wait(proc, lambda: self.sandbox_call("GET", "/health") is not None, "the sandbox")

    def _console(self) -> None:
        env = {**self.shared_env(), "HITL_DATA_DIR": str(self.dir / "console"),
               "HITL_PUBLIC_URL": self.console_url}
        proc = self.spawn(self.console_ns, [sys.executable, "-m", "hitl_console.cli", "console", "--host",
                                            self.console_ip, "--port", "8000"], env, "console")

        def ready() -> bool:
            with _opener.open(self.console_url + "/health", timeout=2):
                return True

        self._wait(proc, ready, "the console", timeout=90)

    # --- the sandbox --------------------------------------------------------------------------
    def sandbox_call(self, method: str, endpoint: str, query: dict[str, str] | None = None) -> Any:
        from urllib.parse import urlencode

        url = self.sandbox_url + endpoint + ("?" + urlencode(query) if query else "")
        request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
        with _opener.open(request, timeout=10) as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError:
            return body

    def sandbox_requests(self, path: str) -> list[dict[str, Any]]:
        """The sandbox's record of the requests to ``path`` (status, cookies...)."""
        return self.sandbox_call("GET", "/__sandbox/requests", {"path": path})

    def sandbox_reset(self) -> None:
        self.sandbox_call("POST", "/__sandbox/reset")

    # --- the console ------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.console_url + path, data=data, method=method, headers=headers)
        try:
            with _opener.open(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
                return exc.code, json.loads(raw) if raw[:1] in (b"{", b"[") else raw

    def state(self) -> Any:
        """A HitlState on the rig's Redis and PostgreSQL, for the driver (close it)."""
        from scrapy_hitl.config import StateConfig
        from scrapy_hitl.state import HitlState

        saved = {k: os.environ.get(k) for k in self.driver_env() if k.startswith("HITL_")}
        os.environ.update({k: v for k, v in self.driver_env().items() if k.startswith("HITL_")})
        try:
            return HitlState.open(StateConfig.from_env())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def describe(self) -> str:
        lines = [f"state     {self.state_ip}: Redis {self.redis_url}, PostgreSQL {self.database_url}, "
                 f"sandbox {self.sandbox_url}"]
        lines += [f"host {h.name}    {h.address}: data dir {h.data_dir}, /tmp {h.tmp}" for h in self.hosts]
        if self.with_console:
            lines.append(f"console   {self.console_ip}: {self.console_url}")
        lines.append(f"HITL_SECRET_KEY shared by all; namespaces {', '.join(self.namespaces)}")
        return "\n".join(lines)
