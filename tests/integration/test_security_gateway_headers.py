"""Headers a client names in its `Connection` header stop at the gateway (RFC 9110 §7.6.1), and
so do those a service names in its own; the gateway's X-Forwarded-* cannot be removed that way.
Against real upstreams, started as in test_gateway_forwarding."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from system.forwarding import connection_options
from tests.integration import test_gateway_forwarding as forwarding

pytestmark = pytest.mark.timeout(60)

# The upstreams and the gateway of test_gateway_forwarding, as fixtures of this module.
gunicorn_recorder = forwarding.gunicorn_recorder
recorder = forwarding.recorder
gateway_to = forwarding.gateway_to
send = forwarding.send


def test_a_header_named_in_connection_does_not_reach_the_service(recorder, gateway_to):
    port = gateway_to(recorder.url)
    answer = send(
        port,
        "GET",
        "/identify/api/registrations/r1",
        {"Connection": "close, X-Secret", "X-Secret": "1", "X-Kept": "2"},
    )
    assert answer.status == 200
    seen = recorder.seen()[-1]["headers"]
    assert "x-secret" not in seen
    assert seen["x-kept"] == "2"  # a header the client did not name passes


def test_every_header_named_in_connection_is_dropped_whatever_its_case(recorder, gateway_to):
    port = gateway_to(recorder.url)
    send(
        port,
        "GET",
        "/structure/api/registrations/r1",
        {"Connection": "keep-alive,x-one ,  X-TWO", "X-One": "1", "X-Two": "2", "Cookie": "session=s1"},
    )
    seen = recorder.seen()[-1]["headers"]
    assert "x-one" not in seen and "x-two" not in seen
    assert seen["cookie"] == "session=s1"


def test_the_gateway_headers_cannot_be_dropped_through_connection(recorder, gateway_to):
    """Naming X-Forwarded-For would make the service count the client as the gateway itself."""
    port = gateway_to(recorder.url)
    send(
        port,
        "GET",
        "/activate/api/activations/t1",
        {
            "Connection": "close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Host",
            "Host": "portail.example",
        },
    )
    seen = recorder.seen()[-1]["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == seen["host"] == "portail.example"


def test_connection_options_are_its_comma_separated_names():
    assert connection_options("close, X-Secret,,keep-alive ") == {"close", "x-secret", "keep-alive"}
    assert connection_options(None) == frozenset()


@pytest.fixture
def naming_upstream() -> Iterator[str]:
    """A service that answers every request with `Connection: X-Internal` and `X-Internal: 1`."""
    sock = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as incoming:
                while incoming.readline() not in (b"\r\n", b""):
                    pass
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\nX-Public: 2\r\n"
                    b"Content-Length: 2\r\n\r\nok"
                )

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_header_the_service_names_in_connection_does_not_reach_the_client(naming_upstream, gateway_to):
    answer = send(gateway_to(naming_upstream), "GET", "/notify/api/anything")
    assert (answer.status, answer.body) == (200, b"ok")
    assert answer.headers["X-Public"] == "2"
    assert "X-Internal" not in answer.headers
