"""Scenario 8: the Redis primary is killed (SIGKILL) in the middle of a batch; Sentinel promotes the
replica; the killed server, started again, becomes its replica. With REDIS_MIN_REPLICAS=1 nothing
that was answered is lost, and the clients' retries, each with its step's Idempotency-Key, make no
second registration."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import wait_until

BATCH = 200
KILLED_AFTER = 60  # journeys past step 1 when the primary is killed
WORKERS = 8

pytestmark = pytest.mark.timeout(420)


def test_primary_killed_mid_batch(start_system, report):
    """SIGKILL of the Redis primary mid-batch (a replica, three Sentinels, REDIS_MIN_REPLICAS=1):
    every process follows the promotion by itself; every registration answered 2xx is there and
    goes on; every link is emailed once; no retry makes a second registration."""
    system = start_system(sentinel=True)
    deployment = system.redis_server.deployment
    driver = Driver(system, "sentinel", step_timeout=120, email_timeout=120, idempotent=True)
    journeys = driver.journeys(BATCH)
    report.note(f"batch: {BATCH} registrations, {WORKERS} clients at a time, each retrying with its key")

    flow = driver.run_in_background(journeys, until="activate", workers=WORKERS)
    wait_until(
        lambda: sum("identify" in j.done for j in journeys) >= KILLED_AFTER,
        120,
        "the batch under way",
        every=0.05,
    )
    old_primary = deployment.primary_port()
    reached = {}
    for journey in journeys:
        reached[journey.reached] = reached.get(journey.reached, 0) + 1
    killed_at = time.monotonic()
    os.kill(deployment.primary.proc.pid, signal.SIGKILL)
    report.note(f"primary (port {old_primary}) killed with the batch at {dict(sorted(reached.items()))}")

    wait_until(lambda: deployment.primary_port() not in (None, old_primary), 60, "a promotion", every=0.05)
    promoted = time.monotonic() - killed_at
    report.note(
        f"Sentinel promoted the replica (port {deployment.primary_port()}) {promoted:.1f} s after the kill"
    )

    # The killed server is started again, as its supervisor (systemd, Docker's restart policy)
    # would: the Sentinels make it a replica of the promoted one. Until then the new primary has no
    # replica, and with REDIS_MIN_REPLICAS=1 every write is answered 503 (and retried).
    time.sleep(1)
    deployment.primary.start()
    new_primary = deployment.primary_port()
    wait_until(lambda: deployment.replicas_online(new_primary) >= 1, 60, "the old primary back as a replica")
    report.note(
        f"the old primary, started again, is a replica of the new one {time.monotonic() - killed_at:.1f} s "
        "after the kill: writes are confirmed again"
    )

    flow.join(timeout=300)
    assert not flow.is_alive(), "the batch did not finish"
    if driver.first_503 is not None and driver.last_503 is not None:
        report.note(
            f"clients met 503s from {driver.first_503 - killed_at:+.1f} s "
            f"to {driver.last_503 - killed_at:+.1f} s after the kill"
        )
    report.note(f"driver saw: {driver.tally.summary()}")

    result = ledger.check(system, driver, journeys, timeout=120)
    report.facts(result.facts)
    orphans = result.facts["orphan registrations (a retried step 1 whose first try had committed)"]
    for kind in ("identify", "structure", "activate", "activate-consumer", "worker", "beat"):
        lost = system.count_in_log(kind, "redis unavailable") + system.count_in_log(kind, "Connection")
        report.note(f"{kind}: {lost} log line(s) about the lost connection, reconnected by itself")

    failed = [j for j in journeys if j.error]
    assert not failed, f"{len(failed)} journey(s) failed, e.g. {failed[0].number}: {failed[0].error}"
    assert orphans == 0
    odd = {"503 not in JSON", "503 with a traceback or odd body"}
    unusual = {
        k: driver.tally.samples.get(k) for k in driver.tally.counts if k.startswith("unexpected") or k in odd
    }
    assert not unusual, f"{unusual}; gateway log:\n{system.tail('gateway')}"
    result.assert_clean(system)
