"""The body of every `python -m services.<service>.consumer`: build, run, stop on a signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping

import redis

from shared import logs
from shared.bus import Consumer, Handler
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect


def run_consumer(
    group: str, build_handlers: Callable[[Settings, redis.Redis], Mapping[str, Handler]]
) -> None:
    logs.configure(f"{group}-consumer")
    settings = Settings.from_env()
    client = connect(settings)
    check_durability(client, f"{group}-consumer")
    consumer = Consumer(
        client,
        group,
        build_handlers(settings, client),
        claim_idle_ms=settings.event_claim_idle_ms,
        max_deliveries=settings.event_max_deliveries,
        stream_maxlen=settings.event_stream_maxlen,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    consumer.run(stop)
