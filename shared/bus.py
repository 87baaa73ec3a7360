"""Domain events on Redis Streams, delivered at least once.

Publishing: `publish(pipe, event)` queues the XADD on a MULTI pipeline, so the event commits
together with the state change it announces.

Consuming: a `Consumer` reads the streams of the event types it handles with XREADGROUP in
the group named after its service. For each entry it runs the handler inside a Redis
transaction that also records the event id as seen, then acknowledges: a duplicate delivery
finds the id already seen and has no effect. An entry whose handler raised stays pending and
is retried when it has been idle for `claim_idle_ms` (XAUTOCLAIM, by any consumer of the
group, which is also how a dead consumer's entries are finished by a live one). After
`max_deliveries` deliveries it is copied to the `dead-letters` stream with the reason and
acknowledged, so the rest of the stream keeps flowing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from shared.events import Event, validate_data

log = logging.getLogger(__name__)

DEAD_LETTERS = "dead-letters"
SEEN_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_MAXLEN = 1_000_000

Handler = Callable[[Event, Pipeline], None]
"""A handler gets the event and a pipeline in WATCH mode: it may watch more keys and read
through it, then must call `pipe.multi()` before queueing its writes (the bus calls it if the
handler wrote nothing). The bus adds the seen-marker and executes."""


def stream_for(event_type: str) -> str:
    return f"events:{event_type}"


def publish(pipe: Pipeline, event: Event, maxlen: int = DEFAULT_MAXLEN) -> None:
    """Queue `event` on `pipe`; it is written when the caller's transaction executes."""
    validate_data(event.type, event.data)
    pipe.xadd(stream_for(event.type), {"event": event.to_json()}, maxlen=maxlen, approximate=True)


def default_consumer_name() -> str:
    return os.environ.get("CONSUMER_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Delivery:
    stream: str
    entry_id: str
    fields: Mapping[str, str] | None
    times: int | None = None  # how many times delivered; None until asked (XPENDING)


class Consumer:
    def __init__(
        self,
        client: redis.Redis,
        group: str,
        handlers: Mapping[str, Handler],
        *,
        name: str | None = None,
        claim_idle_ms: int = 30000,
        max_deliveries: int = 5,
        block_ms: int = 1000,
        batch: int = 20,
    ) -> None:
        self.redis = client
        self.group = group
        self.handlers = dict(handlers)
        self.name = name or default_consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.block_ms = block_ms
        self.batch = batch
        self.streams = {stream_for(t): t for t in self.handlers}
        self._groups_ready = False
        self._read_own_pending = True
        self._next_claim = 0.0

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
        if times > self.max_deliveries:
            self._dead_letter(delivery, raw, times, "delivered too many times without acknowledgement")
            return
        try:
            event = Event.from_json(raw)
            handler = self.handlers[self.streams[delivery.stream]]
            self._apply(delivery, event, handler)
        except redis.ConnectionError:
            raise
        except Exception as exc:  # the handler's failure, whatever it is, is recorded below
            reason = f"{type(exc).__name__}: {exc}"
            if times >= self.max_deliveries:
                self._dead_letter(delivery, raw, times, reason)
            else:
                log.warning(
                    "%s %s failed (delivery %d of %d): %s",
                    delivery.stream,
                    delivery.entry_id,
                    times,
                    self.max_deliveries,
                    reason,
                )

    def _apply(self, delivery: Delivery, event: Event, handler: Handler) -> None:
        """Run the handler; its writes, the seen-marker and the XACK commit together."""
        seen_key = f"{self.group}:seen:{event.source}:{event.id}"

        def attempt(pipe: Pipeline) -> None:
            if pipe.exists(seen_key):
                pipe.multi()
            else:
                handler(event, pipe)
                if not pipe.explicit_transaction:
                    pipe.multi()
                pipe.set(seen_key, "1", ex=SEEN_TTL_SECONDS)
            pipe.xack(delivery.stream, self.group, delivery.entry_id)

        self.redis.transaction(attempt, seen_key)

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
                maxlen=DEFAULT_MAXLEN,
                approximate=True,
            )
            pipe.xack(delivery.stream, self.group, delivery.entry_id)
            pipe.execute()
