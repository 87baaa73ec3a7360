"""Streams trimmed by age on a real Redis, never past what a consumer group still needs.

Entry ids begin with their time in ms: old entries are written with explicit ids from a fixed
clock, and the trim runs through the task's function with that clock."""

from __future__ import annotations

import pytest

from shared.bus import DEAD_LETTERS, stream_for
from shared.celery_app import make_celery
from shared.retention_tasks import TRIM_EVENT_STREAMS, trim_event_streams_now
from shared.settings import Settings
from system import status
from tests.clock import Clock

NOW = 1_800_000_000.0
DAY = 24 * 3600
STARTED = stream_for("RegistrationStarted")
ACTIVATED = stream_for("AccountActivated")


@pytest.fixture
def settings(redis_server) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_server.url})


def entry_id(days_ago: float, seq: int = 0) -> str:
    return f"{int((NOW - days_ago * DAY) * 1000)}-{seq}"


def add(client, stream: str, *ids: str) -> None:
    for id_ in ids:
        client.xadd(stream, {"event": "{}"}, id=id_)


def ids_of(client, stream: str) -> list[str]:
    return [id_ for id_, _ in client.xrange(stream)]


def trim(client, settings: Settings) -> int:
    return trim_event_streams_now(client, settings, Clock(NOW))


def test_entries_older_than_the_retention_go_and_recent_ones_stay(redis_client, settings):
    old, recent = [entry_id(9), entry_id(8, 1)], [entry_id(6), entry_id(0.1)]
    add(redis_client, STARTED, *old, *recent)
    redis_client.xgroup_create(STARTED, "structure", id="0")
    for id_, _ in redis_client.xreadgroup("structure", "s-1", {STARTED: ">"})[0][1]:
        redis_client.xack(STARTED, "structure", id_)
    add(redis_client, ACTIVATED, entry_id(30), entry_id(1))  # a stream no group reads

    assert trim(redis_client, settings) == 3
    assert ids_of(redis_client, STARTED) == recent
    assert ids_of(redis_client, ACTIVATED) == [entry_id(1)]
    assert trim(redis_client, settings) == 0


def test_an_old_entry_pending_for_a_group_keeps_itself_and_what_follows(redis_client, settings):
    ids = [entry_id(10), entry_id(9), entry_id(8), entry_id(1)]
    add(redis_client, STARTED, *ids)
    redis_client.xgroup_create(STARTED, "structure", id="0")
    redis_client.xgroup_create(STARTED, "audit", id="$")  # handled nothing, needs nothing old
    delivered = [id_ for id_, _ in redis_client.xreadgroup("structure", "s-1", {STARTED: ">"})[0][1]]
    for id_ in delivered:
        if id_ != ids[1]:
            redis_client.xack(STARTED, "structure", id_)  # ids[1] stays pending: delivered, never acked

    assert trim(redis_client, settings) == 1
    assert ids_of(redis_client, STARTED) == ids[1:]

    redis_client.xack(STARTED, "structure", ids[1])
    assert trim(redis_client, settings) == 2
    assert ids_of(redis_client, STARTED) == [ids[3]]


def test_an_old_entry_a_group_has_not_read_yet_is_kept(redis_client, settings):
    ids = [entry_id(10), entry_id(9), entry_id(8), entry_id(1)]
    add(redis_client, STARTED, *ids)
    redis_client.xgroup_create(STARTED, "notify", id="0")
    ((_, read),) = redis_client.xreadgroup("notify", "n-1", {STARTED: ">"}, count=1)
    redis_client.xack(STARTED, "notify", read[0][0])

    assert trim(redis_client, settings) == 1
    assert ids_of(redis_client, STARTED) == ids[1:]


def test_dead_letters_are_kept_for_their_own_retention(redis_client, settings):
    add(redis_client, DEAD_LETTERS, entry_id(31), entry_id(10))
    add(redis_client, STARTED, entry_id(10))

    assert trim(redis_client, settings) == 2
    assert ids_of(redis_client, DEAD_LETTERS) == [entry_id(10)]
    assert ids_of(redis_client, STARTED) == []

    shorter = Settings.from_env({"REDIS_URL": settings.redis_url, "DEAD_LETTER_RETENTION_SECONDS": "86400"})
    assert trim(redis_client, shorter) == 1
    assert ids_of(redis_client, DEAD_LETTERS) == []


def test_status_names_the_group_that_holds_the_trim(redis_client):
    ids = [entry_id(10), entry_id(9), entry_id(1)]
    add(redis_client, STARTED, *ids)
    redis_client.xgroup_create(STARTED, "structure", id="0")
    redis_client.xreadgroup("structure", "s-1", {STARTED: ">"}, count=1)  # ids[0] pending
    redis_client.xgroup_create(STARTED, "audit", id="$")
    add(redis_client, ACTIVATED, entry_id(9))

    report = status.collect(redis_client, ["sweeps"], now=NOW)

    streams = {s.name: s for s in report.streams}
    assert (streams[STARTED].trim_held_by, streams[STARTED].trim_waits_at) == (["structure"], ids[0])
    assert (streams[ACTIVATED].trim_held_by, streams[ACTIVATED].trim_waits_at) == ([], None)
    lines = [" ".join(line.split()) for line in status.render_text(report).splitlines()]
    assert f"purge par âge retenue à {ids[0]} par : structure" in lines


def test_beat_runs_the_trim_on_the_sweeps_queue_every_sweep():
    app = make_celery(Settings.from_env({"EXPIRY_SWEEP_SECONDS": "42"}))
    (entry,) = [e for e in app.conf.beat_schedule.values() if e["task"] == TRIM_EVENT_STREAMS]
    assert entry["schedule"] == 42.0
    assert app.conf.task_routes["retention.*"] == {"queue": "sweeps"}
    assert "shared.retention_tasks" in app.conf.include


def test_retention_settings_have_their_defaults_and_a_floor():
    defaults = Settings.from_env({})
    assert (defaults.event_retention_seconds, defaults.dead_letter_retention_seconds) == (604800, 2592000)
    with pytest.raises(ValueError, match="EVENT_RETENTION_SECONDS"):
        Settings.from_env({"EVENT_RETENTION_SECONDS": "59"})
