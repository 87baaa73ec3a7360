"""`python -m system.status` against a real Redis: streams, groups, dead letters, Celery queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.bus import DEAD_LETTERS, stream_for
from shared.events import new_event
from shared.testing import publish_now
from system import status
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET_BODY = "corps-de-l-evenement-avec-donnees-personnelles@example.com"
STARTED = stream_for("RegistrationStarted")


def started(registration_id: str):
    return new_event(
        "RegistrationStarted",
        "identify",
        registration_id,
        {
            "login_email": f"{registration_id}@example.com",
            "identifier_type": "SIRET",
            "identifier": "81880244900038",
            "country": "FR",
        },
    )


@pytest.fixture
def busy_redis(redis_client):
    """Four events, a group with two pending and one not delivered, a dead letter, queued tasks."""
    for number in range(4):
        publish_now(redis_client, started(f"r{number}"))
    ids = [entry_id for entry_id, _ in redis_client.xrange(STARTED)]
    redis_client.xgroup_create(STARTED, "structure", id="0")
    redis_client.xreadgroup("structure", "structure-1", {STARTED: ">"}, count=1)
    redis_client.xack(STARTED, "structure", ids[0])
    redis_client.xreadgroup("structure", "structure-2", {STARTED: ">"}, count=2)  # left pending
    redis_client.xgroup_create(STARTED, "audit", id="$")  # sees only what comes next
    redis_client.xadd(stream_for("AccountActivated"), {"event": "{}"})  # a stream nobody reads yet
    redis_client.set("events:not-a-stream", "x")
    redis_client.xadd(
        DEAD_LETTERS,
        {
            "stream": STARTED,
            "group": "structure",
            "entry_id": ids[1],
            "event": SECRET_BODY,
            "reason": "KeyError: 'siret'",
            "deliveries": "5",
            "consumer": "structure-2",
            "failed_at": "1700000000.5",
        },
    )
    redis_client.rpush("emails", "task-1", "task-2", "task-3")
    redis_client.rpush("emails\x06\x166", "task-urgent")  # kombu's list for priority 6
    redis_client.hset("unacked", mapping={"tag-1": "[]", "tag-2": "[]"})
    return ids


def test_collect_reports_every_figure(redis_client, busy_redis):
    report = status.collect(redis_client, ["emails", "sweeps"], "redis://:hunter2@127.0.0.1:6379/0")

    assert report.redis_url == "redis://127.0.0.1:6379/0"
    assert [s.name for s in report.streams] == [stream_for("AccountActivated"), STARTED]
    activated, started_stream = report.streams
    assert (activated.length, activated.groups) == (1, [])
    assert started_stream.length == 4
    audit, structure = started_stream.groups
    assert (audit.name, audit.consumers, audit.pending, audit.lag) == ("audit", 0, 0, 0)
    assert (structure.name, structure.consumers, structure.pending, structure.lag) == ("structure", 2, 2, 1)
    assert structure.last_delivered_id == busy_redis[2]

    assert report.dead_letters.length == 1
    (letter,) = report.dead_letters.latest
    assert (letter.stream, letter.group, letter.entry_id) == (STARTED, "structure", busy_redis[1])
    assert (letter.reason, letter.deliveries) == ("KeyError: 'siret'", 5)
    assert letter.failed_at == "2023-11-14T22:13:20+00:00"

    assert {q.name: q.waiting for q in report.queues} == {"emails": 4, "sweeps": 0}
    assert report.unacked == 2


def test_lag_is_counted_when_redis_does_not_report_it(redis_client, busy_redis):
    """Redis 6.2's XINFO GROUPS has no `lag`: the entries after the last delivered one are counted."""
    info = {"last-delivered-id": busy_redis[1]}
    assert status._lag(redis_client, STARTED, info) == 2
    assert status._lag(redis_client, STARTED, {"last-delivered-id": "0-0", "lag": None}) == 4
    assert status._lag(redis_client, STARTED, {"last-delivered-id": "0-0", "lag": 7}) == 7


def run_status(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "system.status", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_command_prints_the_report_as_json(redis_server, busy_redis):
    result = run_status(redis_server.url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    streams = {s["name"]: s for s in report["streams"]}
    groups = {g["name"]: g for g in streams[STARTED]["groups"]}
    assert streams[STARTED]["length"] == 4
    assert groups["structure"] == {
        "name": "structure",
        "consumers": 2,
        "pending": 2,
        "lag": 1,
        "last_delivered_id": busy_redis[2],
    }
    assert report["dead_letters"]["length"] == 1
    assert report["dead_letters"]["latest"][0]["reason"] == "KeyError: 'siret'"
    assert {q["name"]: q["waiting"] for q in report["queues"]} == {"emails": 4, "sweeps": 0}
    assert report["unacked"] == 2
    assert SECRET_BODY not in result.stdout


def test_command_prints_a_readable_report(redis_server, busy_redis):
    result = run_status(redis_server.url)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert f"{STARTED} — 4 entrée(s)" in lines
    assert f"structure 2 2 1 {busy_redis[2]}" in lines
    assert f"audit 0 0 0 {busy_redis[3]}" in lines
    assert "aucun groupe de consommateurs" in lines
    assert f"Lettres mortes ({DEAD_LETTERS}) : 1 entrée(s)" in lines
    assert "raison : KeyError: 'siret'" in lines
    assert "emails 4 en attente" in lines and "sweeps 0 en attente" in lines
    assert any(line.startswith("non acquittées 2") for line in lines)
    assert SECRET_BODY not in text


def test_unreachable_redis_exits_1_with_a_clear_message():
    result = run_status(f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Redis injoignable" in result.stderr and "127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
