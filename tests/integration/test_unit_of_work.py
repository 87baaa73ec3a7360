"""The unit of work (`shared.unit_of_work.RedisUnitOfWork`) against a real Redis: a body runs
again when what it read changed, its writes and events commit together or not at all, events
are counted once committed, and each guarded read or commit is one round trip."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from shared.contracts import RegistrationStarted
from shared.events import Event, InvalidEvent, stream_for
from shared.unit_of_work import RedisUnitOfWork

STARTED = stream_for("RegistrationStarted")
_COMMAND_NAME = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class CountingConnection(redis.Connection):
    """A connection that keeps what it sends: one send is one round trip (the answers are read
    before anything else is sent on it)."""

    sent: list[list[str]]

    def send_packed_command(self, command, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes | str) else b"".join(command)
        packed = packed.encode() if isinstance(packed, str) else packed
        self.sent.append([name.decode().upper() for name in _COMMAND_NAME.findall(packed)])
        super().send_packed_command(command, check_health)


@pytest.fixture
def counted(redis_server, redis_client) -> Iterator[tuple[redis.Redis, list[list[str]]]]:
    """A client whose sends are recorded, its one connection opened already (the handshake of a
    new connection is not a request's)."""
    sent: list[list[str]] = []
    connection_class = type("Counting", (CountingConnection,), {"sent": sent})
    pool = redis.ConnectionPool.from_url(
        redis_server.url, decode_responses=True, connection_class=connection_class, max_connections=1
    )
    client = redis.Redis(connection_pool=pool)
    client.ping()
    sent.clear()
    yield client, sent
    client.close()
    pool.disconnect()


@pytest.fixture
def other(redis_server) -> Iterator[redis.Redis]:
    """Another client: someone else changing keys meanwhile."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def unit_of_work(client: redis.Redis) -> RedisUnitOfWork:
    return RedisUnitOfWork(client, "identify", stream_maxlen=1000, clock=lambda: 1_700_000_000.0)


def started(registration_id: str, email: str = "fleur@example.fr") -> RegistrationStarted:
    return RegistrationStarted(
        registration_id=registration_id,
        login_email=email,
        identifier_type="SIRET",
        identifier="81880244900038",
        country="FR",
    )


def published(event_type: str = "RegistrationStarted") -> float:
    return REGISTRY.get_sample_value("portal_events_published_total", {"type": event_type}) or 0.0


def subjects(client: redis.Redis) -> list[str]:
    return [Event.from_json(fields["event"]).subject for _, fields in client.xrange(STARTED)]


def test_a_body_whose_watched_key_changed_meanwhile_runs_again_and_commits_once(redis_client, other):
    redis_client.set("test:seats", "3")
    uow = unit_of_work(redis_client)
    runs = []
    before = published()

    def take_a_seat(registration_id: str) -> int:
        (seats,) = uow.read("test:seats", ("GET", "test:seats"))
        runs.append(int(seats))
        if len(runs) == 1:
            other.set("test:seats", "2")  # someone took one after our read
        uow.writes.set("test:seats", int(seats) - 1)
        uow.writes.sadd("test:holders", registration_id)
        uow.publish(started(registration_id))
        return int(seats) - 1

    assert uow.run(take_a_seat, "r1") == 1
    assert runs == [3, 2], "the body ran again on what the other client wrote"
    assert redis_client.get("test:seats") == "1"
    assert redis_client.smembers("test:holders") == {"r1"}
    assert subjects(redis_client) == ["r1"], "the first attempt's event was never written"
    assert published() == before + 1


def test_writes_and_events_commit_together(redis_client):
    uow = unit_of_work(redis_client)

    def register() -> None:
        uow.writes.hset("test:registration:r1", mapping={"status": "STARTED"})
        uow.publish(started("r1"))

    uow.run(register)
    assert redis_client.hgetall("test:registration:r1") == {"status": "STARTED"}
    (event,) = [Event.from_json(fields["event"]) for _, fields in redis_client.xrange(STARTED)]
    assert event.source == "/services/identify" and event.data["login_email"] == "fleur@example.fr"


def test_an_event_breaking_the_contract_writes_nothing(redis_client):
    uow = unit_of_work(redis_client)
    before = published()

    def register() -> None:
        uow.writes.hset("test:registration:r1", mapping={"status": "STARTED"})
        uow.publish(started("r1", email="not-an-email"))

    with pytest.raises(InvalidEvent):
        uow.run(register)
    assert redis_client.exists("test:registration:r1", STARTED) == 0
    assert published() == before
    uow.run(lambda: uow.writes.set("test:after", "1"))  # and the unit of work is usable again
    assert redis_client.get("test:after") == "1"


def test_a_body_that_raises_writes_nothing_and_publishes_nothing(redis_client):
    uow = unit_of_work(redis_client)
    before = published()

    def refuse() -> None:
        uow.read("test:k", ("GET", "test:k"))
        uow.writes.set("test:k", "written")
        uow.publish(started("r1"))
        raise LookupError("refused by the rules")

    with pytest.raises(LookupError):
        uow.run(refuse)
    assert redis_client.exists("test:k", STARTED) == 0
    assert published() == before


def test_published_events_are_counted_only_after_the_commit(redis_client, other):
    uow = unit_of_work(redis_client)
    before = published()
    seen_in_body = []

    def register() -> None:
        uow.read("test:k", ("GET", "test:k"))
        uow.publish(started("r1"))
        seen_in_body.append(published())
        if len(seen_in_body) == 1:
            other.set("test:k", "changed")  # the first attempt will not commit

    uow.run(register)
    assert seen_in_body == [before, before], "nothing counted before a commit"
    assert published() == before + 1, "the aborted attempt is not counted"


def test_reads_outside_run_are_not_watched(counted, other):
    client, sent = counted
    client.set("test:k", "1")
    sent.clear()
    uow = unit_of_work(client)
    assert uow.read("test:k", ("GET", "test:k")) == ["1"]
    assert sent == [["GET"]], "a plain read: no WATCH, one round trip"
    other.set("test:k", "2")
    runs = []

    def write() -> None:
        runs.append(1)
        uow.writes.set("test:other", "x")

    uow.run(write)
    assert runs == [1], "what was read outside run does not make the commit fail"
    assert client.get("test:other") == "x"


def test_several_reads_outside_run_go_in_one_round_trip(counted):
    client, sent = counted
    client.hset("test:h", mapping={"a": "1"})
    sent.clear()
    found = unit_of_work(client).read(["test:h", "test:s"], ("HGETALL", "test:h"), ("EXISTS", "test:s"))
    assert found == [{"a": "1"}, 0]
    assert sent == [["HGETALL", "EXISTS"]]


def test_one_guarded_read_is_one_round_trip_and_the_commit_one_more(counted):
    client, sent = counted
    uow = unit_of_work(client)

    def body() -> None:
        found = uow.read("test:h", ("HGETALL", "test:h"), ("EXISTS", "test:s"))
        assert found == [{}, 0]
        assert sent == [["WATCH", "HGETALL", "EXISTS"]]
        uow.writes.hset("test:h", mapping={"a": "1"})
        uow.publish(started("r1"))

    uow.run(body)
    assert sent == [["WATCH", "HGETALL", "EXISTS"], ["MULTI", "HSET", "XADD", "EXEC"]]


def test_each_guarded_read_is_one_round_trip(counted):
    client, sent = counted
    uow = unit_of_work(client)

    def body() -> None:
        uow.read("test:a", ("GET", "test:a"))
        uow.read("test:b", ("GET", "test:b"))
        uow.writes.set("test:a", "1")

    uow.run(body)
    assert sent == [["WATCH", "GET"], ["WATCH", "GET"], ["MULTI", "SET", "EXEC"]]


def test_a_body_with_nothing_to_do_costs_no_round_trip(counted):
    client, sent = counted
    unit_of_work(client).run(lambda: None)
    assert sent == []


def test_events_are_published_inside_run_only_and_one_run_at_a_time(redis_client):
    uow = unit_of_work(redis_client)
    with pytest.raises(RuntimeError):
        uow.publish(started("r1"))
    with pytest.raises(RuntimeError):
        uow.run(lambda: uow.run(lambda: None))
    assert redis_client.exists(STARTED) == 0


@pytest.mark.parametrize("name", ["execute", "multi", "watch", "unwatch", "discard"])
def test_only_redis_commands_can_be_recorded_as_writes(redis_client, name):
    with pytest.raises(AttributeError):
        getattr(unit_of_work(redis_client).writes, name)
