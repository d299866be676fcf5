"""Real servers for the tests: redis-server and PostgreSQL, started once per session."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from scrapy_hitl.state.redis_server import redis_server_binary
from tests.support.processes import die_with_test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server on a loopback TCP port with AOF, in a temp dir."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hitl-test-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        # Several pytest-xdist workers (and other test runs) pick ports at once: a port
        # can be taken between free_port() and the bind. Then our redis-server exits, and
        # a PING would be answered by someone else's server, so check whose it is.
        for _attempt in range(5):
            if self._start_once():
                return self
            self.port = free_port()
        raise RuntimeError("redis-server did not start")

    def _start_once(self) -> bool:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_test(signal.SIGTERM),  # not left running if pytest is killed
        )
        client = redis.Redis.from_url(self.url)
        try:
            for _ in range(500):
                if self.proc.poll() is not None:
                    return False  # exited: the port is taken
                try:
                    info = client.info()  # answered while the AOF loads, unlike PING
                except redis.ConnectionError:
                    time.sleep(0.02)
                    continue
                if info["process_id"] == self.proc.pid:
                    if info.get("loading"):
                        time.sleep(0.02)  # ours, still loading the AOF: not ready for commands
                        continue
                    return True
                self.proc.kill()  # another server answers on this port
                self.proc.wait(timeout=10)
                return False
        finally:
            client.close()
        raise RuntimeError("redis-server did not start")

    def restart(self) -> None:
        """Stop (SHUTDOWN writes the AOF) and start again on the same port and dir."""
        self.shutdown()
        self.start_again()

    def shutdown(self) -> None:
        """Stop the server the way an operator would (SHUTDOWN writes the AOF): clients get
        "connection refused" until :meth:`start_again`."""
        client = redis.Redis.from_url(self.url)
        try:
            client.shutdown(nosave=False, save=False)
        except redis.ConnectionError:
            pass
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def start_again(self) -> None:
        """Start on the same port and dir (loading the AOF) after :meth:`shutdown`."""
        if not self._start_once():  # the port must stay: clients have the URL
            raise RuntimeError(f"redis-server did not restart on port {self.port}")

    def files(self) -> list[Path]:
        """Every file the server wrote in its dir (the AOF, and anything else)."""
        return sorted(p for p in self.dir.rglob("*") if p.is_file())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + postgres) on a loopback port.

    As root, the server runs as the ``postgres`` system user, because PostgreSQL refuses
    to run as root.
    """

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="hitl-test-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> PostgresServer:
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust",
                                 "-U", self.user, "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True)
        # As for Redis: if the port was taken meanwhile (another xdist worker), postgres
        # exits, and a connection would reach someone else's cluster. Retry on a new port.
        for _attempt in range(5):
            if self._start_once(data):
                return self
            self.port = free_port()
        raise RuntimeError("PostgreSQL did not start")

    def _start_once(self, data: Path) -> bool:
        self.proc = subprocess.Popen(
            self._cmd(str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                      "-h", "127.0.0.1", "-k", str(self.dir), "-c", "fsync=off",
                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import psycopg

        for _ in range(300):
            if self.proc.poll() is not None:
                return False  # exited: the port is taken
            try:
                with psycopg.connect(self.admin_url, connect_timeout=1) as conn:
                    owner = conn.execute("SHOW data_directory").fetchone()[0]
            except psycopg.OperationalError:
                time.sleep(0.05)
                continue
            if Path(owner).resolve() == data.resolve():
                return True
            self._kill()  # another cluster answers on this port
            return False
        raise RuntimeError("PostgreSQL did not start")

    def _kill(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str, template: str | None = None) -> str:
        """(Re)create database ``name``, empty or as a copy of the database ``template``."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Immediate shutdown: a throwaway cluster need not wait for the clients a test
            # left connected (TERM's "smart" shutdown does), nor write a shutdown checkpoint
            # of the hundreds of databases the tests made ("fast" does: seconds).
            subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.dir / "data"),
                                     "-m", "immediate", "-w", "-t", "20"), capture_output=True, check=False)
            self._kill()
        # The cluster holds every database the tests made (~250 in a run: ~130,000 files,
        # 3.6 GB, most of it not yet written back): removing it took 6-10 s, in the teardown
        # of the worker's last test, with every other worker done. An rm of its own, left to
        # finish after pytest exits, does it off the run's time. The server is stopped, so
        # nothing writes there any more.
        subprocess.run(["sh", "-c", 'rm -rf -- "$1" &', "sh", str(self.dir)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, check=False)
