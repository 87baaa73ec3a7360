"""The results block of docs/benchmarks.md, rewritten by each run for the benchmarks it ran.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; the
rest of the document (the analysis) is left as it is. Missing markers are appended at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.harness import Result, fmt


def table(results: list[Result]) -> str:
    rows = [
        "| figure | measured | baseline (same run) | ratio | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        baseline = f"{fmt(r.baseline)} {r.unit} — {r.baseline_label}" if r.baseline is not None else "—"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "—"
        verdict = f"**{r.verdict}**" + (f" ({r.invalid})" if r.invalid else "")
        rows.append(
            f"| {r.name} | {fmt(r.value)} {r.unit} | {baseline} | {ratio} | {r.target_text()} | {verdict} |"
        )
    notes = []
    for r in results:
        notes.append(f"- *{r.name}*")
        notes.extend(f"  - {detail}" for detail in r.details)
    return "\n".join(rows + [""] + notes)


def section(name: str, command: str, machine: str, results: list[Result]) -> str:
    return f"Run: {machine}. Command: `{command}`.\n\n{table(results)}\n"


def write(path: Path, name: str, body: str) -> None:
    """Put `body` between the markers of `name` in `path` (created if missing)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(text, encoding="utf-8")
