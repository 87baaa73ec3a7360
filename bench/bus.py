"""Event bus: publish-to-handled latency at a fixed rate, and the consumer loop's throughput.

Latency: this process publishes `RegistrationStarted` events with `shared.events.append_to_stream` (one
MULTI/EXEC each, as a service does) at a fixed rate, the send time in the event's data; a
`shared.bus.Consumer` in another process handles them with a trivial handler writing one key,
and notes `now - sent` once the handler's transaction (write + seen-marker + XACK) committed.

Throughput: a stream filled beforehand is drained twice, by the `Consumer` (group `bus`) and
by a bare redis-py loop (group `bare`): XREADGROUP 20 at a time, then per entry one MULTI with
the same one-key write and the XACK. Same entries, same write, same Redis, same process; the
two take turns three times and their medians are compared (the machine may be shared).
"""

from __future__ import annotations

import multiprocessing
import time

import redis

from bench.harness import Deadline, Result, percentile, say
from shared.bus import Consumer
from shared.events import Event, append_to_stream, stream_for
from shared.settings import Settings
from shared.unit_of_work import UnitOfWork

EVENT_TYPE = "RegistrationStarted"
STREAM = stream_for(EVENT_TYPE)
MAXLEN = Settings.event_stream_maxlen
BATCH = 20  # the Consumer's default XREADGROUP count, used by both loops


def bench_event(n: int, sent_at: float | None = None) -> Event:
    """A valid RegistrationStarted; `sent_at` rides along in the data (unknown fields are kept)."""
    registration_id = f"bench-{n}"
    data = {
        "registration_id": registration_id,
        "login_email": f"bench{n}@example.fr",
        "identifier_type": "SIRET",
        "identifier": "81880244900038",
        "country": "FR",
        "n": n,
    }
    if sent_at is not None:
        data["sent_at"] = sent_at
    return Event(type=EVENT_TYPE, source="/services/bench", subject=registration_id, data=data)


def write_one_key(event: Event, uow: UnitOfWork) -> None:
    uow.writes.set(f"bench:handled:{event.id}", "1", ex=3600)


class TimedConsumer(Consumer):
    """A Consumer noting, for each event it handles, the time since the event's `sent_at`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []

    def _apply(self, delivery, event, handler) -> None:
        super()._apply(delivery, event, handler)  # returns once the transaction has executed
        sent_at = event.data.get("sent_at")
        if sent_at is not None:
            self.latencies.append(time.time() - float(sent_at))


def _latency_consumer(url: str, expected: int, time_limit: float, ready, conn) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    consumer = TimedConsumer(client, "bus-latency", {EVENT_TYPE: write_one_key}, name="latency-1")
    consumer.ensure_groups()
    ready.set()
    deadline = Deadline(time_limit)
    while len(consumer.latencies) < expected and not deadline.passed():
        consumer.run_once()
    conn.send(consumer.latencies)
    conn.close()


def measure_latency(url: str, rate: float, seconds: float) -> Result:
    """Publish at `rate` events/s for `seconds`; the p99 of publish-to-handled, in ms."""
    client = redis.Redis.from_url(url, decode_responses=True)
    total = max(1, int(rate * seconds))
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_latency_consumer, args=(url, total, seconds + 30, ready, send), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the latency consumer did not start")
        start = time.monotonic()
        for n in range(total):
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with client.pipeline(transaction=True) as pipe:
                append_to_stream(pipe, bench_event(n, time.time()), MAXLEN)
                pipe.execute()
        published_in = time.monotonic() - start
        if not receive.poll(seconds + 40):
            raise RuntimeError("the latency consumer did not report")
        latencies = [x * 1000 for x in receive.recv()]
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    achieved = total / published_in if published_in else 0.0
    result = Result(
        f"bus publish→handled p99 at {rate:g} events/s",
        percentile(latencies, 99),
        "ms",
        target=5.0,
        kind="max",
        details=[
            f"{len(latencies)} of {total} events handled; published at {achieved:.0f} events/s over"
            f" {published_in:.1f} s",
            f"p50 {percentile(latencies, 50):.2f} ms, p90 {percentile(latencies, 90):.2f} ms,"
            f" p99 {percentile(latencies, 99):.2f} ms, max {max(latencies, default=0):.2f} ms",
        ],
    )
    if len(latencies) < total:
        result.invalid = f"only {len(latencies)} of {total} events handled"
    return result


def fill(client: redis.Redis, count: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        for n in range(count):
            append_to_stream(pipe, bench_event(n), MAXLEN)
            if n % 500 == 499:
                pipe.execute()
        pipe.execute()


def bare_loop(client: redis.Redis, group: str, total: int, time_limit: float) -> tuple[float, float]:
    """XREADGROUP / MULTI SET XACK EXEC with redis-py alone; (events/s, CPU µs per event here)."""
    client.xgroup_create(STREAM, group, id="0")
    handled = 0
    deadline = Deadline(time_limit)
    start, cpu_start = time.perf_counter(), time.process_time()
    while handled < total and not deadline.passed():
        reply = client.xreadgroup(group, "bare-1", {STREAM: ">"}, count=BATCH, block=1000)
        for _, entries in reply or []:
            for entry_id, _fields in entries:
                with client.pipeline(transaction=True) as pipe:
                    pipe.set(f"{group}:handled:{entry_id}", "1", ex=3600)
                    pipe.xack(STREAM, group, entry_id)
                    pipe.execute()
                handled += 1
    return _rates(handled, start, cpu_start)


def bus_loop(client: redis.Redis, group: str, total: int, time_limit: float) -> tuple[float, float]:
    """The project's Consumer with a handler making the same write; (events/s, CPU µs per event)."""
    consumer = Consumer(client, group, {EVENT_TYPE: write_one_key}, name="bus-1", batch=BATCH)
    consumer.ensure_groups()
    handled = 0
    deadline = Deadline(time_limit)
    start, cpu_start = time.perf_counter(), time.process_time()
    while handled < total and not deadline.passed():
        handled += consumer.run_once()
    return _rates(handled, start, cpu_start)


def _rates(handled: int, start: float, cpu_start: float) -> tuple[float, float]:
    elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu_start
    return handled / elapsed, cpu_used * 1e6 / max(1, handled)


def measure_throughput(url: str, count: int, rounds: int = 3, time_limit: float = 120) -> Result:
    """Both loops drain the same `count` entries (each with a group of its own), taking turns
    `rounds` times so that both see the same machine; the medians are compared."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.delete(STREAM)
    fill(client, count)
    bare, bus = [], []
    for n in range(rounds):
        bare.append(bare_loop(client, f"bare-{n}", count, time_limit))
        bus.append(bus_loop(client, f"bus-{n}", count, time_limit))
    rates = ", ".join(f"{b[0]:.0f}/{a[0]:.0f}" for a, b in zip(bare, bus, strict=True))
    bus_cpu, bare_cpu = percentile([b[1] for b in bus], 50), percentile([a[1] for a in bare], 50)
    return Result(
        "consumer loop throughput",
        percentile([b[0] for b in bus], 50),
        "events/s",
        baseline=percentile([a[0] for a in bare], 50),
        baseline_label="bare XREADGROUP + MULTI SET XACK",
        target=0.5,
        details=[
            f"{count} events drained by each loop in each of {rounds} rounds, {BATCH} per read; medians"
            f" compared (bus/bare per round: {rates})",
            "per event the bare loop makes 1 round trip (MULTI SET XACK EXEC); the bus makes 2 (WATCH +"
            " EXISTS of the seen-marker, then MULTI … EXEC) and parses and checks the event against its"
            " contract",
            f"client CPU per event (median): bus {bus_cpu:.0f} µs, bare {bare_cpu:.0f} µs"
            f" (CPU ratio {bare_cpu / bus_cpu if bus_cpu else 0:.2f})",
        ],
    )


def run(url: str, *, rate: float = 500, seconds: float = 10, count: int = 10000) -> list[Result]:
    say(f"  latency: {rate:g} events/s for {seconds:g} s …")
    latency = measure_latency(url, rate, seconds)
    say(f"  throughput: {count} events, bare loop and Consumer in turn, 3 rounds …")
    throughput = measure_throughput(url, count)
    return [latency, throughput]
