"""Helpers for message-level tests: publish an event, wait for the one that follows."""

from __future__ import annotations

import time

import redis

from shared.bus import publish, stream_for
from shared.events import Event


def publish_now(client: redis.Redis, event: Event) -> None:
    with client.pipeline(transaction=True) as pipe:
        publish(pipe, event)
        pipe.execute()


def events_on(client: redis.Redis, event_type: str) -> list[Event]:
    return [Event.from_json(fields["event"]) for _, fields in client.xrange(stream_for(event_type))]


def wait_for_event(
    client: redis.Redis, event_type: str, timeout: float = 10, where=lambda e: True, count: int = 1
) -> list[Event]:
    """The first `count` events of `event_type` matching `where`; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in events_on(client, event_type) if where(e)]
        if len(found) >= count:
            return found[:count]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} {event_type} event(s) within {timeout}s (saw {len(found)})")
        time.sleep(0.02)
