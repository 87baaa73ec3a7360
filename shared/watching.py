"""WATCH keys and read them in one round trip.

An optimistic transaction watches what it reads. redis-py sends `WATCH` on its own and waits
for the answer before the read it guards, so every guarded read costs two round trips; the
bus does it for each event handled and the write paths several times per request. Sending
the `WATCH` and the reads together is the same thing on the wire as far as Redis is
concerned (the commands are executed in order on one connection, the keys are watched before
they are read) for half the waiting.

redis-py has no public call for "send these on the watching connection and stay in WATCH
mode", so `watch_and_read` uses the pipeline's connection the way `Pipeline.watch` does
(`connection`, `watching`, `parse_response`); `tests/integration/test_watching.py` pins that down
against a real Redis.
"""

from __future__ import annotations

from typing import Any

from redis.client import Pipeline
from redis.exceptions import ConnectionError, RedisError, TimeoutError


def watch_and_read(pipe: Pipeline, watch: str | list[str], *reads: tuple[Any, ...]) -> list[Any]:
    """WATCH `watch` and run `reads` (commands such as `("HGETALL", key)`) in one round trip.

    Leaves `pipe` in WATCH mode, as `pipe.watch` does; returns the reads' answers, parsed as
    redis-py parses them (`HGETALL` gives a dict, `EXISTS` an int...).
    """
    if pipe.explicit_transaction:
        raise RedisError("Cannot issue a WATCH after a MULTI")
    keys = [watch] if isinstance(watch, str) else list(watch)
    connection = pipe.connection
    if connection is None:
        connection = pipe.connection = pipe.connection_pool.get_connection()
    commands = [("WATCH", *keys), *reads]
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        pipe.watching = True
        pipe.parse_response(connection, "WATCH")
        return [pipe.parse_response(connection, read[0]) for read in reads]
    except (ConnectionError, TimeoutError):
        # Answers may be left unread: the connection cannot be reused (its WATCHes go with it).
        connection.disconnect()
        pipe.watching = False
        raise
