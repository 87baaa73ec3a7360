"""The whole system as `make run` starts it, in the background, for the tests and benchmarks of
this repository (tests/e2e, bench), which bring their own Redis, SMTP server and settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from system.launcher import ROOT


@dataclass(frozen=True)
class Running:
    pid: int  # the launcher's: every process of the system descends from it
    base_url: str


@contextmanager
def in_background(env: dict[str, str], log: Path, timeout: float = 90) -> Iterator[Running]:
    """The whole system as `make run` starts it, in the background until the block ends.

    Ready once its `/healthz` answers 200; stopped with SIGINT (what Ctrl-C does), killed if it
    lingers.
    """
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "system.launcher"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    base_url = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_ready(f"{base_url}/healthz", proc, log, timeout)
        yield Running(proc.pid, base_url)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return  # it had stopped already: the error raised above says why
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the system stopped while starting:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass  # not listening yet, still starting its workers, or not ready (503)
        time.sleep(0.3)
    raise RuntimeError(
        f"the system was not ready within {timeout}s:\n{log.read_text(errors='replace')[-4000:]}"
    )
