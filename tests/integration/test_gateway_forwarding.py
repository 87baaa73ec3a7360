"""The gateway's forwarding (`system.forwarding`) against real upstream servers on 127.0.0.1.

The gateway (`system.gateway.create_app`, every service pointed at the upstream) runs behind
werkzeug's threaded server and each request is sent with `http.client` on a connection of its
own. The upstream is a recording WSGI app under gunicorn, as the services run (werkzeug's
development server closes every connection, so it cannot show one kept), or a raw socket server
where a test needs a connection that misbehaves.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from system.forwarding import Forwarder
from system.gateway import SERVICES, create_app
from tests.servers import free_port

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def error_body(code: int) -> bytes:
    return json.dumps(
        {"code": code, "message": "Certaines informations sont invalides."}, ensure_ascii=False
    ).encode()


@dataclass
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


# --- the servers ------------------------------------------------------------------------------


class Recorder:
    """A service (run by gunicorn) that records what reaches it and answers what the path asks:
    `…/status/<code>` that status with a JSON body, `…/cookies` two cookies, `…/redirect` a 302,
    `…/gzip` a gzipped body; anything else 200. `GET /_seen`, asked straight, lists what it
    received, `DELETE /_seen` forgets it."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        request = Request(environ)
        if request.path == "/_seen":
            if request.method == "DELETE":
                self.seen.clear()
            return Response(json.dumps(self.seen), content_type="application/json")(environ, start_response)
        self.seen.append(
            {
                "method": request.method,
                "raw_uri": environ.get("RAW_URI"),
                "query": environ.get("QUERY_STRING"),
                "headers": {name.lower(): value for name, value in request.headers.items()},
                "body": request.get_data().decode("latin-1"),
                "port": environ.get("REMOTE_PORT"),
            }
        )
        parts = request.path.strip("/").split("/")
        if parts[-2:-1] == ["status"]:
            response = Response(error_body(int(parts[-1])), int(parts[-1]), content_type="application/json")
        elif parts[-1] == "cookies":
            response = Response("ok")
            response.set_cookie("session", "s1", httponly=True)
            response.set_cookie("csrf", "c2", samesite="Strict")
        elif parts[-1] == "redirect":
            response = Response("", 302, headers={"Location": "/identify/elsewhere"})
        elif parts[-1] == "gzip":
            response = Response(gzip.compress(b"x" * 1000), headers={"Content-Encoding": "gzip"})
        else:
            response = Response('{"ok":true}', content_type="application/json")
        return response(environ, start_response)


@dataclass
class Upstream:
    url: str
    port: int

    def seen(self, forget: bool = False) -> list[dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("DELETE" if forget else "GET", "/_seen")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


@pytest.fixture(scope="module")
def gunicorn_recorder() -> Iterator[Upstream]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", "1", "--threads", "4"]
        + ["--bind", f"127.0.0.1:{port}", "tests.integration.test_gateway_forwarding:Recorder()"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream = Upstream(f"http://127.0.0.1:{port}", port)
    deadline = time.monotonic() + 30
    while True:
        try:
            upstream.seen()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    yield upstream
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def recorder(gunicorn_recorder) -> Upstream:
    gunicorn_recorder.seen(forget=True)
    return gunicorn_recorder


def serve(app: Callable) -> BaseWSGIServer:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def gateway_to(settings, redis_client) -> Iterator[Callable[[str], int]]:
    """Start a gateway whose every service is at `url`; give the port it listens on."""
    servers: list[BaseWSGIServer] = []

    def start(url: str) -> int:
        app = create_app(settings, targets=dict.fromkeys(SERVICES, url), client=redis_client)
        servers.append(serve(app))
        return servers[-1].server_port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def send(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request, on a new connection, with exactly this request target and these headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = headers or {}
        conn.putrequest(method, target, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        return Answer(answer.status, answer.reason, answer.msg, answer.read())
    finally:
        conn.close()


class RawUpstream:
    """A socket server that reads whole requests and counts them; on each connection it answers
    the first `answered` requests (200, `{"ok":true}`), then closes at the next one unanswered."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as incoming:
            for count in range(self.answered + 1):
                request_line = incoming.readline()
                if not request_line:
                    return
                length = 0
                while (line := incoming.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(request_line + incoming.read(length))
                if count == self.answered:
                    return  # closed, unanswered
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nKeep-Alive: timeout=5\r\n"
                    b'Transfer-Encoding: chunked\r\n\r\nb\r\n{"ok":true}\r\n0\r\n\r\n'
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_upstream() -> Iterator[Callable[[int], RawUpstream]]:
    started: list[RawUpstream] = []

    def start(answered: int) -> RawUpstream:
        started.append(RawUpstream(answered))
        return started[-1]

    yield start
    for upstream in started:
        upstream.close()


# --- what the service receives ------------------------------------------------------------


def test_path_and_query_string_arrive_as_sent(recorder, gateway_to):
    port = gateway_to(recorder.url)
    target = "/identify/api/registrations/r%2F1/caf%C3%A9%20au%20lait?q=a%20b&q=%2F%3F&x=1+2&empty="
    answer = send(port, "GET", target)
    assert answer.status == 200
    seen = recorder.seen()[-1]
    assert (seen["method"], seen["raw_uri"]) == ("GET", target)
    assert seen["query"] == "q=a%20b&q=%2F%3F&x=1+2&empty="


def test_post_body_and_content_type_arrive(recorder, gateway_to):
    port = gateway_to(recorder.url)
    body = json.dumps({"login_email": "fleur.f@example.fr", "nom": "Forêt"}, ensure_ascii=False).encode()
    answer = send(
        port,
        "POST",
        "/structure/api/registrations/r1",
        {"Content-Type": "application/json; charset=utf-8"},
        body,
    )
    assert answer.status == 200
    seen = recorder.seen()[-1]
    assert (seen["method"], seen["body"].encode("latin-1")) == ("POST", body)
    assert seen["headers"]["content-type"] == "application/json; charset=utf-8"
    assert seen["headers"]["content-length"] == str(len(body))


def test_headers_pass_but_hop_by_hop_ones_and_the_client_cannot_pose_as_a_proxy(recorder, gateway_to):
    port = gateway_to(recorder.url)
    send(
        port,
        "GET",
        "/activate/api/registrations/r1/workspaces",
        {
            "Host": "portail.example.fr",
            "Accept-Language": "fr-FR",
            "Cookie": "session=s1",
            "X-Forwarded-For": "203.0.113.66",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
            "Connection": "close",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic c2VjcmV0",
        },
    )
    headers = recorder.seen()[-1]["headers"]
    assert headers["host"] == "portail.example.fr", "Host as the client sent it"
    assert headers["accept-language"] == "fr-FR"
    assert headers["cookie"] == "session=s1"
    assert headers["x-forwarded-for"] == "127.0.0.1", "the client's address, not what it claimed"
    assert headers["x-forwarded-host"] == "portail.example.fr"
    assert headers["x-forwarded-proto"] == "http"
    for hop_by_hop in ("connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization"):
        assert hop_by_hop not in headers, hop_by_hop
    assert "user-agent" not in headers, "nothing the client did not send"


# --- what the client gets back ------------------------------------------------------------------


@pytest.mark.parametrize("code", [201, 404, 422])
def test_status_and_json_body_come_back_unchanged(recorder, gateway_to, code):
    answer = send(gateway_to(recorder.url), "GET", f"/identify/api/status/{code}")
    assert answer.status == code
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body == error_body(code)


def test_every_set_cookie_comes_back(recorder, gateway_to):
    answer = send(gateway_to(recorder.url), "GET", "/identify/cookies")
    cookies = answer.headers.get_all("Set-Cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("session=s1;") and "HttpOnly" in cookies[0]
    assert cookies[1].startswith("csrf=c2;") and "SameSite=Strict" in cookies[1]


def test_a_redirect_is_passed_through_not_followed(recorder, gateway_to):
    answer = send(gateway_to(recorder.url), "POST", "/identify/redirect", body=b"")
    assert answer.status == 302
    assert answer.headers["Location"] == "/identify/elsewhere"
    assert [seen["raw_uri"] for seen in recorder.seen()] == ["/identify/redirect"]


def test_a_compressed_body_is_passed_byte_for_byte(recorder, gateway_to):
    answer = send(gateway_to(recorder.url), "GET", "/identify/gzip", {"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.body) == b"x" * 1000


def test_hop_by_hop_answer_headers_stay_behind(raw_upstream, gateway_to):
    upstream = raw_upstream(answered=1)
    answer = send(gateway_to(upstream.url), "GET", "/notify/mailbox")
    assert (answer.status, answer.body) == (200, b'{"ok":true}')
    assert "Keep-Alive" not in answer.headers


def test_what_is_not_under_a_service_stays_with_the_gateway(recorder, gateway_to):
    port = gateway_to(recorder.url)
    assert send(port, "GET", "/livez").status == 200
    assert send(port, "GET", "/").headers["Location"] == "/identify/"
    assert send(port, "GET", "/identifyx/api").status == 404
    assert recorder.seen() == []


# --- connections ----------------------------------------------------------------------------------


def test_sequential_requests_share_one_upstream_connection(recorder, gateway_to):
    """The point of `system.forwarding`: werkzeug's ProxyMiddleware opened one per request."""
    port = gateway_to(recorder.url)
    for i in range(20):
        method, body = ("POST", b'{"n":%d}' % i) if i % 2 else ("GET", None)
        assert send(port, method, f"/identify/api/registrations/r{i}", body=body).status == 200
    seen = recorder.seen()
    assert len(seen) == 20
    assert len({request["port"] for request in seen}) == 1


def test_a_connection_idle_past_idle_max_is_closed_by_the_gateway_not_reused(recorder):
    """Before the service's keep-alive runs out (2 s for this gunicorn): a POST sent on a kept
    connection just as the service closes it would fail unanswered, and is not sent again."""
    server = serve(Forwarder(Response("elsewhere", 404), {"/identify/": recorder.url}, idle_max=0.5))
    try:
        port = server.server_port
        assert send(port, "GET", "/identify/a").status == 200
        assert send(port, "POST", "/identify/b", body=b"{}").status == 200  # at once: kept
        time.sleep(0.7)  # past idle_max, well before gunicorn's keep-alive
        assert send(port, "POST", "/identify/c", body=b"{}").status == 200
        ports = [request["port"] for request in recorder.seen()]
        assert ports[0] == ports[1] != ports[2]
    finally:
        server.shutdown()
        server.server_close()


def test_a_service_down_is_a_502_in_json(gateway_to):
    answer = send(gateway_to(f"http://127.0.0.1:{free_port()}"), "GET", "/identify/api/registrations/r1")
    assert (answer.status, answer.reason) == (502, "Bad Gateway")
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "code": 502,
        "status": "Bad Gateway",
        "message": "Service momentanément indisponible : réessayez dans quelques instants.",
    }


def test_a_post_is_sent_once_even_when_the_connection_fails(raw_upstream, gateway_to):
    upstream = raw_upstream(answered=0)
    answer = send(gateway_to(upstream.url), "POST", "/identify/api/registrations", body=b'{"a":1}')
    assert answer.status == 502
    assert answer.json()["code"] == 502
    assert upstream.requests == [b'POST /identify/api/registrations HTTP/1.1\r\n{"a":1}']


def test_a_get_finding_its_kept_connection_closed_is_sent_again_a_post_is_not(raw_upstream, gateway_to):
    """As gunicorn does to a connection idle for its `keepalive`, at the moment a request goes out."""
    upstream = raw_upstream(answered=1)
    port = gateway_to(upstream.url)

    def paths() -> list[bytes]:
        return [request.split(b" ")[1] for request in upstream.requests]

    assert send(port, "GET", "/identify/a").status == 200  # connection 1, kept
    assert send(port, "GET", "/identify/b").status == 200  # closed on connection 1, answered on 2
    assert paths() == [b"/identify/a", b"/identify/b", b"/identify/b"]
    assert send(port, "POST", "/identify/c", body=b"{}").status == 502  # closed on connection 2
    assert paths()[3:] == [b"/identify/c"]
