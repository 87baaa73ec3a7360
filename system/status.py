"""`python -m system.status` (`make status`): what waits where, read from Redis.

For each event stream: its length and, per consumer group, the consumers, the entries delivered
but not acknowledged (pending), the entries not delivered yet (lag) and the last delivered id;
the dead letters (never their event, which holds personal data); the Celery queues. Under a
stream whose trim by age is held back (shared/retention.py), the groups that hold it and the id
the trim waits at.

Lag: Redis 7 reports it in XINFO GROUPS. Redis 6.2 does not (nor does 7 after some trims and
deletions); it is then counted with XRANGE after the last delivered id, up to `LAG_SCAN_LIMIT`
entries, and shown as "?" beyond.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import redis
from kombu.transport.redis import Channel

from shared.bus import DEAD_LETTERS
from shared.metrics import CELERY_QUEUES, STREAM_PATTERN, queue_lengths
from shared.retention import stream_trim_point
from shared.settings import Settings, SettingsError
from shared.store import connect, describe, public_url
from system.dead_letters import DeadLetter, read_letter

LAG_SCAN_LIMIT = 10_000
REASON_WIDTH = 100


@dataclass
class GroupStatus:
    name: str
    consumers: int
    pending: int
    lag: int | None  # None: not known
    last_delivered_id: str


@dataclass
class StreamStatus:
    name: str
    length: int
    groups: list[GroupStatus] = field(default_factory=list)
    # The trim by age waits for these groups, at `trim_waits_at` (before the age cut-off).
    trim_held_by: list[str] = field(default_factory=list)
    trim_waits_at: str | None = None


@dataclass
class DeadLetters:
    length: int
    latest: list[DeadLetter]


@dataclass
class QueueStatus:
    name: str
    waiting: int


@dataclass
class Status:
    redis_url: str
    redis_version: str
    streams: list[StreamStatus]
    dead_letters: DeadLetters
    queues: list[QueueStatus]
    # Celery tasks taken by a worker and not acknowledged yet: running, or waiting for a retry.
    unacked: int


def collect(
    client: redis.Redis,
    queues: Sequence[str],
    redis_url: str = "",
    dead_letter_count: int = 5,
    event_retention_seconds: int = Settings.event_retention_seconds,
    now: float | None = None,
) -> Status:
    """Read everything the report shows; `client` must decode responses."""
    now = time.time() if now is None else now
    return Status(
        redis_url=public_url(redis_url),
        redis_version=str(client.info("server").get("redis_version", "?")),
        streams=[
            _stream_status(client, name, event_retention_seconds, now) for name in _event_streams(client)
        ],
        dead_letters=_dead_letters(client, dead_letter_count),
        queues=[QueueStatus(name, length) for name, length in queue_lengths(client, queues).items()],
        unacked=client.hlen(Channel.unacked_key),
    )


def _event_streams(client: redis.Redis) -> list[str]:
    return sorted(set(client.scan_iter(match=STREAM_PATTERN, _type="stream", count=1000)))


def _stream_status(client: redis.Redis, stream: str, retention_seconds: int, now: float) -> StreamStatus:
    groups = [
        GroupStatus(
            name=info["name"],
            consumers=int(info["consumers"]),
            pending=int(info["pending"]),
            lag=_lag(client, stream, info),
            last_delivered_id=info["last-delivered-id"],
        )
        for info in client.xinfo_groups(stream)
    ]
    trim = stream_trim_point(client, stream, retention_seconds, now)
    return StreamStatus(
        stream,
        client.xlen(stream),
        sorted(groups, key=lambda g: g.name),
        trim_held_by=list(trim.held_by),
        trim_waits_at=str(trim.min_id) if trim.held_by else None,
    )


def _lag(client: redis.Redis, stream: str, info: dict) -> int | None:
    lag = info.get("lag")
    if isinstance(lag, int):
        return lag
    after = client.xrange(stream, min=f"({info['last-delivered-id']}", max="+", count=LAG_SCAN_LIMIT + 1)
    return len(after) if len(after) <= LAG_SCAN_LIMIT else None


def _dead_letters(client: redis.Redis, count: int) -> DeadLetters:
    latest = client.xrevrange(DEAD_LETTERS, count=count) if count > 0 else []
    return DeadLetters(
        client.xlen(DEAD_LETTERS), [read_letter(entry_id, fields) for entry_id, fields in latest]
    )


def render_text(status: Status) -> str:
    lines = [f"Redis {status.redis_url} (version {status.redis_version})", "", "Flux d'événements"]
    if not status.streams:
        lines.append("  aucun flux events:*")
    for stream in status.streams:
        lines.append(f"  {stream.name}  —  {stream.length} entrée(s)")
        if stream.trim_held_by:
            lines.append(
                f"      purge par âge retenue à {stream.trim_waits_at} par : {', '.join(stream.trim_held_by)}"
            )
        if not stream.groups:
            lines.append("      aucun groupe de consommateurs")
            continue
        lines.append(
            f"      {'groupe':<12} {'consommateurs':>13} {'en attente':>10} {'retard':>8}  dernier id livré"
        )
        for group in stream.groups:
            lag = "?" if group.lag is None else str(group.lag)
            lines.append(
                f"      {group.name:<12} {group.consumers:>13} {group.pending:>10} {lag:>8}"
                f"  {group.last_delivered_id}"
            )
    dead = status.dead_letters
    lines += ["", f"Lettres mortes ({DEAD_LETTERS}) : {dead.length} entrée(s)"]
    if dead.latest:
        lines.append(
            "  la plus récente :" if len(dead.latest) == 1 else f"  les {len(dead.latest)} plus récentes :"
        )
    for letter in dead.latest:
        deliveries = "?" if letter.deliveries is None else str(letter.deliveries)
        lines.append(
            f"  {letter.id}  {letter.failed_at or '?'}  {letter.stream} {letter.entry_id}"
            f"  groupe {letter.group}  {deliveries} livraison(s)"
        )
        lines.append(f"      raison : {_shorten(letter.reason)}")
    lines += ["", "Files Celery"]
    for queue in status.queues:
        lines.append(f"  {queue.name:<12} {queue.waiting:>6} en attente")
    lines.append(f"  {'non acquittées':<12} {status.unacked:>6} (en cours ou en attente d'un nouvel essai)")
    return "\n".join(lines)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m system.status",
        description="État des flux d'événements, des lettres mortes et des files Celery (REDIS_URL).",
    )
    parser.add_argument("--json", action="store_true", help="le même état, en JSON")
    parser.add_argument(
        "--dead-letters", type=int, default=5, metavar="N", help="lettres mortes récentes à montrer (5)"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Configuration invalide : {exc}", file=sys.stderr)
        return 1
    client = connect(settings)
    try:
        status = collect(
            client,
            CELERY_QUEUES,
            describe(settings),
            max(args.dead_letters, 0),
            settings.event_retention_seconds,
        )
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"Redis injoignable ({describe(settings)}) : {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.json:
        print(json.dumps(asdict(status), ensure_ascii=False, indent=2))
    else:
        print(render_text(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
