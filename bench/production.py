"""Full registrations on the production shape: nginx in front, Redis with a replica, REDIS_MIN_REPLICAS=1.

The processes are the launcher's (`system.launcher.plan`: the Procfile's commands and the
environment `make run` computes, each process with its service's metrics directory as the
launcher gives it), WITHOUT the Python gateway: the four services under gunicorn, the four
event consumers, the Celery worker and beat. In front of them, on the one origin, Debian's nginx
runs deploy/nginx.conf (`bench/nginx.py`: only the upstreams, the resolver and the paths it
writes to are changed). Redis is a primary (AOF on, as `make run` starts it) with a plain replica
(`--replicaof`; no Sentinel: the services reach the primary at REDIS_URL), and every
transaction WAITs for the replica (REDIS_MIN_REPLICAS=1). Emails go to an aiosmtpd sink;
CAPTCHA and rate limits are off; a synthetic SIRENE extract gives every flow its own SIRET.

Client threads run whole registrations as `bench/flows.py` does (same requests, same client;
a read answered 503 with Retry-After is read again after it, as the API asks), through nginx.
In one run:
  1. the plan's own sizes (identify, structure and activate with 2 gunicorn workers, notify's
     web app 1: "two copies" of each service a flow calls), `clients` threads: flows/s against
     the argon2 bound, CPU per flow by process (nginx, each gunicorn service, each consumer, the
     Celery worker and beat, the Redis primary and its replica, from /proc), argon2's share of
     the server's CPU per flow (`HASHES_PER_FLOW × t_hash`, t_hash measured right before, as
     bench/flows.py);
  2. the same with `calm_clients` threads, which do not saturate the cores: CPU per flow
     without the cost of contention (cache misses, context switches, threads queueing for the GIL);
  3. what REDIS_MIN_REPLICAS=1 costs a request: a second identify (same command, same Redis)
     with REDIS_MIN_REPLICAS=0, step 1 POSTs sent to one then the other in turn, one at a time;
  4. py-spy over every process (bench/profile.py), `calm_clients` running flows: where the
     server's Python processes spend what is not argon2 (`bench/hotspots.py`);
  5. identify, structure and activate restarted with `--workers 1` ("one copy"), `clients`
     threads: flows/s and CPU per flow again, for the speed-up from one copy to two.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bench import cpu, nginx, sirene
from bench.flows import STEPS, TIMEOUT, Flow, FlowFailed, Run, one_flow, own_cpu
from bench.harness import Result, Started, cores, percentile, say, until, wait_http
from bench.hashing import HASHES_PER_FLOW, HashCost
from bench.hotspots import CLIENTS, GilSampler, Hotspots, analyse
from bench.mailsink import LinkSink
from bench.profile import Sampler
from bench.system import SERVICES, Planned, procfile
from system.launcher import metrics_dirs, process_env
from tests.servers import RedisServer, free_port

FLOW_SERVICES = ("identify", "structure", "activate")  # the gunicorn services a flow calls
BACKGROUND = (*(f"{name}-consumer" for name in SERVICES), "worker", "beat")
_WORKERS = re.compile(r"--workers \d+")
SAMPLES_PER_SECOND = 50


def label(process: str) -> str:
    """The name a process's CPU is reported under: `gunicorn activate`, `activate consumer`…"""
    if process in SERVICES:
        return f"gunicorn {process}"
    if process.endswith("-consumer"):
        return f"{process.removesuffix('-consumer')} consumer"
    return {"worker": "celery worker", "beat": "celery beat"}.get(process, process)


def replicas_online(client: redis.Redis) -> int:
    info = client.info("replication")
    slaves = (info.get(f"slave{i}", {}) for i in range(int(info.get("connected_slaves", 0))))
    return sum(1 for slave in slaves if slave.get("state") == "online")


@contextmanager
def primary_and_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary with AOF on (as `make run` starts it) and a replica of it, in sync."""
    primary = RedisServer(appendonly=True).start()
    replica: RedisServer | None = None
    try:
        replica = RedisServer(appendonly=True, replica_of=primary.port).start()
        client = redis.Redis(port=primary.port)
        until(lambda: replicas_online(client) >= 1, 30, "the replica to sync")
        client.close()
        yield primary, replica
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()


def commandstats(client: redis.Redis) -> Counter[str]:
    """Calls so far per command (`wait`, `exec`…), and `all`."""
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): int(stat["calls"])
            for name, stat in client.info("commandstats").items()
        }
    )
    calls["all"] = sum(calls.values())
    return calls


class Production:
    """The planned processes (no Python gateway) and nginx in front, started and stopped by name."""

    def __init__(
        self, planned: Planned, primary: RedisServer, replica: RedisServer, nginx_dir: Path, nginx_conf: Path
    ) -> None:
        self.planned = planned
        self.primary = primary
        self.replica = replica
        self.nginx_dir = nginx_dir
        self.nginx_conf = nginx_conf
        self.dirs = metrics_dirs(Path(planned.env["VAR_DIR"]))
        self.running: dict[str, Started] = {}
        self.port = int(planned.env["PORT"])  # the gateway's port of the plan: the one origin
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis = redis.Redis.from_url(primary.url, decode_responses=True)

    def command(self, process: str, copies: int | None = None) -> str:
        command = self.planned.commands[process]
        if copies is None:
            return command
        command, found = _WORKERS.subn(f"--workers {copies}", command)
        if found != 1:
            raise ValueError(f"the Procfile's {process} has no single --workers option")
        return command

    def env(self, process: str, **changes: str) -> dict[str, str]:
        """The launcher's environment for `process` (its service's metrics directory), changed."""
        return {**process_env(process, self.planned.env, self.dirs), **changes}

    def start_services(self, copies: int | None = None) -> None:
        """The four gunicorn services, `copies` workers each of those a flow calls (the plan's
        numbers for None), ready when each answers its /healthz."""
        for name in SERVICES:
            command = self.command(name, copies if name in FLOW_SERVICES else None)
            self.running[name] = self.planned.procs.start(name, command, self.env(name))
        for name in SERVICES:
            wait_http(f"{self.planned.url(name)}/{name}/healthz", self.planned.procs)

    def stop_services(self) -> None:
        for name in SERVICES:
            self.planned.procs.stop(self.running.pop(name))

    def start(self) -> None:
        self.start_services()
        for name in BACKGROUND:
            self.running[name] = self.planned.procs.start(name, self.planned.commands[name], self.env(name))
        upstreams = {name: self.planned.url(name).removeprefix("http://") for name in SERVICES}
        command = nginx.prepare(self.nginx_dir, self.port, upstreams, self.nginx_conf)
        self.running["nginx"] = self.planned.procs.start("nginx", command, self.planned.env)
        wait_http(f"{self.base_url}/healthz", self.planned.procs)

    def roots(self) -> dict[str, int]:
        """Each process tree to count CPU for, by the name it is reported under."""
        roots = {label(name): started.proc.pid for name, started in self.running.items()}
        assert self.primary.proc and self.replica.proc
        return roots | {"redis primary": self.primary.proc.pid, "redis replica": self.replica.proc.pid}


class PoliteRun(Run):
    """bench/flows.py's clients, which also do what the API asks of a client on a 503 with
    Retry-After: read again after that delay. Only reads (GET) are retried, up to 5 times: a
    step-2 or step-3 form read answers 503 `Busy` when too many requests of one process are
    already waiting for the event that makes their record (shared/arrivals.py). Counted."""

    def __init__(self, base: str, sink: LinkSink, sirets: list[str]) -> None:
        super().__init__(base, sink, sirets)
        self.retried = 0

    def _count_retries(self, answer: requests.Response, *args, **kwargs) -> None:
        retries = getattr(answer.raw, "retries", None)
        if retries is not None and retries.history:
            with self.lock:
                self.retried += len(retries.history)

    def client(self, stop_at: float) -> None:
        retry = Retry(
            total=5, connect=0, read=0, redirect=0, status=5, status_forcelist=(503,),
            allowed_methods=frozenset({"GET"}), respect_retry_after_header=True, raise_on_status=False,
        )  # fmt: skip
        with requests.Session() as session:
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.hooks["response"].append(self._count_retries)
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


@dataclass
class Phase:
    """One measured stretch of flows: what finished, and what it cost."""

    clients: int
    seconds: float
    warm_up: float
    flows: list[Flow]  # every flow finished in the stretch, warm-up included (the CPU's divisor)
    counted: list[Flow]  # those finished in the `seconds` after the warm-up (the rate's)
    failures: list[str]
    retried: int  # reads answered 503 Busy, read again after Retry-After
    used: Counter[str]  # CPU seconds by process, the bench's own under CLIENTS
    calls: Counter[str] = field(default_factory=Counter)  # Redis commands

    @property
    def rate(self) -> float:
        return len(self.counted) / self.seconds

    @property
    def server(self) -> Counter[str]:
        return Counter({kind: s for kind, s in self.used.items() if kind != CLIENTS})

    def per_flow_ms(self, seconds: float) -> float:
        return seconds / max(1, len(self.flows)) * 1000

    @property
    def server_ms(self) -> float:
        return self.per_flow_ms(sum(self.server.values()))

    def describe(self) -> list[str]:
        durations = [f.end - f.start for f in self.counted]
        steps = ", ".join(
            f"{name} {percentile([f.steps[name] for f in self.counted if name in f.steps], 50) * 1000:.0f} ms"
            for name in STEPS
        )
        return [
            f"{self.clients} concurrent clients; {len(self.counted)} flows finished in the {self.seconds:g} s"
            f" after a {self.warm_up:g} s warm-up; {len(self.failures)} failed; {self.retried} reads answered"
            " 503 (Busy: too many requests of one process waiting for an event) and were read again after"
            " Retry-After",
            f"flow time p50 {percentile(durations, 50):.2f} s, p95 {percentile(durations, 95):.2f} s;"
            f" per step (p50): {steps}",
            f"server CPU per flow (ms) by process: {cpu.per_unit(self.server, len(self.flows))};"
            f" besides, the test clients and SMTP sink {self.per_flow_ms(self.used[CLIENTS]):.1f} ms",
        ]


def measure(production: Production, run: PoliteRun, clients: int, seconds: float, warm_up: float) -> Phase:
    """`clients` threads running flows for `warm_up` + `seconds`, the CPU of every process counted."""
    run.flows.clear()
    run.failures.clear()
    run.retried = 0
    roots = production.roots()
    before, calls_before, own_before = cpu.by_kind(roots), commandstats(production.redis), own_cpu()
    start = run.run(clients, warm_up + seconds)
    used = cpu.delta(cpu.by_kind(roots), before)
    used[CLIENTS] = own_cpu() - own_before
    calls = commandstats(production.redis)
    calls.subtract(calls_before)
    counted = [f for f in run.flows if start + warm_up <= f.end <= start + warm_up + seconds]
    return Phase(
        clients, seconds, warm_up, list(run.flows), counted, list(run.failures), run.retried, used, calls
    )


def fence_cost(
    production: Production, run: Run, requests_per_block: int, rounds: int, waits_per_flow: float
) -> Result:
    """Step 1 POSTs, one at a time, to identify with REDIS_MIN_REPLICAS=1 and to a second
    identify with 0 (same command, same Redis), in alternating blocks; latency and CPU per request
    (identify's from /proc, in 10 ms ticks: blocks of 100 requests or more; each Redis server's
    from its INFO cpu, in microseconds)."""
    port = free_port()
    unfenced = production.planned.procs.start(
        "identify-unfenced",
        production.command("identify"),
        production.env("identify", IDENTIFY_PORT=str(port), REDIS_MIN_REPLICAS="0"),
    )
    variants = {
        "1": (production.planned.url("identify"), production.running["identify"].proc.pid),
        "0": (f"http://127.0.0.1:{port}", unfenced.proc.pid),
    }
    wait_http(f"{variants['0'][0]}/identify/healthz", production.planned.procs)
    latencies: dict[str, list[float]] = {"0": [], "1": []}
    used: dict[str, Counter[str]] = {"0": Counter(), "1": Counter()}
    failures = 0
    servers = {"redis primary": production.primary, "redis replica": production.replica}
    clients = {name: redis.Redis(port=server.port) for name, server in servers.items()}

    def cpu_so_far(pid: int) -> Counter[str]:
        used = cpu.by_kind({"identify": pid})
        for name, client in clients.items():
            info = client.info("cpu")
            used[name] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return used

    with requests.Session() as session:

        def post(url: str) -> float:
            nonlocal failures
            n = next(run.next)
            body = {"login_email": f"banc{n}@example.fr", "identifier": run.sirets[n]}
            started = time.perf_counter()
            answer = session.post(f"{url}/identify/api/registrations", json=body, timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
            failures += answer.status_code != 201
            return elapsed

        for url, _ in variants.values():  # each server has served (imports, connections) before any figure
            for _ in range(5):
                post(url)
        for round_number in range(rounds):
            for variant in ("0", "1") if round_number % 2 == 0 else ("1", "0"):
                url, pid = variants[variant]
                before = cpu_so_far(pid)
                latencies[variant] += [post(url) for _ in range(requests_per_block)]
                used[variant].update(cpu.delta(cpu_so_far(pid), before))
    production.planned.procs.stop(unfenced)
    for client in clients.values():
        client.close()
    count = requests_per_block * rounds

    def per_request(variant: str) -> str:
        parts = ", ".join(
            f"{kind} {used[variant][kind] / count * 1000:.2f}"
            for kind in ("identify", "redis primary", "redis replica")
        )
        return f"{parts} = {sum(used[variant].values()) / count * 1000:.2f} ms"

    extra_cpu = (sum(used["1"].values()) - sum(used["0"].values())) / count * 1000
    p50 = {v: percentile(latencies[v], 50) * 1000 for v in latencies}
    result = Result(
        "REDIS_MIN_REPLICAS=1: one write request (step 1 POST) waits for the replica",
        p50["1"],
        "ms (p50, one request at a time)",
        baseline=p50["0"],
        baseline_label="the same request to an identify with REDIS_MIN_REPLICAS=0, same Redis",
        kind=None,
        details=[
            f"{rounds} rounds × {requests_per_block} requests to each, in alternating order; latency"
            f" p50 / p99: {p50['0']:.2f} / {percentile(latencies['0'], 99) * 1000:.2f} ms with 0,"
            f" {p50['1']:.2f} / {percentile(latencies['1'], 99) * 1000:.2f} ms with 1"
            f" (+{p50['1'] - p50['0']:.2f} ms a request)",
            f"CPU per request (ms): with 0 {per_request('0')}; with 1 {per_request('1')}"
            f" ({extra_cpu:+.2f} ms: the fence's INCR + WAIT, the replica's acknowledgement)",
            f"a flow makes {waits_per_flow:.1f} WAITs (INFO commandstats, main run: every transaction of the"
            f" services and consumers): ≈ {waits_per_flow * extra_cpu:+.1f} ms of CPU per flow at this cost",
        ],
    )
    if failures:
        result.invalid = f"{failures} requests did not answer 201"
    return result


@dataclass(frozen=True)
class Sizes:
    clients: int = 16  # client threads of the measured stretches
    seconds: float = 30  # each measured stretch, after its warm-up
    warm_up: float = 5
    # The calm stretch and the profile: as many clients as cores, which they do not saturate (a
    # flow waits for Redis, the email, the replica): CPU per flow without the cost of contention.
    calm_clients: int = 2
    profile_seconds: float = 30
    fence_requests: int = 200  # step 1 POSTs per block, to each identify
    fence_rounds: int = 4


def profile_outside_argon2(
    production: Production, run: Run, work: Path, size: Sizes
) -> tuple[Result, Hotspots]:
    """Two py-spy samplers over the bench and every process it started, `calm_clients` running
    flows: every active thread (bench/profile.py's summary, argon2 included), and the GIL holders
    (`GilSampler`: the Python CPU outside argon2, where the cuts are). Both leave the bench's own
    process (clients, SMTP sink) out."""
    everything, python = work / "production.spy", work / "production-gil.spy"
    samplers = [Sampler(os.getpid(), everything, rate=SAMPLES_PER_SECOND)]
    if samplers[0].proc is None:
        return Result(
            "profile outside argon2", 0, "", kind=None, invalid="py-spy is not installed"
        ), Hotspots()
    samplers.append(GilSampler(os.getpid(), python, rate=SAMPLES_PER_SECOND))
    time.sleep(1)  # py-spy attaches to each process before the flows start
    run.flows.clear()
    started = time.monotonic()
    run.run(size.calm_clients, size.profile_seconds)
    elapsed = time.monotonic() - started
    flows_done = len(run.flows)
    for sampler in samplers:
        sampler.finish()
    mine = {os.getpid()}
    active = analyse(everything.read_text(errors="replace") if everything.exists() else "", mine)
    held = analyse(python.read_text(errors="replace") if python.exists() else "", mine)

    def per_second(found: Hotspots) -> float:
        return found.total / SAMPLES_PER_SECOND / max(elapsed, 1e-9)

    ms_per_sample = 1000 / SAMPLES_PER_SECOND / max(1, flows_done)  # of CPU per flow
    result = Result(
        "profile: the server's Python CPU outside argon2 (GIL holders, py-spy)",
        held.outside * ms_per_sample,
        "ms per flow",
        kind=None,
        details=[
            f"py-spy at {SAMPLES_PER_SECOND} Hz over every process, {size.calm_clients} clients for"
            f" {size.profile_seconds:g} s ({flows_done} flows); nginx and Redis are not Python (their CPU is"
            " in the first figure)",
            f"every active thread ({active.total} samples, {per_second(active):.1f} threads at a time on"
            f" {cores()} cores: a thread queued for a core counts):"
            f" {active.argon2 / max(1, active.total):.0%} argon2",
            f"the GIL holders ({held.total} samples, {per_second(held):.1f} at a time): the Python code that"
            " runs (argon2 and the kernel's share of socket calls are not seen); below, each item's share of"
            " these samples outside argon2 and, in brackets, its ms of CPU per flow",
            *held.lines(ms_per_sample),
        ],
    )
    if not held.total:
        result.invalid = "no samples"
    return result, active


def run(work: Path, hash_cost: HashCost, nginx_conf: Path = nginx.NGINX_CONF, **sizes: float) -> list[Result]:
    """The whole benchmark (`sizes`: the fields of `Sizes`); its results, in the report's order.
    `nginx_conf`: deploy/nginx.conf, or a candidate change of it to measure."""
    size = Sizes(**sizes)
    flow_seconds = 3 * (size.warm_up + size.seconds) + size.profile_seconds
    count = max(200, int(hash_cost.flows_per_second * flow_seconds * 1.5) + 8 * size.clients)
    count += (size.fence_requests * size.fence_rounds + 10) * 2
    sirene_dir = work / "sirene"
    sirets = sirene.write_extract(sirene_dir, count)
    nginx_dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    try:
        with (
            primary_and_replica() as (primary, replica),
            LinkSink() as sink,
            procfile(work / "var", primary.url, sink.port, sirene_dir, REDIS_MIN_REPLICAS="1") as planned,
        ):
            production = Production(planned, primary, replica, nginx_dir, nginx_conf)
            say("  starting the launcher's processes without the Python gateway, nginx in front …")
            production.start()
            return _phases(production, PoliteRun(production.base_url, sink, sirets), work, hash_cost, size)
    finally:
        if (nginx_dir / "error.log").exists():
            shutil.copy(nginx_dir / "error.log", work / "nginx-error.log")
        shutil.rmtree(nginx_dir, ignore_errors=True)


def _phases(
    production: Production, bench: PoliteRun, work: Path, hash_cost: HashCost, size: Sizes
) -> list[Result]:
    bench.client(time.monotonic() + 0.1)  # one flow alone: every process has served once
    say(f"  two copies (the plan): {size.clients} clients for {size.warm_up:g} + {size.seconds:g} s …")
    two = measure(production, bench, size.clients, size.seconds, size.warm_up)
    waits_per_flow = two.calls["wait"] / max(1, len(two.flows))
    dead_letters = production.redis.xlen("dead-letters")
    say(f"  REDIS_MIN_REPLICAS 1 against 0: {size.fence_rounds} × {size.fence_requests} step 1 POSTs each …")
    fence = fence_cost(production, bench, size.fence_requests, size.fence_rounds, waits_per_flow)
    say(f"  calm: {size.calm_clients} clients for {size.warm_up:g} + {size.seconds:g} s …")
    calm = measure(production, bench, size.calm_clients, size.seconds, size.warm_up)
    say(f"  profile (py-spy): {size.calm_clients} clients for {size.profile_seconds:g} s …")
    profiled, hotspots = profile_outside_argon2(production, bench, work, size)
    say("  one copy: identify, structure and activate restarted with --workers 1 …")
    production.stop_services()
    production.start_services(copies=1)
    bench.client(time.monotonic() + 0.1)
    one = measure(production, bench, size.clients, size.seconds, size.warm_up)

    argon2_ms = HASHES_PER_FLOW * hash_cost.seconds * 1000
    not_python = sum(calm.server[kind] for kind in ("nginx", "redis primary", "redis replica"))
    if profiled.invalid is None:
        profiled.baseline = calm.server_ms - calm.per_flow_ms(not_python) - argon2_ms
        profiled.baseline_label = "/proc, calm stretch: the Python processes' CPU per flow less 2 × t_hash"
    flows = Result(
        "full registrations through nginx, Redis + replica, REDIS_MIN_REPLICAS=1",
        two.rate,
        "flows/s",
        baseline=hash_cost.flows_per_second,
        baseline_label="argon2 bound: cores / (2 × t_hash)",
        kind=None,
        details=[
            *two.describe(),
            hash_cost.describe(),
            f"Redis per flow: {two.calls['all'] / max(1, len(two.flows)):.0f} commands, of which"
            f" {waits_per_flow:.1f} WAIT (INFO commandstats); dead letters: {dead_letters}",
        ],
    )
    share = Result(
        "argon2's share of the server's CPU per flow",
        argon2_ms,
        "ms of CPU per flow",
        baseline=two.server_ms,
        baseline_label="the server's CPU per flow: nginx, services, consumers, Celery, Redis × 2",
        target=0.6,
        details=[
            f"argon2: {HASHES_PER_FLOW} hashes × t_hash {hash_cost.seconds * 1000:.1f} ms (measured alone"
            " right before the run, as bench/flows.py); the server: every process but the test clients and"
            " SMTP sink",
            f"one copy, {one.clients} clients: {one.server_ms:.1f} ms of server CPU per flow, argon2"
            f" {argon2_ms / max(1e-9, one.server_ms):.0%} of it",
            f"calm ({calm.clients} clients, the machine not saturated): {calm.server_ms:.1f} ms of server CPU"
            f" per flow, argon2 {argon2_ms / max(1e-9, calm.server_ms):.0%} of it; by process:"
            f" {cpu.per_unit(calm.server, len(calm.flows))}",
        ],
    )
    if hotspots.total:
        share.details.append(
            f"the profile's view: {hotspots.argon2 / hotspots.total:.0%} of the Python processes' samples are"
            " argon2 (hashes cost more CPU side by side than alone: argon2id is memory-hard)"
        )
    scaling = Result(
        "speed-up from one copy to two of each service (gunicorn --workers 1 → 2)",
        two.rate,
        "flows/s",
        baseline=one.rate,
        baseline_label="one copy: identify, structure, activate with --workers 1",
        kind=None,
        details=[
            "copies are gunicorn workers (4 threads each) of identify, structure and activate; notify's web"
            " app (1 worker, no request of a flow), the consumers and the Celery worker (--concurrency 2)"
            " as planned; same nginx, same Redis",
            "one copy: " + "; ".join(one.describe()),
        ],
    )
    for phase, result in ((two, flows), (calm, share), (one, scaling)):
        if phase.failures:
            result.details.append(f"first failure: {phase.failures[0][:300]}")
            if len(phase.failures) > len(phase.counted) / 100:
                result.invalid = f"{len(phase.failures)} flows failed"
    if flows.invalid:
        share.invalid = flows.invalid
    return [flows, share, scaling, fence, profiled]
