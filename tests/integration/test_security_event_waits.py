"""Unknown ids no longer hold a thread: a read waits only when an event may still bring its
record, wakes when the consumer announces it (no polling), and few wait at once per process."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import pytest

from services.activate.app import create_app as activate_app
from services.structure.app import create_app
from services.structure.bootstrap import SERVICE
from shared.arrivals import Arrivals
from shared.errors import Busy
from shared.testing import publish_now
from tests.integration.test_structure_support import deliver, make_consumer, started

WAIT = 3.0  # long enough that a request which waited for it cannot be mistaken for one that did not


def form_url(registration_id: str) -> str:
    return f"/structure/api/registrations/{registration_id}"


def counting(fetch):
    """`fetch`, counting its calls in `.calls`."""

    def counted():
        counted.calls += 1
        return fetch()

    counted.calls = 0
    return counted


@pytest.fixture
def arrivals(redis_client):
    """Arrivals of structure's registrations; their listeners stopped after the test."""
    made = []

    def make(max_waiting: int = 2, timeout: float = WAIT) -> Arrivals:
        made.append(
            Arrivals(redis_client, SERVICE, "RegistrationStarted", timeout=timeout, max_waiting=max_waiting)
        )
        return made[-1]

    yield make
    for each in made:
        each.close()


def commands_run(redis_client, name: str) -> int:
    stats = redis_client.info("commandstats").get(f"cmdstat_{name}", {})
    return int(stats.get("calls", 0))


def test_unknown_ids_are_answered_at_once_when_every_event_was_handled(redis_client, settings):
    deliver(redis_client, settings, started())  # the consumer has handled all there is
    app = create_app(replace(settings, event_wait_seconds=WAIT), client=redis_client)
    before = commands_run(redis_client, "hgetall")
    begun = time.monotonic()
    answers = [app.test_client().get(form_url(str(uuid.uuid4()))).status_code for _ in range(5)]
    elapsed = time.monotonic() - begun
    assert answers == [404] * 5
    # Two looks each (before and after checking the consumer's progress), not one every few ms.
    assert commands_run(redis_client, "hgetall") - before <= 2 * 5
    assert elapsed < WAIT  # five unknown ids in less than one wait: none of them waited


def test_a_record_still_on_its_way_is_waited_for_and_wakes_the_request(redis_client, settings, arrivals):
    event = started()
    consumer = make_consumer(redis_client, settings)
    consumer.ensure_groups()
    publish_now(redis_client, event)  # published, not handled yet
    fetch = counting(lambda: redis_client.hgetall(f"structure:registration:{event.subject}") or None)

    def handle_later() -> None:
        time.sleep(0.3)
        consumer.run_once()

    thread = threading.Thread(target=handle_later)
    thread.start()
    found = arrivals().wait_for(event.subject, fetch)
    thread.join()
    assert found is not None
    # First look, look once listening, look when woken: no polling while waiting.
    assert fetch.calls == 3


def test_beyond_the_cap_a_process_answers_busy_instead_of_waiting(redis_client, arrivals):
    publish_now(redis_client, started())  # outstanding, and nobody handles it
    waiting = arrivals(max_waiting=1, timeout=1.0)
    holder = threading.Thread(target=waiting.wait_for, args=("someone", lambda: None))
    holder.start()
    time.sleep(0.2)  # the holder is waiting by now
    with pytest.raises(Busy) as refused:
        waiting.wait_for("another", lambda: None)
    holder.join()
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    assert waiting.wait_for("another", lambda: "found") == "found"  # a free slot again


def test_busy_is_503_with_retry_after_on_the_api_and_the_page(redis_client, settings):
    publish_now(redis_client, started())  # outstanding, and nobody handles it
    app = create_app(
        replace(settings, event_wait_seconds=1.0, event_waits_per_process=1), client=redis_client
    )
    holder = threading.Thread(target=lambda: app.test_client().get(form_url("held")))
    holder.start()
    time.sleep(0.2)
    api = app.test_client().get(form_url("another"))
    page = app.test_client().get("/structure/registrations/another")
    holder.join()
    app.extensions["portal_wiring"].registrations.close()
    assert api.status_code == 503 and api.headers["Retry-After"] == "1"
    assert api.json["message"].startswith("Le service est très sollicité")
    assert page.status_code == 503 and page.headers["Retry-After"] == "1"
    assert "très sollicité" in page.get_data(as_text=True)


# --- the reads are limited per client address, API and page alike -------------------------------


def reads_limited(settings, limit: str = "3 per minute"):
    return replace(settings, rate_limit_step_reads_per_ip=limit)


def from_ip(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_step_two_reads_per_address(redis_client, settings):
    app = create_app(reads_limited(settings), client=redis_client)
    client = app.test_client()
    unknown = [form_url(str(uuid.uuid4())) for _ in range(2)]
    answers = [client.get(url, headers=from_ip("203.0.113.9")).status_code for url in unknown]
    answers.append(client.get("/structure/registrations/x", headers=from_ip("203.0.113.9")).status_code)
    refused = client.get(unknown[0], headers=from_ip("203.0.113.9"))
    page = client.get("/structure/registrations/y", headers=from_ip("203.0.113.9"))
    assert answers == [404, 404, 404]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert page.status_code == 429 and "Trop de tentatives" in page.get_data(as_text=True)
    assert client.get(unknown[0], headers=from_ip("203.0.113.10")).status_code == 404  # another client


def test_step_three_reads_per_address(redis_client, settings):
    client = activate_app(reads_limited(settings), client=redis_client).test_client()
    urls = [
        "/activate/api/registrations/a/workspaces",
        "/activate/registrations/b/workspaces",
        "/activate/registrations/c/created",
    ]
    assert [client.get(url, headers=from_ip("203.0.113.9")).status_code for url in urls] == [404] * 3
    refused = client.get(urls[0], headers=from_ip("203.0.113.9"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.get(urls[0], headers=from_ip("203.0.113.10")).status_code == 404
