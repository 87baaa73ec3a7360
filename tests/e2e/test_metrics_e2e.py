"""`/metrics` of the running system shows real figures, added up over every process of a service
(gunicorn's workers, the consumer, the Celery worker), and the logs name the registration."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.sirets import take_siret

pytestmark = pytest.mark.e2e

SERVICES = ("identify", "structure", "activate", "notify")


def figures(system, path: str) -> dict[tuple[str, frozenset], float]:
    answer = requests.get(system.url(path), timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def eventually(read: Callable[[], float], timeout: float = 30) -> float:
    """Wait for a figure above zero: counters of other processes land a moment after the answer."""
    deadline = time.monotonic() + timeout
    while (found := read()) <= 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def register_to_step_three(system) -> str:
    email = "metrics.e2e@example.fr"
    siret, _ = take_siret(system)
    for _ in range(3):
        started = requests.post(
            system.url("/identify/api/registrations"),
            json={"login_email": email, "identifier": siret},
            timeout=10,
        )
        if started.status_code != 429:
            break
        # Every test of the session registers from 127.0.0.1: wait out the per-address limit.
        time.sleep(min(int(started.headers.get("Retry-After", "5")), 65) + 0.5)
    assert started.status_code == 201, started.text
    registration_id = started.json()["registration_id"]
    form = requests.get(system.url(f"/structure/api/registrations/{registration_id}"), timeout=30)
    assert form.status_code == 200, form.text
    step2 = {
        "structure": {k: v for k, v in form.json()["prefill"].items() if v},
        "user": {"last_name": "Mesure", "first_name": "Lucie", "login_email_confirmation": email},
        "features": {"payment_requests": True, "dume": False},
    }
    confirmed = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"), json=step2, timeout=10
    )
    assert confirmed.status_code == 201, confirmed.text
    offered = requests.get(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"), timeout=30
    )
    assert offered.status_code == 200, offered.text
    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={"workspaces": [w["code"] for w in offered.json()["workspaces"] if w["default"]]},
        timeout=10,
    )
    assert chosen.status_code == 201, chosen.text
    return registration_id


@pytest.fixture(scope="module")
def registered(running_system) -> str:
    """One registration taken to step 3 (the activation email goes out), for every test here."""
    return register_to_step_three(running_system)


def test_liveness_and_readiness_of_each_part(running_system):
    for path in (
        "/livez",
        "/healthz",
        *(f"/{s}/livez" for s in SERVICES),
        *(f"/{s}/healthz" for s in SERVICES),
    ):
        assert requests.get(running_system.url(path), timeout=10).status_code == 200, path


def test_metrics_show_the_registration_that_went_through(running_system, registered):
    system, registration_id = running_system, registered

    identify = figures(system, "/identify/metrics")
    assert (
        value(
            identify,
            "portal_http_requests_total",
            method="POST",
            route="/identify/api/registrations",
            status="201",
        )
        >= 1
    )
    assert value(identify, "portal_events_published_total", type="RegistrationStarted") >= 1
    assert (
        value(
            identify,
            "portal_http_request_duration_seconds_count",
            method="POST",
            route="/identify/api/registrations",
        )
        >= 1
    )
    assert registration_id not in str(identify), "routes are templates, never paths"

    def handled(service: str, event_type: str) -> float:
        labels = {"stream": f"events:{event_type}", "group": service}
        return value(figures(system, f"/{service}/metrics"), "portal_events_handled_total", **labels)

    assert eventually(lambda: handled("structure", "RegistrationStarted")) >= 1
    assert eventually(lambda: handled("activate", "StructureConfirmed")) >= 1
    assert eventually(lambda: handled("notify", "ActivationLinkIssued")) >= 1
    assert eventually(lambda: handled("identify", "WorkspacesChosen")) >= 1

    def sent() -> float:
        found = figures(system, "/notify/metrics")
        return value(found, "portal_task_outcomes_total", task="notify.send_activation_email", outcome="sent")

    assert eventually(sent) >= 1, "counted by the Celery worker, shown by notify's web process"

    structure = figures(system, "/structure/metrics")
    labels = {"stream": "events:RegistrationStarted", "group": "structure"}
    for gauge in ("portal_event_group_lag", "portal_event_group_pending", "portal_event_group_consumers"):
        assert (gauge, frozenset(labels.items())) in structure, gauge
    assert value(structure, "portal_redis_up") == 1

    gateway = figures(system, "/metrics")
    for event_type in (
        "RegistrationStarted",
        "StructureConfirmed",
        "WorkspacesChosen",
        "ActivationLinkIssued",
    ):
        assert value(gateway, "portal_event_stream_length", stream=f"events:{event_type}") >= 1, event_type
    assert ("portal_celery_queue_length", frozenset({("queue", "emails")})) in gateway
    assert gateway[("portal_dead_letters", frozenset())] == 0  # shown, and zero
    assert value(gateway, "portal_http_requests_total", method="POST", route="/identify/*", status="201") >= 1


def test_log_lines_name_the_registration(running_system, registered):
    """Text lines under `make run`: `… INFO notify-worker services.notify.handlers [<id>]: …`."""
    registration_id = registered

    def tagged(process: str) -> list[str]:
        text = running_system.log.read_text(errors="replace")
        return [
            line for line in text.splitlines() if f" {process} " in line and f"[{registration_id}]" in line
        ]

    deadline = time.monotonic() + 30
    while not (tagged("notify-worker") and tagged("notify-consumer")):
        assert time.monotonic() < deadline, "the email's consumer and task lines do not name the registration"
        time.sleep(0.2)
    assert tagged("gateway"), "the gateway's access lines name it too"
