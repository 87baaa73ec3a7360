"""Redis through Sentinel, against a real deployment on 127.0.0.1 (a primary, a replica, three
Sentinels): the clients find the primary, follow a failover by themselves, and with
REDIS_MIN_REPLICAS a transaction returns only once a replica holds it (503 when none confirms)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest
import redis

from services.identify.app import create_app
from shared.replication import NotReplicated, fence
from shared.settings import Settings
from shared.store import broker_url, connect, describe
from shared.unit_of_work import RedisUnitOfWork
from tests.servers import SentinelDeployment

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def deployment():
    deployment = SentinelDeployment().start()
    yield deployment
    deployment.stop()


def settings_for(deployment: SentinelDeployment, **more: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": "redis://ignored.invalid:1/0",
            "REDIS_SENTINELS": deployment.sentinels_setting,
            "REDIS_MASTER_NAME": deployment.master_name,
            "SECRET_KEY": "test-secret-key",
            "CAPTCHA_ENABLED": "0",
            **more,
        }
    )


def test_the_settings_name_the_sentinels_and_the_broker_follows_them():
    settings = Settings.from_env(
        {"REDIS_URL": "redis://:s3cret@x:1/2", "REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380"}
    )
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert broker_url(settings) == "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26380/2"
    assert "s3cret" not in describe(settings) and "10.0.0.2:26380" in describe(settings)
    with pytest.raises(ValueError):
        Settings.from_env({"REDIS_SENTINELS": "no-port-here"})


def test_every_client_follows_a_failover_by_itself(deployment):
    settings = settings_for(deployment)
    client = connect(settings)
    client.set("before", "1")
    fence(client, "test", 1, 2000)  # on the replica too: replication is asynchronous, WAIT makes it sure
    old_primary = deployment.primary_port()
    assert client.connection_pool.get_master_address()[1] == old_primary

    killed = time.monotonic()
    os.kill(deployment.primary.proc.pid, signal.SIGKILL)
    deployment.wait_until(lambda: deployment.primary_port() not in (None, old_primary), "a promotion")
    promoted = time.monotonic() - killed
    deadline = time.monotonic() + 20
    while True:  # what a request sees meanwhile: connection errors, then the new primary
        try:
            client.set("after", "1")
            break
        except (redis.ConnectionError, redis.TimeoutError):
            assert time.monotonic() < deadline, "the client never reached the promoted replica"
            time.sleep(0.1)
    assert client.get("before") == "1" and client.get("after") == "1"
    assert client.connection_pool.get_master_address()[1] == deployment.replica.port
    print(f"\n[sentinel] replica promoted {promoted:.1f} s after the primary was killed")


def test_an_app_answers_through_sentinel(deployment):
    settings = settings_for(deployment)
    app = create_app(settings, client=connect(settings))
    answer = app.test_client().get("/identify/healthz")
    assert answer.status_code == 200


def test_a_transaction_waits_for_its_replica_and_503_when_none_confirms(deployment):
    settings = settings_for(deployment, REDIS_MIN_REPLICAS="1", REDIS_REPLICA_TIMEOUT_MS="300")
    client = connect(settings)
    uow = RedisUnitOfWork(
        client,
        "test",
        stream_maxlen=1000,
        min_replicas=settings.redis_min_replicas,
        replica_timeout_ms=settings.redis_replica_timeout_ms,
    )

    def write(value: str) -> None:
        uow.writes.set("k", value)

    uow.run(write, "one")
    replica = redis.Redis(port=deployment.replica.port, decode_responses=True)
    assert replica.get("k") == "one"  # answered only once the replica held it

    deployment.replica.proc.send_signal(signal.SIGSTOP)  # alive, but confirms nothing
    try:
        started = time.monotonic()
        with pytest.raises(NotReplicated) as refused:
            uow.run(write, "two")
        assert 0.25 < time.monotonic() - started < 5
        assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
    finally:
        deployment.replica.proc.send_signal(signal.SIGCONT)


def test_no_replica_asked_for_means_no_wait(deployment):
    settings = replace(settings_for(deployment), redis_min_replicas=0)
    client = connect(settings)
    uow = RedisUnitOfWork(client, "test", stream_maxlen=1000, min_replicas=settings.redis_min_replicas)
    uow.run(lambda: uow.writes.set("k", "v"))
    assert client.get("test:replication-fence") is None
