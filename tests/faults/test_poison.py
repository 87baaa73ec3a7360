"""Scenario 5: poison events are dead-lettered, the stream flows on, and dead letters are replayed.

Three poisons on `events:StructureConfirmed`, read by two groups (activate and identify):
- an event whose data breaks the contract: both groups fail to read it;
- an event that passes the contract but makes activate's handler raise every time (a first name
  holding a lone UTF-16 surrogate, which JSON carries but Redis cannot store);
- a real registration of the batch whose handling fails because activate's state for it is
  corrupt (a key of the wrong type): dead-lettered, repaired, replayed, and the registration ends
  activated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from shared.bus import DEAD_LETTERS
from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import ROOT, System, wait_until

BATCH = 10
STREAM = "events:StructureConfirmed"

pytestmark = pytest.mark.timeout(150)


def structure_confirmed(registration_id: str, first_name: str) -> dict:
    """A StructureConfirmed document that passes the contract."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/services/structure",
        "type": "StructureConfirmed",
        "time": "2026-01-01T00:00:00.000Z",
        "subject": registration_id,
        "datacontenttype": "application/json",
        "data": {
            "registration_id": registration_id,
            "structure_id": str(uuid.uuid4()),
            "structure": {
                "identifier_type": "HORS_UE",
                "identifier": "POISON-1",
                "country": "CH",
                "company_name": "Poison SA",
                "address": "1 rue du Rhône",
                "postal_code": "1204",
                "city": "Genève",
            },
            "user": {
                "last_name": "Poison",
                "first_name": first_name,
                "login_email": "poison@example.com",
                "contact_email": "poison@example.com",
                "survey_consent": False,
            },
            "features": {"payment_requests": True, "dume": False},
        },
    }


def dead_letters_command(system: System, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "system.dead_letters", *args],
        env=system.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_poison_events_are_dead_lettered_and_replayed(start_system, report):
    """Poison events: dead-lettered after N tries with their reason; the stream flows; list and replay."""
    system = start_system()
    client = system.redis
    driver = Driver(system, "poison")
    journeys = driver.journeys(BATCH)
    victim, others = journeys[0], journeys[1:]
    report.note(f"batch: {BATCH} registrations; EVENT_MAX_DELIVERIES=3, EVENT_CLAIM_IDLE_MS=1000")

    # The poisons go first, so that every event of the batch comes after them on the stream.
    invalid = structure_confirmed("poison-invalid", "Ada")
    del invalid["data"]["structure_id"], invalid["data"]["user"]
    raising = structure_confirmed("poison-raising", "\ud800")  # JSON carries it; Redis cannot store it
    poisoned_at = time.monotonic()
    for doc in (invalid, raising):
        client.xadd(STREAM, {"event": json.dumps(doc)})  # ASCII JSON: the lone surrogate is escaped

    driver.run(journeys, until="identify")
    client.set(f"activate:account:{victim.registration_id}", "corrupt")  # the wrong type of key
    driver.run(others)
    report.note(f"the other {len(others)} registrations went through to activation behind the poisons")
    driver.run([victim], until="structure")

    letters = wait_until(
        lambda: client.xlen(DEAD_LETTERS) >= 4 and client.xrange(DEAD_LETTERS), 30, "4 dead letters"
    )
    report.note(f"4 dead letters within {time.monotonic() - poisoned_at:.1f} s of the first poison")
    by_event: dict[str, list[dict]] = {}
    for _, fields in letters:
        by_event.setdefault(json.loads(fields["event"])["subject"], []).append(fields)
    assert sorted(f["group"] for f in by_event["poison-invalid"]) == ["activate", "identify"]
    assert all("InvalidEvent" in f["reason"] for f in by_event["poison-invalid"])
    ((raised,),) = [by_event["poison-raising"]]
    assert raised["group"] == "activate" and "UnicodeEncodeError" in raised["reason"]
    ((corrupt,),) = [by_event[victim.registration_id]]
    assert corrupt["group"] == "activate" and "WRONGTYPE" in corrupt["reason"]
    assert {f["deliveries"] for fs in by_event.values() for f in fs} == {"3"}
    for subject, fields in by_event.items():
        for f in fields:
            report.note(
                f"dead letter of {subject} (group {f['group']}, {f['deliveries']} deliveries): "
                f"{f['reason'][:110]}"
            )

    # The command lists them (no event data), refuses to replay the invalid one, replays the rest.
    listed = dead_letters_command(system, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    shown = {d["id"]: d for d in json.loads(listed.stdout)}
    assert len(shown) == 4 and "poison@example.com" not in listed.stdout
    invalid_ids = [i for i, d in shown.items() if d["not_replayable"]]
    assert len(invalid_ids) == 2
    refused = dead_letters_command(system, "replay", invalid_ids[0])
    assert refused.returncode == 1 and "refusée" in refused.stdout, refused.stdout + refused.stderr
    report.note(
        "`dead_letters list --json` shows the 4, without their data; `replay` refuses the invalid one"
    )

    client.delete(f"activate:account:{victim.registration_id}")  # the repair
    corrupt_id = next(i for i, d in shown.items() if d["subject"] == victim.registration_id)
    replayed = dead_letters_command(system, "replay", corrupt_id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    report.note(f"state repaired, then `dead_letters replay {corrupt_id}`: {replayed.stdout.strip()}")
    driver.run([victim])
    report.note(
        f"the repaired registration ended {driver.status(victim)!r}; identify skipped the replayed copy"
    )

    replayed_event = {json.loads(corrupt["event"])["id"]}
    result = ledger.check(system, driver, journeys, dead_letters=3, copies_injected=replayed_event)
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)
    result.assert_clean(system)
    assert client.exists(f"identify:seen:/services/structure:{json.loads(corrupt['event'])['id']}")
