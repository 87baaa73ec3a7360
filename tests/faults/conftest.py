"""Fixtures of the fault-injection suite: a system per scenario, and the scenario's report.

Each scenario prints what it observed (`pytest -s` shows it as it happens) and appends it to
`test-artifacts/faults-summary.md`, rewritten at the start of every session that runs the suite.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.harness import ROOT, AofRedis, FaultySmtp, SentinelRedis, System

HERE = Path(__file__).resolve().parent
SUMMARY = ROOT / "test-artifacts" / "faults-summary.md"


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: fault injection against the whole system (tests/faults)")


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.faults)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Report:
    """What a scenario saw, for the console and for the summary file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.lines: list[str] = []
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        print(f"[faults] {self.title}: {text}", flush=True)
        self.lines.append(text)

    def facts(self, facts: dict[str, object]) -> None:
        for name, value in facts.items():
            self.note(f"{name}: {value}")

    def save(self, outcome: str) -> None:
        SUMMARY.parent.mkdir(exist_ok=True)
        elapsed = time.monotonic() - self.started
        with SUMMARY.open("a", encoding="utf-8") as out:
            out.write(f"\n## {self.title} — {outcome} ({elapsed:.0f} s)\n\n")
            out.writelines(f"- {line}\n" for line in self.lines)


@pytest.fixture(scope="session", autouse=True)
def _summary_header(request):
    if any(HERE in item.path.resolve().parents for item in request.session.items):
        SUMMARY.parent.mkdir(exist_ok=True)
        SUMMARY.write_text(
            f"# Fault-injection suite — {datetime.now(UTC).isoformat(timespec='seconds')}\n\n"
            "Each scenario runs a batch of registrations through the real system (its own Redis with "
            "AOF, Celery worker and beat, aiosmtpd) while a fault is injected, then checks the ledger.\n",
            encoding="utf-8",
        )


@pytest.fixture
def report(request):
    scenario = Report(request.node.name)
    doc = (request.node.function.__doc__ or "").strip()
    if doc:
        scenario.note(" ".join(doc.split()))
    yield scenario
    call = getattr(request.node, "rep_call", None)
    if call is None:
        outcome = "not run (set-up failed)"
    elif hasattr(call, "wasxfail"):
        outcome = "XFAIL (known bug)" if call.skipped else "XPASS"
    else:
        outcome = call.outcome.upper()
    scenario.save(outcome)


@pytest.fixture
def start_system(tmp_path, request):
    """`start_system(settings=..., copies=..., sentinel=...)`: the whole system, process by process,
    on a Redis of its own (or, with `sentinel`, a Sentinel deployment with one replica)."""
    started: list[System] = []

    def start(
        settings: dict[str, str] | None = None,
        copies: dict[str, int] | None = None,
        *,
        sentinel: bool = False,
    ) -> System:
        redis_server = SentinelRedis().start() if sentinel else AofRedis().start()
        smtp = FaultySmtp().start()
        system = System(tmp_path / f"system-{len(started) + 1}", redis_server, smtp, settings, copies)
        started.append(system)
        system.start()
        return system

    yield start
    call = getattr(request.node, "rep_call", None)
    for system in started:
        if call is not None and call.failed:
            print(f"\n[faults] logs under {system.workdir / 'logs'}\n{system.tails()}")
        system.stop()
        system.smtp.stop()
        system.redis_server.stop()
