"""Keep activation tokens out of access logs: the token is part of the URL path.

The web servers (werkzeug in development, gunicorn in production) log each request line; this
filter masks the path segment after `/activations/` before the line is formatted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping

_TOKEN_IN_PATH = re.compile(r"(/activations/|/password-resets/|/contact-emails/|/sign-in/)[^/?#\s\"']+")
MASK = r"\1[masqué]"
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def scrub(text: str) -> str:
    return _TOKEN_IN_PATH.sub(MASK, text)


class TokenRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, MutableMapping):
            # In place: gunicorn's atoms are a dict subclass whose lookups must keep working.
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = scrub(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*more: logging.Logger) -> None:
    """Idempotent: a filter on each access logger of this process, and on `more` (the app's own
    logger, which names the path of a request that failed). Call it in any process that logs
    request lines, e.g. a gateway in front of activate."""
    for logger in [*(logging.getLogger(name) for name in ACCESS_LOGGERS), *more]:
        if not any(isinstance(f, TokenRedactor) for f in logger.filters):
            logger.addFilter(TokenRedactor())
