"""Scenario 4: Redis is stopped and started again (AOF on) in the middle of a batch."""

from __future__ import annotations

import time

import pytest
import requests

from tests.faults import ledger
from tests.faults.driver import Driver, Journey
from tests.faults.harness import (
    VISIBILITY_TIMEOUT,
    System,
    email_tasks_in_flight,
    unacked_email_tasks,
    wait_until,
)

BATCH = 14
FINISHED_FIRST = 4
DOWN_SECONDS = 5

pytestmark = pytest.mark.timeout(150)


def probe(system: System, method: str, path: str, json: dict | None = None) -> str:
    """What one endpoint answers while Redis is away; '' when it is a clean JSON 503."""
    try:
        answer = requests.request(method, system.url(path), json=json, timeout=30)
    except requests.RequestException as exc:
        return f"{method} {path}: no answer ({exc})"
    where = f"{method} {path} → {answer.status_code}"
    if answer.status_code != 503:
        return f"{where} {answer.text[:200]}"
    if not answer.headers.get("Content-Type", "").startswith("application/json"):
        return f"{where} not JSON: {answer.text[:200]}"
    if "Traceback" in answer.text or not isinstance(answer.json(), dict):
        return f"{where} shows a traceback: {answer.text[:200]}"
    return ""


def probes(finished: Journey) -> list[tuple[str, str, dict | None]]:
    rid = finished.registration_id
    start = {
        "login_email": "panne@example.com",
        "identifier_type": "HORS_UE",
        "identifier": "PANNE-1",
        "country": "CH",
    }
    return [
        ("GET", "/healthz", None),
        ("GET", "/identify/healthz", None),
        ("GET", "/notify/healthz", None),
        ("GET", f"/identify/api/registrations/{rid}", None),
        ("POST", "/identify/api/registrations", start),
        ("GET", f"/structure/api/registrations/{rid}", None),
        ("GET", f"/activate/api/registrations/{rid}/workspaces", None),
        ("POST", f"/activate/api/registrations/{rid}/activation-email", None),
    ]


def test_redis_restart_mid_batch(start_system, report):
    """Redis stopped and restarted mid-batch: 503 meanwhile, every process reconnects, nothing is lost."""
    system = start_system()
    driver = Driver(system, "redis", step_timeout=90, email_timeout=90)
    journeys = driver.journeys(BATCH)
    report.note(
        f"batch: {BATCH} registrations; {FINISHED_FIRST} activated before the outage, the other "
        f"{BATCH - FINISHED_FIRST} in steps 1-2 when Redis stops (no email task in flight: see the next test)"
    )
    driver.run(journeys[:FINISHED_FIRST])
    wait_until(lambda: not email_tasks_in_flight(system.redis), 20, "no email task in flight")
    in_flight = journeys[FINISHED_FIRST:]
    flow = driver.run_in_background(in_flight, until="structure", workers=4)
    wait_until(
        lambda: sum("identify" in j.done for j in in_flight) >= 3, 30, "the batch under way", every=0.05
    )

    system.redis_server.shutdown()
    down_at = time.monotonic()
    report.note(
        f"Redis shut down (SHUTDOWN: AOF flushed) with the batch at {sorted(j.reached for j in in_flight)}"
    )
    checks = probes(journeys[0])
    problems = [p for p in (probe(system, *call) for call in checks) if p]
    report.note(
        f"{len(checks)} endpoints probed while Redis was away: "
        + ("all answered a JSON 503, no traceback" if not problems else "; ".join(problems))
    )
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
    beat_sends = system.count_in_log("beat", "Sending due task")
    system.redis_server.start()
    up_at = time.monotonic()
    report.note(f"Redis away {up_at - down_at:.1f} s, then started again on the same port and AOF file")
    wait_until(lambda: requests.get(system.url("/healthz"), timeout=5).status_code == 200, 30, "/healthz 200")
    report.note(f"/healthz 200 again {time.monotonic() - up_at:.1f} s after Redis came back")

    flow.join(120)
    driver.run(journeys)
    report.note(f"the whole batch activated {time.monotonic() - up_at:.1f} s after Redis came back")
    result = ledger.check(system, driver, journeys)
    report.note(f"driver saw: {driver.tally.summary()}")
    if driver.first_503 is not None:
        report.note(
            f"the batch met 503s from {driver.first_503 - down_at:+.1f} s after the stop "
            f"to {driver.last_503 - up_at:+.1f} s after the restart"
        )
    report.facts(result.facts)
    dead = [i.name for i in system.instances.values() if not i.alive or i.starts != 1]
    report.note(
        "every process reconnected by itself, none restarted" if not dead else f"processes that died: {dead}"
    )
    wait_until(
        lambda: system.count_in_log("beat", "Sending due task") > beat_sends + 2, 20, "beat sending again"
    )
    report.note(
        f"worker: {system.count_in_log('worker', 'Connection to broker lost')} broker connection loss, "
        "reconnected, sent the later emails; beat sends its schedule again"
    )

    assert not problems
    assert not dead
    odd = {"503 not in JSON", "503 with a traceback or odd body"}
    unusual = {
        k: driver.tally.samples.get(k) for k in driver.tally.counts if k.startswith("unexpected") or k in odd
    }
    assert not unusual, f"{unusual}; gateway log:\n{system.tail('gateway')}"
    result.assert_clean(system)


def test_redis_away_while_email_tasks_run(start_system, report):
    """An email task taken by the worker when Redis goes away: the email arrives once Redis is back."""
    system = start_system()
    driver = Driver(system, "inflight", email_timeout=25)
    journeys = driver.journeys(4)
    report.note(
        "batch: 4 registrations; the pool children frozen (SIGSTOP) so that the worker holds an email "
        "task when Redis stops, let go while Redis is away"
    )
    driver.run(journeys, until="structure")
    children = system.children("worker")
    for child in children:
        child.suspend()
    driver.run(journeys, until="workspaces")
    wait_until(lambda: unacked_email_tasks(system.redis), 20, "an email task taken by the worker")
    held = unacked_email_tasks(system.redis)
    system.redis_server.shutdown()
    for child in children:
        child.resume()
    time.sleep(DOWN_SECONDS)
    system.redis_server.start()
    driver.run(journeys, until="email")
    late = [j for j in journeys if j.error]
    stranded = set(unacked_email_tasks(system.redis)) & set(held)
    report.note(
        f"{len(held)} email task(s) held by the worker when Redis stopped for {DOWN_SECONDS} s; "
        f"{len(journeys) - len(late)} of {len(journeys)} emails delivered within 25 s of its return; "
        f"{len(stranded)} held task(s) left in kombu's `unacked`"
    )
    report.note(
        f"worker log: {system.count_in_log('worker', 'not sent yet')} 'not sent yet', "
        f"{system.count_in_log('worker', 'reject requeue=False')} 'reject requeue=False'"
    )
    if stranded:
        lapsed = system.an_hour_later(stranded)
        for journey in late:
            journey.error = None
        driver.run(late, until="email")
        report.note(
            f"simulated {VISIBILITY_TIMEOUT} s later ({lapsed} lease(s) lapsed) and a worker restart: "
            f"{sum(not j.error for j in late)} of the {len(late)} missing email(s) then sent"
        )
    driver.run(journeys)
    result = ledger.check(system, driver, journeys, timeout=15)
    report.facts(result.facts)
    result.assert_clean(system)
    assert not late, f"{len(late)} email(s) waited for the visibility timeout"
