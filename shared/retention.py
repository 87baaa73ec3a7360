"""Event streams kept by age: `XTRIM <stream> MINID <id>`, never past what a group still needs.

The cut-off is `now - retention` in milliseconds (stream ids begin with their time in ms). A
consumer group holds the trim back at its oldest pending entry (delivered, not acknowledged) and,
when it has entries not delivered yet (lag), just after its last delivered id: an entry a group
has not handled is never trimmed by age, however old. `EVENT_STREAM_MAXLEN` (on every XADD)
stays the memory guard.

`trim_point` is the rule, on plain values; `stream_trim_point` reads a stream's groups from Redis
(XINFO GROUPS, XPENDING) and `trim_stream` applies the rule (XTRIM MINID). This module knows
streams and groups, no service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from shared.metrics import DEAD_LETTERS, STREAM_PATTERN

MAX_SEQUENCE = 2**64 - 1


@dataclass(frozen=True, order=True)
class StreamId:
    """A stream entry id `<ms>-<seq>`, ordered as Redis orders them."""

    ms: int
    seq: int = 0

    @classmethod
    def parse(cls, text: str) -> StreamId:
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    @classmethod
    def at(cls, seconds: float) -> StreamId:
        """The first id of the millisecond `seconds` (Unix time) falls in."""
        return cls(max(int(seconds * 1000), 0), 0)

    def next(self) -> StreamId:
        return StreamId(self.ms + 1, 0) if self.seq == MAX_SEQUENCE else StreamId(self.ms, self.seq + 1)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True)
class GroupState:
    """What the trim must know of one consumer group."""

    name: str
    last_delivered_id: StreamId
    lag: int  # entries not delivered yet (any positive number when only "some" is known)
    oldest_pending_id: StreamId | None = None  # None: nothing pending

    def first_needed(self) -> StreamId | None:
        """The oldest entry this group still needs, or None when it needs none of the stream."""
        needed = [self.oldest_pending_id] if self.oldest_pending_id is not None else []
        if self.lag > 0:
            needed.append(self.last_delivered_id.next())
        return min(needed, default=None)


@dataclass(frozen=True)
class TrimPoint:
    """The MINID to trim to, and the groups that hold it before the age cut-off (by name)."""

    cutoff: StreamId
    min_id: StreamId
    held_by: tuple[str, ...] = field(default=())


def trim_point(cutoff: StreamId, groups: Sequence[GroupState]) -> TrimPoint:
    """min(cut-off, the first entry each group still needs); the groups below the cut-off hold it."""
    min_id = cutoff
    held_by = []
    for group in sorted(groups, key=lambda g: g.name):
        needed = group.first_needed()
        if needed is not None and needed < cutoff:
            held_by.append(group.name)
            min_id = min(min_id, needed)
    return TrimPoint(cutoff, min_id, tuple(held_by))


# --- on Redis ---------------------------------------------------------------------------------------


def group_states(client: redis.Redis, stream: str) -> list[GroupState]:
    """Each group of `stream` as the rule needs it; `client` must decode responses.

    Redis 6.2 does not report the lag (nor does 7 after some deletions): whether any entry follows
    the last delivered id is then asked with XRANGE."""
    states = []
    for info in client.xinfo_groups(stream):
        last = info["last-delivered-id"]
        lag = info.get("lag")
        if not isinstance(lag, int):
            lag = len(client.xrange(stream, min=f"({last}", max="+", count=1))
        pending = client.xpending(stream, info["name"])
        oldest = pending.get("min") if pending.get("pending") else None
        states.append(
            GroupState(
                name=info["name"],
                last_delivered_id=StreamId.parse(last),
                lag=lag,
                oldest_pending_id=StreamId.parse(oldest) if oldest else None,
            )
        )
    return states


def stream_trim_point(client: redis.Redis, stream: str, retention_seconds: int, now: float) -> TrimPoint:
    return trim_point(StreamId.at(now - retention_seconds), group_states(client, stream))


def trim_stream(client: redis.Redis, stream: str, retention_seconds: int, now: float) -> int:
    """Trims `stream` by age as far as its groups allow; returns how many entries went.

    A group reading between the look and the trim only moves forward, so the point stays safe."""
    point = stream_trim_point(client, stream, retention_seconds, now)
    return int(client.xtrim(stream, minid=str(point.min_id), approximate=False))


def event_streams(client: redis.Redis) -> list[str]:
    return sorted(set(client.scan_iter(match=STREAM_PATTERN, _type="stream", count=1000)))


def trim_all(
    client: redis.Redis, event_retention_seconds: int, dead_letter_retention_seconds: int, now: float
) -> int:
    """Every `events:*` stream at the events' retention, `dead-letters` at its own; entries removed."""
    streams = event_streams(client)
    trimmed = sum(trim_stream(client, stream, event_retention_seconds, now) for stream in streams)
    if client.exists(DEAD_LETTERS):
        trimmed += trim_stream(client, DEAD_LETTERS, dead_letter_retention_seconds, now)
    return trimmed
