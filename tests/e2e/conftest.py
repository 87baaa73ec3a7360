"""The whole system started as `make run` starts it, with its own Redis and a real SMTP server."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from playwright.sync_api import sync_playwright

from tests.e2e.browser import CHROMIUM, LAUNCH_ARGS
from tests.servers import RedisServer, SmtpServer, free_port
from tests.system import in_background

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
        **{
            f"RATE_LIMIT_{action}_PER_IP": "1000 per minute"
            for action in ("REGISTRATION", "STRUCTURE", "RESEND", "ACTIVATION")
        },
        **settings,
    }
    env.pop("SECRET_KEY", None)
    log = var_dir / "system.log"
    try:
        with in_background(env, log) as running:
            client = redis.Redis.from_url(redis_server.url, decode_responses=True)
            yield RunningSystem(running.base_url, client, smtp, log)
    finally:
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
    """Activation links valid 2 seconds, attachment requests 3, swept every second: to see them expire."""
    with start_system(
        tmp_path_factory.mktemp("var-ttl"),
        ACTIVATION_TTL_SECONDS="2",
        ATTACHMENT_TTL_SECONDS="3",
        EXPIRY_SWEEP_SECONDS="1",
    ) as system:
        yield system


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, headless, one per test module (media plays without a sound card; a key
    press is the user gesture that starts it)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()
