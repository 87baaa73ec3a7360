"""Domain events on Redis Streams, delivered at least once.

Publishing is the unit of work's (`shared.unit_of_work`): an event commits together with the
state change it announces.

Consuming: a `Consumer` reads the streams of the event types it handles with XREADGROUP in
the group named after its service. For each entry it runs the handler inside a Redis
transaction that also records the event id as seen, then acknowledges: a duplicate delivery
finds the id already seen and has no effect. An entry whose handler raised stays pending and
is retried when it has been idle for `claim_idle_ms` (XAUTOCLAIM, by any consumer of the
group, which is also how a dead consumer's entries are finished by a live one). After
`max_deliveries` deliveries it is copied to the `dead-letters` stream with the reason and
acknowledged, so the rest of the stream keeps flowing.

A consumer built with `announce=True` also publishes, in the same transaction, the subject of
each event it handled on `{group}:handled`: requests waiting for what its handlers make are
woken by it (`shared.arrivals`).

Observed: every line logged while an entry is dealt with names the event's subject, the
registration (`shared.logs`); events published (when their transaction commits), handled,
retried and dead-lettered are counted (`shared.metrics`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import redis

from shared import logs, metrics
from shared.arrivals import handled_channel
from shared.events import Event, stream_for
from shared.replication import NotReplicated
from shared.settings import Settings
from shared.unit_of_work import RedisUnitOfWork, UnitOfWork

log = logging.getLogger(__name__)

DEAD_LETTERS = metrics.DEAD_LETTERS
SEEN_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_MAXLEN = Settings.event_stream_maxlen

Handler = Callable[[Event, UnitOfWork], None]
"""An event handler is the body of the bus's transaction: it reads through the unit of work's
repositories and records its changes; the bus adds the seen-marker and the XACK and commits."""
UnitOfWorkFactory = Callable[[], RedisUnitOfWork]


def default_consumer_name() -> str:
    return os.environ.get("CONSUMER_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Delivery:
    stream: str
    entry_id: str
    fields: Mapping[str, str] | None
    times: int | None = None  # how many times delivered; None until asked (XPENDING)


class _Counted:
    """The metrics of one stream in one group, looked up once."""

    def __init__(self, stream: str, group: str) -> None:
        self.handled = metrics.EVENTS_HANDLED.labels(stream, group).inc
        self.retried = metrics.EVENTS_RETRIED.labels(stream, group).inc
        self.dead_lettered = metrics.EVENTS_DEAD_LETTERED.labels(stream, group).inc
        self.handling = metrics.EVENT_HANDLING.labels(stream, group)


class Consumer:
    def __init__(
        self,
        client: redis.Redis,
        group: str,
        handlers: Mapping[str, Handler],
        *,
        unit_of_work: UnitOfWorkFactory | None = None,
        name: str | None = None,
        claim_idle_ms: int = 30000,
        max_deliveries: int = 5,
        block_ms: int = 1000,
        batch: int = 20,
        stream_maxlen: int = DEFAULT_MAXLEN,
        announce: bool = False,
    ) -> None:
        self.redis = client
        self.group = group
        self.handlers = dict(handlers)
        self.unit_of_work = unit_of_work or (
            lambda: RedisUnitOfWork(client, group, stream_maxlen=stream_maxlen)
        )
        self.name = name or default_consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.block_ms = block_ms
        self.batch = batch
        self.stream_maxlen = stream_maxlen
        # Requests waiting for what a handler makes are woken by this (`shared.arrivals`).
        self.announce_channel = handled_channel(group) if announce else None
        self.streams = {stream_for(t): t for t in self.handlers}
        self._counted = {stream: _Counted(stream, group) for stream in self.streams}
        self._groups_ready = False
        self._read_own_pending = True
        self._next_claim = 0.0

    @cached_property
    def _uow(self) -> RedisUnitOfWork:
        """One unit of work for every entry: a consumer handles one entry at a time."""
        return self.unit_of_work()

    def ensure_groups(self) -> None:
        """Create the group on each stream, from the start so that earlier events are handled."""
        for stream in self.streams:
            try:
                self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def run_once(self) -> int:
        """Handle what is there (own pending first, then claimed, then new); return the count."""
        if not self._groups_ready:
            self.ensure_groups()
        handled = 0
        if self._read_own_pending:
            pending = self._read(start="0", block=None)
            handled += self._handle_all(pending)
            if not pending:
                self._read_own_pending = False
        if time.monotonic() >= self._next_claim:
            handled += self._handle_all(self._claim_idle())
            self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        handled += self._handle_all(self._read(start=">", block=self.block_ms))
        return handled

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("consumer %s of group %s on %s", self.name, self.group, ", ".join(self.streams))
        backoff = 0.1
        while not stop.is_set():
            try:
                self.run_once()
                backoff = 0.1
            except redis.ConnectionError as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, backoff)
                self._groups_ready = False
                self._read_own_pending = True
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _read(self, start: str, block: int | None) -> list[Delivery]:
        reply = self.redis.xreadgroup(
            self.group, self.name, {s: start for s in self.streams}, count=self.batch, block=block
        )
        deliveries = []
        first_time = 1 if start == ">" else None
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                deliveries.append(Delivery(stream, entry_id, fields, first_time))
        return deliveries

    def _claim_idle(self) -> list[Delivery]:
        claimed = []
        for stream in self.streams:
            start = "0-0"
            for _ in range(100):  # bounded: at most 100 pages of `batch` entries a sweep
                reply = self.redis.xautoclaim(
                    stream, self.group, self.name, self.claim_idle_ms, start, count=self.batch
                )
                start, entries = reply[0], reply[1]
                for entry_id, fields in entries:
                    claimed.append(Delivery(stream, entry_id, fields))
                if start in ("0-0", b"0-0"):
                    break
        return claimed

    def _handle_all(self, deliveries: list[Delivery]) -> int:
        for delivery in deliveries:
            self._handle(delivery)
        return len(deliveries)

    def _handle(self, delivery: Delivery) -> None:
        raw = (delivery.fields or {}).get("event")
        times = delivery.times or self._times_delivered(delivery)
        if delivery.fields is None:
            # The entry was trimmed from the stream while pending: nothing left to handle.
            self.redis.xack(delivery.stream, self.group, delivery.entry_id)
            return
        failure: Exception | None = None
        try:
            event: Event | None = Event.from_json(raw)
        except Exception as exc:  # unreadable: a failure like a handler's, retried then dead-lettered
            event, failure = None, exc
        # Every line logged while this entry is dealt with names its registration.
        with logs.registration(event.subject if event else None):
            if times > self.max_deliveries:
                self._dead_letter(delivery, raw, times, "delivered too many times without acknowledgement")
                return
            if event is not None:
                failure = self._run(delivery, event)
            if failure is not None:
                self._failed(delivery, raw, times, failure)

    def _run(self, delivery: Delivery, event: Event) -> Exception | None:
        """Handle `event`; return the handler's failure, whatever it is, for `_failed` to record."""
        started = time.perf_counter()
        try:
            self._apply(delivery, event, self.handlers[self.streams[delivery.stream]])
        except redis.ConnectionError:
            raise
        except NotReplicated:
            # Committed and acknowledged on the primary: should it die before a replica has them,
            # the entry is delivered again from the promoted replica, where it is still pending.
            log.warning(
                "%s %s handled; its replicas did not confirm it in time", delivery.stream, delivery.entry_id
            )
        except Exception as exc:
            return exc
        self._counted[delivery.stream].handled()
        self._counted[delivery.stream].handling.observe(time.perf_counter() - started)
        return None

    def _failed(self, delivery: Delivery, raw: str | None, times: int, failure: Exception) -> None:
        reason = f"{type(failure).__name__}: {failure}"
        if times >= self.max_deliveries:
            self._dead_letter(delivery, raw, times, reason)
            return
        self._counted[delivery.stream].retried()
        log.warning(
            "%s %s failed (delivery %d of %d): %s",
            delivery.stream,
            delivery.entry_id,
            times,
            self.max_deliveries,
            reason,
        )

    def _apply(self, delivery: Delivery, event: Event, handler: Handler) -> None:
        """Run the handler; its writes, the seen-marker and the XACK commit together (with,
        when the consumer announces, a notice of the event's subject).

        The seen-marker is a guarded read: a copy of this entry handled meanwhile by another
        consumer (after a claim) makes the commit run the body again, which then finds the
        marker and only acknowledges."""
        seen_key = f"{self.group}:seen:{event.source}:{event.id}"
        uow = self._uow

        def body() -> None:
            (seen,) = uow.read(seen_key, ("EXISTS", seen_key))
            if not seen:
                handler(event, uow)
                uow.writes.set(seen_key, "1", ex=SEEN_TTL_SECONDS)
                if self.announce_channel:
                    uow.writes.publish(self.announce_channel, event.subject)
            uow.writes.xack(delivery.stream, self.group, delivery.entry_id)

        uow.run(body)

    def _times_delivered(self, delivery: Delivery) -> int:
        info = self.redis.xpending_range(delivery.stream, self.group, delivery.entry_id, delivery.entry_id, 1)
        return int(info[0]["times_delivered"]) if info else 1

    def _dead_letter(self, delivery: Delivery, raw: str | None, times: int, reason: str) -> None:
        log.error(
            "dead-lettering %s %s after %d deliveries: %s", delivery.stream, delivery.entry_id, times, reason
        )
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                DEAD_LETTERS,
                {
                    "stream": delivery.stream,
                    "group": self.group,
                    "entry_id": delivery.entry_id,
                    "event": raw if raw is not None else "",
                    "reason": reason[:2000],
                    "deliveries": str(times),
                    "consumer": self.name,
                    "failed_at": str(time.time()),
                },
                maxlen=self.stream_maxlen,
                approximate=True,
            )
            pipe.xack(delivery.stream, self.group, delivery.entry_id)
            pipe.execute()
        self._counted[delivery.stream].dead_lettered()
