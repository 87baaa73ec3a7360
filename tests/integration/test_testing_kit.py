"""The test kit of the event contract (`shared.testing`) against a real Redis: an event published
while a test waits is seen as it arrives, from a blocking read rather than by polling."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import redis

from shared.events import Event, new_event, stream_for
from shared.testing import PAGE, events_on, publish_now, stream_end, wait_for_event

STARTED = "RegistrationStarted"


def started(registration_id: str) -> Event:
    return new_event(
        STARTED,
        "identify",
        registration_id,
        {
            "login_email": "a@example.com",
            "identifier_type": "SIRET",
            "identifier": "81880244900038",
            "country": "FR",
        },
    )


def counting_commands(client: redis.Redis, monkeypatch) -> Counter:
    """The commands `client` sends from now on, by name."""
    sent: Counter = Counter()
    original = client.execute_command

    def counting(*args, **options):
        sent[str(args[0]).upper()] += 1
        return original(*args, **options)

    monkeypatch.setattr(client, "execute_command", counting)
    return sent


def publish_later(client: redis.Redis, event: Event, delay: float) -> threading.Thread:
    def publish() -> None:
        time.sleep(delay)
        publish_now(client, event)

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


def test_an_event_already_published_is_found_at_once(redis_client):
    publish_now(redis_client, started("r1"))
    (event,) = wait_for_event(redis_client, STARTED, timeout=0.5)
    assert event.subject == "r1"
    assert events_on(redis_client, STARTED) == [event]


def test_an_event_published_during_the_wait_is_seen_as_it_arrives_without_polling(
    redis_client, redis_server, monkeypatch
):
    publisher = redis.Redis.from_url(redis_server.url, decode_responses=True)
    sent = counting_commands(redis_client, monkeypatch)
    thread = publish_later(publisher, started("late"), delay=0.4)
    began = time.monotonic()
    (event,) = wait_for_event(redis_client, STARTED, timeout=10)
    waited = time.monotonic() - began
    thread.join()
    publisher.close()
    assert event.subject == "late"
    assert 0.35 < waited < 1.5, "returned when the event arrived, not at a polling tick or the timeout"
    # One read of what was there, then one blocking read that the event ended.
    assert sent == {"XRANGE": 1, "XREAD": 1}


def test_a_wait_with_nothing_coming_raises_assertion_error_at_the_timeout(redis_client, monkeypatch):
    publish_now(redis_client, started("other"))
    sent = counting_commands(redis_client, monkeypatch)
    began = time.monotonic()
    with pytest.raises(AssertionError, match="RegistrationStarted"):
        wait_for_event(redis_client, STARTED, timeout=1.5, where=lambda e: e.subject == "never")
    assert 1.4 < time.monotonic() - began < 3
    assert sent["XREAD"] <= 3, "blocking reads of up to a second, not a poll every few milliseconds"


def test_after_the_stream_end_only_later_events_count(redis_client, redis_server):
    publish_now(redis_client, started("before"))
    cursor = stream_end(redis_client, STARTED)
    with pytest.raises(AssertionError):
        wait_for_event(redis_client, STARTED, timeout=0.2, after=cursor)
    publisher = redis.Redis.from_url(redis_server.url, decode_responses=True)
    thread = publish_later(publisher, started("after"), delay=0.2)
    (event,) = wait_for_event(redis_client, STARTED, timeout=10, after=cursor)
    thread.join()
    publisher.close()
    assert event.subject == "after"


def test_stream_end_of_an_empty_stream_is_its_start(redis_client):
    assert stream_end(redis_client, STARTED) == "0-0"
    publish_now(redis_client, started("first"))
    (event,) = wait_for_event(redis_client, STARTED, after=stream_end(redis_client, "AccountActivated"))
    assert event.subject == "first"


def test_count_and_where_gather_events_already_there_and_arriving(redis_client, redis_server):
    publish_now(redis_client, started("a-1"))
    publish_now(redis_client, started("b-1"))
    publisher = redis.Redis.from_url(redis_server.url, decode_responses=True)
    thread = publish_later(publisher, started("a-2"), delay=0.2)
    found = wait_for_event(
        redis_client, STARTED, timeout=10, count=2, where=lambda e: e.subject.startswith("a")
    )
    thread.join()
    publisher.close()
    assert [e.subject for e in found] == ["a-1", "a-2"]


def test_a_long_stream_is_read_a_page_at_a_time(redis_client):
    with redis_client.pipeline(transaction=False) as pipe:
        for number in range(PAGE + 20):
            pipe.xadd(stream_for(STARTED), {"event": started(f"r{number}").to_json()})
        pipe.execute()
    last = f"r{PAGE + 19}"
    (event,) = wait_for_event(redis_client, STARTED, timeout=1, where=lambda e: e.subject == last)
    assert event.subject == last


def test_a_client_that_does_not_decode_answers_works_too(redis_server):
    raw = redis.Redis.from_url(redis_server.url)
    raw.flushall()
    publish_now(raw, started("bytes"))
    assert isinstance(stream_end(raw, STARTED), str)
    (event,) = wait_for_event(raw, STARTED, timeout=1)
    assert event.subject == "bytes"
    raw.close()
