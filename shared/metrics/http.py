"""Counting and timing HTTP requests: Flask apps by their URL rule, any WSGI app by a route of
the caller's choice (the gateway labels what it forwards by service: `/activate/*`).

Every label value comes from a small fixed set: the route is a rule, never the path, and the
method is one of `STANDARD_METHODS` or `OTHER`. A client chooses the method it sends (any token
is valid HTTP), so labelling it as sent would let anyone create series without end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wsgi import ClosingIterator

from shared.metrics.counters import observe_request

UNMATCHED = "<unmatched>"
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
OTHER_METHOD = "OTHER"


def method_label(method: str) -> str:
    """The `method` label of a request: its method if standard, `OTHER` for any other."""
    return method if method in STANDARD_METHODS else OTHER_METHOD


def instrument(app: Flask) -> None:
    """Count and time each request of a Flask app, labelled with the rule it matched."""

    @app.before_request
    def _start_clock() -> None:
        g.portal_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("portal_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            observe_request(
                method_label(request.method), route, response.status_code, time.perf_counter() - started
            )
        return response


class WsgiMetrics:
    """Count and time every request that goes through a WSGI app, with `route_of(environ)` as its
    route label (for the gateway, whose forwarded requests never reach a Flask rule). A request
    is counted once its answer has been sent (or has failed)."""

    def __init__(self, app: Callable, route_of: Callable[[dict], str]) -> None:
        self.app = app
        self.route_of = route_of

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        method = method_label(environ.get("REQUEST_METHOD", "GET"))
        route = self.route_of(environ)
        status = ["500"]

        def recording_start_response(status_line: str, headers, exc_info=None):
            status[0] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        def done() -> None:
            observe_request(method, route, int(status[0]), time.perf_counter() - started)

        try:
            answer = self.app(environ, recording_start_response)
        except BaseException:
            done()
            raise
        return ClosingIterator(answer, [done])


def route_in(url_map: Map, environ: dict) -> str:
    """The rule of `url_map` that the request matches, or `<unmatched>`."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True)
    except HTTPException:
        return UNMATCHED
    return rule.rule
