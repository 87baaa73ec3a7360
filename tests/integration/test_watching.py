"""`watch_and_read` against a real Redis: one send, keys really watched, answers parsed."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import WatchError

from shared.watching import watch_and_read


def _count_sends(pipe, monkeypatch) -> list[int]:
    sends: list[int] = []
    connection = pipe.connection or pipe.connection_pool.get_connection()
    pipe.connection = connection
    original = connection.send_packed_command

    def counting(command, *args, **kwargs):
        sends.append(1)
        return original(command, *args, **kwargs)

    monkeypatch.setattr(connection, "send_packed_command", counting)
    return sends


def test_reads_are_parsed_like_redis_py_does(redis_client):
    redis_client.hset("h", mapping={"a": "1", "b": "2"})
    redis_client.set("s", "x")
    with redis_client.pipeline() as pipe:
        found = watch_and_read(
            pipe, ["h", "s", "missing"], ("HGETALL", "h"), ("GET", "s"), ("EXISTS", "missing")
        )
        assert found == [{"a": "1", "b": "2"}, "x", 0]
        assert pipe.watching
        pipe.multi()
        pipe.set("s", "y")
        pipe.execute()
    assert redis_client.get("s") == "y"


def test_watch_and_reads_go_in_one_send(redis_client, monkeypatch):
    with redis_client.pipeline() as pipe:
        sends = _count_sends(pipe, monkeypatch)
        watch_and_read(pipe, "k", ("GET", "k"), ("EXISTS", "k"))
        assert len(sends) == 1
        pipe.multi()
        pipe.set("k", "1")
        pipe.execute()
        assert len(sends) == 2  # MULTI ... EXEC: one more


def test_a_change_after_the_read_aborts_the_transaction(redis_client, redis_server):
    other = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with redis_client.pipeline() as pipe:
        assert watch_and_read(pipe, "k", ("GET", "k")) == [None]
        other.set("k", "theirs")
        pipe.multi()
        pipe.set("k", "mine")
        with pytest.raises(WatchError):
            pipe.execute()
    assert redis_client.get("k") == "theirs"
    other.close()


def test_watching_more_keys_afterwards_still_works(redis_client, redis_server):
    other = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with redis_client.pipeline() as pipe:
        watch_and_read(pipe, "a", ("GET", "a"))
        watch_and_read(pipe, "b", ("GET", "b"))
        other.set("b", "changed")
        pipe.multi()
        pipe.set("a", "1")
        with pytest.raises(WatchError):
            pipe.execute()
    other.close()


def test_a_lost_connection_raises_and_leaves_the_client_usable(redis_client):
    with redis_client.pipeline() as pipe:
        watch_and_read(pipe, "k", ("GET", "k"))
        redis_client.client_kill_filter(_type="normal", skipme=True)  # every connection but this one
        with pytest.raises(redis.ConnectionError):
            watch_and_read(pipe, "k", ("GET", "k"))
        assert not pipe.watching
    assert redis_client.set("k", "after") and redis_client.get("k") == "after"


def test_refused_after_multi(redis_client):
    with redis_client.pipeline() as pipe:
        pipe.multi()
        with pytest.raises(redis.RedisError):
            watch_and_read(pipe, "k", ("GET", "k"))
