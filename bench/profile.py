"""`--profile`: py-spy samples a process tree during a measurement, then a text summary.

The summary says where the CPU went per kind of process (gateway, each service, consumers,
Celery…) and, per kind, which functions held it (inclusive time), project code first. Profiling
costs CPU itself: figures of a profiled run are for diagnosis, not for the results block.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from bench.harness import say

_OTHER_KINDS = [
    ("system.launcher", "honcho (launcher)"),
    ("mailcatcher", "mail catcher"),
    ("redis-server", "redis"),
    ("-m bench", "bench (clients, SMTP sink)"),
]
_PROCESS = re.compile(r'^process \d+:"(.*)"$')


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class Sampler:
    """`py-spy record` of `pid` and its children, in the background, until `finish()`."""

    def __init__(self, pid: int, out: Path, rate: int = 50) -> None:
        self.out = out
        self.proc: subprocess.Popen | None = None
        spy = py_spy()
        if spy is None:
            say("  py-spy is not installed (.venv/bin/pip install py-spy): no profile")
            return
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", str(rate)]
            + ["--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self, timeout: float = 60) -> Path | None:
        """Stop py-spy (SIGINT: it writes what it has), summarise next to the samples; its path."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        if not self.out.exists():
            say(f"  py-spy recorded nothing: {err.decode(errors='replace')[-300:]}")
            return None
        summary = self.out.with_suffix(".summary.txt")
        summary.write_text(summarise(self.out.read_text(errors="replace")))
        say(f"  profile: {summary}")
        return summary


def kind_of(command: str) -> str:
    """A short name for a sampled process: `gunicorn activate`, `celery worker`, `structure consumer`."""
    if found := re.search(r"--name (\S+)", command):
        return f"gunicorn {found.group(1)}"
    if found := re.search(r"services\.(\w+)\.consumer", command):
        return f"{found.group(1)} consumer"
    if found := re.search(r"celery .*?\b(worker|beat)\b", command):
        return f"celery {found.group(1)}"
    if found := re.search(r"'([\w.]+):create_app", command):
        return f"gunicorn {found.group(1)}"
    for pattern, kind in _OTHER_KINDS:
        if pattern in command:
            return kind
    return command[:60]


PROJECT = re.compile(r"\((services|shared|system|bench)/")


def summarise(raw: str, top: int = 12) -> str:
    """Per process kind: its share of samples, then its project functions (inclusive) and the
    functions where the time was actually spent (self), each as a share of that kind's samples."""
    by_kind: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    leaf: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        kind = "?"
        for frame in frames:
            if found := _PROCESS.match(frame):
                kind = kind_of(found.group(1))  # the innermost process wins (sh -c → python)
        code = [re.sub(r":\d+\)$", ")", f) for f in frames if not _PROCESS.match(f)]
        total += n
        by_kind[kind] += n
        for name in set(code):
            if PROJECT.search(name):
                inclusive[kind][name] += n
        if code:
            leaf[kind][code[-1]] += n
    lines = [f"{total} samples (threads not blocked in a system call)", "", "Share per process kind:"]
    lines += [f"  {n / total:6.1%}  {kind}" for kind, n in by_kind.most_common()]
    for kind, own in by_kind.most_common():
        lines += ["", f"[{kind}] project code, inclusive:"]
        lines += [f"  {n / own:6.1%}  {name[:140]}" for name, n in inclusive[kind].most_common(top)]
        lines += [f"[{kind}] where the time was spent (self):"]
        lines += [f"  {n / own:6.1%}  {name[:140]}" for name, n in leaf[kind].most_common(top)]
    return "\n".join(lines) + "\n"
