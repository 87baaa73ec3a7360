"""How far the import of a stock file has gone, told to whoever runs it: a progress bar on a
terminal, a plain log line every few seconds otherwise (`default_progress`), or nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Protocol

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Told where the reading of one file is: rows kept so far and bytes read of `total_bytes`."""

    def start(self, label: str, total_bytes: int) -> None: ...

    def update(self, rows: int, bytes_read: int) -> None: ...

    def close(self, rows: int) -> None: ...


class _Rates:
    def __init__(self, label: str, total_bytes: int) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def rows_per_second(self, rows: int) -> float:
        return rows / self.elapsed()

    def seconds_left(self, bytes_read: int) -> float | None:
        if bytes_read <= 0 or not self.total_bytes:
            return None
        return self.elapsed() * max(self.total_bytes - bytes_read, 0) / bytes_read


class LogProgress:
    """A plain line every `interval` seconds (logs, a pipe): rows, rows/s, share read, time left."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._rates: _Rates | None = None
        self._next = 0.0

    def start(self, label: str, total_bytes: int) -> None:
        self._rates = _Rates(label, total_bytes)
        self._next = time.monotonic() + self.interval
        log.info("%s: reading %s MB", label, f"{total_bytes / 1e6:,.1f}")

    def update(self, rows: int, bytes_read: int) -> None:
        if self._rates is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.interval
        rates = self._rates
        left = rates.seconds_left(bytes_read)
        log.info(
            "%s: %s rows, %s rows/s, %d%% read, about %s left",
            rates.label,
            f"{rows:,}",
            f"{rates.rows_per_second(rows):,.0f}",
            100 * bytes_read / max(rates.total_bytes, 1),
            "?" if left is None else f"{left:,.0f} s",
        )

    def close(self, rows: int) -> None:
        if self._rates is not None:
            log.info(
                "%s: %s rows in %.1f s (%s rows/s)",
                self._rates.label,
                f"{rows:,}",
                self._rates.elapsed(),
                f"{self._rates.rows_per_second(rows):,.0f}",
            )
        self._rates = None


class BarProgress:
    """A progress bar on a terminal (tqdm): the bytes read drive the bar and the time left; the
    rows and rows/s are written before it."""

    FORMAT = "{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._bar = None
        self._rates: _Rates | None = None

    def start(self, label: str, total_bytes: int) -> None:
        from tqdm import tqdm

        self._rates = _Rates(label, total_bytes)
        self._bar = tqdm(
            total=total_bytes or None, desc=f"{label}: 0 rows", file=self.stream, bar_format=self.FORMAT
        )

    def update(self, rows: int, bytes_read: int) -> None:
        if self._bar is None or self._rates is None:
            return
        rate = self._rates.rows_per_second(rows)
        self._bar.set_description_str(
            f"{self._rates.label}: {rows:,} rows, {rate:,.0f} rows/s", refresh=False
        )
        self._bar.update(bytes_read - self._bar.n)

    def close(self, rows: int) -> None:
        if self._bar is not None:
            self.update(rows, self._bar.total or self._bar.n)
            self._bar.close()
        self._bar = None


class NoProgress:
    def start(self, label: str, total_bytes: int) -> None:
        pass

    def update(self, rows: int, bytes_read: int) -> None:
        pass

    def close(self, rows: int) -> None:
        pass


def default_progress() -> Progress:
    """A bar when a person watches a terminal, plain lines otherwise."""
    return BarProgress() if sys.stderr.isatty() else LogProgress()
