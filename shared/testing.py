"""A test kit for the event contract: publish an event, await the one that follows.

    cursor = stream_end(client, "StructureConfirmed")        # what is there before the action
    publish_now(client, new_event("RegistrationStarted", "identify", "r1", {...}))
    (confirmed,) = wait_for_event(client, "StructureConfirmed", after=cursor,
                                  where=lambda e: e.subject == "r1")

`wait_for_event` reads what is already on the stream once, then waits on the stream itself
(a blocking XREAD from the last entry it has seen): an event is seen as soon as it is appended,
with no polling, and each entry is read once. Without `after`, events published before the call
count too (the stream is read from its start).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis

from shared.events import Event, append_to_stream, stream_for
from shared.settings import Settings

START = "0-0"
BLOCK_MS_MAX = 1000
"""Longest single wait on the stream: below the clients' socket timeouts (10 s in
`shared.store`), so that a long `timeout` is waited in several XREADs, never one."""
PAGE = 500


def publish_now(client: redis.Redis, event: Event) -> None:
    """Append `event` to its stream, checked against the contract (as a service would)."""
    with client.pipeline(transaction=True) as pipe:
        append_to_stream(pipe, event, Settings.event_stream_maxlen)
        pipe.execute()


def events_on(client: redis.Redis, event_type: str) -> list[Event]:
    """Every event on the stream of `event_type`, oldest first."""
    return [_event(fields) for _, fields in client.xrange(stream_for(event_type))]


def stream_end(client: redis.Redis, event_type: str) -> str:
    """The id of the last entry of `event_type`'s stream now ("0-0" when it is empty): give it as
    `after` to `wait_for_event` to wait only for events published from now on."""
    last = client.xrevrange(stream_for(event_type), count=1)
    return _text(last[0][0]) if last else START


def wait_for_event(
    client: redis.Redis,
    event_type: str,
    timeout: float = 10,
    where: Callable[[Event], bool] = lambda e: True,
    count: int = 1,
    *,
    after: str = START,
) -> list[Event]:
    """The first `count` events of `event_type` after the entry `after` (from the stream's start
    by default) that match `where`; AssertionError when fewer are there after `timeout` seconds."""
    stream = stream_for(event_type)
    deadline = time.monotonic() + timeout
    found: list[Event] = []
    cursor = after
    while True:  # what is already there, read once, a page at a time
        page = client.xrange(stream, min=f"({cursor}", max="+", count=PAGE)
        cursor = _keep(page, where, found, cursor)
        if len(found) >= count:
            return found[:count]
        if len(page) < PAGE:
            break
    while True:  # then wait on the stream from the last entry seen
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            raise AssertionError(
                f"no {count} {event_type} event(s) within {timeout}s (saw {len(found)} matching)"
            )
        reply = client.xread({stream: cursor}, count=PAGE, block=min(left_ms, BLOCK_MS_MAX))
        for _, entries in reply or []:
            cursor = _keep(entries, where, found, cursor)
        if len(found) >= count:
            return found[:count]


def _keep(entries: Iterable[tuple], where: Callable[[Event], bool], found: list[Event], cursor: str) -> str:
    """Add the events of `entries` that match to `found`; return the id of the last entry."""
    for entry_id, fields in entries:
        cursor = _text(entry_id)
        event = _event(fields)
        if where(event):
            found.append(event)
    return cursor


def _event(fields: dict) -> Event:
    return Event.from_json(fields.get("event") or fields.get(b"event"))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
