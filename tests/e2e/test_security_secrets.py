"""Activation tokens against the whole system (started as `make run` starts it).

A registration goes from step 1 to an active account; every token seen in an email is kept
(the first link, then the resent one). Then:
- forged and truncated tokens get the same 404, body for body; replaced, reused and expired
  links get 410 with one body shape: the status is the only thing that differs from a forged one;
- no token appears in the system's log (every process's output), in any entry of any stream, or
  in any Redis key or value, Celery's broker messages decoded (their bodies are base64): the
  broker holds the sealed token only.
Expired links need a system whose links last 2 seconds (`short_ttl_system`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.e2e.sirets import take_siret
from tests.e2e.test_flow import link_in_mail_to, wait_status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LINK = re.compile(r"https?://\S+/activate/activations/([A-Za-z0-9_\-]+)")
GOOD_PASSWORD = "Ruisseau-Calme-73"
ERROR_KEYS = ["code", "message", "status"]
GONE_KEYS = ["code", "message", "reason", "status"]


def register_until_the_link(system, email: str, first_name: str, last_name: str) -> tuple[str, str]:
    """Steps 1 to 3 through the one origin; the registration id and the emailed token."""
    siret, _ = take_siret(system)
    mails_before = len(system.smtp.recorder.messages)
    started = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier": siret},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    registration_id = started.json()["registration_id"]
    form = requests.get(system.url(f"/structure/api/registrations/{registration_id}"), timeout=30)
    assert form.status_code == 200, form.text
    confirmed = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"),
        timeout=10,
        json={
            "structure": {k: v for k, v in form.json()["prefill"].items() if v},
            "user": {"last_name": last_name, "first_name": first_name, "login_email_confirmation": email},
            "features": {"payment_requests": True},
        },
    )
    assert confirmed.status_code == 201, confirmed.text
    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"), json={}, timeout=30
    )
    assert chosen.status_code == 201, chosen.text
    return registration_id, link_in_mail_to(system, email, mails_before).rsplit("/", 1)[1]


def activation(system, token: str, method: str = "GET", password: str = GOOD_PASSWORD) -> requests.Response:
    url = system.url(f"/activate/api/activations/{token}")
    if method == "GET":
        return requests.get(url, timeout=10)
    return requests.post(
        url,
        timeout=30,
        json={
            "password": password,
            "password_confirmation": password,
            "secret_question": "Quel est le nom de votre premier animal de compagnie ?",
            "secret_answer": "Médor",
        },
    )


def forged_answers(system, real_token: str) -> list[requests.Response]:
    """A token made up, the real one minus its last character, and one of another shape."""
    return [
        activation(system, secrets.token_urlsafe(32)),
        activation(system, real_token[:-1]),
        activation(system, "forged-token"),
        activation(system, secrets.token_urlsafe(32), "POST"),
        activation(system, real_token[:-1], "POST"),
    ]


def assert_same_404(answers: list[requests.Response]) -> None:
    bodies = [answer.json() for answer in answers]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert all(body == bodies[0] for body in bodies), bodies  # body for body: nothing tells them apart
    assert sorted(bodies[0]) == ERROR_KEYS


def assert_gone(answer: requests.Response, reason: str) -> None:
    """410 with one shape for every dead link, naming no account; `reason` tells the link's
    holder what to do next."""
    assert answer.status_code == 410, answer.text
    body = answer.json()
    assert sorted(body) == GONE_KEYS
    assert (body["code"], body["status"], body["reason"]) == (410, "Gone", reason)


# --- the whole run: where a token may not be ----------------------------------------------------


def _decoded(value: str) -> Iterator[str]:
    """`value`, and the decoded bodies of a kombu message inside it (Celery's broker keeps a task's
    arguments base64-encoded in a JSON envelope: a grep of the raw value would miss a token)."""
    yield value
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    stack = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
            body = item.get("body")
            if isinstance(body, str) and (item.get("properties") or {}).get("body_encoding") == "base64":
                try:
                    decoded = base64.b64decode(body).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
                yield decoded
                yield from _decoded(decoded)
        elif isinstance(item, str) and item.startswith(("[", "{")):
            yield from _decoded(item)  # JSON inside JSON


def everything_in_redis(client: redis.Redis) -> list[str]:
    """Every key, and every value of every key (strings, hashes, lists, sets, sorted sets, and
    every entry of every stream: events:*, dead-letters…), kombu bodies decoded."""
    texts: list[str] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        values: list[str] = [key]
        if kind == "string":
            values.append(client.get(key) or "")
        elif kind == "hash":
            values += [x for pair in client.hgetall(key).items() for x in pair]
        elif kind == "list":
            values += client.lrange(key, 0, -1)
        elif kind == "set":
            values += client.smembers(key)
        elif kind == "zset":
            values += client.zrange(key, 0, -1)
        elif kind == "stream":
            values += [x for _, fields in client.xrange(key) for pair in fields.items() for x in pair]
            for group in client.xinfo_groups(key):
                values.append(group["name"])
        for value in values:
            texts.extend(_decoded(value))
    return texts


def pieces(token: str) -> list[str]:
    """The token and the parts of it that would be enough to guess it: whole, truncated as a
    client sent it, and its first and last 16 characters."""
    return [token, token[:-1], token[:16], token[-16:]]


def assert_nowhere(system, tokens: list[str]) -> None:
    log = system.log.read_text(encoding="utf-8", errors="replace")
    assert "/activations/[masqué]" in log  # the requests with a token were logged, masked
    stored = everything_in_redis(system.redis)
    assert any(key.startswith("events:") for key in system.redis.scan_iter("events:*"))
    for token in tokens:
        for piece in pieces(token):
            assert piece not in log, "a token is in the system's log"
            assert not any(piece in text for text in stored), "a token is in Redis"


def tokens_mailed(system) -> list[str]:
    """Every token of every email the system sent this session (other tests' too)."""
    found = set()
    for message in system.smtp.recorder.messages:
        body = message.get_body(("plain",))
        if body is not None:
            found.update(LINK.findall(body.get_content()))
    return sorted(found)


def test_tokens_forged_truncated_replaced_reused_and_nowhere_to_be_found(running_system):
    system = running_system
    email = f"jetons-{secrets.token_hex(4)}@example.fr"
    registration_id, first = register_until_the_link(system, email, "Gaëlle", "Rivière")

    mails_before = len(system.smtp.recorder.messages)
    resent = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/activation-email"), timeout=10
    )
    assert resent.status_code == 202, resent.text
    second = link_in_mail_to(system, email, mails_before).rsplit("/", 1)[1]
    seen = [first, second]
    assert first != second and all(len(token) == 43 for token in seen)  # 256 bits, base64url

    # Forged and truncated: one 404, body for body, even when the truncated one was live.
    assert activation(system, second).status_code == 200
    assert_same_404(forged_answers(system, second))
    assert_gone(activation(system, first), "replaced")

    # The password policy, on the way: a common password, then one made of the person's name.
    common = activation(system, second, "POST", "Motdepasse2024!")
    assert common.status_code == 422 and set(common.json()["errors"]) == {"password"}
    assert "trop courant" in common.json()["errors"]["password"][0]
    personal = activation(system, second, "POST", "Riviere-Ruisseau-7")
    assert personal.status_code == 422
    assert personal.json()["errors"]["password"] == [
        "Le mot de passe ne doit reprendre ni votre nom, ni votre prénom, ni votre adresse électronique."
    ]
    assert activation(system, second, "POST").status_code == 200

    # Reused (used), and the replaced one again: 410, same shape; forged ones still the same 404.
    assert_gone(activation(system, second), "used")
    assert_gone(activation(system, second, "POST"), "used")
    assert_gone(activation(system, first, "POST"), "replaced")
    assert_same_404(forged_answers(system, second))
    pages = [
        requests.get(system.url(f"/activate/activations/{t}"), timeout=10) for t in (second[:-1], "forged")
    ]
    assert [p.status_code for p in pages] == [404, 404] and pages[0].text == pages[1].text

    assert wait_status(system, registration_id, "activated") == "activated"
    assert_nowhere(system, sorted(set(seen) | set(tokens_mailed(system))))


def test_the_broker_and_the_streams_hold_the_sealed_token_only(running_system):
    """What does carry the link, sealed: ActivationLinkIssued in its stream (and so the Celery
    task's arguments). The clear token is in neither."""
    system = running_system
    email = f"scelle-{secrets.token_hex(4)}@example.fr"
    registration_id, token = register_until_the_link(system, email, "Anne", "Sceaux")
    issued = [
        json.loads(fields["event"])
        for _, fields in system.redis.xrange("events:ActivationLinkIssued")
        if registration_id in fields["event"]
    ]
    (data,) = [event["data"] for event in issued]
    assert data["sealed_token"] and token not in data["sealed_token"]
    stored = everything_in_redis(system.redis)
    assert any(data["sealed_token"] in text for text in stored)  # the scan does read the streams
    assert not any(token in text for text in stored)


def test_an_expired_link_gets_the_same_410_shape(short_ttl_system):
    system = short_ttl_system
    email = f"expire-{secrets.token_hex(4)}@example.fr"
    registration_id, token = register_until_the_link(system, email, "Paul", "Lenteur")
    deadline = time.monotonic() + 30
    answer = activation(system, token)
    while answer.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = activation(system, token)
    assert_gone(answer, "expired")
    assert_gone(activation(system, token, "POST"), "expired")
    assert_same_404(forged_answers(system, token))
    swept = lambda: any(  # noqa: E731
        registration_id in fields["event"]
        for _, fields in system.redis.xrange("events:ActivationTokenExpired")
    )
    while not swept() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert swept()
    assert_nowhere(system, [token])


def test_the_scan_reads_inside_celery_messages():
    """The helper itself: a kombu envelope (as Celery's Redis broker stores a task) is decoded."""
    body = base64.b64encode(json.dumps([[], {"clear": "UN-JETON-EN-CLAIR"}, {}]).encode()).decode()
    envelope = json.dumps({"body": body, "properties": {"body_encoding": "base64"}, "headers": {}})
    assert "UN-JETON-EN-CLAIR" not in envelope
    assert any("UN-JETON-EN-CLAIR" in text for text in _decoded(envelope))
    assert any("UN-JETON-EN-CLAIR" in text for text in _decoded(json.dumps([envelope, "x", "y"])))
