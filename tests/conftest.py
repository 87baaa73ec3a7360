from __future__ import annotations

from pathlib import Path

import pytest
import redis

from services.structure.sirene.stock_import import import_stock
from shared.settings import Settings
from tests.servers import RedisServer, SmtpServer


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server) -> redis.Redis:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sirene_db(tmp_path_factory) -> Path:
    """The shipped SIRENE sample, imported once for the session (what `make run` does first)."""
    path = tmp_path_factory.mktemp("sirene") / "sirene.sqlite3"
    import_stock(Path(Settings().sirene_dir), path)
    return path


@pytest.fixture
def settings(redis_server, sirene_db, tmp_path) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "SIRENE_DB": str(sirene_db),
            "SECRET_KEY": "test-secret-key",
            "CAPTCHA_ENABLED": "0",
            "MAIL_DIR": str(tmp_path / "mail"),
            "EVENT_WAIT_MS": "2000",
            "EVENT_CLAIM_IDLE_MS": "300",
            "EVENT_MAX_DELIVERIES": "3",
        }
    )


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()
