"""What every benchmark shares: results and their verdict, the machine, percentiles, processes."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from tests.servers import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One figure against its baseline: `ratio = value / baseline`, PASS when it meets `target`."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: float | None = None
    # "ratio": value / baseline >= target; "max": value <= target (e.g. a latency); None: reported only.
    kind: str | None = "ratio"
    details: list[str] = field(default_factory=list)
    # Set when the figure cannot be trusted (errors, a list of requests ran out…): never PASS then.
    invalid: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.invalid:
            return "INVALID"
        if self.kind == "ratio" and self.target is not None and self.ratio is not None:
            return "PASS" if self.ratio >= self.target else "MISS"
        if self.kind == "max" and self.target is not None:
            return "PASS" if self.value <= self.target else "MISS"
        return "info"

    def target_text(self) -> str:
        if self.target is None or self.kind is None:
            return "—"
        if self.kind == "max":
            return f"≤ {self.target:g} {self.unit}"
        return f"≥ {self.target:g}"

    def line(self) -> str:
        parts = [f"{self.name}: {fmt(self.value)} {self.unit}"]
        if self.baseline is not None:
            parts.append(f"baseline {fmt(self.baseline)} {self.unit} ({self.baseline_label})")
        if self.ratio is not None:
            parts.append(f"ratio {self.ratio:.2f}")
        if self.target is not None and self.kind is not None:
            parts.append(f"target {self.target_text()}")
        parts.append(self.verdict + (f" ({self.invalid})" if self.invalid else ""))
        return " | ".join(parts)


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0–100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def redis_version(url: str | None = None) -> str:
    """The version of the Redis at `url`, else of the redis-server binary the runs start."""
    if url:
        try:
            return str(redis.Redis.from_url(url).info("server")["redis_version"])
        except redis.RedisError:
            return "?"
    try:
        out = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = re.search(r"v=(\S+)", out.stdout)
    return found.group(1) if found else "?"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, by kind (the `cpu` line of /proc/stat); [] where unknown."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return []
    return [int(x) for x in first[1:]] if first and first[0] == "cpu" else []


def stolen_share(since: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to other machines since `since` (`steal`, the
    8th figure): on a shared virtual machine every CPU figure is slower by about that much."""
    now = cpu_ticks()
    if len(now) < 8 or len(since) < 8:
        return None
    spent = [b - a for a, b in zip(since, now, strict=False)]
    total = sum(spent[:8])
    return spent[7] / total if total > 0 else None


def machine(redis_url: str | None = None, since: list[int] | None = None) -> str:
    """One line saying where and when the figures were taken (and, given the CPU ticks at its
    start, how much CPU the host took away during the run)."""
    parts = [
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        f"{cores()} cores ({cpu_model()})",
        f"Python {platform.python_version()}",
    ]
    parts.append(f"Redis {redis_version(redis_url)}")
    parts.append(f"load average {load_average()}")
    stolen = stolen_share(since) if since else None
    if stolen is not None:
        parts.append(f"CPU stolen by the host during the run {stolen:.0%}")
    return ", ".join(parts)


def say(text: str) -> None:
    print(text, flush=True)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.end


def until(condition: Callable[[], object], timeout: float, what: str, pause: float = 0.05):
    """Wait for `condition()` to be truthy, at most `timeout` seconds; TimeoutError otherwise."""
    deadline = Deadline(timeout)
    while not (value := condition()):
        if deadline.passed():
            raise TimeoutError(f"not within {timeout:g}s: {what}")
        time.sleep(pause)
    return value


@dataclass
class Started:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Processes:
    """Subprocesses started by a benchmark, each in its own session, all stopped at the end.

    Only what this object started is ever signalled, by process group id.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Started] = []

    def start(self, name: str, command: str | list[str], env: dict[str, str]) -> Started:
        """Start `command` (a shell line is `exec`ed, so that the pid is the program's own)."""
        log = self.log_dir / f"{name}.log"
        if isinstance(command, str):
            command = f"exec {command}"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = Started(name, proc, log)
        self.started.append(started)
        return started

    def check_alive(self) -> None:
        for s in self.started:
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} stopped (exit {s.proc.returncode}):\n{s.tail()}")

    def stop(self, started: Started, timeout: float = 30) -> None:
        """SIGTERM to the program alone (gunicorn, Celery and the consumers then stop gracefully,
        finishing what they hold), SIGKILL to its whole group if it is not gone in `timeout`."""
        if started.proc.poll() is None:
            started.proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                started.proc.wait(timeout)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever it left behind in its group
            try:
                os.killpg(started.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.2)
        if started.proc.poll() is None:
            started.proc.wait(10)
        if started in self.started:
            self.started.remove(started)

    def stop_all(self) -> None:
        for started in reversed(list(self.started)):
            self.stop(started)


@contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    procs = Processes(log_dir)
    try:
        yield procs
    finally:
        procs.stop_all()


def python_env(**extra: str) -> dict[str, str]:
    """The environment for the project's processes: this venv first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_http(url: str, procs: Processes | None = None, timeout: float = 90) -> None:
    """Wait until `url` answers 200, failing early if one of `procs` has stopped."""

    def ready() -> bool:
        if procs is not None:
            procs.check_alive()
        return http_ok(url)

    until(ready, timeout, f"{url} answers 200", pause=0.2)
