"""The one timestamp format: ISO 8601 in UTC (`2026-11-29T19:55:08+00:00`).

Event data carries it and other services compare such stamps as strings, so every module
writes them here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(seconds: float, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec=timespec)


def now_iso_utc(timespec: str = "seconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec)
