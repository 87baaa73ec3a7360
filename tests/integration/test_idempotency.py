"""`Idempotency-Key` on the real service apps against a real Redis: a retry gets the first answer
again with no second effect, also when the first attempt committed and then failed (its answer
lost, or replicas not confirming), and is refused for another request or while the first runs."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate.app import create_app as activate_app
from services.identify import handlers
from services.identify.app import create_app as identify_app
from services.identify.bootstrap import SERVICE, bootstrap
from services.notify.app import create_app as notify_app
from services.structure.app import create_app as structure_app
from shared.bootstrap import service_app
from shared.errors import TooManyAttempts
from shared.idempotency import HEADER, record_name
from shared.testing import events_on
from tests.integration.activate_support import confirm, consumer_of, links

KEY = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b"
STEP_ONE = {"login_email": "fleurf@example.fr", "identifier": "818 802 449 00038"}
ALREADY_DONE = (
    "Cette requête a déjà été traitée, mais sa réponse n'a pas pu être conservée : "
    "consultez l'état de votre inscription."
)


@pytest.fixture
def identify(settings, redis_client):
    return identify_app(settings, client=redis_client).test_client()


def start(client, key: str | None = KEY, **body):
    headers = {HEADER: key} if key is not None else {}
    return client.post("/identify/api/registrations", json={**STEP_ONE, **body}, headers=headers)


def started(redis_client) -> int:
    return len(events_on(redis_client, "RegistrationStarted"))


def records(redis_client) -> list[str]:
    return sorted(redis_client.keys("*:idempotency:*"))


def test_step_one_twice_with_the_same_key_gets_the_first_answer_and_starts_one_registration(
    identify, redis_client
):
    first = start(identify)
    again = start(identify)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert started(redis_client) == 1
    assert len(redis_client.keys("identify:registration:*")) == 1


def test_the_record_is_kept_24_hours_and_holds_no_answer_in_clear(identify, redis_client):
    registration_id = start(identify).get_json()["registration_id"]
    (name,) = records(redis_client)
    assert name == record_name("identify", KEY)
    assert 24 * 3600 - 5 < redis_client.ttl(name) <= 24 * 3600
    record = redis_client.hgetall(name)
    assert record["state"] == "answered" and record["status"] == "201"
    assert registration_id not in str(record) and KEY not in str(record)


def test_the_same_key_with_another_body_is_a_422_and_runs_nothing(identify, redis_client):
    assert start(identify).status_code == 201
    other = start(identify, login_email="autre@example.fr")
    assert other.status_code == 422
    assert other.get_json()["message"] == "Cette clé d'idempotence a déjà servi pour une autre requête."
    assert other.get_json()["errors"] == {HEADER: [other.get_json()["message"]]}
    assert started(redis_client) == 1


@pytest.mark.parametrize("key", ["", "deux mots", "x" * 256])
def test_a_malformed_key_is_a_422_on_the_header_and_nothing_is_written(identify, redis_client, key):
    answer = start(identify, key=key)
    assert answer.status_code == 422
    assert list(answer.get_json()["errors"]) == [HEADER]
    assert [k for k in redis_client.keys("*") if not k.startswith("limits:")] == []


def test_a_refused_body_is_kept_and_replayed(identify, redis_client):
    first = start(identify, login_email="pas-une-adresse")
    again = start(identify, login_email="pas-une-adresse")
    assert first.status_code == again.status_code == 422
    assert "login_email" in first.get_json()["errors"]
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert redis_client.hget(record_name("identify", KEY), "status") == "422"


def test_without_the_header_every_post_runs_as_before(identify, redis_client):
    assert start(identify, key=None).status_code == 201
    assert start(identify, key=None).status_code == 201
    assert started(redis_client) == 2
    assert records(redis_client) == []


def test_one_key_on_two_services_is_two_records(settings, redis_client, identify):
    activate = activate_app(settings, client=redis_client).test_client()
    assert start(identify).status_code == 201
    reset = activate.post(
        "/activate/api/password-resets", json={"login_email": "fleurf@example.fr"}, headers={HEADER: KEY}
    )
    assert reset.status_code == 202 and "Idempotent-Replayed" not in reset.headers
    assert records(redis_client) == sorted([record_name("activate", KEY), record_name("identify", KEY)])


def test_activate_step_three_with_a_key_issues_one_link(settings, redis_client):
    activate = activate_app(settings, client=redis_client).test_client()
    confirm(redis_client, consumer_of(settings, redis_client), "r1")
    path = "/activate/api/registrations/r1/workspaces"
    first = activate.post(path, json={}, headers={HEADER: KEY})
    again = activate.post(path, json={}, headers={HEADER: KEY})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(links(redis_client, "r1")) == 1


def test_sign_out_replays_its_cleared_cookie_and_its_query_is_part_of_the_request(settings, redis_client):
    activate = activate_app(settings, client=redis_client).test_client(use_cookies=False)
    headers = {HEADER: KEY, "Cookie": "portail_session=ended-already"}
    first = activate.post("/activate/api/sign-out", headers=headers)
    again = activate.post("/activate/api/sign-out", headers=headers)
    assert first.status_code == again.status_code == 204
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers.getlist("Set-Cookie") == first.headers.getlist("Set-Cookie") != []
    assert again.headers["Cache-Control"] == "no-store"
    assert activate.post("/activate/api/sign-out?everywhere=1", headers=headers).status_code == 422
    other_caller = {HEADER: KEY, "Cookie": "portail_session=someone-else"}
    assert activate.post("/activate/api/sign-out", headers=other_caller).status_code == 422


# --- a first attempt that committed, then failed ---------------------------------------------------------


def probe_app(settings, redis_client, view):
    """identify's app with one more JSON route, `POST /identify/api/probe`, running `view(wiring)`."""
    wiring = bootstrap(settings, client=redis_client)
    blp = Blueprint("probe", __name__, url_prefix="/identify/api")

    @blp.route("/probe")
    class Probe(MethodView):
        @blp.response(201)
        def post(self):
            return view(wiring)

    return service_app(SERVICE, "identify + probe", wiring, api=[blp])


def start_registration(wiring) -> dict:
    command = handlers.StartRegistration(STEP_ONE["login_email"], STEP_ONE["identifier"])
    registration = handlers.start_registration(
        command, wiring.uow(), wiring.settings.registration_ttl_seconds
    )
    return {"registration_id": registration.registration_id}


def test_a_request_that_committed_then_failed_has_no_second_effect(settings, redis_client):
    def commit_then_fail(wiring):
        start_registration(wiring)
        raise RuntimeError("the answer is lost after the commit")

    probe = probe_app(settings, redis_client, commit_then_fail).test_client()
    assert probe.post("/identify/api/probe", headers={HEADER: KEY}).status_code == 500
    retry = probe.post("/identify/api/probe", headers={HEADER: KEY})
    assert retry.status_code == 409
    assert retry.get_json()["message"] == ALREADY_DONE
    assert started(redis_client) == 1
    assert redis_client.hget(record_name("identify", KEY), "state") == "committed"
    assert redis_client.ttl(record_name("identify", KEY)) > 23 * 3600


def test_a_429_after_a_commit_is_the_first_answer_every_retry_gets(settings, redis_client):
    """A sign-in failure counted (committed), then the lock's 429: the retry gets the same 429 and
    its Retry-After, not a second failure counted."""

    def commit_then_lock(wiring):
        start_registration(wiring)
        raise TooManyAttempts(30)

    probe = probe_app(settings, redis_client, commit_then_lock).test_client()
    first = probe.post("/identify/api/probe", headers={HEADER: KEY})
    retry = probe.post("/identify/api/probe", headers={HEADER: KEY})
    assert (first.status_code, retry.status_code) == (429, 429)
    assert retry.headers["Retry-After"] == "30" and retry.headers["Idempotent-Replayed"] == "true"
    assert started(redis_client) == 1


def test_an_exception_no_handler_answers_still_leaves_the_committed_marker(settings, redis_client):
    def commit_then_fail(wiring):
        start_registration(wiring)
        raise RuntimeError("propagated")

    app = probe_app(settings, redis_client, commit_then_fail)
    app.testing = True  # the exception reaches the caller: no after-request hook, the teardown only
    with pytest.raises(RuntimeError):
        app.test_client().post("/identify/api/probe", headers={HEADER: KEY})
    assert redis_client.hget(record_name("identify", KEY), "state") == "committed"


def test_a_request_that_failed_before_committing_gives_its_key_back(settings, redis_client):
    attempts = []

    def fail_once(wiring):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("before any commit")
        return start_registration(wiring)

    probe = probe_app(settings, redis_client, fail_once).test_client()
    assert probe.post("/identify/api/probe", headers={HEADER: KEY}).status_code == 500
    assert records(redis_client) == []
    retried = probe.post("/identify/api/probe", headers={HEADER: KEY})
    assert retried.status_code == 201
    assert probe.post("/identify/api/probe", headers={HEADER: KEY}).get_json() == retried.get_json()
    assert len(attempts) == 2 and started(redis_client) == 1


def test_a_step_one_not_confirmed_by_replicas_is_not_started_twice_by_its_retry(settings, redis_client):
    """The fault seen: step 1 committed on the primary, the replicas did not confirm in time (503);
    the client's retry must not start a second registration."""
    no_replica = replace(settings, redis_min_replicas=1, redis_replica_timeout_ms=10)
    lonely = identify_app(no_replica, client=redis_client).test_client()
    first = start(lonely)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    retry = start(lonely)
    assert retry.status_code == 503  # still no replica: nothing is told that might not survive
    replicas_back = identify_app(settings, client=redis_client).test_client()
    retry = start(replicas_back)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert started(redis_client) == 1


def test_a_kept_answer_leaves_only_once_replicas_hold_it(settings, redis_client):
    no_replica = replace(settings, redis_min_replicas=1, redis_replica_timeout_ms=10)
    lonely = identify_app(no_replica, client=redis_client).test_client()
    first = start(lonely, login_email="pas-une-adresse")  # a 422: no commit, the answer is kept
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert redis_client.hget(record_name("identify", KEY), "status") == "422"
    replicas_back = identify_app(settings, client=redis_client).test_client()
    again = start(replicas_back, login_email="pas-une-adresse")
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"


def test_a_retry_while_the_first_attempt_runs_is_a_409_to_retry_soon(settings, redis_client):
    entered, release = threading.Event(), threading.Event()

    def slow(wiring):
        entered.set()
        assert release.wait(10)
        return start_registration(wiring)

    app = probe_app(settings, redis_client, slow)
    answers = []
    first = threading.Thread(
        target=lambda: answers.append(app.test_client().post("/identify/api/probe", headers={HEADER: KEY}))
    )
    first.start()
    try:
        assert entered.wait(10)
        busy = app.test_client().post("/identify/api/probe", headers={HEADER: KEY})
    finally:
        release.set()
        first.join(10)
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert "en cours" in busy.get_json()["message"]
    (done,) = answers
    assert done.status_code == 201
    replayed = app.test_client().post("/identify/api/probe", headers={HEADER: KEY})
    assert replayed.get_json() == done.get_json() and started(redis_client) == 1


# --- the OpenAPI documents --------------------------------------------------------------------------------


def test_every_post_of_every_json_api_documents_the_header(settings, redis_client):
    apps = {
        "identify": identify_app,
        "structure": structure_app,
        "activate": activate_app,
        "notify": notify_app,
    }
    posts = 0
    for service, make in apps.items():
        document = make(settings, client=redis_client).test_client().get(f"/{service}/openapi.json").json
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if method == "parameters":  # the path's own, not an operation
                    continue
                names = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
                assert (("header", HEADER) in names) == (method == "post"), (service, method, path)
                posts += method == "post"
    assert posts >= 20
