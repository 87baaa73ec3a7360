"""The unit of work: one Redis transaction, with the events it publishes.

A handler reads through repositories, asks the domain what follows, records the changes and
the events; the unit of work commits them together. Redis gives optimistic concurrency, so
`run(body)` goes:

    WATCH + read (one round trip per guarded read) → body decides → MULTI, the recorded writes,
    one XADD per event → EXEC

and when EXEC finds that a watched key changed meanwhile, it runs the body again from the
start. Handlers never see a pipeline: repositories call `read` and record on `writes`. With
`min_replicas` (REDIS_MIN_REPLICAS), `run` returns only once that many replicas hold the commit
(`shared.replication`).

Outside `run`, `read` is a plain read (no WATCH): queries cost one round trip and leave no
watch to undo.

`InMemoryUnitOfWork` is the same contract over dicts, for the unit tests of the handlers.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
from redis.client import Pipeline
from redis.commands.core import CoreCommands

from shared import idempotency, metrics, replication
from shared.contracts import DomainEvent
from shared.events import Event, append_to_stream, envelope, validate_data
from shared.watching import watch_and_read

T = TypeVar("T")
Clock = Callable[[], float]
Command = tuple[Any, ...]
NOT_WRITES = frozenset({"watch", "unwatch", "reset", "multi", "execute", "discard"})


@functools.cache
def _is_write(name: str) -> bool:
    return not name.startswith("_") and name not in NOT_WRITES and callable(getattr(CoreCommands, name, None))


class StagedWrites:
    """Redis write commands recorded now and sent at commit, between MULTI and EXEC.

    Any command of redis-py's pipeline can be recorded with its usual signature:
    `uow.writes.hset(key, mapping={...})`.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not _is_write(name):
            raise AttributeError(name)
        calls = self.calls

        def record(*args: Any, **kwargs: Any) -> None:
            calls.append((name, args, kwargs))

        return record

    def replay(self, pipe: Pipeline) -> None:
        for name, args, kwargs in self.calls:
            getattr(pipe, name)(*args, **kwargs)


class UnitOfWork:
    """What handlers rely on, whichever store is behind: `run`, `publish`, `clock`."""

    clock: Clock

    def run(self, body: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        raise NotImplementedError

    def publish(self, *events: DomainEvent) -> None:
        raise NotImplementedError


class RedisUnitOfWork(UnitOfWork):
    """One transaction at a time over `client`, publishing as `/services/{service}`."""

    def __init__(
        self,
        client: redis.Redis,
        service: str,
        *,
        stream_maxlen: int,
        clock: Clock = time.time,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
    ) -> None:
        self.redis = client
        self.service = service
        self.source = f"/services/{service}"
        self.stream_maxlen = stream_maxlen
        self.clock = clock
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self._pipe: Pipeline | None = None
        self.writes = StagedWrites()
        self._events: list[Event] = []

    # --- for repositories --------------------------------------------------------------------

    def read(self, watch: str | Sequence[str], *commands: Command) -> list[Any]:
        """Run `commands` (such as `("HGETALL", key)`) and return their parsed answers.

        Inside `run`, `watch` (a key or keys) is watched in the same round trip, so that a
        change made meanwhile by anyone makes the commit run the body again."""
        keys = [watch] if isinstance(watch, str) else list(watch)
        if self._pipe is not None and keys:
            return watch_and_read(self._pipe, keys, *commands)
        if len(commands) == 1:
            return [self.redis.execute_command(*commands[0])]
        with self.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()

    # --- for handlers ------------------------------------------------------------------------

    def publish(self, *events: DomainEvent) -> None:
        """Publish `events` when (and only if) the transaction commits; each is checked against
        the contract just before MULTI, so that a wrong one writes nothing."""
        if self._pipe is None:
            raise RuntimeError("events are published inside run()")
        self._events.extend(envelope(event, self.source) for event in events)

    def run(self, body: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`body(*args, **kwargs)` in one transaction, run again until it commits."""
        if self._pipe is not None:
            raise RuntimeError("a unit of work runs one transaction at a time")
        with self.redis.pipeline() as pipe:
            self._pipe = pipe
            try:
                while True:
                    self._forget_recorded()
                    try:
                        result = body(*args, **kwargs)
                        self._commit(pipe)
                        return result
                    except redis.WatchError:
                        continue
            finally:
                self._pipe = None
                self._forget_recorded()

    def _commit(self, pipe: Pipeline) -> None:
        if not (self.writes.calls or self._events or pipe.watching):
            return
        written = bool(self.writes.calls or self._events)  # else EXEC only checks the watched keys
        published = [event.type for event in self._events]
        for event in self._events:
            validate_data(event.type, event.data)
        pipe.multi()
        self.writes.replay(pipe)
        for event in self._events:
            append_to_stream(pipe, event, self.stream_maxlen, validated=True)
        idempotency.stage_commit_marker(pipe)  # the request's Idempotency-Key: "committed", in this MULTI
        pipe.execute()
        for event_type in published:
            metrics.EVENTS_PUBLISHED.labels(event_type).inc()
        # Committed on the primary; with REDIS_MIN_REPLICAS, on that many replicas too before the
        # caller goes on (answers, acknowledges), or NotReplicated (503).
        if written and idempotency.current_claim.get() is None:
            replication.fence(self.redis, self.service, self.min_replicas, self.replica_timeout_ms)
        # else the request's after-hook fences once its answer is kept with the commit: a retry
        # after a failover then finds the answer, not just the commit (shared/idempotency.py).

    def _forget_recorded(self) -> None:
        self.writes.calls.clear()
        self._events.clear()


class InMemoryUnitOfWork(UnitOfWork):
    """The unit of work of the unit tests: repositories are dicts (set by the subclass), events
    a list. A body that raises leaves the repositories as they were, as a transaction would."""

    def __init__(self, clock: Clock | None = None, service: str = "test") -> None:
        self.clock = clock or (lambda: 1_700_000_000.0)
        self.source = f"/services/{service}"
        self.published: list[DomainEvent] = []
        self.commits = 0
        self._pending: list[DomainEvent] | None = None

    def publish(self, *events: DomainEvent) -> None:
        for event in events:
            validate_data(event.type, event.data())  # as the real one checks at commit
        if self._pending is None:
            raise RuntimeError("events are published inside run()")
        self._pending.extend(events)

    def run(self, body: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pending is not None:
            raise RuntimeError("a unit of work runs one transaction at a time")
        saved = {name: copy.deepcopy(value) for name, value in vars(self).items() if name != "clock"}
        self._pending = []
        try:
            result = body(*args, **kwargs)
        except BaseException:
            self.__dict__.update(saved)
            raise
        self.published.extend(self._pending)
        self._pending = None
        self.commits += 1
        return result

    def published_types(self) -> list[str]:
        return [type(event).__name__ for event in self.published]
