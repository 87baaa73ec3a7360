"""`python -m system.dead_letters` against a real Redis, with dead letters made by real consumers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.bus import DEAD_LETTERS, Consumer, stream_for
from shared.events import Event, new_event
from shared.testing import publish_now
from shared.unit_of_work import RedisUnitOfWork
from system import dead_letters
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTED = stream_for("RegistrationStarted")
PERSONAL = "fleur.fontaine@example.fr"

pytestmark = pytest.mark.timeout(60)


def started(registration_id: str) -> Event:
    return new_event(
        "RegistrationStarted",
        "identify",
        registration_id,
        {
            "login_email": PERSONAL,
            "identifier_type": "SIRET",
            "identifier": "81880244900038",
            "country": "FR",
        },
    )


class Flaky:
    """A handler that fails for the subjects in `broken` and counts its effects in Redis."""

    def __init__(self, group: str, broken: set[str]) -> None:
        self.group = group
        self.broken = broken

    def __call__(self, event: Event, uow: RedisUnitOfWork) -> None:
        if event.subject in self.broken:
            raise RuntimeError(f"{self.group} cannot handle {event.subject}")
        uow.writes.hincrby(f"effects:{self.group}", event.subject, 1)


def consumer(redis_client, group: str, handler: Flaky) -> Consumer:
    return Consumer(
        redis_client,
        group,
        {"RegistrationStarted": handler},
        name=f"{group}-1",
        block_ms=20,
        claim_idle_ms=50,
        max_deliveries=2,
    )


def drain(*consumers: Consumer, until=lambda: False, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            c.run_once()
        if until():
            return
        time.sleep(0.06)  # past claim_idle_ms, so that failed entries are claimed again


@pytest.fixture
def letters(redis_client):
    """Two groups on one stream: `broken` fails on r1 for good, `audit` only on r2 (at first)."""
    structure = Flaky("structure", {"r1"})
    audit = Flaky("audit", {"r1", "r2"})
    consumers = [consumer(redis_client, "structure", structure), consumer(redis_client, "audit", audit)]
    for c in consumers:
        c.ensure_groups()
    for rid in ("r1", "r2", "r3"):
        publish_now(redis_client, started(rid))
    drain(*consumers, until=lambda: redis_client.xlen(DEAD_LETTERS) == 3)
    assert redis_client.xlen(DEAD_LETTERS) == 3
    return consumers, structure, audit


def effects(redis_client, group: str) -> dict[str, str]:
    return redis_client.hgetall(f"effects:{group}")


def test_list_shows_where_which_and_why_never_the_data(redis_client, letters):
    listed = dead_letters.dead_letters(redis_client)
    assert [(d.group, d.subject) for d in listed] == [("structure", "r1"), ("audit", "r1"), ("audit", "r2")]
    first = listed[0]
    assert first.stream == STARTED and first.deliveries == 2 and first.event_type == "RegistrationStarted"
    assert first.reason == "RuntimeError: structure cannot handle r1"
    assert first.not_replayable is None and first.failed_at and first.failed_at.endswith("+00:00")
    text = dead_letters.render_list(listed, 3)
    assert "RuntimeError: audit cannot handle r2" in text and PERSONAL not in text
    assert dead_letters.render_list([], 0).startswith("Aucune lettre morte")


def test_replay_puts_the_same_event_back_and_only_the_failed_group_handles_it(redis_client, letters):
    consumers, structure, audit = letters
    audit.broken.clear()  # the cause is fixed for audit
    (letter,) = [
        d for d in dead_letters.dead_letters(redis_client) if (d.group, d.subject) == ("audit", "r2")
    ]
    length = redis_client.xlen(STARTED)

    (outcome,) = dead_letters.replay(redis_client, [letter.id], stream_maxlen=10_000)

    assert outcome.result == dead_letters.REPLAYED and outcome.stream == STARTED
    assert redis_client.xlen(STARTED) == length + 1
    _, fields = redis_client.xrange(STARTED, min=outcome.new_entry_id, max=outcome.new_entry_id)[0]
    assert Event.from_json(fields["event"]).id == letter.event_id  # the same CloudEvents id
    assert letter.id not in [d.id for d in dead_letters.dead_letters(redis_client)]
    drain(*consumers, until=lambda: effects(redis_client, "audit").get("r2") == "1", timeout=5)
    assert effects(redis_client, "audit") == {"r2": "1", "r3": "1"}
    assert effects(redis_client, "structure") == {"r2": "1", "r3": "1"}  # it had r2 already: skipped
    for group in ("structure", "audit"):
        assert redis_client.xpending(STARTED, group)["pending"] == 0


def test_replay_all_adds_one_entry_per_event_and_removes_every_letter(redis_client, letters):
    consumers, structure, audit = letters
    structure.broken.clear()
    audit.broken.clear()
    length = redis_client.xlen(STARTED)

    outcomes = dead_letters.replay(
        redis_client, [d.id for d in dead_letters.dead_letters(redis_client)], 10_000
    )

    assert [o.result for o in outcomes] == [
        dead_letters.REPLAYED,  # structure's r1
        dead_letters.ALREADY_REPLAYED,  # audit's r1: the same event, already back on the stream
        dead_letters.REPLAYED,  # audit's r2
    ]
    assert redis_client.xlen(STARTED) == length + 2
    assert redis_client.xlen(DEAD_LETTERS) == 0
    drain(*consumers, until=lambda: effects(redis_client, "audit").get("r1") == "1", timeout=5)
    assert effects(redis_client, "structure") == {"r1": "1", "r2": "1", "r3": "1"}
    assert effects(redis_client, "audit") == {"r1": "1", "r2": "1", "r3": "1"}


def test_an_invalid_event_is_refused_and_a_missing_letter_reported(redis_client):
    redis_client.xadd(
        DEAD_LETTERS,
        {"stream": STARTED, "group": "structure", "entry_id": "1-0", "event": "{not json", "reason": "x"},
    )
    wrong_stream = started("r9").to_json()
    redis_client.xadd(
        DEAD_LETTERS,
        {"stream": "events:AccountActivated", "group": "x", "entry_id": "2-0", "event": wrong_stream},
    )
    redis_client.xadd(DEAD_LETTERS, {"stream": STARTED, "group": "x", "entry_id": "3-0", "event": ""})
    ids = [d.id for d in dead_letters.dead_letters(redis_client)]

    outcomes = dead_letters.replay(redis_client, [*ids, "99-0"], 10_000)

    assert [o.result for o in outcomes] == [dead_letters.REFUSED] * 3 + [dead_letters.MISSING]
    assert "invalide" in outcomes[0].detail and "n'appartient pas" in outcomes[1].detail
    assert "disparu" in outcomes[2].detail
    assert redis_client.xlen(DEAD_LETTERS) == 3 and not redis_client.exists(STARTED)
    assert [o.result for o in dead_letters.drop(redis_client, [ids[0], "99-0"])] == ["dropped", "missing"]
    assert redis_client.xlen(DEAD_LETTERS) == 2


def test_a_letter_is_replayed_once_even_when_asked_twice(redis_client, letters):
    letter = dead_letters.dead_letters(redis_client)[0]
    length = redis_client.xlen(STARTED)
    first, second = dead_letters.replay(redis_client, [letter.id, letter.id], 10_000)
    assert (first.result, second.result) == (dead_letters.REPLAYED, dead_letters.MISSING)
    assert redis_client.xlen(STARTED) == length + 1


def run(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "system.dead_letters", *args],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_command(redis_server, redis_client, letters):
    consumers, structure, audit = letters
    listed = run(redis_server.url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert [d["subject"] for d in shown] == ["r1", "r1", "r2"] and PERSONAL not in listed.stdout
    text = run(redis_server.url, "list")
    assert text.returncode == 0 and "3 lettre(s) morte(s)" in text.stdout and PERSONAL not in text.stdout

    audit.broken.clear()
    replayed = run(redis_server.url, "replay", shown[2]["id"])
    assert replayed.returncode == 0 and "remise dans events:RegistrationStarted" in replayed.stdout
    everything = run(redis_server.url, "replay", "--all", "--json")
    assert everything.returncode == 0
    assert [o["result"] for o in json.loads(everything.stdout)] == ["replayed", "already-replayed"]
    assert redis_client.xlen(DEAD_LETTERS) == 0

    usage = run(redis_server.url, "replay")
    assert usage.returncode == 2 and "ENTRY_ID" in usage.stderr
    helped = run(redis_server.url, "replay", "--help")
    assert "même identifiant CloudEvents" in helped.stdout and "l'ignore" in helped.stdout


def test_the_command_says_when_redis_does_not_answer():
    answer = run(f"redis://127.0.0.1:{free_port()}/0", "list")
    assert answer.returncode == 1 and "Redis injoignable" in answer.stderr
