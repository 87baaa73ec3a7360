"""Forward what is under a path prefix to a service, over connections kept alive.

werkzeug's `ProxyMiddleware`, which the gateway used before, opens a new TCP connection (and
asks for `Connection: close`) for every request: about 1 ms of the gateway's CPU per request,
and a GET through it ran at a third of its direct rate. `Forwarder` keeps one urllib3 pool of
HTTP/1.1 connections per service instead, and passes requests and answers through as they are:
path and query string as received (urllib3 only writes percent-escapes in upper case, an
equivalent spelling), headers but the hop-by-hop ones, body, status, every `Set-Cookie`; no
redirect followed, nothing decompressed.

Nothing is sent twice on its own (`retries=False`): a POST that fails on the way may have been
handled, so it comes back as a 502 and the client decides. Which is why the gateway, not the
service, must be the one to close an idle connection: the services' gunicorn closes one idle for
its `--keep-alive` (5 s in the Procfile), and a request sent on it just then fails unanswered. A
kept connection idle for `idle_max` (2 s) is therefore closed by the gateway before it is used
(`_KeptConnection`), as a load balancer's idle timeout is kept below its targets' keep-alive.
Should a service close one sooner all the same (a restarted worker), a GET, HEAD or OPTIONS (body,
if any, in hand) whose pooled connection closes before any answer is sent once more, on a new
connection: it is safe to repeat.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import IO
from urllib.parse import quote

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.util import SKIP_HEADER, parse_url
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_input_stream

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]

# RFC 9110 §7.6.1; "Trailers" as well as "Trailer" (the name some clients send).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
GATEWAY_HEADERS = frozenset({"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
"""Not the client's to remove through its `Connection` header: Host names the site asked for,
and the gateway itself writes the X-Forwarded-* ones for the service (`system.gateway`)."""
SAFE_TO_RESEND = frozenset({"GET", "HEAD", "OPTIONS"})
CHUNK_SIZE = 64 * 1024
BUFFERED_BODY_MAX = 64 * 1024  # larger bodies are streamed to the service, not held in memory
BAD_GATEWAY = json.dumps(
    {
        "code": 502,
        "status": "Bad Gateway",
        "message": "Service momentanément indisponible : réessayez dans quelques instants.",
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode()

Body = bytes | IO[bytes] | None


class Forwarder:
    """WSGI app: requests whose path starts with one of `targets`' prefixes (`/identify/`) go to
    that target (`http://127.0.0.1:5001`), path unchanged; every other request goes to `app`."""

    def __init__(
        self,
        app: WsgiApp,
        targets: Mapping[str, str],
        *,
        maxsize: int = 16,
        connect_timeout: float = 2.0,
        read_timeout: float = 60.0,
        idle_max: float = 2.0,
    ) -> None:
        self.app = app
        timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # maxsize: at least the threads of a gateway worker, so that none closes a connection it
        # could keep; block=False: past it, a request opens a connection of its own.
        self.routes = [
            (prefix, _pool(url, idle_max, maxsize=maxsize, block=False, retries=False, timeout=timeout))
            for prefix, url in targets.items()
        ]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, pool in self.routes:
            if path.startswith(prefix):
                return self.forward(pool, environ, start_response)
        return self.app(environ, start_response)

    def forward(
        self, pool: urllib3.HTTPConnectionPool, environ: dict, start_response: Callable
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        headers = request_headers(environ)
        try:
            body, chunked = request_body(environ, headers)
            answer = self._send(pool, method, request_target(environ), headers, body, chunked)
        except ClientDisconnected as gone:  # the client sent less than its Content-Length
            return gone(environ, start_response)
        except (HTTPError, OSError) as error:
            log.warning("%s %s:%s failed: %s: %s", method, pool.host, pool.port, type(error).__name__, error)
            start_response(
                "502 Bad Gateway",
                [("Content-Type", "application/json"), ("Content-Length", str(len(BAD_GATEWAY)))],
            )
            return [BAD_GATEWAY]
        reason = answer.reason or _phrase(answer.status)
        start_response(f"{answer.status} {reason}", response_headers(answer))
        return _Streamed(answer)

    def _send(
        self,
        pool: urllib3.HTTPConnectionPool,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Body,
        chunked: bool,
    ) -> urllib3.BaseHTTPResponse:
        def send() -> urllib3.BaseHTTPResponse:
            return pool.urlopen(
                method,
                target,
                body=body,
                headers=headers,
                chunked=chunked,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
            )

        try:
            return send()
        except ProtocolError as error:  # the connection closed before any answer
            if method not in SAFE_TO_RESEND or not isinstance(body, bytes | None):
                raise  # a stream is read: it cannot be sent again
            log.info("%s %s:%s: connection closed (%s), sent again", method, pool.host, pool.port, error)
            return send()


class _KeptConnection(HTTPConnection):
    """A connection to a service that counts as dropped once idle for `idle_max` seconds, so that
    its pool closes it and opens a new one rather than race the service closing it.

    Idle is counted from the moment the last answer's headers arrived: later than the service
    finished sending, so the count errs on the side of closing early."""

    def __init__(self, *args, idle_max: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.idle_max = idle_max
        self.answered_at: float | None = None

    def getresponse(self):  # noqa: ANN201 (urllib3's own HTTPResponse)
        response = super().getresponse()
        self.answered_at = time.monotonic()
        return response

    @property
    def is_connected(self) -> bool:
        if self.answered_at is not None and time.monotonic() - self.answered_at >= self.idle_max:
            return False
        return super().is_connected


class _KeptConnectionPool(urllib3.HTTPConnectionPool):
    """Options the pool does not know itself (`idle_max`) go to each `_KeptConnection`."""

    ConnectionCls = _KeptConnection


def _pool(url: str, idle_max: float, **options) -> urllib3.HTTPConnectionPool:
    """Connections to `url` (http: the services listen on loopback or a private network)."""
    parsed = parse_url(url)
    return _KeptConnectionPool(parsed.host, parsed.port or 80, idle_max=idle_max, **options)


class _Streamed:
    """The answer's body, 64 KiB at a time. Its connection goes back to the pool once the body is
    read, or is closed if the client left before (unread bytes would garble its next answer)."""

    def __init__(self, answer: urllib3.BaseHTTPResponse) -> None:
        self.answer = answer
        self.finished = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.answer.stream(CHUNK_SIZE, decode_content=False)
        self.finished = True

    def close(self) -> None:
        try:
            if not self.finished:
                self.answer.close()
        finally:
            self.answer.release_conn()


def request_target(environ: dict) -> str:
    """The path as the client sent it (percent-encoding kept), and the query string."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw.startswith("/"):
        path = raw.partition("?")[0]
    else:  # no raw URI from this server, or an absolute one (`GET http://host/path`)
        path = quote(_wsgi_bytes(environ.get("PATH_INFO", "") or "/"), safe="/!$&'()*+,;=:@")
    query = environ.get("QUERY_STRING", "")
    target = f"{path}?{query}" if query else path
    if not target.isascii():  # bytes a client sent unencoded: percent-encode them
        target = "".join(chr(b) if b < 128 else f"%{b:02X}" for b in _wsgi_bytes(target))
    return target


def _wsgi_bytes(text: str) -> bytes:
    """WSGI strings carry the bytes received as latin-1 characters."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # not a WSGI string
        return text.encode("utf-8")


def connection_options(value: str | None) -> frozenset[str]:
    """The header names a `Connection` header lists (lower case): they concern this hop only."""
    return frozenset(token.strip().lower() for token in (value or "").split(",") if token.strip())


def request_headers(environ: dict) -> dict[str, str]:
    """The client's headers but the hop-by-hop ones, including those its `Connection` header
    names (RFC 9110 §7.6.1: `Connection: close, X-Secret` keeps X-Secret from the service);
    Host as the client sent it."""
    dropped = HOP_BY_HOP | (connection_options(environ.get("HTTP_CONNECTION")) - GATEWAY_HEADERS)
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            name = key[5:].replace("_", "-").title()
            if name.lower() not in dropped:
                headers[name] = value
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    # urllib3 would add its own User-Agent and `Accept-Encoding: identity`: only the client's pass.
    headers.setdefault("User-Agent", SKIP_HEADER)
    headers.setdefault("Accept-Encoding", SKIP_HEADER)
    return headers


def request_body(environ: dict, headers: dict[str, str]) -> tuple[Body, bool]:
    """The body to send (read from `wsgi.input` up to CONTENT_LENGTH) and whether to send it
    chunked (a chunked request, which the server has already decoded). Sets Content-Length."""
    length = environ.get("CONTENT_LENGTH", "")
    if length.strip():
        try:
            size = max(0, int(length))
        except ValueError:
            size = 0
        headers["Content-Length"] = str(size)
        stream = get_input_stream(environ)
        return (stream.read() if size <= BUFFERED_BODY_MAX else stream), False
    if (
        environ.get("wsgi.input_terminated")
        and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return get_input_stream(environ), True
    return None, False


def response_headers(answer: urllib3.BaseHTTPResponse) -> list[tuple[str, str]]:
    """The service's headers but the hop-by-hop ones and those its `Connection` header names,
    each `Set-Cookie` on its own."""
    dropped = HOP_BY_HOP | connection_options(answer.headers.get("Connection"))
    return [(name.title(), value) for name, value in answer.headers.items() if name.lower() not in dropped]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
