"""Full registrations per second through the one origin, against the argon2 bound.

The whole system is started as `make run` starts it (`python -m system.launcher`: gateway,
services under gunicorn, consumers, Celery worker and beat under honcho) on a Redis of the
run's own, with an aiosmtpd server receiving the emails, CAPTCHA_ENABLED=0 and
RATE_LIMITS_ENABLED=0, and a synthetic SIRENE extract so that every flow has its own SIRET.

`clients` threads each run flows back to back, as a browser-less client of the JSON API
would, all through the gateway:
  1. POST /identify/api/registrations               (login email + SIRET)
  2. GET  /structure/api/registrations/{id}          (the SIRENE pre-fill)
     POST /structure/api/registrations/{id}          (structure, person, features)
  3. GET  /activate/api/registrations/{id}/workspaces
     POST /activate/api/registrations/{id}/workspaces
     … the activation email arrives at the SMTP server; the token is read from its link …
  4. GET  /activate/api/activations/{token}
     POST /activate/api/activations/{token}          (password + secret answer: 2 argon2id)
A flow counts when step 4 answered 200. Flows/s = flows finished after the warm-up / time since.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import cpu, sirene
from bench.harness import Result, percentile, say
from bench.hashing import HashCost
from bench.mailsink import LinkSink
from bench.profile import Sampler
from bench.system import launched, own_redis

PASSWORD = "Facture-Portail!"  # no digits: an email banc202@… must not be in it
QUESTION = "Quel est le nom de votre premier animal de compagnie ?"
STEPS = ("step 1", "step 2", "step 3", "email", "step 4")
TIMEOUT = 60  # seconds any one request or email may take before the flow counts as failed


def footprint(client, flows: int) -> str:
    """What Redis holds per flow at the end of the run, by how long it stays (MEMORY USAGE)."""
    kept, expiring, streams, other = Counter(), Counter(), 0, 0
    keys = list(client.scan_iter(count=1000))
    for i in range(0, len(keys), 500):
        batch = keys[i : i + 500]
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key)
                pipe.ttl(key)
                pipe.type(key)
            answers = pipe.execute()
        for key, (size, ttl, kind) in zip(
            batch, zip(answers[0::3], answers[1::3], answers[2::3], strict=True), strict=True
        ):
            size = size or 0
            prefix = ":".join(key.split(":")[:2]) if ":" in key else key
            if kind == "stream":
                streams += size
            elif ttl == -1 and prefix.split(":")[0] in ("identify", "structure", "activate", "notify"):
                kept[prefix] += size
            elif ttl > 0:
                expiring[prefix.split(":")[0] + (":seen" if ":seen:" in key else "")] += size
            else:
                other += size

    def kib(total: float) -> str:
        return f"{total / max(1, flows) / 1024:.2f} KiB"

    kept_parts = ", ".join(f"{prefix} {kib(size)}" for prefix, size in kept.most_common())
    return (
        f"Redis holds per flow: {kib(sum(kept.values()))} without expiry ({kept_parts});"
        f" {kib(sum(expiring.values()))} with an expiry (seen-markers, records, limits…);"
        f" {kib(streams)} of stream entries (trimmed at EVENT_STREAM_MAXLEN); {kib(other)} other"
    )


def redis_calls(client) -> int:
    return sum(int(stat["calls"]) for stat in client.info("commandstats").values())


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


class FlowFailed(Exception):
    pass


@dataclass
class Flow:
    start: float
    end: float
    steps: dict[str, float] = field(default_factory=dict)


def _expect(answer: requests.Response, status: int, what: str) -> dict:
    if answer.status_code != status:
        raise FlowFailed(f"{what}: {answer.status_code} {answer.text[:200]}")
    return answer.json()


def one_flow(session: requests.Session, base: str, sink: LinkSink, email: str, siret: str) -> Flow:
    steps: dict[str, float] = {}
    start = mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        steps[name] = now - mark
        mark = now

    started = _expect(
        session.post(
            f"{base}/identify/api/registrations",
            json={"login_email": email, "identifier": siret},
            timeout=TIMEOUT,
        ),
        201,
        "step 1",
    )
    rid = started["registration_id"]
    lap("step 1")
    form = _expect(
        session.get(f"{base}/structure/api/registrations/{rid}", timeout=TIMEOUT), 200, "step 2 form"
    )
    body = {
        "structure": {k: v for k, v in form["prefill"].items() if v},
        "user": {"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": email},
        "features": {"payment_requests": True, "dume": False},
    }
    _expect(
        session.post(f"{base}/structure/api/registrations/{rid}", json=body, timeout=TIMEOUT), 201, "step 2"
    )
    lap("step 2")
    offered = _expect(
        session.get(f"{base}/activate/api/registrations/{rid}/workspaces", timeout=TIMEOUT),
        200,
        "step 3 form",
    )
    chosen = [w["code"] for w in offered["workspaces"] if w["default"]]
    _expect(
        session.post(
            f"{base}/activate/api/registrations/{rid}/workspaces",
            json={"workspaces": chosen},
            timeout=TIMEOUT,
        ),
        201,
        "step 3",
    )
    lap("step 3")
    token = sink.take_token(email, TIMEOUT)
    if token is None:
        raise FlowFailed(f"no activation email to {email} within {TIMEOUT}s")
    lap("email")
    _expect(session.get(f"{base}/activate/api/activations/{token}", timeout=TIMEOUT), 200, "step 4 page")
    activation = {
        "password": PASSWORD,
        "password_confirmation": PASSWORD,
        "secret_question": QUESTION,
        "secret_answer": "Médor",
    }
    _expect(
        session.post(f"{base}/activate/api/activations/{token}", json=activation, timeout=TIMEOUT),
        200,
        "step 4",
    )
    lap("step 4")
    return Flow(start, time.monotonic(), steps)


class Run:
    """Client threads running flows until a deadline, bounded in flows and in failures."""

    def __init__(self, base: str, sink: LinkSink, sirets: list[str]) -> None:
        self.base = base
        self.sink = sink
        self.sirets = sirets
        self.next = itertools.count()
        self.lock = threading.Lock()
        self.flows: list[Flow] = []
        self.failures: list[str] = []

    def client(self, stop_at: float) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at and len(self.failures) < 20:
                n = next(self.next)
                if n >= len(self.sirets):
                    return
                try:
                    flow = one_flow(session, self.base, self.sink, f"banc{n}@example.fr", self.sirets[n])
                except (FlowFailed, requests.RequestException) as exc:
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self.lock:
                    self.flows.append(flow)

    def run(self, clients: int, seconds: float) -> float:
        """Start `clients` threads for `seconds`; return when all have finished their last flow."""
        start = time.monotonic()
        threads = [
            threading.Thread(target=self.client, args=(start + seconds,), daemon=True) for _ in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 7 * TIMEOUT)
        return start


def run(
    work: Path,
    hash_cost: HashCost,
    *,
    clients: int = 16,
    seconds: float = 30,
    warm_up: float = 5,
    profile: bool = False,
) -> list:
    count = max(200, int(hash_cost.flows_per_second * (seconds + warm_up) * 2) + clients)
    sirene_dir = work / "sirene"
    sirets = sirene.write_extract(sirene_dir, count)
    with own_redis() as redis_server, LinkSink() as sink:
        say("  starting the system with the launcher of `make run` …")
        with launched(work / "var", redis_server.url, sink.port, sirene_dir) as system:
            bench = Run(system.base_url, sink, sirets)
            bench.client(time.monotonic() + 0.1)  # one flow alone: every process has served once
            bench.flows.clear()
            say(f"  {clients} clients for {warm_up:g} + {seconds:g} s …")
            samplers: list[Sampler] = []
            if profile:  # from the end of the warm-up, every process of the system
                timer = threading.Timer(
                    warm_up, lambda: samplers.append(Sampler(system.pid, work / "flows.spy"))
                )
                timer.start()
            roots = {"*": system.pid, "redis": redis_server.proc.pid}
            cpu_before, calls_before, own_before = cpu.by_kind(roots), redis_calls(system.redis), own_cpu()
            memory_before = system.redis.info("memory")["used_memory"]
            start = bench.run(clients, warm_up + seconds)
            used = cpu.delta(cpu.by_kind(roots), cpu_before)
            used["bench (clients, SMTP sink)"] = own_cpu() - own_before
            calls = redis_calls(system.redis) - calls_before
            memory = system.redis.info("memory")["used_memory"] - memory_before
            for sampler in samplers:
                sampler.finish()
            dead_letters = system.redis.xlen("dead-letters")
            held = footprint(system.redis, len(bench.flows) + 1)
    counted_from, counted_to = start + warm_up, start + warm_up + seconds
    counted = [f for f in bench.flows if counted_from <= f.end <= counted_to]
    rate = len(counted) / seconds
    durations = [f.end - f.start for f in counted]
    steps = ", ".join(
        f"{name} {percentile([f.steps[name] for f in counted if name in f.steps], 50) * 1000:.0f} ms"
        for name in STEPS
    )
    result = Result(
        "full registrations through the one origin",
        rate,
        "flows/s",
        baseline=hash_cost.flows_per_second,
        baseline_label="argon2 bound: cores / (2 × t_hash)",
        target=0.6,
        details=[
            f"{clients} concurrent clients; {len(counted)} flows finished in the {seconds:g} s after a"
            f" {warm_up:g} s warm-up; {len(bench.failures)} failed; dead letters: {dead_letters}",
            f"flow time p50 {percentile(durations, 50):.2f} s, p95 {percentile(durations, 95):.2f} s;"
            f" per step (p50): {steps}",
            hash_cost.describe(),
            f"CPU per flow (ms): {cpu.per_unit(used, len(bench.flows))}",
            f"Redis per flow: {calls / max(1, len(bench.flows)):.0f} commands (INFO commandstats),"
            f" {memory / max(1, len(bench.flows)) / 1024:.1f} KiB more memory (INFO memory: state, events,"
            " seen-markers, Celery messages)",
            held,
        ],
    )
    if bench.failures:
        result.details.append(f"first failure: {bench.failures[0][:300]}")
        if len(bench.failures) > len(counted) / 100:
            result.invalid = f"{len(bench.failures)} flows failed"
    return [result]
