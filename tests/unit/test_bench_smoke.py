"""The benchmark code (`make bench`) runs, at tiny sizes, so that it does not rot between runs.

No figure is checked (this machine is shared): only that each piece works and reports. These
pieces need no server (tests/integration/test_bench_smoke.py has those that do). The last test
keeps docs/scaling.md's list of Redis keys (for Cluster) in step with the services'
repositories.
"""

from __future__ import annotations

import re

import pytest
from stdnum.fr import siret as siret_number

from bench import endpoints, flows, hashing, load, report, sirene
from bench.harness import ROOT, Result, cpu_ticks, machine, percentile, stolen_share
from services.activate.domain import check_activation_form
from services.structure.sirene.stock import StockStore
from services.structure.sirene.stock_import import import_stock

pytestmark = pytest.mark.timeout(60)


def test_a_result_says_pass_miss_or_invalid():
    assert Result("r", 60, "x/s", baseline=100, target=0.5).verdict == "PASS"
    assert Result("r", 40, "x/s", baseline=100, target=0.5).verdict == "MISS"
    assert Result("p99", 4.0, "ms", target=5, kind="max").verdict == "PASS"
    assert Result("p99", 6.0, "ms", target=5, kind="max").verdict == "MISS"
    assert Result("r", 60, "x/s", baseline=100, target=0.5, invalid="errors").verdict == "INVALID"
    assert "ratio 0.60" in Result("r", 60, "x/s", baseline=100, target=0.5).line()
    assert percentile([3, 1, 2, 4], 50) == 2 and percentile([], 99) == 0


def test_the_results_block_is_replaced_and_the_analysis_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nAnalysis stays.\n")
    first = report.section(
        "bus", "python -m bench bus", "here", [Result("r", 1, "x/s", baseline=2, target=0.5)]
    )
    report.write(doc, "bus", first)
    report.write(doc, "bus", report.section("bus", "cmd", "there", [Result("r", 3, "x/s", baseline=2)]))
    text = doc.read_text()
    assert "Analysis stays." in text and text.count("<!-- bench:bus -->") == 1
    assert "Run: there." in text and "Run: here." not in text


def test_the_synthetic_sirene_extract_is_read_by_structure(tmp_path):
    numbers = sirene.write_extract(tmp_path / "files", 30)
    assert len(set(numbers)) == 30 and all(siret_number.is_valid(n) for n in numbers)
    import_stock(tmp_path / "files", tmp_path / "sirene.sqlite3")
    found = StockStore(tmp_path / "sirene.sqlite3").lookup(numbers[7])
    assert found.open and found.diffusible and found.company_name and found.address and found.city


def test_the_argon2_bound_is_measured_with_the_projects_hasher():
    cost = hashing.measure(samples=2)
    assert cost.seconds > 0
    assert cost.flows_per_second == pytest.approx(cost.cores / (2 * cost.seconds))


def test_the_cpu_stolen_by_the_host_is_a_share_of_the_time_elapsed():
    started = cpu_ticks()
    sum(range(200_000))
    stolen = stolen_share(started)
    assert stolen is None or 0 <= stolen <= 1
    assert "load average" in machine(since=started)


def test_the_trivial_app_runs_under_the_identify_gunicorn_settings():
    procfile = (ROOT / "Procfile").read_text()
    identify = next(
        line.split(":", 1)[1].strip() for line in procfile.splitlines() if line.startswith("identify:")
    )
    command = endpoints.trivial_command(identify, 12345)
    assert "bench.trivial_app:create_app()" in command and "127.0.0.1:12345" in command
    assert endpoints.gunicorn_settings(command) == endpoints.gunicorn_settings(identify)


def test_wrk_output_is_parsed():
    out = (
        'BENCH-RESULT {"answers":10,"ok":9,"listed":10,"window_us":2000000,"p50_us":1500,'
        '"p99_us":9000,"socket_errors":0,"timeouts":0,"bad_status":409}\nBENCH-BAD-BODY {"code":409}\n'
    )
    parsed = load.parse_wrk(out, "once")
    assert parsed.rate == 5 and parsed.p99_ms == 9 and parsed.bad_status == 409
    assert "not 2xx" in parsed.problem()


def test_the_benchmarks_activation_form_passes_activates_rules():
    for n in (0, 202, 2026, 19999):
        email = f"banc{n}@example.fr"
        for module in (flows, endpoints):
            check_activation_form(
                module.PASSWORD,
                module.PASSWORD,
                module.QUESTION,
                "Médor",
                personal=("Françoise", "Fleur", email, email),
            )


def test_the_scaling_doc_discusses_every_key_the_services_use():
    """docs/scaling.md lists every transaction's keys for Redis Cluster: a new key must be added."""
    doc = (ROOT / "docs" / "scaling.md").read_text()
    prefixes = set()
    for repository in (ROOT / "services").glob("*/repository.py"):
        prefixes.update(
            re.findall(r'"((?:identify|structure|activate|notify):[a-z-]+)', repository.read_text())
        )
    assert prefixes, "no key prefix found in services/*/repository.py"
    assert sorted(p for p in prefixes if f"`{p}" not in doc) == []


def _sign_in_code_message(to: str, code: str) -> bytes:
    """A sign-in code email as notify's worker sends it, in its wire form (CRLF line endings)."""
    from datetime import UTC, datetime, timedelta
    from email import policy

    from services.notify import emails, mailer
    from services.notify.sign_in_emails import sign_in_code_email

    email = sign_in_code_email(
        to=to,
        first_name="Françoise",
        last_name="Fleur",
        code=code,
        ttl_seconds=600,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
        public_base_url="http://127.0.0.1:8000",
    )
    message = mailer.build_message(
        emails.render(email), to=email.to, mail_from="portail@example.fr", now=datetime.now(UTC)
    )
    return message.as_bytes(policy=policy.SMTP)


def test_the_sign_in_benchmark_reads_the_code_of_an_email_as_received():
    from email import message_from_bytes, policy

    from bench import sign_in

    received = message_from_bytes(_sign_in_code_message("a@example.fr", "012345"), policy=policy.default)
    assert sign_in.code_in(received.get_body(("plain",)).get_content()) == "012345"
    assert sign_in.code_in("Bonjour,\r\n\r\nle 12 345 678\r\n") is None


def test_the_sign_in_benchmarks_sink_hands_each_code_once_and_never_an_earlier_one():
    import asyncio
    import time
    from types import SimpleNamespace

    from bench import sign_in

    sink = sign_in.MailSink()  # not started: its handler is fed directly

    def arrives(to: str, code: str) -> None:
        raw = _sign_in_code_message(to, code)
        envelope = SimpleNamespace(original_content=raw, content=raw, rcpt_tos=[to])
        assert asyncio.run(sink.handler.handle_DATA(None, None, envelope)) == "250 OK"

    arrives("Connexion1@example.fr", "111111")  # a late duplicate of an earlier sign-in's code
    sent_at = time.monotonic()
    arrives("connexion1@example.fr", "222222")
    arrives("connexion2@example.fr", "333333")
    code, arrived = sink.take_code("connexion1@example.fr", sent_at, timeout=1)
    assert code == "222222" and arrived >= sent_at
    assert sink.take_code("connexion1@example.fr", sent_at, timeout=0) is None
    assert sink.take_code("connexion2@example.fr", sent_at, timeout=0)[0] == "333333"
    assert sink.handler.code_emails == 3 and sink.handler.tokens == {}


def test_the_sign_in_benchmark_gives_each_client_its_own_accounts_and_bounds_by_one_verify():
    from bench import sign_in

    emails = [f"connexion{n}@example.fr" for n in range(6)]
    shares = sign_in.round_robin(emails, 3)
    assert shares == [emails[0::3], emails[1::3], emails[2::3]]
    assert sorted(e for share in shares for e in share) == sorted(emails)
    cost = sign_in.measure_verify(samples=2)
    assert cost.seconds > 0 and cost.sign_ins_per_second == pytest.approx(cost.cores / cost.seconds)
    for n in (0, 31):
        email = f"connexion{n}@example.fr"
        personal = ("Françoise", "Fleur", email, email)
        check_activation_form(flows.PASSWORD, flows.PASSWORD, flows.QUESTION, "Médor", personal=personal)
