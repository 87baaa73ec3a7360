"""Scenario 6: the same event delivered twice, and two beat schedulers started by mistake.

Short validities make the sweeps bite during the test: activation links last 4 s, registrations
that have not reached step 3 expire after 10 s, and each of the two beats asks for both sweeps
every second. Then every effect must still happen once: one ActivationTokenExpired per link,
one RegistrationExpired per abandoned registration, one email per link, whatever was copied.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from shared.celery_app import make_celery
from shared.settings import Settings
from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import System, wait_until

PER_GROUP = 4
SETTINGS = {"ACTIVATION_TTL_SECONDS": "4", "REGISTRATION_TTL_SECONDS": "10", "EXPIRY_SWEEP_SECONDS": "1"}

pytestmark = pytest.mark.timeout(150)


def copy_entries(system: System, event_type: str, subjects: set[str]) -> set[str]:
    """Add each entry about `subjects` to its stream a second time (a producer that retried)."""
    copied = set()
    for _, doc in ledger.stream_events(system.redis, event_type):
        if doc.get("subject") in subjects:
            system.redis.xadd(f"events:{event_type}", {"event": json.dumps(doc)})
            copied.add(doc["id"])
    return copied


def per_subject(system: System, event_type: str) -> Counter[str]:
    """How many distinct events of `event_type` each registration has."""
    ids: dict[str, set[str]] = {}
    for _, doc in ledger.stream_events(system.redis, event_type):
        ids.setdefault(doc["subject"], set()).add(doc["id"])
    return Counter({subject: len(found) for subject, found in ids.items()})


def test_duplicates_and_two_beats_have_one_effect(start_system, report, tmp_path):
    """Same event delivered twice, two beats: one expiry event per link and per registration, one email."""
    system = start_system(settings=SETTINGS)
    second = tmp_path / "var-beat-2"
    second.mkdir()
    system.add("beat", env={"VAR_DIR": str(second)})  # its own schedule file, as on another machine
    driver = Driver(system, "dup")
    links, after_step1, after_step2 = (driver.journeys(PER_GROUP, start=1 + PER_GROUP * k) for k in range(3))
    report.note(
        f"batch: {3 * PER_GROUP} registrations: {PER_GROUP} get a link and let it expire (4 s), {PER_GROUP} "
        f"stop after step 1 and {PER_GROUP} after step 2 (expire after 10 s); two beats, sweeps every 1 s"
    )
    driver.run(links, until="email")
    driver.run(after_step1, until="identify")
    driver.run(after_step2, until="structure")
    everyone = links + after_step1 + after_step2
    rid = {j.number: j.registration_id for j in everyone}

    # Every event of the batch delivered a second time, and one email task queued again by hand.
    copies = set()
    copies |= copy_entries(system, "RegistrationStarted", {rid[j.number] for j in everyone})
    copies |= copy_entries(system, "StructureConfirmed", {rid[j.number] for j in links + after_step2})
    copies |= copy_entries(system, "WorkspacesChosen", {rid[j.number] for j in links})
    copies |= copy_entries(system, "ActivationLinkIssued", {rid[j.number] for j in links})
    issued = next(doc for _, doc in ledger.stream_events(system.redis, "ActivationLinkIssued"))
    celery = make_celery(Settings.from_env(system.env))
    celery.send_task("notify.send_activation_email", kwargs=issued["data"], task_id=issued["id"])
    report.note(f"{len(copies)} events put a second time on their streams; one email task sent again by hand")

    link_ids = {rid[j.number] for j in links}
    abandoned = {rid[j.number] for j in after_step1 + after_step2}
    wait_until(
        lambda: (
            set(per_subject(system, "ActivationTokenExpired")) >= link_ids
            and set(per_subject(system, "RegistrationExpired")) >= abandoned
        ),
        40,
        "every link and every abandoned registration expired",
        every=0.5,
    )
    copies |= copy_entries(system, "ActivationTokenExpired", link_ids)
    time.sleep(3)  # three more rounds of both beats' sweeps, and the copies handled

    token_expired, registration_expired = (
        per_subject(system, "ActivationTokenExpired"),
        per_subject(system, "RegistrationExpired"),
    )
    sends = [system.count_in_log(f"beat.{n}", "Sending due task") for n in (1, 2)]
    sweeps = system.count_in_log("worker", "expire_activation_tokens") + system.count_in_log(
        "worker", "expire_registrations"
    )
    report.note(
        f"the two beats sent {sends[0]} and {sends[1]} sweep tasks; the worker logged {sweeps} sweep lines"
    )
    report.note(
        f"ActivationTokenExpired per link: {sorted(token_expired[r] for r in link_ids)}; "
        "RegistrationExpired per abandoned registration: "
        f"{sorted(registration_expired[r] for r in abandoned)}"
    )
    statuses = {j.number: {"expired"} for j in everyone}
    result = ledger.check(system, driver, everyone, statuses=statuses, copies_injected=copies)
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)

    assert min(sends) >= 3, "both beats kept sending"
    assert all(token_expired[r] == 1 for r in link_ids)
    assert all(registration_expired[r] == 1 for r in abandoned)
    assert not set(registration_expired) & link_ids
    assert not set(token_expired) & abandoned
    result.assert_clean(system)
