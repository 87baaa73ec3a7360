"""Each step's endpoint under gunicorn, against a trivial Flask endpoint under the same settings.

The services run from the Procfile's own commands (gunicorn, same workers and threads as
`make run`), with their event consumers, on a Redis of the run's own; the trivial app
(`bench/trivial_app.py`) runs under the identify command with only the app swapped. Requests
go straight to each service's port on 127.0.0.1 (not through the gateway; one figure shows
what the gateway costs). Each endpoint is measured, then its baseline right after it for as
long (GET against the trivial GET, POST against the trivial POST with a body of the same size),
so that both see the same load on the machine.

The side-effecting requests are real ones, each sent once: step 1 with a fresh login email
and SIRET per request; step 2 confirming each registration made by step 1 (a synthetic SIRENE
extract gives a structure to each); step 3 choosing workspaces for each confirmed one; step 4
activating with each account's latest link, taken from `ActivationLinkIssued` and unsealed with
the run's SECRET_KEY. Step 4's POST hashes twice with argon2id by design: it is compared with
what the hashing alone allows on this machine, not with the trivial endpoint.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import cpu, sirene
from bench.harness import Result, say, until, wait_http
from bench.hashing import HashCost
from bench.load import Load, LoadGenerator, write_requests
from bench.system import SERVICES, Planned, procfile
from services.structure.sirene.stock import StockStore
from shared.bus import stream_for
from shared.sealing import unseal
from tests.servers import free_port

PASSWORD = "Facture-Portail!"  # no digits: an email banc202@… must not be in it
QUESTION = "Quel est le nom de votre premier animal de compagnie ?"
WORKSPACES = ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"]
STEP4_SECONDS = 5  # at most ~50 answers a second: long enough to count a few hundred
CONSUMERS = ("identify-consumer", "structure-consumer", "activate-consumer")


def trivial_command(identify_command: str, port: int) -> str:
    """identify's gunicorn command line, serving the trivial app on `port` instead."""
    command = re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", identify_command)
    command = re.sub(r"--name \S+", "--name trivial", command)
    return re.sub(r"'services\.identify\.app:create_app\(\)'", "'bench.trivial_app:create_app()'", command)


def gunicorn_settings(command: str) -> str:
    found = re.findall(r"--(?:workers|threads) \d+", command)
    return " ".join(found) or "gunicorn defaults"


@dataclass
class Registration:
    registration_id: str
    login_email: str
    siret: str


def events(client: redis.Redis, event_type: str) -> list[dict]:
    """The data of every event of a type, oldest first."""
    return [json.loads(f["event"])["data"] for _, f in client.xrange(stream_for(event_type))]


def wait_drained(client: redis.Redis, event_type: str, group: str, timeout: float) -> None:
    """Until `group` has read and acknowledged every entry of the type's stream."""
    stream = stream_for(event_type)

    def drained() -> bool:
        if not client.exists(stream):
            return True
        last = client.xinfo_stream(stream)["last-generated-id"]
        for info in client.xinfo_groups(stream):
            if info["name"] == group:
                return info["pending"] == 0 and info["last-delivered-id"] == last
        return False

    until(drained, timeout, f"{group} handled every {event_type}", pause=0.2)


def wait_quiet(client: redis.Redis, event_type: str, settle: float = 1.0, timeout: float = 60) -> None:
    """Until the type's stream has not grown for `settle` s: requests still in flight when the
    load generator stopped have been answered, so what is read next is final."""
    stream = stream_for(event_type)
    deadline = time.monotonic() + timeout
    length, since = client.xlen(stream), time.monotonic()
    while time.monotonic() - since < settle and time.monotonic() < deadline:
        time.sleep(0.1)
        now = client.xlen(stream)
        if now != length:
            length, since = now, time.monotonic()


class EndpointBench:
    def __init__(self, system: Planned, work: Path, generator: LoadGenerator, seconds: float) -> None:
        self.system = system
        self.work = work
        self.generator = generator
        self.seconds = seconds
        self.client = redis.Redis.from_url(system.env["REDIS_URL"], decode_responses=True)
        self.urls = {name: system.url(name) for name in (*SERVICES, "gateway")}
        self.results: list[Result] = []
        self.calls = 0.0

    @property
    def trivial_url(self) -> str:
        return self.urls["trivial"]

    def file(self, name: str, requests) -> Path:
        path = self.work / f"{name}.requests"
        write_requests(path, requests)
        return path

    def load(self, url: str, path: Path, mode: str = "cycle", seconds: float | None = None) -> Load:
        return self.generator.run(url, path, seconds or self.seconds, mode)

    def server_cpu(self, url: str) -> float:
        """CPU seconds used so far by the gunicorn (master and workers) listening at `url`."""
        name = next(name for name in (*SERVICES, "gateway", "trivial") if self.urls.get(name) == url)
        started = next(s for s in self.system.procs.started if s.name == name)
        return sum(cpu.by_kind({name: started.proc.pid}).values())

    def redis_calls(self) -> int:
        return sum(int(stat["calls"]) for stat in self.client.info("commandstats").values())

    def load_with_cpu(
        self, url: str, path: Path, mode: str = "cycle", seconds: float | None = None
    ) -> tuple[Load, float]:
        """A load run and the server's CPU milliseconds per answer during it; the Redis
        commands per answer (with those of the consumers it set off) go to `self.calls`."""
        before, calls = self.server_cpu(url), self.redis_calls()
        done = self.load(url, path, mode, seconds)
        self.calls = (self.redis_calls() - calls) / max(1, done.answers)
        return done, (self.server_cpu(url) - before) * 1000 / max(1, done.answers)

    def compare(
        self, name: str, what: str, url: str, path: Path, mode: str, baseline: Path, baseline_label: str
    ) -> Load:
        """Measure `path` on `url`, then the trivial `baseline` for as long; record the result."""
        measured, cpu_ms = self.load_with_cpu(url, path, mode)
        calls = self.calls
        base, base_cpu_ms = self.load_with_cpu(
            self.trivial_url, baseline, "cycle", max(1.0, measured.seconds)
        )
        result = Result(
            name,
            measured.rate,
            "req/s",
            baseline=base.rate,
            baseline_label=baseline_label,
            target=0.5,
            details=[
                what,
                f"{measured.describe()}; baseline {base.describe()}",
                f"server CPU per request {cpu_ms:.2f} ms vs trivial {base_cpu_ms:.2f} ms"
                f" (CPU ratio {base_cpu_ms / cpu_ms if cpu_ms else 0:.2f});"
                f" Redis commands per request {calls:.1f} (with the consumers it sets off)",
            ],
        )
        if measured.exhausted:
            result.details.append(f"every one of the {measured.listed} prepared requests was sent")
        result.invalid = measured.problem() or base.problem()
        if measured.problem():
            result.details.append(f"first refusal: {measured.bad_body[:200]}")
        self.results.append(result)
        say(f"  {result.line()}")
        return measured


def round_trip_cost(redis_url: str, count: int = 20000) -> Result:
    """What one Redis round trip costs in CPU on this machine, client and server together: the
    floor under any endpoint that reads from Redis, against a trivial endpoint that reads nothing."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = "bench:round-trip"
    client.hset(key, mapping={f"field{i}": f"value {i}" for i in range(8)})

    def server_cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    for _ in range(1000):
        client.hgetall(key)
    server_before, client_before, started = server_cpu(), time.process_time(), time.perf_counter()
    for _ in range(count):
        client.hgetall(key)
    elapsed = time.perf_counter() - started
    client_us = (time.process_time() - client_before) * 1e6 / count
    server_us = (server_cpu() - server_before) * 1e6 / count
    client.delete(key)
    client.close()
    return Result(
        "one Redis round trip (HGETALL of an 8-field hash, redis-py with hiredis)",
        client_us + server_us,
        "µs of CPU",
        kind=None,
        details=[
            f"{count} in a row from one thread: client {client_us:.0f} µs, Redis server {server_us:.0f} µs"
            f" of CPU each; {elapsed * 1e6 / count:.0f} µs elapsed each",
        ],
    )


def run(
    redis_url: str, work: Path, hash_cost: HashCost, *, seconds: float = 5, connections: int = 16
) -> list:
    generator = LoadGenerator(connections)
    round_trip = round_trip_cost(redis_url)
    say(f"  {round_trip.line()}")
    step1_count = int(2000 * seconds)
    sirene_dir = work / "sirene"
    say(f"  synthetic SIRENE extract of {step1_count} establishments …")
    sirets = sirene.write_extract(sirene_dir, step1_count)
    with procfile(work, redis_url, smtp_port=1, sirene_dir=sirene_dir) as system:
        register = StockStore(system.env["SIRENE_DB"])
        services = ("identify", "structure", "activate")
        say(f"  starting {', '.join(services)}, their consumers and the gateway, from the Procfile …")
        system.start(*services, *CONSUMERS, "gateway")
        trivial_port = free_port()
        system.procs.start("trivial", trivial_command(system.commands["identify"], trivial_port), system.env)
        bench = EndpointBench(system, work, generator, seconds)
        bench.urls["trivial"] = f"http://127.0.0.1:{trivial_port}"
        wait_http(f"{bench.trivial_url}/trivial", system.procs)
        settings = gunicorn_settings(system.commands["identify"])
        say(f"  load: {generator.name}, {seconds:g} s per figure; gunicorn {settings}")
        _steps(bench, sirets, register, hash_cost)
    for result in bench.results:
        result.details.append(f"load generator: {generator.name}; gunicorn {settings}")
    return [round_trip, *bench.results]


def _steps(bench: EndpointBench, sirets: list[str], register: StockStore, hash_cost: HashCost) -> None:
    system, client = bench.system, bench.client
    identify, structure, activate = (system.url(s) for s in ("identify", "structure", "activate"))
    step1 = [
        ("POST", "/identify/api/registrations", {"login_email": f"banc{i}@example.fr", "identifier": siret})
        for i, siret in enumerate(sirets)
    ]
    trivial_get = bench.file("trivial-get", [("GET", "/trivial", None)])
    trivial_post = bench.file("trivial-post", [("POST", "/trivial", body) for _, _, body in step1[:1000]])
    # Warm every server up (first requests import and connect) before any figure.
    warm = bench.file("warm", [("GET", "/identify/healthz", None)])
    for url in (identify, bench.trivial_url):
        bench.load(url, trivial_get if url == bench.trivial_url else warm, seconds=1)

    bench.compare(
        "step 1 POST /identify/api/registrations",
        "a new registration per request: fresh login email and SIRET (RegistrationStarted published)",
        identify,
        bench.file("step1-post", step1),
        "once",
        trivial_post,
        "trivial POST",
    )
    wait_quiet(client, "RegistrationStarted")
    started = {}
    for data in events(client, "RegistrationStarted"):
        started.setdefault(
            data["identifier"], Registration(data["registration_id"], data["login_email"], data["identifier"])
        )
    registrations = list(started.values())
    get1 = bench.file(
        "step1-get",
        [("GET", f"/identify/api/registrations/{r.registration_id}", None) for r in registrations],
    )
    bench.compare(
        "step 1 GET /identify/api/registrations/{id}",
        "reads a registration and its status",
        identify,
        get1,
        "cycle",
        trivial_get,
        "trivial GET",
    )
    gateway_cpu = bench.server_cpu(system.url("gateway"))
    gateway = bench.load(system.url("gateway"), get1)
    gateway_cpu = (bench.server_cpu(system.url("gateway")) - gateway_cpu) * 1000 / max(1, gateway.answers)
    direct = bench.load(identify, get1)
    result = Result(
        "gateway cost: step 1 GET through the one origin",
        gateway.rate,
        "req/s",
        baseline=direct.rate,
        baseline_label="the same GET straight to identify",
        kind=None,
        details=[
            "the gateway of `make run` (`system.forwarding`, kept-alive connections, under gunicorn)"
            " in front of identify",
            f"{gateway.describe()}; direct {direct.describe()}",
            f"gateway CPU per request {gateway_cpu:.2f} ms (on top of identify's)",
        ],
    )
    result.invalid = gateway.problem() or direct.problem()
    bench.results.append(result)
    say(f"  {result.line()}")

    say(f"  waiting for structure's consumer to handle {len(registrations)} RegistrationStarted …")
    wait_drained(client, "RegistrationStarted", "structure", 300)
    bench.compare(
        "step 2 GET /structure/api/registrations/{id}",
        "reads the step-2 form's data (the SIRENE pre-fill kept by structure)",
        structure,
        bench.file(
            "step2-get",
            [("GET", f"/structure/api/registrations/{r.registration_id}", None) for r in registrations],
        ),
        "cycle",
        trivial_get,
        "trivial GET",
    )
    step2 = []
    for r in registrations:
        found = register.lookup(r.siret)
        fields = {
            "company_name": found.company_name,
            "address": found.address,
            "postal_code": found.postal_code,
            "city": found.city,
            "country": "FR",
        }
        body = {
            "structure": fields,
            "user": {
                "last_name": "Fleur",
                "first_name": "Françoise",
                "login_email_confirmation": r.login_email,
            },
            "features": {"payment_requests": True, "dume": False},
        }
        step2.append(("POST", f"/structure/api/registrations/{r.registration_id}", body))
    bench.compare(
        "step 2 POST /structure/api/registrations/{id}",
        "confirms each registration once: checks, one structure per SIRET, StructureConfirmed published",
        structure,
        bench.file("step2-post", step2),
        "once",
        trivial_post,
        "trivial POST",
    )

    wait_quiet(client, "StructureConfirmed")
    confirmed = [d["registration_id"] for d in events(client, "StructureConfirmed")]
    say(f"  waiting for activate's consumer to handle {len(confirmed)} StructureConfirmed …")
    wait_drained(client, "StructureConfirmed", "activate", 300)
    base = "/activate/api/registrations"
    bench.compare(
        "step 3 GET /activate/api/registrations/{id}/workspaces",
        "reads the pending account and the workspaces offered",
        activate,
        bench.file("step3-get", [("GET", f"{base}/{rid}/workspaces", None) for rid in confirmed]),
        "cycle",
        trivial_get,
        "trivial GET",
    )
    bench.compare(
        "step 3 POST /activate/api/registrations/{id}/workspaces",
        "chooses workspaces once per account: a token made, sealed, stored hashed; two events published",
        activate,
        bench.file(
            "step3-post",
            [("POST", f"{base}/{rid}/workspaces", {"workspaces": WORKSPACES}) for rid in confirmed],
        ),
        "once",
        trivial_post,
        "trivial POST",
    )
    wait_quiet(client, "WorkspacesChosen")
    chosen = [d["registration_id"] for d in events(client, "WorkspacesChosen")]
    bench.compare(
        "step 3 POST /activate/api/registrations/{id}/activation-email",
        "a new link (the old one voided), repeatedly over the accounts awaiting activation",
        activate,
        bench.file("step3-resend", [("POST", f"{base}/{rid}/activation-email", None) for rid in chosen]),
        "cycle",
        trivial_post,
        "trivial POST",
    )

    wait_quiet(client, "ActivationLinkIssued")
    key = system.env["SECRET_KEY"]
    latest = {d["registration_id"]: d["sealed_token"] for d in events(client, "ActivationLinkIssued")}
    tokens = [unseal(sealed, key) for sealed in latest.values()]
    bench.compare(
        "step 4 GET /activate/api/activations/{token}",
        "reads what the activation page shows for a live link",
        activate,
        bench.file("step4-get", [("GET", f"/activate/api/activations/{t}", None) for t in tokens]),
        "cycle",
        trivial_get,
        "trivial GET",
    )
    body = {
        "password": PASSWORD,
        "password_confirmation": PASSWORD,
        "secret_question": QUESTION,
        "secret_answer": "Médor",
    }
    measured, cpu_ms = bench.load_with_cpu(
        activate,
        bench.file("step4-post", [("POST", f"/activate/api/activations/{t}", body) for t in tokens]),
        "once",
        max(bench.seconds, STEP4_SECONDS),
    )
    result = Result(
        "step 4 POST /activate/api/activations/{token}",
        measured.rate,
        "req/s",
        baseline=hash_cost.flows_per_second,
        baseline_label="argon2 bound: cores / (2 × t_hash), 2 hashes per request",
        target=0.5,
        details=[
            "activates each account once: password and secret answer hashed (argon2id), AccountActivated",
            f"{measured.describe()}; {hash_cost.describe()}",
            f"server CPU per request {cpu_ms:.1f} ms"
            f" (of which argon2 ≈ {2 * hash_cost.seconds * 1000:.0f} ms)",
        ],
    )
    result.invalid = measured.problem()
    bench.results.append(result)
    say(f"  {result.line()}")
