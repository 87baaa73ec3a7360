"""Logging for every process: one line per record on stderr, JSON or text (`LOG_FORMAT`).

A JSON line holds `timestamp` (ISO 8601, UTC), `level`, `service` (the process: `identify`,
`structure-consumer`, `notify-worker`…), `pid`, `logger`, `message`, `exc_info` when there is a
traceback, and `registration_id` whenever the line concerns one. Only these fields are written:
what libraries attach to their records (Celery puts the task's arguments, personal data, in
`data`) stays out, and activation tokens in paths are masked (`shared.redaction`).

The registration id lives in a context variable, set around a unit of work by the layer that
knows it: the HTTP layer from the URL (`shared.http_api`), the event consumer from the event's
subject (`shared.bus`), the Celery task machinery from the task's `registration_id` argument
(`shared.celery_app`). Every line logged inside that work carries it, whatever logger it uses.

`LOG_FORMAT=json` is the default (docker compose); `make run` sets `text`, read by a person.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import IO, Any

from gunicorn import glogging

from shared import redaction
from shared.timestamps import iso_utc

FORMATS = ("json", "text")
ENVIRON_KEY = "portal.registration_id"
"""Where the HTTP layer leaves the request's registration id in the WSGI environ, for the access
log line that gunicorn writes once the request is over."""

_registration_id: ContextVar[str | None] = ContextVar("registration_id", default=None)


# --- the registration id of the work in progress ------------------------------------------------


def current_registration_id() -> str | None:
    return _registration_id.get()


def bind_registration(registration_id: str | None) -> Token:
    """Set the registration id of what follows in this context; undo with `unbind`."""
    return _registration_id.set(registration_id or None)


def unbind(token: Token) -> None:
    _registration_id.reset(token)


@contextmanager
def registration(registration_id: str | None) -> Iterator[None]:
    token = bind_registration(registration_id)
    try:
        yield
    finally:
        unbind(token)


class RegistrationFilter(logging.Filter):
    """Put the context's registration id on each record a handler receives (unless the record
    already names one, through `extra`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "registration_id", None):
            registration_id = _registration_id.get()
            if registration_id:
                record.registration_id = registration_id
        return True


# --- formats --------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields listed in this module's docstring only."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": iso_utc(record.created, "milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "pid": record.process,
            "logger": record.name,
            "message": redaction.scrub(record.getMessage()),
        }
        registration_id = getattr(record, "registration_id", None)
        if registration_id:
            line["registration_id"] = str(registration_id)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = redaction.scrub(record.exc_text)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2025-03-12 14:05:00,123 INFO identify services.identify.api [reg-1]: message`."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} %(name)s%(registration_tag)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        registration_id = getattr(record, "registration_id", None)
        record.registration_tag = f" [{printable(str(registration_id))}]" if registration_id else ""
        return redaction.scrub(super().format(record))


def printable(text: str) -> str:
    """`text` on one line, as Python would write it in a string: the registration id comes
    decoded from the URL, and `%0A` in it must not start a forged line of a text log. Backslashes
    are doubled so that an escape cannot be mistaken for one the client typed."""
    escaped = text.replace("\\", "\\\\")
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in escaped)


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    chosen = (env.get("LOG_FORMAT") or "json").strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {FORMATS}, got {chosen!r}")
    return chosen


def formatter(service: str, fmt: str | None = None) -> logging.Formatter:
    return JsonFormatter(service) if (fmt or log_format()) == "json" else TextFormatter(service)


def make_handler(service: str, stream: IO[str] | None = None, fmt: str | None = None) -> logging.Handler:
    """A handler writing `service`'s lines to `stream` (stderr), registration id included."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(service, fmt))
    handler.addFilter(RegistrationFilter())
    return handler


def configure(service: str, *, level: str | int | None = None, fmt: str | None = None) -> None:
    """The root logger of this process writes `service`'s lines to stderr. Called once per process
    by its entry point; calling it again replaces its handler, and handlers others added stay."""
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, "_portal", False)]:
        root.removeHandler(previous)
    handler = make_handler(service, fmt=fmt)
    handler._portal = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())


# --- gunicorn ---------------------------------------------------------------------------------------


def service_of(proc_name: str) -> str:
    """`identify` from gunicorn's `--name identify`, or from `services.identify.app:create_app()`."""
    module = proc_name.partition(":")[0]
    parts = module.split(".")
    if parts[0] == "services" and len(parts) > 1:
        return parts[1]
    if parts[0] == "system" and len(parts) > 1:
        return parts[-1]
    return proc_name


class GunicornLogger(glogging.Logger):
    """`gunicorn --logger-class shared.logs.GunicornLogger`: gunicorn's own lines (start-up,
    workers, the access log) in the format of every other line, tokens masked, and the app's
    loggers configured in the master, which its workers inherit."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        service = service_of(cfg.proc_name or "gunicorn")
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter(service))
                    if not any(isinstance(f, RegistrationFilter) for f in handler.filters):
                        handler.addFilter(RegistrationFilter())
        configure(service)
        redaction.install()

    def access(self, resp, req, environ, request_time) -> None:
        # Written after the request's own context is gone: the app left the id in the environ.
        with registration(environ.get(ENVIRON_KEY)):
            super().access(resp, req, environ, request_time)
