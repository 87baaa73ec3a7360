"""The benchmark code (`make bench`) against real servers, at tiny sizes, so that it does not rot
between runs.

No figure is checked (this machine is shared): only that each piece works and reports. The bus
and email pieces use the tests' real Redis and a real SMTP server; the load generator replays
requests against an in-process Flask server, with Python's client and with wrk (`make test`
installs it).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from werkzeug.serving import make_server

from bench import bus, emails, endpoints, load
from bench.mailsink import CountingSink, LinkSink
from bench.trivial_app import create_app as trivial_app
from services.notify import mailer
from tests.servers import required_tool

pytestmark = pytest.mark.timeout(60)


def test_the_bus_benchmark_runs(redis_server, redis_client):
    latency = bus.measure_latency(redis_server.url, rate=200, seconds=0.25)
    assert latency.invalid is None and latency.unit == "ms"
    throughput = bus.measure_throughput(redis_server.url, count=100, rounds=2, time_limit=20)
    assert throughput.value > 0 and throughput.baseline > 0 and throughput.verdict in ("PASS", "MISS")


def test_the_round_trip_cost_counts_client_and_server_cpu(redis_server, redis_client):
    result = endpoints.round_trip_cost(redis_server.url, count=200)
    assert result.value > 0 and result.verdict == "info"
    assert "client" in result.details[0] and "Redis server" in result.details[0]
    assert redis_client.exists("bench:round-trip") == 0


def test_the_email_baseline_sends_what_the_task_would(settings, smtp_server):
    s = replace(settings, smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    message = emails.rendered(s, emails.activation_data(s, 1))
    mailer.send(message, s)
    assert smtp_server.recorder.wait_for(1)[0]["To"] == "destinataire1@example.fr"
    with CountingSink() as sink:
        sent = emails.plain_smtplib(sink, [message] * 3, workers=1)
        assert sent.rate > 0 and sent.cpu_ms > 0
        assert sink.count == 3
    command = emails.worker_command(1)
    assert "--concurrency 1" in command and "--queues emails " in command


def test_the_link_sink_hands_out_the_token_of_an_activation_email(settings):
    with LinkSink() as sink:
        s = replace(settings, smtp_host="127.0.0.1", smtp_port=sink.port)
        data = emails.activation_data(s, 2)
        mailer.send(emails.rendered(s, data), s)
        token = sink.take_token("destinataire2@example.fr", timeout=10)
    assert token and len(token) >= 20


@pytest.fixture
def trivial_server():
    server = make_server("127.0.0.1", 0, trivial_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_load_generator_replays_a_request_file(tmp_path, trivial_server):
    posts = tmp_path / "posts.requests"
    load.write_requests(posts, [("POST", "/trivial", {"n": n, "nom": "Médor"}) for n in range(20)])
    once = load.run_python(trivial_server, posts, seconds=5, connections=4, mode="once")
    assert once.answers == once.ok == 20 and once.exhausted and once.problem() is None
    gets = tmp_path / "get.requests"
    load.write_requests(gets, [("GET", "/trivial", None)])
    cycle = load.run_python(trivial_server, gets, seconds=0.3, connections=2, mode="cycle")
    assert cycle.answers > 0 and cycle.problem() is None


def test_wrk_runs_the_replay_script(tmp_path, trivial_server):
    wrk = required_tool("wrk")
    posts = tmp_path / "posts.requests"
    load.write_requests(posts, [("POST", "/trivial", {"n": n}) for n in range(30)])
    done = load.run_wrk(wrk, trivial_server, posts, seconds=1, connections=2, mode="once")
    assert done.answers == done.ok == 30 and done.seconds > 0
