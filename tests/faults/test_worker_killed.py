"""Scenario 2: the Celery worker is SIGKILLed while it sends an email.

The SMTP server is slow (it holds its answer to DATA for a few seconds), so the kill lands after
the message was sent and before the server accepted it: the server keeps nothing (a real one
would not deliver either), and the email must go out again, once.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.faults import ledger
from tests.faults.driver import Driver
from tests.faults.harness import VISIBILITY_TIMEOUT, System, unacked_email_tasks, wait_until

BATCH = 10
SLOW_DATA_SECONDS = 4.0
LEASE_RETRY = "another copy of this task is sending"

pytestmark = pytest.mark.timeout(150)


def sender(system: System) -> psutil.Process | None:
    """The worker's pool child whose connection to the SMTP server is inside DATA (the other child
    may be connected too, at another stage)."""
    recorder = system.smtp.recorder
    with recorder.started:
        in_data = set(recorder.in_data)
    for child in system.children("worker"):
        try:
            connections = child.net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == system.smtp.port and c.laddr.port in in_data for c in connections):
            return child
    return None


def wait_mid_data(system: System) -> psutil.Process:
    assert system.smtp.recorder.wait_data_started(1, 30), "no email reached DATA"
    return wait_until(lambda: sender(system), 5, "a pool child connected to SMTP", every=0.02)


def test_pool_child_killed_while_sending(start_system, report):
    """SIGKILL the worker's pool child while it sends: the email still goes out, exactly once."""
    system = start_system()
    driver = Driver(system, "child", email_timeout=30)
    journeys = driver.journeys(BATCH)
    report.note(f"batch: {BATCH} registrations; worker --concurrency 2, acks_late + reject_on_worker_lost")
    driver.run(journeys, until="structure")

    recorder = system.smtp.recorder
    recorder.delay = SLOW_DATA_SECONDS
    flow = driver.run_in_background(journeys)
    child = wait_mid_data(system)
    child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    recorder.delay = 0.0
    report.note(f"pool child {child.pid} SIGKILLed during DATA (the server holding its answer)")
    flow.join(60)
    report.note(
        f"the server dropped {recorder.dropped} message whose client vanished before the 250; "
        f"the batch ended {time.monotonic() - killed_at:.1f} s after the kill"
    )
    report.note(
        f"worker log: {system.count_in_log('worker', 'exited with')} pool child lost, "
        f"{system.count_in_log('worker', LEASE_RETRY)} retries because the send lease was held, "
        f"{system.count_in_log('worker', 'not sent after')} email(s) given up"
    )
    result = ledger.check(system, driver, journeys, timeout=10)
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)
    if result.problems:
        report.note("NOT MET: " + "; ".join(result.problems))
    result.assert_clean(system)
    assert recorder.dropped == 1


def test_whole_worker_killed_while_sending(start_system, report):
    """SIGKILL the whole worker (main process and pool) while it sends: what comes back, and when."""
    system = start_system()
    driver = Driver(system, "worker", email_timeout=60)
    journeys = driver.journeys(6)
    report.note("batch: 6 registrations; the worker's main process and pool children all SIGKILLed mid-DATA")
    driver.run(journeys, until="structure")

    recorder = system.smtp.recorder
    recorder.delay = SLOW_DATA_SECONDS
    driver.run(journeys, until="workspaces")
    wait_mid_data(system)
    system.kill("worker", signal.SIGKILL, group=True)
    recorder.delay = 0.0
    stranded = unacked_email_tasks(system.redis)
    report.note(
        f"after the kill: {len(stranded)} email task(s) held in kombu's `unacked` hash, "
        f"{system.redis.llen('emails')} still waiting in the queue, "
        f"{recorder.dropped} message(s) dropped mid-DATA"
    )
    assert stranded

    # A restart restores only what has been unacknowledged longer than the visibility timeout.
    system.restart("worker")
    delivered_before = len(recorder.messages)
    time.sleep(10)
    still = unacked_email_tasks(system.redis)
    report.note(
        f"worker restarted; 10 s later {len(recorder.messages) - delivered_before} email(s) sent, "
        f"{len(set(still) & set(stranded))} of the stranded task(s) still unacknowledged: with the Redis "
        f"transport they come back only once unacknowledged for visibility_timeout ({VISIBILITY_TIMEOUT} s), "
        "found by a worker's periodic or start-up restore"
    )

    # What an hour later looks like: the stranded entries aged past the visibility timeout, the
    # dead sender's 120-s lease lapsed. The next worker start restores them.
    lapsed = system.an_hour_later(still)
    restart_at = time.monotonic()
    driver.run(journeys)
    report.note(
        f"simulated {VISIBILITY_TIMEOUT} s later (entries aged, {lapsed} stale lease(s) lapsed), then a "
        f"worker restart: the stranded email(s) sent {time.monotonic() - restart_at:.1f} s after it"
    )
    result = ledger.check(system, driver, journeys)
    report.note(f"driver saw: {driver.tally.summary()}")
    report.facts(result.facts)
    result.assert_clean(system)
