"""The rules of `Idempotency-Key` (`shared.idempotency`): which keys, when two requests are the
same, which answers are kept and how, what a retry gets, and the unit of work's commit marker."""

from __future__ import annotations

import hashlib

import pytest
import redis
from cryptography.fernet import InvalidToken
from flask import Response

from shared import idempotency
from shared.errors import Invalid
from shared.idempotency import (
    HEADER,
    AlreadyCommitted,
    Answer,
    IdempotencyKeyPlugin,
    RequestInProgress,
    check_key,
    fingerprint,
    is_final,
    record_name,
    settled,
    stage_commit_marker,
)

UUID = "8e03978e-40d5-43e8-bc93-6894a57f9324"


@pytest.mark.parametrize("key", [UUID, "a", "x" * 255, '"quoted-sf-string"', "!~{}[]"])
def test_a_key_is_1_to_255_visible_ascii_characters(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "deux mots", "clé", "tab\there", "nul\x00", "del\x7f"])
def test_any_other_key_is_refused_in_french_on_the_header(key):
    with pytest.raises(Invalid) as refused:
        check_key(key)
    assert refused.value.status == 422
    assert refused.value.errors == {HEADER: [idempotency.INVALID_KEY]}
    assert "caractères ASCII visibles" in refused.value.message


def test_a_record_is_named_by_its_service_and_the_keys_hash_never_the_key_itself():
    name = record_name("identify", UUID)
    assert name == f"identify:idempotency:{hashlib.sha256(UUID.encode()).hexdigest()}"
    assert UUID not in name
    assert record_name("structure", UUID) != name


REQUEST = ("POST", "/identify/api/registrations", b"", ("", ""), b'{"login_email": "a@example.fr"}')


def test_the_same_request_has_the_same_fingerprint():
    assert fingerprint(*REQUEST) == fingerprint(*REQUEST)
    assert len(fingerprint(*REQUEST)) == 64


@pytest.mark.parametrize(
    "other",
    [
        ("PUT", *REQUEST[1:]),
        (REQUEST[0], "/identify/api/other", *REQUEST[2:]),
        (*REQUEST[:2], b"everywhere=1", *REQUEST[3:]),
        (*REQUEST[:3], ("Bearer x", ""), REQUEST[4]),
        (*REQUEST[:3], ("", "portail_session=abc"), REQUEST[4]),
        (*REQUEST[:4], b'{"login_email": "b@example.fr"}'),
        (*REQUEST[:4], b""),
    ],
)
def test_method_path_query_credentials_and_body_each_make_another_request(other):
    assert fingerprint(*other) != fingerprint(*REQUEST)


def test_parts_do_not_run_into_each_other():
    assert fingerprint("POST", "/a", b"b", ("",), b"") != fingerprint("POST", "/ab", b"", ("",), b"")
    assert fingerprint("POST", "/a", b"", ("x",), b"y") != fingerprint("POST", "/a", b"", ("xy",), b"")


@pytest.mark.parametrize("status", [200, 201, 202, 204, 400, 401, 403, 404, 409, 410, 413, 422])
def test_an_answer_below_500_is_final(status):
    assert is_final(status)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_a_5xx_or_a_429_lets_a_retry_run_again(status):
    assert not is_final(status)


def _signed_in_answer() -> Response:
    response = Response(b'{"account_id": "acc-1"}', status=200, content_type="application/json")
    response.headers.add("Set-Cookie", "portail_session=secret-session-id; HttpOnly; Path=/")
    response.headers.add("Set-Cookie", "other=1; Path=/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Request-Id"] = "not kept"
    response.headers["Location"] = "/activate/api/me"
    return response


def test_an_answer_keeps_its_status_body_and_the_headers_that_matter():
    answer = Answer.of(_signed_in_answer())
    assert answer.status == 200
    assert answer.body == b'{"account_id": "acc-1"}'
    assert answer.headers == (
        ("Content-Type", "application/json"),
        ("Set-Cookie", "portail_session=secret-session-id; HttpOnly; Path=/"),
        ("Set-Cookie", "other=1; Path=/"),
        ("Cache-Control", "no-store"),
        ("Location", "/activate/api/me"),
    )


def test_a_kept_answer_is_sealed_with_the_key_and_opens_only_with_it():
    answer = Answer.of(_signed_in_answer())
    sealed = answer.sealed(UUID)
    assert "secret-session-id" not in sealed and "acc-1" not in sealed
    assert Answer.opened(sealed, UUID) == answer
    with pytest.raises(InvalidToken):
        Answer.opened(sealed, "another-key")


def test_a_replay_is_the_same_answer_marked_as_replayed():
    replayed = Answer.opened(Answer.of(_signed_in_answer()).sealed(UUID), UUID).replayed()
    assert replayed.status_code == 200
    assert replayed.get_data() == b'{"account_id": "acc-1"}'
    assert replayed.headers["Content-Type"] == "application/json"
    assert replayed.headers.getlist("Set-Cookie") == [
        "portail_session=secret-session-id; HttpOnly; Path=/",
        "other=1; Path=/",
    ]
    assert replayed.headers[idempotency.REPLAYED_HEADER] == "true"
    assert "X-Request-Id" not in replayed.headers


def test_a_replayed_answer_without_a_content_type_gets_none():
    replayed = Answer(204, (), b"").replayed()
    assert replayed.status_code == 204 and replayed.get_data() == b""
    assert "Content-Type" not in replayed.headers


def test_an_answered_record_gives_its_sealed_answer():
    record = {"fingerprint": "f", "state": "answered", "status": "201", "answer": "sealed"}
    assert settled(record, "f") == "sealed"


def test_a_committed_record_whose_answer_was_lost_gives_none():
    assert settled({"fingerprint": "f", "state": "committed"}, "f") is None


def test_the_key_of_another_request_is_a_422_on_the_header():
    for state in ("in_progress", "committed", "answered"):
        with pytest.raises(Invalid) as refused:
            settled({"fingerprint": "f", "state": state, "answer": "sealed"}, "g")
        assert refused.value.message == "Cette clé d'idempotence a déjà servi pour une autre requête."
        assert refused.value.errors == {HEADER: [refused.value.message]}


def test_a_request_still_in_progress_is_a_409_to_retry_in_a_second():
    with pytest.raises(RequestInProgress) as busy:
        settled({"fingerprint": "f", "state": "in_progress"}, "f")
    assert busy.value.status == 409 and busy.value.headers == {"Retry-After": "1"}
    assert "en cours" in busy.value.message


def test_the_409_of_a_lost_answer_says_what_to_do():
    assert AlreadyCommitted().status == 409
    assert "consultez l'état de votre inscription" in AlreadyCommitted().message


# --- the unit of work's commit marker: recorded in a pipeline, nothing sent ----------------------------


@pytest.fixture
def pipe():
    client = redis.Redis(host="unused.invalid", decode_responses=True)  # never connects: nothing is sent
    with client.pipeline() as pipeline:
        pipeline.multi()
        yield pipeline


def _commands(pipeline) -> list[tuple]:
    return [command for command, _ in pipeline.command_stack]


def test_a_commit_of_a_request_holding_a_key_marks_its_record_committed(pipe):
    pipe.hset("identify:registration:r1", "status", "started")
    token = idempotency.current_claim.set("identify:idempotency:abc")
    try:
        stage_commit_marker(pipe)
    finally:
        idempotency.current_claim.reset(token)
    assert _commands(pipe)[1:] == [
        ("HSET", "identify:idempotency:abc", "state", "committed"),
        ("EXPIRE", "identify:idempotency:abc", 24 * 3600),
    ]


def test_no_marker_without_a_key_or_without_a_write(pipe):
    stage_commit_marker(pipe)
    assert _commands(pipe) == []
    token = idempotency.current_claim.set("identify:idempotency:abc")
    try:
        stage_commit_marker(pipe)  # a transaction that only watched: no effect to mark
    finally:
        idempotency.current_claim.reset(token)
    assert _commands(pipe) == []


# --- the OpenAPI documents ---------------------------------------------------------------------------------


def test_the_header_is_documented_on_the_posts_of_the_json_api_only():
    plugin = IdempotencyKeyPlugin("activate")
    post = {"post": {"parameters": [{"in": "query", "name": "everywhere"}]}, "get": {}}
    plugin.operation_helper(path="/activate/api/sign-out", operations=post)
    assert [p["name"] for p in post["post"]["parameters"]] == ["everywhere", HEADER]
    assert post["get"] == {}
    plugin.operation_helper(path="/activate/api/sign-out", operations=post)  # once only
    assert len(post["post"]["parameters"]) == 2
    page = {"post": {}}
    plugin.operation_helper(path="/activate/sign-in", operations=page)
    assert page == {"post": {}}
