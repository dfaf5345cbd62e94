"""The servers and processes one chaos run owns: its broker server, its PostgreSQL database, and
the `intercept` processes (ingress, workers, beat, simulators), each of which the faults may
kill and the run restarts. Nothing here touches a server the run did not start, but for the
one PostgreSQL database it creates (and drops) on the configured server."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

log = logging.getLogger("intercept.chaos")

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening on 127.0.0.1:{port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _die_with_parent() -> None:
    """A process of the run must not outlive the command (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


# ---- the broker servers ---------------------------------------------------------------------


def _reap(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for a server asked to stop; kill it when it does not within `timeout`."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _BrokerServer:
    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


class RedisServer(_BrokerServer):
    """redis-server on its own port and directory: AOF with fsync every second, no eviction
    (docs/reliability.md, operator configuration), so a restart keeps what it had."""

    kind = "redis"

    def __init__(self, home: Path):
        self.dir = home / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log_file = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
             "--protected-mode", "no"],
            stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        wait_port(self.port, 20, "redis-server", self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis fsyncs its AOF before it exits
            _reap(self.proc, 20)

    def flush(self) -> str:
        """Every key of the broker gone: queued messages, unacknowledged ones, bindings."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=3)
        try:
            keys = client.dbsize()
            client.flushall()
        finally:
            client.close()
        return f"FLUSHALL ({keys} keys)"

    def close(self) -> None:
        self.stop()


class RabbitServer(_BrokerServer):
    """A RabbitMQ node of its own (name, ports, data directory), started with rabbitmq-server
    beside any node already running; quorum queues survive its restart."""

    kind = "rabbitmq"

    def __init__(self, home: Path):
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.dir = home / "rabbitmq"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"chaos{self.port}@localhost"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:  # rabbitmq-server started by root runs as the rabbitmq user
            os.chmod(home, 0o755)
            for p in (self.dir, *self.dir.iterdir()):
                shutil.chown(p, "rabbitmq", "rabbitmq")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        log_file = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(["rabbitmq-server"], env=self._env(), stdout=log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        wait_port(self.port, 90, f"RabbitMQ node {self.node} (its log: {self.dir / 'server.log'})", self.proc)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(["rabbitmqctl", "-n", self.node, *args], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.ctl("stop", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                self.proc.terminate()
            _reap(self.proc, 60)

    def flush(self) -> str:
        """Every message waiting in the run's queues deleted, over AMQP (queue.purge); those a
        worker holds unacknowledged are not in the queue to purge."""
        import kombu  # noqa: PLC0415

        purged = {}
        with kombu.Connection(self.url, connect_timeout=5) as conn:
            channel = conn.default_channel
            for queue in ("ingest", "actions", "maintenance"):
                purged[queue] = channel.queue_purge(queue) or 0
        return "purged " + ", ".join(f"{q} ({n} messages)" for q, n in purged.items())

    def close(self) -> None:
        self.stop()


def broker_server(kind: str, home: Path):
    return RabbitServer(home) if kind == "rabbitmq" else RedisServer(home)


# ---- the database ----------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh PostgreSQL database on the configured server, dropped when the run is over."""

    admin_dsn: str
    name: str = field(default_factory=lambda: f"intercept_chaos_{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    @property
    def url(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        user = info.get("user", "postgres")
        password = f":{info['password']}" if info.get("password") else ""
        return f"postgresql+psycopg://{user}{password}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{self.name}"

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every session of this database: what a failover or a proxy
        restart does to the connections of the processes."""
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    def drop(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---- the intercept processes -----------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Process:
    """One `intercept ...` process of the run, restartable with the same arguments."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")} | self.env
        log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "workers", *self.args], cwd=ROOT, env=full_env,
                                     stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.pid is not None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        if self.wait(timeout) is None:
            for child in children_of(self.proc.pid):
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()
