"""SMTP servers (aiosmtpd) for the benchmarks: one that hands out activation links, one that counts.

The counting one runs in a process of its own so that the benchmark's own Python does not
slow it down (nor it the benchmark): it is the common sink of Celery and of plain smtplib.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from tests.servers import free_port

TOKEN = re.compile(r"/activate/activations/([A-Za-z0-9_\-]+)")


class _LinkHandler:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.count = 0
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = message.get_body(("plain",))
        found = TOKEN.findall(body.get_content() if body is not None else "")
        with self.arrived:
            self.count += 1
            if found:
                for rcpt in envelope.rcpt_tos:
                    self.tokens[rcpt.lower()] = found[-1]
            self.arrived.notify_all()
        return "250 OK"


class LinkSink:
    """An SMTP server in this process that keeps the last activation token sent to each address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _LinkHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> LinkSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def count(self) -> int:
        return self.handler.count

    def take_token(self, address: str, timeout: float) -> str | None:
        """The token emailed to `address` (removed, so a second email is a new token), or None."""
        key = address.lower()
        with self.handler.arrived:
            self.handler.arrived.wait_for(lambda: key in self.handler.tokens, timeout)
            return self.handler.tokens.pop(key, None)


class _CountingHandler:
    def __init__(self, counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 OK"


def _serve_counting(port: int, counter, ready, stop) -> None:
    controller = Controller(_CountingHandler(counter), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait(3600)  # bounded even if nobody stops it
    controller.stop()


class CountingSink:
    """An SMTP server in a process of its own that only counts the messages it accepts."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.counter = ctx.Value("l", 0)
        self._ready = ctx.Event()
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_serve_counting, args=(self.port, self.counter, self._ready, self._stop), daemon=True
        )

    def __enter__(self) -> CountingSink:
        self._proc.start()
        if not self._ready.wait(30):
            self._proc.kill()
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

    @property
    def count(self) -> int:
        return self.counter.value

    def wait_for(self, count: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.counter.value < count:
            if time.monotonic() >= end:
                return False
            time.sleep(0.002)
        return True
