"""After a scenario: did every registration end well, once, with nothing lost or left behind?

- every journey ends in an expected status (activated, or a clear retryable one the scenario
  names), read through GET /identify/api/registrations/{id};
- every activation token issued (ActivationLinkIssued, opened with SECRET_KEY) produced exactly
  one delivered email, and no email carries a token that was not issued;
- each registration has its events, once each (the same event id twice on a stream only where
  the scenario put a copy), and no entry is left pending or undelivered in any group;
- no email task waits or is held unacknowledged; `dead-letters` holds what the scenario expects.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import redis

from shared.bus import DEAD_LETTERS
from shared.sealing import unseal
from tests.faults.driver import Driver, Journey, links_in
from tests.faults.harness import System, email_tasks_in_flight

TYPES_BY_STEP = {
    "identify": ["RegistrationStarted"],
    "structure": ["StructureConfirmed"],
    "workspaces": ["WorkspacesChosen", "ActivationLinkIssued"],
    "activate": ["AccountActivated"],
}


@dataclass
class Ledger:
    problems: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    def assert_clean(self, system: System) -> None:
        assert not self.problems, "ledger:\n- " + "\n- ".join(self.problems) + "\n" + system.tails()


def stream_events(client: redis.Redis, event_type: str) -> list[tuple[str, dict]]:
    """(entry id, CloudEvents document) of each entry that parses; poison entries are skipped."""
    found = []
    for entry_id, fields in client.xrange(f"events:{event_type}"):
        try:
            doc = json.loads(fields.get("event", ""))
        except ValueError:
            continue
        if isinstance(doc, dict):
            found.append((entry_id, doc))
    return found


def groups_settled(client: redis.Redis) -> list[str]:
    """What is still pending or undelivered, per stream and group ([] when all is handled)."""
    waiting = []
    for stream in sorted(client.scan_iter(match="events:*", _type="stream")):
        for group in client.xinfo_groups(stream):
            lag = group.get("lag")
            if group["pending"] or lag:
                waiting.append(f"{stream}/{group['name']}: {group['pending']} pending, lag {lag}")
    return waiting


def check(
    system: System,
    driver: Driver,
    journeys: list[Journey],
    *,
    statuses: dict[int, set[str]] | set[str] = frozenset({"activated"}),
    dead_letters: int = 0,
    copies_injected: set[str] = frozenset(),
    timeout: float = 45,
) -> Ledger:
    ledger = Ledger()
    client = system.redis
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    # Statuses.
    final: Counter[str] = Counter()
    for journey in journeys:
        if journey.error:
            ledger.problems.append(
                f"journey {journey.number} failed after step {journey.reached}: {journey.error}"
            )
        if journey.registration_id is None:
            continue
        wanted = statuses.get(journey.number, {"activated"}) if isinstance(statuses, dict) else statuses
        # A journey that already failed is read once: waiting would only delay the report.
        status = driver.status(journey) if journey.error else driver.wait_status(journey, wanted, left())
        final[str(status)] += 1
        if status not in wanted:
            ledger.problems.append(
                f"journey {journey.number} ended {status!r}, expected one of {sorted(wanted)}"
            )
    ledger.facts["final statuses"] = dict(final)

    # Nothing pending, nothing undelivered, no email task held.
    while (waiting := groups_settled(client)) and time.monotonic() < deadline:
        time.sleep(0.3)
    if waiting:
        ledger.problems.append("entries left behind: " + "; ".join(waiting))
    while (in_flight := email_tasks_in_flight(client)) and time.monotonic() < deadline:
        time.sleep(0.3)
    if in_flight:
        ledger.problems.append(f"{in_flight} email task(s) still queued or unacknowledged")

    # Events of each registration, once each.
    by_id = {j.registration_id: j for j in journeys if j.registration_id}
    emails = {j.email for j in journeys}
    issued_tokens: dict[str, str] = {}  # token → registration id
    orphans = 0
    for event_type in {t for types in TYPES_BY_STEP.values() for t in types}:
        entries_per_id: Counter[str] = Counter()
        ids_per_subject: dict[str, set[str]] = defaultdict(set)
        for _, doc in stream_events(client, event_type):
            subject = doc.get("subject")
            if subject not in by_id:
                if (
                    event_type == "RegistrationStarted"
                    and (doc.get("data") or {}).get("login_email") in emails
                ):
                    orphans += 1
                continue
            entries_per_id[doc["id"]] += 1
            ids_per_subject[subject].add(doc["id"])
            if event_type == "ActivationLinkIssued":
                token = unseal(doc["data"]["sealed_token"], system.secret_key)
                issued_tokens[token] = subject
        for event_id, entries in entries_per_id.items():
            if entries > 1 and event_id not in copies_injected:
                ledger.problems.append(f"{event_type} {event_id} is on its stream {entries} times")
        for journey in by_id.values():
            expected_here = any(event_type in TYPES_BY_STEP.get(step, []) for step in journey.done)
            count = len(ids_per_subject.get(journey.registration_id, ()))
            if event_type == "ActivationLinkIssued":
                if expected_here and count < 1:
                    ledger.problems.append(f"journey {journey.number}: no ActivationLinkIssued")
            elif expected_here and count != 1:
                ledger.problems.append(f"journey {journey.number}: {count} {event_type} event(s), expected 1")
    ledger.facts["orphan registrations (a retried step 1 whose first try had committed)"] = orphans

    # One delivered email per issued token, and no other.
    def delivered() -> Counter[str]:
        counts: Counter[str] = Counter()
        for message in list(system.smtp.recorder.messages):
            if message["To"] in emails:
                for token in links_in(message):
                    counts[token] += 1
        return counts

    while not set(issued_tokens) <= set(counts := delivered()) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(0.5)  # a second copy of an email would come right after the first
    counts = delivered()
    for token, registration_id in issued_tokens.items():
        if counts[token] != 1:
            journey = by_id[registration_id]
            ledger.problems.append(f"journey {journey.number}: a token was emailed {counts[token]} time(s)")
    strays = set(counts) - set(issued_tokens)
    if strays:
        ledger.problems.append(f"{len(strays)} email(s) carry a token no ActivationLinkIssued announced")
    ledger.facts["tokens issued / emails delivered"] = f"{len(issued_tokens)} / {sum(counts.values())}"

    letters = client.xlen(DEAD_LETTERS)
    ledger.facts["dead letters"] = letters
    if letters != dead_letters:
        ledger.problems.append(f"{letters} dead letter(s), expected {dead_letters}")
    return ledger
