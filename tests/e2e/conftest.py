"""The whole system started as `make run` starts it, with its own Redis and a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tests.servers import RedisServer, SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class RunningSystem:
    base_url: str
    redis: redis.Redis
    smtp: SmtpServer
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _wait_ready(base_url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the system stopped while starting:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or still starting its workers
        time.sleep(0.3)
    raise RuntimeError(f"the system was not ready within {timeout}s:\n{log.read_text()[-4000:]}")


@contextmanager
def start_system(var_dir: Path, **settings: str):
    """`python -m system.launcher` (what `make run` runs) with test Redis, SMTP and settings."""
    redis_server = RedisServer(appendonly=True).start()
    smtp = SmtpServer().start()
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "PORT": str(port),
        "VAR_DIR": str(var_dir),
        "CAPTCHA_ENABLED": "0",
        "EVENT_CLAIM_IDLE_MS": "2000",
        # Many journeys come from 127.0.0.1 in a few seconds: per-IP limits far above them. The
        # per-email, per-registration and per-token limits keep their defaults.
        **{f"RATE_LIMIT_{action}_PER_IP": "1000 per minute"
           for action in ("REGISTRATION", "STRUCTURE", "RESEND", "ACTIVATION")},
        **settings,
    }
    env.pop("SECRET_KEY", None)
    log = var_dir / "system.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "system.launcher"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, log)
        yield RunningSystem(
            base_url, redis.Redis.from_url(redis_server.url, decode_responses=True), smtp, log
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        smtp.stop()
        redis_server.stop()


@pytest.fixture(scope="session")
def running_system(tmp_path_factory):
    with start_system(tmp_path_factory.mktemp("var")) as system:
        yield system


@pytest.fixture(scope="module")
def captcha_system(tmp_path_factory):
    """The default configuration: the bot challenge on."""
    with start_system(tmp_path_factory.mktemp("var-captcha"), CAPTCHA_ENABLED="1") as system:
        yield system


@pytest.fixture(scope="module")
def short_ttl_system(tmp_path_factory):
    """Activation links valid 2 seconds, swept every second: to see a link expire."""
    with start_system(
        tmp_path_factory.mktemp("var-ttl"), ACTIVATION_TTL_SECONDS="2", EXPIRY_SWEEP_SECONDS="1"
    ) as system:
        yield system
