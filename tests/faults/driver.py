"""A batch of registrations through the JSON contract on the one origin, tolerant of faults.

Each journey goes through the four steps as SPEC's client would: start, complete the structure,
choose the workspaces, read the link in the email it receives, activate. While a fault is on,
an answer may be 503 (retried after a pause, within a bound) or may never arrive although the
request took effect; so a retried step that answers 409 (structure already confirmed, workspaces
already chosen) or 410 (link already used) counts as done once a GET shows the state moved on.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage

import requests

from tests.faults.harness import System

STEPS = ("identify", "structure", "workspaces", "email", "activate")
FIRST_NAMES = ("Camille", "Dominique", "Lou", "Sacha", "Noa", "Alix", "Maël", "Élise", "Yanis", "Inès")
LINK = re.compile(r"https?://\S+/activate/activations/([A-Za-z0-9_\-]+)")


class StepFailed(AssertionError):
    """A step got an answer that no fault explains (a 4xx it should not, or no success in time)."""


def links_in(message: EmailMessage) -> set[str]:
    """The activation tokens in a message's text part."""
    body = message.get_body(("plain",))
    return set(LINK.findall(body.get_content() if body else ""))


@dataclass
class Journey:
    number: int
    email: str
    identifier: str
    first_name: str
    # A fixed password: a random one may by chance contain a first name and be refused.
    password: str = "Ruisseau-Calme-73"
    registration_id: str | None = None
    structure_id: str | None = None
    account_id: str | None = None
    tokens: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def reached(self) -> str:
        return self.done[-1] if self.done else "-"


class Tally:
    """Counts of what the driver saw, shared by its threads."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, what: str, sample: str | None = None) -> None:
        with self._lock:
            self.counts[what] += 1
            if sample is not None:
                self.samples.setdefault(what, sample[:300])

    def __getitem__(self, what: str) -> int:
        return self.counts[what]

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "nothing unusual"


class Driver:
    def __init__(
        self,
        system: System,
        tag: str,
        *,
        step_timeout: float = 60,
        email_timeout: float = 60,
        idempotent: bool = False,
    ):
        self.system = system
        self.tag = tag
        # Each POST carries an Idempotency-Key of its journey and step, the same on every retry:
        # a retried step 1 whose first try committed gets its first answer, not a second registration.
        self.idempotent = idempotent
        self.step_timeout = step_timeout
        self.email_timeout = email_timeout
        self.tally = Tally()
        self.first_503: float | None = None
        self.last_503: float | None = None

    def journeys(self, count: int, start: int = 1) -> list[Journey]:
        run = secrets.token_hex(3)
        return [
            Journey(
                number=n,
                email=f"{self.tag}-{run}-{n}@example.com",
                identifier=f"{self.tag[:5].upper()}-{run}-{n}",  # HORS_UE: 18 characters at most
                first_name=FIRST_NAMES[n % len(FIRST_NAMES)],
            )
            for n in range(start, start + count)
        ]

    # --- running ------------------------------------------------------------------------------

    def run(self, journeys: Iterable[Journey], until: str = "activate", workers: int = 4) -> list[Journey]:
        """Take each journey from where it is to `until` (included), `workers` at a time."""
        journeys = list(journeys)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda j: self._advance(j, until), journeys))
        return journeys

    def run_in_background(self, journeys: list[Journey], until: str = "activate", workers: int = 4):
        thread = threading.Thread(target=self.run, args=(journeys, until, workers), daemon=True)
        thread.start()
        return thread

    def _advance(self, journey: Journey, until: str) -> None:
        steps = {
            "identify": self.identify,
            "structure": self.structure,
            "workspaces": self.workspaces,
            "email": self.email,
            "activate": self.activate,
        }
        try:
            for step in STEPS[: STEPS.index(until) + 1]:
                if step not in journey.done:
                    steps[step](journey)
                    journey.done.append(step)
        except Exception as exc:  # recorded, and reported by the ledger with the journey
            journey.error = f"{type(exc).__name__}: {exc}"
            self.tally.add("journeys that failed", journey.error)

    # --- one HTTP call, tolerant ---------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        ok: tuple[int, ...] = (200,),
        already_done: Callable[[], bool] | None = None,
        retry_404: bool = False,
        key: str | None = None,
    ) -> requests.Response | None:
        """The first answer in `ok`; None when a 409/410 means a previous try already did it.
        `key`: the step's Idempotency-Key, sent when the driver is `idempotent`."""
        deadline = time.monotonic() + self.step_timeout
        last = "no answer"
        headers = {"Idempotency-Key": f"{self.tag}-{key}"} if self.idempotent and key else {}
        while time.monotonic() < deadline:
            try:
                answer = requests.request(
                    method, self.system.url(path), json=json, headers=headers, timeout=20
                )
            except requests.RequestException as exc:
                self.tally.add("connection errors", f"{method} {path}: {exc}")
                last = str(exc)
                time.sleep(0.3)
                continue
            code = answer.status_code
            if code in ok:
                return answer
            last = f"{code} {answer.text[:300]}"
            if code == 503:
                self._saw_503(method, path, answer)
                time.sleep(0.3)
                continue
            if code == 409 and "Retry-After" in answer.headers:  # the same key's first try still holds it
                self.tally.add("409 while the key's first try ran", f"{method} {path}")
                time.sleep(float(answer.headers["Retry-After"]))
                continue
            if code in (409, 410) and already_done is not None:
                if already_done():
                    self.tally.add(f"{code} on a retried step, already done", f"{method} {path}")
                    return None
                raise StepFailed(f"{method} {path} → {last} (and the state did not move on)")
            if code == 404 and retry_404:
                self.tally.add("404 while an event was not handled yet", f"{method} {path}")
                continue  # the service already waited EVENT_WAIT_MS for the event
            if code >= 500:
                self.tally.add(f"unexpected {code}", f"{method} {path}: {answer.text[:300]}")
                time.sleep(0.3)
                continue
            raise StepFailed(f"{method} {path} → {last}")
        raise StepFailed(f"{method} {path}: no success within {self.step_timeout:.0f}s (last: {last})")

    def _saw_503(self, method: str, path: str, answer: requests.Response) -> None:
        now = time.monotonic()
        self.first_503 = self.first_503 or now
        self.last_503 = now
        self.tally.add("503 answers")
        try:
            body = answer.json()
        except ValueError:
            self.tally.add("503 not in JSON", f"{method} {path}: {answer.text[:300]}")
            return
        if "Traceback" in answer.text or not isinstance(body, dict):
            self.tally.add("503 with a traceback or odd body", f"{method} {path}: {answer.text[:300]}")

    def status(self, journey: Journey) -> str | None:
        try:
            answer = requests.get(
                self.system.url(f"/identify/api/registrations/{journey.registration_id}"), timeout=10
            )
        except requests.RequestException:
            return None
        return answer.json().get("status") if answer.status_code == 200 else None

    def wait_status(self, journey: Journey, wanted: set[str], timeout: float = 20) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(journey)
            if status in wanted or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def moved_on(self, journey: Journey, wanted: set[str]) -> bool:
        return self.wait_status(journey, wanted) in wanted

    # --- the steps -----------------------------------------------------------------------------

    def identify(self, journey: Journey) -> None:
        answer = self.call(
            "POST",
            "/identify/api/registrations",
            json={
                "login_email": journey.email,
                "identifier_type": "HORS_UE",
                "identifier": journey.identifier,
                "country": "CH",
            },
            ok=(201,),
            key=f"{journey.number}-identify",
        )
        journey.registration_id = answer.json()["registration_id"]

    def structure(self, journey: Journey) -> None:
        rid = journey.registration_id
        self.call("GET", f"/structure/api/registrations/{rid}", retry_404=True)
        self.call(
            "POST",
            f"/structure/api/registrations/{rid}",
            json={
                "structure": {
                    "company_name": f"Fautes et Fils {journey.number}",
                    "address": f"{journey.number} rue du Rhône",
                    "postal_code": "1204",
                    "city": "Genève",
                    "country": "CH",
                },
                "user": {
                    "last_name": "Martin",
                    "first_name": journey.first_name,
                    "login_email_confirmation": journey.email,
                    "survey_consent": False,
                },
                "features": {"payment_requests": True, "dume": False},
            },
            ok=(201,),
            already_done=lambda: self.moved_on(
                journey, {"structure_confirmed", "workspaces_chosen", "activated"}
            ),
            key=f"{journey.number}-structure",
        )

    def workspaces(self, journey: Journey) -> None:
        rid = journey.registration_id
        self.call("GET", f"/activate/api/registrations/{rid}/workspaces", retry_404=True)
        answer = self.call(
            "POST",
            f"/activate/api/registrations/{rid}/workspaces",
            json={"workspaces": ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"]},
            ok=(201,),
            already_done=lambda: self._workspaces_chosen(rid),
            key=f"{journey.number}-workspaces",
        )
        if answer is not None:
            journey.account_id = answer.json()["account_id"]

    def _workspaces_chosen(self, rid: str) -> bool:
        answer = self.call("GET", f"/activate/api/registrations/{rid}/workspaces")
        return answer is not None and answer.json().get("status") != "pending"

    def email(self, journey: Journey) -> None:
        """Wait for a message to this journey's address with a link not seen before."""
        deadline = time.monotonic() + self.email_timeout
        recorder = self.system.smtp.recorder
        while time.monotonic() < deadline:
            for message in list(recorder.messages):
                if message["To"] == journey.email:
                    for token in links_in(message):
                        if token not in journey.tokens:
                            journey.tokens.append(token)
                            return
            time.sleep(0.2)
        raise StepFailed(f"no activation email to {journey.email} within {self.email_timeout:.0f}s")

    def activate(self, journey: Journey) -> None:
        token = journey.tokens[-1]
        shown = self.call(
            "GET",
            f"/activate/api/activations/{token}",
            already_done=lambda: self.moved_on(journey, {"activated"}),
        )
        if shown is None:
            return
        question = shown.json()["secret_questions"][0]
        self.call(
            "POST",
            f"/activate/api/activations/{token}",
            json={
                "password": journey.password,
                "password_confirmation": journey.password,
                "secret_question": question,
                "secret_answer": f"Réponse {journey.number}",
            },
            already_done=lambda: self.moved_on(journey, {"activated"}),
            key=f"{journey.number}-activate",
        )
