"""Scenario 3: the SMTP server refuses connections for a while, then comes back."""

from __future__ import annotations

import time

import pytest

from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import wait_until

BATCH = 12
RETRY_LINE = "not sent yet"
MIN_DOWN_SECONDS = 5

pytestmark = pytest.mark.timeout(150)


def test_emails_wait_for_smtp_and_arrive_once(start_system, report):
    """SMTP refuses connections for a while: every email arrives once it is back, none twice."""
    system = start_system()
    driver = Driver(system, "smtp", email_timeout=90)
    journeys = driver.journeys(BATCH)
    report.note(f"batch: {BATCH} registrations")

    driver.run(journeys, until="structure")
    system.smtp.refuse()
    refused_at = time.monotonic()
    driver.run(journeys, until="workspaces")
    # Every task has met the closed port at least once, and some have already retried.
    wait_until(
        lambda: (
            system.count_in_log("worker", RETRY_LINE) >= 3 * BATCH
            and time.monotonic() - refused_at >= MIN_DOWN_SECONDS
        ),
        60,
        f"email tasks retrying ({3 * BATCH} retries) while SMTP refused",
        every=0.3,
    )
    assert not system.smtp.recorder.messages
    down_for = time.monotonic() - refused_at
    retries_while_down = system.count_in_log("worker", RETRY_LINE)
    system.smtp.accept()
    back_at = time.monotonic()

    driver.run(journeys)
    all_in = time.monotonic() - back_at
    result = ledger.check(system, driver, journeys)
    report.note(
        f"SMTP refused connections for {down_for:.1f} s; {retries_while_down} task retries logged meanwhile"
    )
    report.note(f"all {BATCH} emails delivered and accounts activated {all_in:.1f} s after SMTP came back")
    report.note(
        f"retries in all: {system.count_in_log('worker', RETRY_LINE)}; "
        f"emails given up: {system.count_in_log('worker', 'not sent after')}"
    )
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)
    result.assert_clean(system)
    assert system.count_in_log("worker", "not sent after") == 0
