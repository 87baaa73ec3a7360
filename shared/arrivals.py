"""Waiting, in a request, for the record that an event not handled yet will create.

The steps follow each other faster than events travel: step 1 answers as soon as identify has
published `RegistrationStarted`, and the browser may ask structure for the step-2 form before
structure's consumer has handled it. Such a read waits for its record, but:

- **only when there is something to wait for**: the service's consumer group has entries of
  the stream it waits on that it has not handled yet (XINFO GROUPS: `lag` and `pending`). Once
  it has handled them all, an id it does not know will never come: 404 at once, whatever it is;
- **without polling**: the consumer announces each subject it handled (`PUBLISH` on
  `{group}:handled`, in the transaction that handles it), and one listener thread per process
  wakes the requests waiting for that subject;
- **a few at a time**: at most `max_waiting` requests of a process wait at once; beyond, the
  answer is 503 with `Retry-After` (`Busy`), and the process's other threads stay free.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

import redis

from shared.errors import Busy
from shared.events import stream_for

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_AFTER_SECONDS = 1


def handled_channel(group: str) -> str:
    """Where the consumer of `group` announces the subject of each event it handled."""
    return f"{group}:handled"


def has_unhandled(client: redis.Redis, group: str, stream: str) -> bool:
    """Whether `group` has entries of `stream` not handled yet (or its consumer has not started).

    Asked before reading what the handling would write: when it answers no, every entry
    published until now has been handled and its writes are visible."""
    with client.pipeline(transaction=False) as pipe:
        pipe.exists(stream)
        pipe.xinfo_groups(stream)
        exists, groups = pipe.execute(raise_on_error=False)
    if not exists:
        return False  # nothing was ever published on it
    if isinstance(groups, Exception):
        raise groups
    for found in groups:
        if _text(found["name"]) == group:
            lag = found.get("lag")  # None when Redis cannot tell (entries deleted meanwhile)
            return found["pending"] > 0 or lag is None or lag > 0
    return True


class Awaiting(Protocol):
    """What handlers need: the record `fetch` finds, waited for when it may still come."""

    def wait_for(self, subject: str, fetch: Callable[[], T | None]) -> T | None: ...


class Arrivals:
    """The records that `group`'s consumer makes from the events of type `event_type` (or of
    any of `more_types`: activate opens an account from StructureConfirmed or AttachmentRequested)."""

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        event_type: str,
        *more_types: str,
        timeout: float,
        max_waiting: int,
    ) -> None:
        self.redis = client
        self.group = group
        self.streams = tuple(stream_for(kind) for kind in (event_type, *more_types))
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max(1, max_waiting))
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()

    def wait_for(self, subject: str, fetch: Callable[[], T | None]) -> T | None:
        """`fetch()`'s record, waiting up to `timeout` for the event that makes it if one may
        still be on its way; None when none comes. Raises Busy when too many wait already."""
        value = fetch()
        if value is not None or self.timeout <= 0:
            return value
        if not self.outstanding():
            # Every event published so far was handled: the record exists now or never will.
            # (Read again: the event may have been handled between the first read and this.)
            return fetch()
        if not self._slots.acquire(blocking=False):
            raise Busy(RETRY_AFTER_SECONDS)
        try:
            return self._wait(subject, fetch)
        finally:
            self._slots.release()

    def outstanding(self) -> bool:
        return any(has_unhandled(self.redis, self.group, stream) for stream in self.streams)

    def _wait(self, subject: str, fetch: Callable[[], T | None]) -> T | None:
        deadline = time.monotonic() + self.timeout
        listener = self._running_listener()
        with listener.expecting(subject) as arrived:
            if not listener.ready.wait(self.timeout):
                return fetch()  # Redis would not let us listen: one last look
            # Listening now, so whatever is handled from here on wakes us; read again for what
            # was handled before.
            value = fetch()
            if value is None and arrived.wait(max(0.0, deadline - time.monotonic())):
                value = fetch()
            return value

    def close(self) -> None:
        """Stop this process's listener (it stops within a second)."""
        with self._listener_lock:
            if self._listener is not None:
                self._listener.stopped.set()
                self._listener = None

    def _running_listener(self) -> _Listener:
        """This process's listener (a process forked from another starts its own)."""
        with self._listener_lock:
            if self._listener is None or self._listener.pid != os.getpid():
                self._listener = _Listener(self.redis, handled_channel(self.group))
            return self._listener


class _Listener:
    """One Pub/Sub subscription per process, on a daemon thread, waking the waiting requests."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.redis = client
        self.channel = channel
        self.pid = os.getpid()
        self.ready = threading.Event()  # subscribed (confirmed by Redis)
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}
        threading.Thread(target=self._listen, name=f"listener {channel}", daemon=True).start()

    @contextmanager
    def expecting(self, subject: str) -> Iterator[threading.Event]:
        """An event set when `subject` is announced, for the time of the `with` block."""
        arrived = threading.Event()
        with self._lock:
            self._waiting.setdefault(subject, []).append(arrived)
        try:
            yield arrived
        finally:
            with self._lock:
                waiting = self._waiting[subject]
                waiting.remove(arrived)
                if not waiting:
                    del self._waiting[subject]

    def _listen(self) -> None:
        backoff = 0.1
        while not self.stopped.is_set():
            try:
                self._listen_once()
            except Exception as exc:  # whatever it is: a dead listener would make every wait a timeout
                if self.ready.is_set():
                    backoff = 0.1  # it was working: try again soon
                self.ready.clear()
                log.warning("listener of %s lost Redis (%s); again in %.1fs", self.channel, exc, backoff)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _listen_once(self) -> None:
        with self.redis.pubsub() as pubsub:
            pubsub.subscribe(self.channel)
            while not self.stopped.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self.ready.set()
                elif message["type"] == "message":
                    self._wake(_text(message["data"]))

    def _wake(self, subject: str) -> None:
        with self._lock:
            for arrived in self._waiting.get(subject, ()):
                arrived.set()


class NoWait:
    """Fetch once and never wait: for unit tests and for callers that must not block."""

    def wait_for(self, subject: str, fetch: Callable[[], T | None]) -> T | None:
        return fetch()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
