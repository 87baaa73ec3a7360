"""Scenario 1: an event consumer is SIGKILLed while it handles entries."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import System, wait_until

BATCH = 16

pytestmark = pytest.mark.timeout(150)


def pending_of(system: System, stream: str, group: str) -> dict[str, int]:
    summary = system.redis.xpending(stream, group)
    return {c["name"]: int(c["pending"]) for c in summary["consumers"] or []}


def entries_of(system: System, stream: str, group: str, consumer: str | None = None) -> dict[str, str]:
    """Pending entry id → the consumer holding it."""
    rows = system.redis.xpending_range(stream, group, "-", "+", 1000, consumername=consumer)
    return {row["message_id"]: row["consumer"] for row in rows}


def kill_mid_batch(system: System, kind: str, stream: str, group: str, report) -> tuple[str, dict[str, str]]:
    """Let copy 1 of `kind` work through a backlog, freeze it while it holds entries, SIGKILL it.

    Both copies were frozen (SIGSTOP) while the backlog built up. Copy 1 is let go; once it has
    made progress (acknowledged some entries, read others) and still holds delivered,
    unacknowledged ones, it is frozen, checked to still hold them, and killed: the kill lands in
    the middle of its batch.
    """
    victim = f"{kind}.1"
    before = entries_of(system, stream, group, victim)
    system.kill(victim, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        held = entries_of(system, stream, group, victim)
        if held and held != before:
            system.kill(victim, signal.SIGSTOP)
            held = entries_of(system, stream, group, victim)
            if held:
                system.kill(victim, signal.SIGKILL)
                report.note(
                    f"{victim} SIGKILLed in the middle of its batch, holding {len(held)} delivered, "
                    "unacknowledged entries"
                )
                return victim, held
            system.kill(victim, signal.SIGCONT)
    raise AssertionError(f"{victim} never held entries in the middle of a batch")


def wait_acked(system: System, stream: str, group: str, held: dict[str, str], timeout: float = 20) -> float:
    """Seconds until none of `held` is pending any more in `group`."""
    start = time.monotonic()
    wait_until(
        lambda: not set(entries_of(system, stream, group)) & set(held),
        timeout,
        f"{group}: the entries of the killed consumer acknowledged",
        every=0.02,
    )
    return time.monotonic() - start


def test_killed_consumer_entries_are_finished_once(start_system, report):
    """SIGKILL an event consumer mid-batch: another copy, or the restarted one, finishes its entries once."""
    system = start_system(copies={"structure-consumer": 2, "activate-consumer": 2})
    driver = Driver(system, "kill")
    journeys = driver.journeys(BATCH)
    report.note(f"batch: {BATCH} registrations; two copies of every consumer of structure and activate")

    # 1. structure: copy 1 killed while it handles RegistrationStarted; copy 2 claims what it held.
    stream, group = "events:RegistrationStarted", "structure"
    system.kill("structure-consumer", signal.SIGSTOP)
    driver.run(journeys, until="identify", workers=8)
    victim, held = kill_mid_batch(system, "structure-consumer", stream, group, report)
    # Copy 2, let go now, is the only live consumer of the group: it can only finish them by claiming.
    system.kill("structure-consumer.2", signal.SIGCONT)
    took = wait_acked(system, stream, group, held)
    report.note(
        f"{group}: the {len(held)} entries of the dead {victim} were claimed (XAUTOCLAIM, idle > 1000 ms) "
        f"and acknowledged by structure-consumer.2, {took:.1f} s after it was let go"
    )
    system.restart(victim)

    # 2. activate: copy 1 killed while it handles StructureConfirmed; copy 2 frozen meanwhile, so
    # the restarted copy 1 finishes its own pending entries (same CONSUMER_NAME, read from id 0).
    stream, group = "events:StructureConfirmed", "activate"
    system.kill("activate-consumer", signal.SIGSTOP)
    driver.run(journeys, until="structure", workers=8)
    victim, held = kill_mid_batch(system, "activate-consumer", stream, group, report)
    system.restart(victim)
    took = wait_acked(system, stream, group, held, timeout=30)
    report.note(
        f"{group}: {victim} restarted with the same CONSUMER_NAME (copy 2 still frozen): it finished its own "
        f"{len(held)} pending entries {took:.1f} s after the restart began (process start included)"
    )
    system.kill("activate-consumer.2", signal.SIGCONT)

    # 3. the rest of the flow, then the ledger.
    driver.run(journeys)
    result = ledger.check(system, driver, journeys)
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)
    result.assert_clean(system)

    # One effect: one seen-marker per event in each group, one account per registration whose id
    # is the one step 3 answered and AccountActivated carries.
    for group, event_type, producer in (
        ("structure", "RegistrationStarted", "identify"),
        ("activate", "StructureConfirmed", "structure"),
    ):
        events = {doc["id"] for _, doc in ledger.stream_events(system.redis, event_type)}
        seen = f"{group}:seen:/services/{producer}:*"  # the group follows other events too
        markers = {key.rsplit(":", 1)[1] for key in system.redis.scan_iter(seen, count=1000)}
        assert markers == events, f"{group}: seen markers do not match the {event_type} events one to one"
    activated = {
        doc["subject"]: doc["data"]["account_id"]
        for _, doc in ledger.stream_events(system.redis, "AccountActivated")
    }
    for journey in journeys:
        assert activated[journey.registration_id] == journey.account_id
    report.note(
        "one effect: one seen marker per event and group; "
        "each account id the same from step 3 to AccountActivated"
    )
