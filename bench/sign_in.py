"""Sign-ins per second through the one origin, against the argon2 bound of one verify per sign-in.

The system is started as `flows` starts it (`make run`'s launcher, a Redis of the run's own,
an aiosmtpd sink, CAPTCHA_ENABLED=0, RATE_LIMITS_ENABLED=0). `2 × clients` accounts are made
active through the real four steps over HTTP (`flows.one_flow`), then `clients` threads sign
in back to back, each with accounts of its own in turn (round robin), as a browser-less client
of the JSON API would, through the gateway:
  1. POST /activate/api/sign-in                 {login_email, password} → 200 {challenge_id, …}
     … the code's email arrives at the SMTP sink; its 6 digits are read from the text part …
  2. POST /activate/api/sign-in/{challenge_id}  {code} → 200 and the `portail_session` cookie
A sign-in counts when step 2 answered 200 with the cookie; each code is used once, and an
account that failed once is set aside, so that no bench account ever meets the per-login
throttle. The email's delay (from step 1's answer to the message in the sink) is the email
pipeline's (activate → stream → notify → Celery → SMTP): reported apart, not as server time.

The bound: the password step verifies one argon2id hash (the project's hasher and parameters,
`passwords.verify_and_update`); on `cores` cores no system signs in more than
`cores / t_verify` people a second. `t_verify` is CPU time, measured right before the run.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

from bench import cpu, flows, sirene
from bench.harness import Result, cores, percentile, say
from bench.hashing import HashCost
from bench.mailsink import TOKEN, LinkSink
from bench.profile import Sampler
from bench.system import launched, own_redis
from services.activate.domain import normalise_password
from services.activate.passwords import hash_secret, make_hasher, verify_and_update
from services.activate.sessions.web import COOKIE
from services.notify.sign_in_emails import CODE_SUBJECT, LOCKED_SUBJECT
from tests.servers import free_port

ACCOUNTS_PER_CLIENT = 2
SIX_DIGITS = re.compile(r"[0-9]{6}")
STEPS = ("password", "email", "code")


def code_in(text: str) -> str | None:
    """The 6-digit code of a sign-in code email's text part: the last line made of 6 digits only
    (whatever the line endings: what arrives over SMTP has CRLF)."""
    found = [line.strip() for line in text.splitlines() if SIX_DIGITS.fullmatch(line.strip())]
    return found[-1] if found else None


def round_robin(emails: list[str], clients: int) -> list[list[str]]:
    """Each client's own accounts: client i takes accounts i, i + clients, i + 2 × clients…"""
    return [emails[i::clients] for i in range(clients)]


# --- the bound -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyCost:
    seconds: float  # median CPU time of one verify (the thread's own time, whatever else runs)
    samples: int
    cores: int
    wall_seconds: float = 0.0

    @property
    def sign_ins_per_second(self) -> float:
        """The most sign-ins a second the password's verification alone allows on every core."""
        return self.cores / self.seconds

    def describe(self) -> str:
        return (
            f"argon2id verify {self.seconds * 1000:.1f} ms of CPU (median of {self.samples};"
            f" {self.wall_seconds * 1000:.1f} ms elapsed) × 1 per sign-in on {self.cores} cores"
            f" → {self.sign_ins_per_second:.1f} sign-ins/s"
        )


def measure_verify(samples: int = 30) -> VerifyCost:
    """The CPU time of the password step's verification, as sign-in makes it (right password)."""
    hasher = make_hasher()
    password = normalise_password(flows.PASSWORD)
    stored = hash_secret(hasher, password)
    verify_and_update(hasher, stored, password)  # warm-up
    cpu_times, wall_times = [], []
    for _ in range(samples):
        start, cpu_start = time.perf_counter(), time.thread_time()
        matches, _new_hash = verify_and_update(hasher, stored, password)
        cpu_times.append(time.thread_time() - cpu_start)
        wall_times.append(time.perf_counter() - start)
        if not matches:
            raise RuntimeError("the project's hasher does not verify its own hash")
    return VerifyCost(percentile(cpu_times, 50), samples, cores(), percentile(wall_times, 50))


# --- the SMTP sink -----------------------------------------------------------------------------------


class _MailHandler:
    """Keeps activation tokens (as `LinkSink`'s handler does, for the accounts' step 4) and, per
    address, every sign-in code with the time it arrived; counts lock notices."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.codes: dict[str, list[tuple[float, str]]] = {}
        self.count = 0
        self.code_emails = 0
        self.lock_emails = 0
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        at = time.monotonic()
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        subject = str(message["Subject"] or "")
        with self.arrived:
            self.count += 1
            if subject == CODE_SUBJECT and (code := code_in(text)):
                self.code_emails += 1
                for rcpt in envelope.rcpt_tos:
                    self.codes.setdefault(rcpt.lower(), []).append((at, code))
            elif subject == LOCKED_SUBJECT:
                self.lock_emails += 1
            elif found := TOKEN.findall(text):
                for rcpt in envelope.rcpt_tos:
                    self.tokens[rcpt.lower()] = found[-1]
            self.arrived.notify_all()
        return "250 OK"


class MailSink(LinkSink):
    """`LinkSink` (activation tokens for `flows.one_flow`) that also hands out sign-in codes."""

    def __init__(self) -> None:
        # LinkSink's __init__ is not called: the same three attributes, with this sink's handler.
        self.port = free_port()
        self.handler = _MailHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def take_code(self, address: str, sent_at: float, timeout: float) -> tuple[str, float] | None:
        """The code emailed to `address` after `sent_at` (monotonic) and the time it arrived, or None.

        Codes that arrived before `sent_at` belong to earlier sign-ins and are dropped: a late
        duplicate can never be typed for a newer challenge."""
        key = address.lower()

        def fresh() -> tuple[float, str] | None:
            waiting = self.handler.codes.get(key, [])
            while waiting and waiting[0][0] < sent_at:
                waiting.pop(0)
            return waiting.pop(0) if waiting else None

        deadline = time.monotonic() + timeout
        with self.handler.arrived:
            while (item := fresh()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.handler.arrived.wait(left)
        at, code = item
        return code, at


# --- the sign-ins ------------------------------------------------------------------------------------


class SignInFailed(Exception):
    pass


@dataclass(frozen=True)
class Opened:
    """Step 1 answered: the challenge, when the request went (monotonic) and when it was answered."""

    challenge_id: str
    sent: float
    answered: float


@dataclass(frozen=True)
class SignedIn:
    opened: Opened
    code_arrived: float  # when the code's email reached the sink
    code_sent: float  # when step 2 went
    end: float  # when step 2 answered

    @property
    def steps(self) -> dict[str, float]:
        """Seconds per step; the email's from step 1's answer (0 when it was there already)."""
        return {
            "password": self.opened.answered - self.opened.sent,
            "email": max(0.0, self.code_arrived - self.opened.answered),
            "code": self.end - self.code_sent,
        }


def _expect(answer: requests.Response, status: int, what: str) -> dict:
    if answer.status_code != status:
        raise SignInFailed(f"{what}: {answer.status_code} {answer.text[:200]}")
    return answer.json()


def password_step(session: requests.Session, base: str, email: str) -> Opened:
    sent = time.monotonic()
    body = {"login_email": email, "password": flows.PASSWORD}
    answer = _expect(
        session.post(f"{base}/activate/api/sign-in", json=body, timeout=flows.TIMEOUT), 200, "step 1"
    )
    answered = time.monotonic()
    if "email_code" not in answer.get("methods", ()) or not answer.get("challenge_id"):
        raise SignInFailed(f"step 1: no emailed code offered: {answer}")
    return Opened(answer["challenge_id"], sent, answered)


def code_step(session: requests.Session, base: str, sink: MailSink, email: str, opened: Opened) -> SignedIn:
    taken = sink.take_code(email, opened.sent, flows.TIMEOUT)
    if taken is None:
        raise SignInFailed(f"no sign-in code emailed to {email} within {flows.TIMEOUT}s")
    code, arrived = taken
    code_sent = time.monotonic()
    answer = session.post(
        f"{base}/activate/api/sign-in/{opened.challenge_id}", json={"code": code}, timeout=flows.TIMEOUT
    )
    end = time.monotonic()
    _expect(answer, 200, "step 2")
    if COOKIE not in answer.cookies:
        raise SignInFailed(f"step 2: 200 without the {COOKIE} cookie")
    return SignedIn(opened, arrived, code_sent, end)


@dataclass
class SignIns:
    """Client threads signing in until a deadline, each with its own accounts in turn."""

    base: str
    sink: MailSink
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: list[SignedIn] = field(default_factory=list)
    password_answers: list[float] = field(default_factory=list)  # when each step 1 answered 200
    failures: list[str] = field(default_factory=list)

    def client(self, emails: list[str], stop_at: float) -> None:
        """Round robin over `emails`; an account that fails once is set aside (no throttle, ever)."""
        accounts, turn = list(emails), 0
        with requests.Session() as session:
            while accounts and time.monotonic() < stop_at and len(self.failures) < 20:
                email = accounts[turn % len(accounts)]
                session.cookies.clear()  # each sign-in as from a browser without a session
                try:
                    opened = password_step(session, self.base, email)
                    with self.lock:
                        self.password_answers.append(opened.answered)
                    signed = code_step(session, self.base, self.sink, email, opened)
                except (SignInFailed, requests.RequestException) as exc:
                    accounts.remove(email)
                    with self.lock:
                        self.failures.append(f"{email}: {type(exc).__name__}: {exc}")
                    continue
                with self.lock:
                    self.done.append(signed)
                turn += 1

    def run(self, accounts: list[list[str]], seconds: float) -> float:
        """One thread per list of accounts for `seconds`; return the start once all have finished."""
        start = time.monotonic()
        threads = [
            threading.Thread(target=self.client, args=(emails, start + seconds), daemon=True)
            for emails in accounts
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 3 * flows.TIMEOUT)
        return start


def make_accounts(
    base: str, sink: MailSink, sirets: list[str], wanted: int, clients: int
) -> tuple[list[str], list[str]]:
    """`wanted` ACTIVE accounts, through the four steps over HTTP from `clients` threads: their
    login emails, and the flows that failed. A failed flow (e.g. 503 `Busy` when more requests
    wait for an event than a process lets wait, as at a cold start) is not retried: the next
    SIRET makes another account in its place, under another email."""
    candidates = iter(enumerate(sirets))
    made: list[str] = []
    failures: list[str] = []

    def one(candidate: tuple[int, str]) -> str | None:
        n, siret = candidate
        email = f"connexion{n}@example.fr"
        try:
            with requests.Session() as session:
                flows.one_flow(session, base, sink, email, siret)
        except (flows.FlowFailed, requests.RequestException) as exc:
            failures.append(f"{email}: {type(exc).__name__}: {exc}")
            return None
        return email

    with ThreadPoolExecutor(clients) as pool:
        while len(made) < wanted:
            batch = list(itertools.islice(candidates, wanted - len(made)))
            if not batch:
                raise RuntimeError(f"{len(made)} of {wanted} accounts made; first failure: {failures[0]}")
            made.extend(email for email in pool.map(one, batch) if email)
    return made, failures


# --- the run -----------------------------------------------------------------------------------------


def _p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 99) * 1000:.0f} ms"


def run(
    work: Path,
    hash_cost: HashCost,
    *,
    clients: int = 16,
    seconds: float = 30,
    warm_up: float = 5,
    profile: bool = False,
) -> list[Result]:
    count = ACCOUNTS_PER_CLIENT * clients
    sirene_dir = work / "sirene"
    sirets = sirene.write_extract(sirene_dir, 2 * count)  # a spare for each flow that fails
    verify = measure_verify()
    say(f"  {verify.describe()}")
    with own_redis() as redis_server, MailSink() as sink:
        say("  starting the system with the launcher of `make run` …")
        with launched(work / "var", redis_server.url, sink.port, sirene_dir) as system:
            say(f"  {count} accounts through the four steps …")
            made_from = time.monotonic()
            emails, refused = make_accounts(system.base_url, sink, sirets, count, clients)
            made_in = time.monotonic() - made_from
            bench = SignIns(system.base_url, sink)
            say(f"  {clients} clients signing in for {warm_up:g} + {seconds:g} s …")
            samplers: list[Sampler] = []
            if profile:  # from the end of the warm-up, every process of the system
                timer = threading.Timer(
                    warm_up, lambda: samplers.append(Sampler(system.pid, work / "sign-in.spy"))
                )
                timer.start()
            roots = {"*": system.pid, "redis": redis_server.proc.pid}
            cpu_before, calls_before = cpu.by_kind(roots), flows.redis_calls(system.redis)
            own_before, codes_before = flows.own_cpu(), sink.handler.code_emails
            start = bench.run(round_robin(emails, clients), warm_up + seconds)
            used = cpu.delta(cpu.by_kind(roots), cpu_before)
            used["bench (clients, SMTP sink)"] = flows.own_cpu() - own_before
            calls = flows.redis_calls(system.redis) - calls_before
            for sampler in samplers:
                sampler.finish()
            codes = sink.handler.code_emails - codes_before
            dead_letters = system.redis.xlen("dead-letters")
    counted_from, counted_to = start + warm_up, start + warm_up + seconds
    counted = [s for s in bench.done if counted_from <= s.end <= counted_to]
    passwords = [t for t in bench.password_answers if counted_from <= t <= counted_to]
    per_step = {name: [s.steps[name] for s in counted] for name in STEPS}
    whole = [s.end - s.opened.sent for s in counted]
    done = len(bench.done)
    bound = "argon2 bound: cores / t_verify (one verify per sign-in)"
    full = Result(
        "sign-ins (password, then the emailed code) through the one origin",
        len(counted) / seconds,
        "sign-ins/s",
        baseline=verify.sign_ins_per_second,
        baseline_label=bound,
        target=None,
        details=[
            f"{clients} concurrent clients, {ACCOUNTS_PER_CLIENT} accounts each in turn ({count} accounts"
            f" made active through the four steps in {made_in:.1f} s); {len(counted)} sign-ins finished"
            f" in the {seconds:g} s after a {warm_up:g} s warm-up; {len(bench.failures)} failed;"
            f" dead letters: {dead_letters}",
            f"p50 / p99: password step {_p50_p99(per_step['password'])}, code step"
            f" {_p50_p99(per_step['code'])}, whole sign-in {_p50_p99(whole)} (the email's wait included)",
            f"the code's email, from step 1's answer to the SMTP sink (activate → stream → notify → Celery"
            f" → SMTP; the email pipeline's delay, not server time): p50 / p99 {_p50_p99(per_step['email'])}",
            f"{verify.describe()}; a registration's hash: {hash_cost.seconds * 1000:.1f} ms",
            f"CPU per sign-in (ms): {cpu.per_unit(used, done)}",
            f"Redis per sign-in: {calls / max(1, done):.0f} commands (INFO commandstats);"
            f" {codes} code emails for {len(bench.password_answers)} password answers;"
            f" {sink.handler.lock_emails} lock notices",
        ],
    )
    password = Result(
        "password step (POST /activate/api/sign-in)",
        len(passwords) / seconds,
        "answers/s",
        baseline=verify.sign_ins_per_second,
        baseline_label=bound,
        target=None,
        details=[
            f"{len(passwords)} 200 answers in the {seconds:g} s window, each client waiting for its code"
            " before its next step 1 (closed loop); p50 / p99 " + _p50_p99(per_step["password"])
        ],
    )
    if refused:
        full.details.append(
            f"{len(refused)} registration flows failed while the accounts were made (replaced by others;"
            f" first: {refused[0][:200].strip()})"
        )
    if bench.failures:
        full.details.append(f"first failure: {bench.failures[0][:300].strip()}")
    if not counted:
        full.invalid = password.invalid = "no sign-in finished"
    elif len(bench.failures) > len(counted) / 100:
        full.invalid = password.invalid = f"{len(bench.failures)} sign-ins failed"
    return [full, password]
