"""What the server's Python processes spend their CPU on outside argon2, from py-spy's raw samples.

py-spy (`bench/profile.Sampler`, `--format raw`) writes one line per distinct stack: frames
separated by `;`, the process first (`process 123:"gunicorn … --name activate …"`), then the
sample count. Frames name their file relative to the import path (`redis/client.py`,
`services/activate/handlers.py`), so a frame's first path segment is its package. A sample whose
stack goes through `argon2/` is the hashing; every other sample of a server process (the bench's
own clients and SMTP sink are not the server) is what the issue asks to cut.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path

from bench.profile import PROJECT, Sampler, kind_of, py_spy

CLIENTS = "bench (clients, SMTP sink)"
_PROCESS = re.compile(r'^process (\d+):"(.*)"$', re.DOTALL)
_FILE = re.compile(r"\(([^():]+)(?::\d+)?\)$")
_ARGON2 = re.compile(r"\(argon2/")


class GilSampler(Sampler):
    """`Sampler` with py-spy's `--gil`: only the thread holding each process's GIL is sampled.

    Plain sampling counts every thread the kernel finds runnable, and on a busy machine a thread
    just woken by a socket read waits for a core, then for the GIL: its samples pile up at the
    read (`redis/_parsers/hiredis.py`, `selectors.py`), as if the read cost CPU. The GIL holder
    runs Python code, or was preempted in the middle of it: its samples are the processes'
    Python CPU. What runs without the GIL (argon2, the kernel's share of socket calls) is not
    seen; /proc counts it."""

    def __init__(self, pid: int, out: Path, rate: int = 50) -> None:
        self.out = out
        self.proc: subprocess.Popen | None = None
        spy = py_spy()
        if spy is None:
            return
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil"]
            + ["--rate", str(rate), "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )


def package(frame: str) -> str:
    """`hash_secret (argon2/low_level.py:102)` → `argon2`; project code by service
    (`services/activate/…` → `services.activate`)."""
    found = _FILE.search(frame)
    if not found:
        return "?"
    parts = found.group(1).split("/")
    if parts[0] == "services" and len(parts) > 2:
        return f"services.{parts[1]}"
    return parts[0].removesuffix(".py")


def function(frame: str) -> str:
    """A frame without its line number: `handle (services/activate/handlers.py)`."""
    return re.sub(r":\d+\)$", ")", frame)


@dataclass
class Hotspots:
    total: int = 0  # samples of server processes
    argon2: int = 0  # of which in argon2
    # Outside argon2:
    by_kind: Counter[str] = field(default_factory=Counter)  # per process kind
    by_package: Counter[str] = field(default_factory=Counter)  # the innermost frame's package
    by_leaf: Counter[str] = field(default_factory=Counter)  # the innermost frame (self time)
    by_function: Counter[str] = field(default_factory=Counter)  # project code, inclusive

    @property
    def outside(self) -> int:
        return self.total - self.argon2

    def lines(self, ms_per_sample: float = 0.0, top: int = 8) -> list[str]:
        """The report's lines: each item's share of the server's samples outside argon2 and, given
        what one sample stands for (e.g. ms of CPU per flow), what it costs."""
        if not self.total:
            return ["no samples (py-spy missing, or nothing ran)"]

        def listed(counter: Counter[str]) -> str:
            return ", ".join(
                f"{name} {n / max(1, self.outside):.0%}"
                + (f" ({n * ms_per_sample:.1f})" if ms_per_sample else "")
                for name, n in counter.most_common(top)
            )

        return [
            f"by process: {listed(self.by_kind)}",
            f"by package (the innermost frame's): {listed(self.by_package)}",
            f"by function (self): {listed(self.by_leaf)}",
            f"project functions, inclusive: {listed(self.by_function)}",
        ]


def analyse(raw: str, exclude_pids: Container[int] = ()) -> Hotspots:
    """The server's samples in `raw` (py-spy's raw format), argon2 set apart; the processes
    `exclude_pids` (the bench's own: its clients and SMTP sink) are not the server."""
    found = Hotspots()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        n = int(count)
        kind, pid, code = "?", 0, []
        for frame in stack.split(";"):
            if process := _PROCESS.match(frame):  # the innermost process wins (sh -c → python)
                pid, kind = int(process.group(1)), kind_of(process.group(2))
            else:
                code.append(frame)
        if kind == CLIENTS or pid in exclude_pids:
            continue
        found.total += n
        if any(_ARGON2.search(frame) for frame in code):
            found.argon2 += n
            continue
        found.by_kind[kind] += n
        if code:
            found.by_package[package(code[-1])] += n
            found.by_leaf[function(code[-1])] += n
        for name in {function(frame) for frame in code if PROJECT.search(frame)}:
            found.by_function[name] += n
    return found
