"""Figures read from Redis when Prometheus scrapes: streams, consumer groups, Celery queues, the
dead letters, and whether Redis answered.

`event_stream_length{stream}`, `event_group_lag{stream, group}` (entries not delivered yet),
`event_group_pending{stream, group}` (delivered, not acknowledged), `event_group_consumers{stream,
group}`, `celery_queue_length{queue}`, `dead_letters` and `redis_up`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client.core import GaugeMetricFamily, Metric

CELERY_QUEUES = ("emails", "sweeps")  # shared.celery_app's queues
DEAD_LETTERS = "dead-letters"  # the stream of entries the bus gave up on (shared.bus)
STREAM_PATTERN = "events:*"


class RedisCollector:
    """Stream, consumer-group and queue figures, read when Prometheus scrapes.

    `group`: only that consumer group's figures (a service's own); None for every group.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        group: str | None = None,
        queues: Sequence[str] = (),
        dead_letters: bool = False,
    ) -> None:
        self.redis = client
        self.group = group
        self.queues = tuple(queues)
        self.dead_letters = dead_letters

    def describe(self) -> list[Metric]:
        return []  # nothing read from Redis when the collector is registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("portal_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._read())
        except (redis.ConnectionError, redis.TimeoutError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        length = GaugeMetricFamily(
            "portal_event_stream_length", "Entries in an event stream", labels=["stream"]
        )
        lag = GaugeMetricFamily(
            "portal_event_group_lag",
            "Entries a consumer group has not been given yet",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "portal_event_group_pending",
            "Entries given to a consumer group and not acknowledged yet",
            labels=["stream", "group"],
        )
        consumers = GaugeMetricFamily(
            "portal_event_group_consumers", "Consumers known to a group", labels=["stream", "group"]
        )
        streams = sorted(
            str(s) for s in self.redis.scan_iter(match=STREAM_PATTERN, _type="stream", count=1000)
        )
        with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
            replies = pipe.execute(raise_on_error=False)
        for index, stream in enumerate(streams):
            size, groups = replies[2 * index], replies[2 * index + 1]
            if isinstance(size, Exception) or isinstance(groups, Exception):
                continue  # deleted between the scan and the read
            mine = [g for g in groups if self.group is None or g["name"] == self.group]
            if self.group is not None and not mine:
                continue
            length.add_metric([stream], size)
            for info in mine:
                labels = [stream, str(info["name"])]
                pending.add_metric(labels, int(info["pending"]))
                consumers.add_metric(labels, int(info["consumers"]))
                if info.get("lag") is not None:  # Redis 7; unknown after some deletions
                    lag.add_metric(labels, int(info["lag"]))
        yield from (length, lag, pending, consumers)
        if self.queues:
            yield self._queues()
        if self.dead_letters:
            dead = GaugeMetricFamily("portal_dead_letters", "Entries in the dead-letters stream")
            dead.add_metric([], self.redis.xlen(DEAD_LETTERS))
            yield dead

    def _queues(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_celery_queue_length", "Tasks waiting in a Celery queue", labels=["queue"]
        )
        for queue, length in queue_lengths(self.redis, self.queues).items():
            family.add_metric([queue], length)
        return family


def queue_lengths(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each kombu queue (one Redis list per priority step), in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for priority in PRIORITY_STEPS:
                pipe.llen(f"{queue}{Channel.sep}{priority}" if priority else queue)
        lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(queues)}
