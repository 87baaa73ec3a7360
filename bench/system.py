"""The system under test, started as `make run` starts it, with a Redis and settings of its own.

`launched(...)`: `python -m system.launcher` (what `make run` runs: honcho and every process of
the Procfile), as tests/e2e/conftest.py does. `procfile(...)`: the same commands and
environment (`system.launcher.plan`), of which a benchmark starts only the processes it names,
so that it knows each service's own port.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.harness import Processes, processes, python_env, wait_http
from services.structure.sirene.stock_import import import_stock
from system.launcher import plan
from tests.servers import RedisServer, free_port
from tests.system import in_background

SERVICES = ("identify", "structure", "activate", "notify")


def base_env(var_dir: Path, redis_url: str, smtp_port: int, sirene_dir: Path | None, **extra: str) -> dict:
    """What every run sets: its Redis, its SMTP sink, no captcha, no rate limits."""
    env = python_env(
        REDIS_URL=redis_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_SECURITY="none",
        PORT=str(free_port()),
        VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(48),
        CAPTCHA_ENABLED="0",
        RATE_LIMITS_ENABLED="0",
        **extra,
    )
    if sirene_dir is not None:
        # Imported here, before anything starts: the launcher then finds the store up to date.
        var_dir.mkdir(parents=True, exist_ok=True)
        env["SIRENE_DIR"] = str(sirene_dir)
        env["SIRENE_DB"] = str(var_dir / "sirene.sqlite3")
        import_stock(sirene_dir, Path(env["SIRENE_DB"]))
    for name in ("SMTP_USERNAME", "SMTP_PASSWORD", "PUBLIC_BASE_URL"):
        env.pop(name, None)
    return env


@contextmanager
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the run's own, with AOF on like the one `make run` starts."""
    server = RedisServer(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Launched:
    pid: int  # the launcher's (honcho's): every process of the system descends from it
    base_url: str
    env: dict[str, str]
    redis: redis.Redis
    log: Path


@contextmanager
def launched(
    var_dir: Path, redis_url: str, smtp_port: int, sirene_dir: Path, **extra: str
) -> Iterator[Launched]:
    """`python -m system.launcher` with this run's Redis, SMTP sink and settings; Ctrl-C at the end."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = base_env(var_dir, redis_url, smtp_port, sirene_dir, **extra)
    log = var_dir / "system.log"
    with in_background(env, log, timeout=120) as running:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        yield Launched(running.pid, running.base_url, env, client, log)


@dataclass
class Planned:
    commands: dict[str, str]
    env: dict[str, str]
    procs: Processes

    def url(self, service: str) -> str:
        """Where a service listens (or the gateway, for `gateway`)."""
        if service == "gateway":
            return f"http://127.0.0.1:{self.env['PORT']}"
        return self.env[f"{service.upper()}_URL"]

    def start(self, *names: str) -> None:
        for name in names:
            self.procs.start(name, self.commands[name], self.env)
        for name in names:
            if name in SERVICES:
                wait_http(f"{self.url(name)}/{name}/healthz", self.procs)
            elif name == "gateway":  # its /healthz wants every service: ask it for one it routes
                wait_http(f"{self.url(name)}/identify/healthz", self.procs)


@contextmanager
def procfile(
    var_dir: Path, redis_url: str, smtp_port: int, sirene_dir: Path, **extra: str
) -> Iterator[Planned]:
    """The Procfile's commands and environment as `make run` computes them; start what you need."""
    commands, env = plan(base_env(var_dir, redis_url, smtp_port, sirene_dir, **extra))
    with processes(var_dir) as procs:
        yield Planned(commands, env, procs)
