"""Attack: grow the metrics without end by sending requests with made-up HTTP methods.

Any token is a valid HTTP method, and a method labelled as sent would be a new series for each
one. Fifty made-up methods must leave one `OTHER` series, through a Flask app (`instrument`)
and through a plain WSGI app (`WsgiMetrics`, the gateway's)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from shared.metrics.exposition import ThisProcess, exposition
from shared.metrics.http import OTHER_METHOD, STANDARD_METHODS, UNMATCHED, WsgiMetrics, instrument

REQUESTS = "portal_http_requests_total"
DURATIONS = "portal_http_request_duration_seconds_count"


def made_up_methods(count: int = 50) -> list[str]:
    """`count` different methods of 3 to 20 letters, none of them standard."""
    rng = random.Random(14)
    methods: set[str] = set()
    while len(methods) < count:
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 20)))
        if method not in STANDARD_METHODS:
            methods.add(method)
    return sorted(methods)


def series(name: str) -> list[dict[str, str]]:
    """The labels of every sample named `name` in what this process's `/metrics` shows."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ThisProcess())
    body, _ = exposition(registry, None)
    return [
        sample.labels
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    ]


def test_made_up_methods_on_a_flask_app_are_counted_as_one_other_series():
    app = Flask(__name__)
    instrument(app)

    @app.get("/security/metrics-labels")
    def page() -> str:
        return "ok"

    client = app.test_client()
    methods = made_up_methods()
    for method in methods:
        assert client.open("/security/metrics-labels", method=method).status_code == 405
    assert client.get("/security/metrics-labels").status_code == 200

    for name in (REQUESTS, DURATIONS):
        labels = series(name)
        assert {label["method"] for label in labels} <= STANDARD_METHODS | {OTHER_METHOD}
        assert not {label["method"] for label in labels} & set(methods)
    refused = [
        label for label in series(REQUESTS) if label["route"] == UNMATCHED and label["status"] == "405"
    ]
    assert [label["method"] for label in refused] == [OTHER_METHOD], "one series, not fifty"
    served = [label for label in series(REQUESTS) if label["route"] == "/security/metrics-labels"]
    assert served == [{"method": "GET", "route": "/security/metrics-labels", "status": "200"}]


def test_made_up_methods_through_the_gateway_wrapper_are_counted_as_one_other_series():
    def backend(environ: dict, start_response: Callable) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    route = "/security-gateway/*"
    client = Client(WsgiMetrics(backend, lambda environ: route))
    methods = made_up_methods()
    for method in [*methods, "GET", "DELETE"]:
        with client.open("/security-gateway/x", method=method) as response:  # counted once closed
            assert response.status_code == 200

    counted = {label["method"] for label in series(REQUESTS) if label["route"] == route}
    assert counted == {OTHER_METHOD, "GET", "DELETE"}
    timed = {label["method"] for label in series(DURATIONS) if label["route"] == route}
    assert timed == {OTHER_METHOD, "GET", "DELETE"}
