"""The clock the tests move by hand: handlers and units of work read the time through it."""

from __future__ import annotations

import time


class Clock:
    def __init__(self, now: float | None = 1_800_000_000.0) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
