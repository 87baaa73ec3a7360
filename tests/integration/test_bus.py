"""The event plumbing against a real Redis: at-least-once, idempotent, claimed, dead-lettered."""

from __future__ import annotations

import threading
import time

import pytest

from shared.bus import DEAD_LETTERS, Consumer, stream_for
from shared.events import Event, new_event
from shared.testing import publish_now
from shared.unit_of_work import RedisUnitOfWork


def started(registration_id: str = "r1", email: str = "a@example.com") -> Event:
    return new_event(
        "RegistrationStarted",
        "identify",
        registration_id,
        {"login_email": email, "identifier_type": "SIRET", "identifier": "81880244900038", "country": "FR"},
    )


def counting_handler(key: str = "test:count"):
    def handle(event: Event, uow: RedisUnitOfWork) -> None:
        uow.writes.hincrby(key, event.subject, 1)

    return handle


def drain(consumer: Consumer, rounds: int = 5) -> None:
    for _ in range(rounds):
        consumer.run_once()


def make(redis_client, handler, name="c1", **kw) -> Consumer:
    kw.setdefault("block_ms", 50)
    kw.setdefault("claim_idle_ms", 200)
    kw.setdefault("max_deliveries", 3)
    return Consumer(redis_client, "test", {"RegistrationStarted": handler}, name=name, **kw)


def pending(redis_client) -> int:
    return redis_client.xpending(stream_for("RegistrationStarted"), "test")["pending"]


def test_event_in_gives_effect_and_is_acknowledged(redis_client):
    consumer = make(redis_client, counting_handler())
    consumer.ensure_groups()
    publish_now(redis_client, started())
    drain(consumer, 2)
    assert redis_client.hget("test:count", "r1") == "1"
    assert pending(redis_client) == 0


def test_entry_holds_a_cloudevents_document(redis_client):
    publish_now(redis_client, started())
    ((_, fields),) = redis_client.xrange(stream_for("RegistrationStarted"))
    event = Event.from_json(fields["event"])
    assert event.type == "RegistrationStarted" and event.source == "/services/identify"
    assert '"specversion":"1.0"' in fields["event"]


def test_same_event_delivered_twice_has_one_effect(redis_client):
    consumer = make(redis_client, counting_handler())
    consumer.ensure_groups()
    event = started()
    publish_now(redis_client, event)
    publish_now(redis_client, event)  # a producer that retried: same id, two entries
    drain(consumer, 2)
    assert redis_client.hget("test:count", "r1") == "1"
    assert pending(redis_client) == 0


def test_entry_of_a_dead_consumer_is_finished_by_another(redis_client):
    dead = make(redis_client, counting_handler(), name="dead")
    dead.ensure_groups()
    publish_now(redis_client, started())
    # The dead consumer received the entry and died before handling it.
    redis_client.xreadgroup("test", "dead", {stream_for("RegistrationStarted"): ">"}, count=10)
    assert pending(redis_client) == 1
    alive = make(redis_client, counting_handler(), name="alive")
    drain(alive, 1)
    assert redis_client.hget("test:count", "r1") is None  # not idle long enough yet
    time.sleep(0.3)
    alive._next_claim = 0
    drain(alive, 1)
    assert redis_client.hget("test:count", "r1") == "1"
    assert pending(redis_client) == 0


def test_events_published_while_consumer_is_down_are_handled_when_it_returns(redis_client):
    make(redis_client, counting_handler()).ensure_groups()
    for i in range(5):
        publish_now(redis_client, started(f"r{i}"))
    consumer = make(redis_client, counting_handler(), name="back")
    drain(consumer, 2)
    assert redis_client.hgetall("test:count") == {f"r{i}": "1" for i in range(5)}


def test_group_created_after_events_still_sees_them(redis_client):
    publish_now(redis_client, started("early"))
    consumer = make(redis_client, counting_handler())
    drain(consumer, 2)
    assert redis_client.hget("test:count", "early") == "1"


def test_poison_entry_goes_to_dead_letters_and_the_next_one_is_handled(redis_client):
    def handler(event: Event, uow: RedisUnitOfWork) -> None:
        if event.subject == "poison":
            raise RuntimeError("always fails")
        counting_handler()(event, uow)

    consumer = make(redis_client, handler)
    consumer.ensure_groups()
    publish_now(redis_client, started("poison"))
    publish_now(redis_client, started("fine"))
    deadline = time.monotonic() + 10
    while redis_client.xlen(DEAD_LETTERS) == 0 and time.monotonic() < deadline:
        consumer.run_once()
        time.sleep(0.05)
    assert redis_client.hget("test:count", "fine") == "1"
    ((_, letter),) = redis_client.xrange(DEAD_LETTERS)
    assert letter["reason"] == "RuntimeError: always fails"
    assert letter["deliveries"] == "3"
    assert letter["stream"] == stream_for("RegistrationStarted")
    assert Event.from_json(letter["event"]).subject == "poison"
    assert pending(redis_client) == 0


def test_malformed_entry_is_dead_lettered_too(redis_client):
    consumer = make(redis_client, counting_handler(), max_deliveries=1)
    consumer.ensure_groups()
    redis_client.xadd(stream_for("RegistrationStarted"), {"event": "{not json"})
    publish_now(redis_client, started("ok"))
    drain(consumer, 2)
    assert redis_client.hget("test:count", "ok") == "1"
    ((_, letter),) = redis_client.xrange(DEAD_LETTERS)
    assert letter["reason"].startswith("InvalidEvent")


def test_publishing_invalid_data_is_refused_and_writes_nothing(redis_client):
    event = new_event("RegistrationStarted", "identify", "r1", {"login_email": "not-an-email"})
    with pytest.raises(ValueError):
        publish_now(redis_client, event)
    assert redis_client.keys("*") == []


def test_run_stops_on_signal(redis_client):
    consumer = make(redis_client, counting_handler())
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    publish_now(redis_client, started())
    deadline = time.monotonic() + 5
    while redis_client.hget("test:count", "r1") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert redis_client.hget("test:count", "r1") == "1"
