"""CPU time used by process trees, from /proc: what a flow or a request costs, per kind of process.

Unlike a rate, CPU seconds per unit of work hardly depend on what else the machine is doing,
which makes them the figure to plan capacity with (and to compare runs on a shared machine).
Linux only; elsewhere every figure is empty.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from bench.profile import kind_of

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def tree(root: int) -> list[int]:
    """`root` and every process descending from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def by_kind(roots: dict[str, int]) -> Counter[str]:
    """CPU seconds so far of each process tree, keyed by kind (`gunicorn activate`, `redis`…).

    `roots` names trees whose kind is known (e.g. {"redis": pid}); the processes under any
    other root are keyed by what their command line says.
    """
    used: Counter[str] = Counter()
    for label, root in roots.items():
        for pid in tree(root):
            stat = _stat(pid)
            if stat is None:
                continue
            used[label if label != "*" else kind_of(_command(pid))] += stat[1]
    return used


def delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0) > 0})


def per_unit(used: Counter[str], units: int) -> str:
    """`gunicorn activate 61 ms, celery worker 12 ms, … = total 140 ms` per unit of work."""
    if units <= 0 or not used:
        return "no CPU figures"
    total = sum(used.values())
    parts = [f"{kind} {seconds / units * 1000:.1f}" for kind, seconds in used.most_common() if seconds > 0]
    return ", ".join(parts) + f" — total {total / units * 1000:.1f} ms"
