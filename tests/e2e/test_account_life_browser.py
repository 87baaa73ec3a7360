"""Life after activation on the whole system as `make run` starts it: signing in with the code
received by email, the authenticator app and its recovery codes, « Mot de passe oublié », « Mon
compte » and « se déconnecter partout » in a real Chromium (axe-checked, screenshots under
test-artifacts/); then the attacks a client of the JSON API and of the forms can try.

The system is this module's own: the per-address limits of sign-in and password reset are raised
far above what these tests send from 127.0.0.1 (each login email keeps its own throttle, which
the tests exercise). Codes and links are read from the emails the SMTP server receives."""

from __future__ import annotations

import re
import statistics
import time

import pyotp
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.e2e.account_life import (
    CONTACT_LINK,
    HTTP_TIMEOUT,
    PASSWORD,
    SESSION_COOKIE,
    Form,
    Member,
    active_account,
    api_sign_in,
    mail_mark,
    post_code,
    post_forms,
    post_password,
    register,
    reset_link,
    sign_in_code,
    unique_email,
    wait_for_mail,
)
from tests.e2e.conftest import start_system
from tests.e2e.test_browser import fill_activation, look, open_page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NEW_PASSWORD = "Ruisseau-Calme-2027"
WRONG_PASSWORD = "Pas-Le-Bon-2026"
CSRF_REFUSED = "Formulaire expiré"
TRIES = 8  # sign-in refusals timed, of each kind


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with start_system(
        tmp_path_factory.mktemp("var-account-life"),
        RATE_LIMIT_SIGN_IN_PER_IP="1000 per minute",
        RATE_LIMIT_PASSWORD_RESET_PER_IP="1000 per minute",
    ) as running:
        yield running


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def fill_sign_in(page: Page, login_email: str, password: str) -> None:
    """« Se connecter » filled and sent: the page asks for the second factor."""
    page.get_by_label(re.compile("^Adresse électronique de connexion")).fill(login_email)
    page.get_by_label(re.compile("^Mot de passe")).fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(heading(page)).to_have_text("Code de vérification")


def enter_password(page: Page, system, member: Member) -> None:
    page.goto(system.url("/activate/sign-in"))
    fill_sign_in(page, member.login_email, member.password)


def enter_code(page: Page, code: str) -> None:
    page.get_by_label(re.compile("^Code de vérification")).fill(code)
    page.get_by_role("button", name="Valider").click()


def sign_in(page: Page, system, member: Member) -> None:
    """The password, then the code received by email: « Mon compte »."""
    since = mail_mark(system)
    enter_password(page, system, member)
    enter_code(page, sign_in_code(system, member.login_email, since))
    expect(heading(page)).to_have_text("Mon compte")


def session_cookie(page: Page) -> str:
    (value,) = [c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    return value


def switch(page: Page, workspace: str, position: str):
    """A workspace's OUI or NON radio on « Mon compte »."""
    return page.get_by_role("group", name=re.compile(f"« {workspace} »")).get_by_label(position, exact=True)


def choose(page: Page, workspace: str, position: str) -> None:
    """As a person does: a click on the switch's visible label."""
    page.get_by_role("group", name=re.compile(f"« {workspace} »")).get_by_text(position, exact=True).click()


def me(system, cookie: str) -> requests.Response:
    return requests.get(
        system.url("/activate/api/me"), cookies={SESSION_COOKIE: cookie}, timeout=HTTP_TIMEOUT
    )


# --- in the browser -----------------------------------------------------------------------------------


def test_from_the_activation_page_the_emailed_code_opens_my_account(chromium, system):
    pending = register(system, "connexion")
    page = open_page(chromium)
    page.goto(system.url(f"/activate/activations/{pending.activation_token}"))
    fill_activation(page, PASSWORD)
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Votre compte est désormais actif")).to_be_visible()

    page.get_by_role("link", name="Se connecter").click()
    expect(page).to_have_url(system.url("/activate/sign-in"))
    expect(heading(page)).to_have_text("Se connecter")
    look(page, "desktop-connexion-1-se-connecter")

    since = mail_mark(system)
    fill_sign_in(page, pending.login_email, PASSWORD)
    expect(page).to_have_url(re.compile(r"/activate/sign-in/[^/?]+$"))
    challenge_id = page.url.rsplit("/", 1)[1]
    look(page, "desktop-connexion-2-code")

    code = sign_in_code(system, pending.login_email, since)
    enter_code(page, code)
    expect(page).to_have_url(system.url("/activate/me"))
    expect(heading(page)).to_have_text("Mon compte")
    expect(page.get_by_text(pending.login_email).first).to_be_visible()
    look(page, "desktop-connexion-3-mon-compte")

    # The code replayed once it has served: the challenge is used.
    assert post_code(system, challenge_id, code).status_code == 410

    # The browser's cookie, taken by someone else: it works until the browser signs out, never after.
    cookie = session_cookie(page)
    assert me(system, cookie).json()["login_email"] == pending.login_email
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté.")
    assert me(system, cookie).status_code == 401
    page.context.close()

    # Through the JSON API alike: the code replayed, the cookie after POST /activate/api/sign-out.
    signed = api_sign_in(system, pending.login_email, PASSWORD)
    assert post_code(system, signed.challenge_id, signed.code).status_code == 410
    cookie = signed.http.cookies[SESSION_COOKIE]
    assert me(system, cookie).status_code == 200
    assert signed.http.post(system.url("/activate/api/sign-out"), timeout=HTTP_TIMEOUT).status_code == 204
    assert me(system, cookie).status_code == 401


def test_the_authenticator_app_and_its_recovery_codes(chromium, system):
    member = active_account(system, "totp")
    page = open_page(chromium)
    sign_in(page, system, member)

    page.get_by_role("link", name=re.compile("^Sécurité du compte")).click()
    expect(heading(page)).to_have_text("Sécurité du compte")
    look(page, "desktop-securite-1-sans-application")
    page.get_by_role("button", name="Associer une application d'authentification").click()
    secret = re.sub(r"\s", "", page.locator("#cle").inner_text())
    look(page, "desktop-securite-2-association")
    totp = pyotp.TOTP(secret)
    enrolled_at = time.time()
    enrolment_code = totp.at(enrolled_at)
    page.get_by_label(re.compile("^Code affiché par l'application")).fill(enrolment_code)
    page.get_by_role("button", name="Confirmer l'association").click()
    expect(heading(page)).to_have_text("Vos codes de secours")
    recovery = page.locator("ol.recovery-codes code").all_inner_texts()
    assert len(recovery) == len(set(recovery)) == 10
    look(page, "desktop-securite-3-codes-de-secours")
    page.get_by_role("link", name=re.compile("^J'ai noté mes codes")).click()
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté.")

    # Without the app at hand: a recovery code, once.
    enter_password(page, system, member)
    expect(page.get_by_text(re.compile("affiché par votre application d'authentification"))).to_be_visible()
    enter_code(page, recovery[0])
    expect(heading(page)).to_have_text("Mon compte")
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    enter_password(page, system, member)
    enter_code(page, recovery[0])
    expect(page.get_by_role("alert")).to_contain_text("Code refusé")

    # With the app: its code. The enrolment's has served, refused; the next 30-second step's is accepted.
    enter_code(page, enrolment_code)
    expect(page.get_by_role("alert")).to_contain_text("Code refusé")
    # A step's code serves once: the app shows the next one when its 30 seconds begin.
    time.sleep(max(0.0, (totp.timecode(enrolled_at) + 1) * totp.interval - time.time()))
    enter_code(page, totp.now())
    expect(heading(page)).to_have_text("Mon compte")
    page.goto(system.url("/activate/me/second-factor"))
    expect(page.get_by_text(re.compile("Codes de secours encore utilisables"))).to_contain_text("9 sur 10")
    page.context.close()


def test_a_forgotten_password_is_replaced_after_the_secret_question(chromium, system):
    member = active_account(system, "oubli")
    elsewhere = api_sign_in(system, member.login_email, member.password)  # a session left open
    assert me(system, elsewhere.http.cookies[SESSION_COOKIE]).status_code == 200
    page = open_page(chromium)
    page.goto(system.url("/activate/sign-in"))
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    expect(heading(page)).to_have_text("Mot de passe oublié")
    look(page, "desktop-oubli-1-demande")
    since = mail_mark(system)
    page.get_by_label(re.compile("^Adresse électronique de connexion")).fill(member.login_email)
    page.get_by_role("button", name="Recevoir un lien par courriel").click()
    expect(heading(page)).to_have_text("Demande enregistrée")

    link = reset_link(system, member.login_email, since)
    assert link.startswith(system.base_url + "/activate/password-resets/")
    page.goto(link)
    expect(heading(page)).to_have_text("Choisir un nouveau mot de passe")
    look(page, "desktop-oubli-2-nouveau-mot-de-passe")

    def reset(answer: str) -> None:
        page.get_by_label(re.compile(re.escape(member.secret_question))).fill(answer)
        page.get_by_label(re.compile("^Nouveau mot de passe")).fill(NEW_PASSWORD)
        page.get_by_label(re.compile("^Confirmation du nouveau mot de passe")).fill(NEW_PASSWORD)
        page.get_by_role("button", name="Modifier mon mot de passe").click()

    reset("Rex")
    expect(page.get_by_role("alert")).to_contain_text("Le formulaire contient")
    reset(member.secret_answer)
    expect(heading(page)).to_have_text("Mot de passe modifié")
    look(page, "desktop-oubli-3-modifie")

    assert post_password(system, member.login_email, member.password).status_code == 401
    assert post_password(system, member.login_email, NEW_PASSWORD).status_code == 200
    assert me(system, elsewhere.http.cookies[SESSION_COOKIE]).status_code == 401  # every session ended

    # The link has served: the API and the page say it is gone.
    token = link.rsplit("/", 1)[1]
    api = system.url(f"/activate/api/password-resets/{token}")
    assert requests.get(api, timeout=HTTP_TIMEOUT).status_code == 410
    again = {"secret_answer": member.secret_answer, "password": PASSWORD, "password_confirmation": PASSWORD}
    assert requests.post(api, json=again, timeout=HTTP_TIMEOUT).status_code == 410
    assert page.goto(link).status == 410
    # The reused link's POST changed nothing: the password it sent does not sign in.
    assert post_password(system, member.login_email, PASSWORD).status_code == 401
    page.context.close()


def test_workspaces_are_saved_and_signing_out_everywhere_ends_the_other_session(chromium, system):
    member = active_account(system, "espaces")
    here, there = open_page(chromium), open_page(chromium)
    sign_in(here, system, member)
    sign_in(there, system, member)
    before = set(me(system, session_cookie(here)).json()["workspaces"])
    assert "FACTURES_EMISES" in before and "ENGAGEMENTS" not in before

    choose(here, "Engagements", "OUI")
    choose(here, "Factures émises", "NON")
    here.get_by_role("button", name="Enregistrer mes espaces").click()
    expect(here.get_by_role("status")).to_have_text("Vos espaces de travail ont été mis à jour.")
    expected = (before - {"FACTURES_EMISES"}) | {"ENGAGEMENTS"}
    assert set(me(system, session_cookie(here)).json()["workspaces"]) == expected
    there.goto(system.url("/activate/me"))
    expect(switch(there, "Engagements", "OUI")).to_be_checked()
    expect(switch(there, "Factures émises", "NON")).to_be_checked()
    changed = [f["event"] for _, f in system.redis.xrange("events:WorkspacesChanged")]
    assert any(f'"subject":"{member.registration_id}"' in event for event in changed)

    here_cookie, there_cookie = session_cookie(here), session_cookie(there)
    here.get_by_role("button", name="Se déconnecter partout").click()
    expect(here.get_by_text(re.compile("Vous êtes déconnecté")).first).to_be_visible()
    assert me(system, here_cookie).status_code == 401
    there.reload()
    expect(there).to_have_url(re.compile(r"/activate/sign-in\?next="))
    expect(heading(there)).to_have_text("Se connecter")
    assert me(system, there_cookie).status_code == 401
    here.context.close()
    there.context.close()


# --- attacks through HTTP -------------------------------------------------------------------------------


def test_an_unknown_email_a_wrong_password_and_an_account_not_yet_active_look_alike(system):
    """Same status, body and headers, and about the same time: the answer does not tell whether an
    active account uses the email. Each login email locks at its 5th failure in a row: the active
    account's wrong passwords come 4 at a time, a sign-in in between; the accounts not yet active
    are 2, tried 4 times each; every unknown email is new. The three kinds take turns, so that a
    busy moment of the machine slows them alike."""
    member = active_account(system, "enum")
    waiting = [register(system, "attente"), register(system, "attente")]
    http = requests.Session()
    for _ in range(2):  # the connection and each web worker's first refusal
        post_password(system, unique_email("chauffe"), PASSWORD, http)

    answers: dict[str, list[requests.Response]] = {"inconnue": [], "mauvais": [], "inactif": []}
    seconds: dict[str, list[float]] = {kind: [] for kind in answers}
    for attempt in range(TRIES):
        if attempt == TRIES // 2:
            api_sign_in(system, member.login_email, member.password)  # forgets the failures so far
        for kind, email, password in (
            ("inconnue", unique_email("inconnu"), PASSWORD),
            ("mauvais", member.login_email, WRONG_PASSWORD),
            ("inactif", waiting[attempt * len(waiting) // TRIES].login_email, PASSWORD),
        ):
            started = time.perf_counter()
            answer = post_password(system, email, password, http)
            seconds[kind].append(time.perf_counter() - started)
            answers[kind].append(answer)

    first = answers["inconnue"][0]
    assert first.status_code == 401 and first.json()["message"], first.text
    for kind, kind_answers in answers.items():
        for answer in kind_answers:
            assert (answer.status_code, answer.content) == (first.status_code, first.content), (
                kind,
                answer.text,
            )
            assert set(answer.headers) - {"Date"} == set(first.headers) - {"Date"}, (kind, answer.headers)
            assert "Retry-After" not in answer.headers and not answer.cookies
    medians = {kind: statistics.median(durations) for kind, durations in seconds.items()}
    assert max(medians.values()) / min(medians.values()) <= 2, medians  # every ratio within [0.5, 2]

    # « Mot de passe oublié » does not tell either.
    resets = [
        http.post(
            system.url("/activate/api/password-resets"), json={"login_email": email}, timeout=HTTP_TIMEOUT
        )
        for email in (member.login_email, waiting[0].login_email, unique_email("inconnu"))
    ]
    assert len({(r.status_code, r.content, frozenset(r.headers) - {"Date"}) for r in resets}) == 1, resets
    assert resets[0].status_code == 202


def test_failures_in_a_row_lock_the_login_with_retry_after(system):
    member = active_account(system, "verrou")
    since = mail_mark(system)
    answers = [post_password(system, member.login_email, WRONG_PASSWORD) for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429], [a.text for a in answers]
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 3600
    right = post_password(system, member.login_email, member.password)
    assert right.status_code == 429 and 0 < int(right.headers["Retry-After"]) <= 3600
    assert "challenge_id" not in right.text
    # The holder is told (the lock, until when), at the login email.
    notice = wait_for_mail(system, member.login_email, re.compile(r"suspendue jusqu'au [^\n]+"), since)
    assert WRONG_PASSWORD not in notice.string and member.password not in notice.string

    # An email no account uses locks the same way: the lock does not tell either.
    stranger = unique_email("inconnu")
    strangers = [post_password(system, stranger, WRONG_PASSWORD) for _ in range(5)]
    assert [a.status_code for a in strangers] == [401, 401, 401, 401, 429]
    assert strangers[-1].json() == answers[-1].json() and "Retry-After" in strangers[-1].headers


def test_every_new_form_refuses_a_post_without_its_csrf_token(system):
    """Each form of sign-in, « Mot de passe oublié » and « Mon compte », as its page gives it, sent
    with the cookies of the browser that got it but without its CSRF token: 400, and no effect."""
    member = active_account(system, "jeton")
    web = requests.Session()  # a browser's cookies: the form cookie, then the session's
    refused: set[str] = set()
    everywhere: set[bool] = set()  # « Se déconnecter partout » is « Se déconnecter » with everywhere=1

    def forms_of(url: str) -> list[Form]:
        page = web.get(url, timeout=HTTP_TIMEOUT)
        assert page.status_code == 200, (url, page.status_code)
        return post_forms(page.url, page.text)

    def form_of(url: str, action: str) -> dict[str, str]:
        (fields,) = [form.fields for form in forms_of(url) if form.action == action]
        return fields

    def post_without_token(action: str, fields: dict[str, str]) -> None:
        assert fields.get("csrf_token"), f"{action}: the page's form has no token"
        refuse(action, {name: value for name, value in fields.items() if name != "csrf_token"})

    def refuse(action: str, sent: dict[str, str]) -> None:
        answer = web.post(action, data=sent, timeout=HTTP_TIMEOUT, allow_redirects=False)
        assert answer.status_code == 400 and CSRF_REFUSED in answer.text, (action, answer.status_code)
        refused.add(action.removeprefix(system.base_url))
        everywhere.add(sent.get("everywhere") == "1")

    def post_every_form_without_token(url: str, typed: dict[str, str]) -> None:
        for form in forms_of(url):
            post_without_token(form.action, {**form.fields, **typed})

    def post(action: str, fields: dict[str, str]) -> requests.Response:
        return web.post(action, data=fields, timeout=HTTP_TIMEOUT)

    # « Se connecter », then « Code de vérification ».
    sign_in_page = system.url("/activate/sign-in")
    typed = {"login_email": member.login_email, "password": member.password}
    post_every_form_without_token(sign_in_page, typed)
    since = mail_mark(system)
    code_page = post(sign_in_page, {**form_of(sign_in_page, sign_in_page), **typed})
    assert re.search(r"/activate/sign-in/[^/?]+$", code_page.url), code_page.url
    code = sign_in_code(system, member.login_email, since)
    post_every_form_without_token(code_page.url, {"code": code})
    assert post(code_page.url, {**form_of(code_page.url, code_page.url), "code": code}).url == system.url(
        "/activate/me"
    )

    # « Mot de passe oublié »: the request, then the emailed link (still usable afterwards).
    request_page = system.url("/activate/password-resets/new")
    post_every_form_without_token(request_page, {"login_email": member.login_email})
    since = mail_mark(system)
    post(request_page, {**form_of(request_page, request_page), "login_email": member.login_email})
    link = reset_link(system, member.login_email, since)
    new = {
        "secret_answer": member.secret_answer,
        "password": NEW_PASSWORD,
        "password_confirmation": NEW_PASSWORD,
    }
    post_every_form_without_token(link, new)
    token = link.rsplit("/", 1)[1]
    unused = requests.get(system.url(f"/activate/api/password-resets/{token}"), timeout=HTTP_TIMEOUT)
    assert unused.status_code == 200, unused.text

    # « Mon compte », its deactivation step, « Sécurité du compte » in each of its three states.
    current = {"current_password": member.password}
    for path in ("/activate/me", "/activate/me/deactivation", "/activate/me/second-factor"):
        post_every_form_without_token(system.url(path), current)
    # A gestionnaire principal's deactivation step has no form (they stay): its path is posted to.
    refuse(system.url("/activate/me/deactivation"), current)
    security = system.url("/activate/me/second-factor")
    post(security, form_of(security, security))  # an enrolment starts: the key and the code's form
    post_every_form_without_token(security, {"code": "000000"})
    secret = re.sub(r"\s", "", re.search(r'<code id="cle">([^<]+)</code>', web.get(security).text).group(1))
    confirm = system.url("/activate/me/second-factor/confirm")
    enrolled = post(confirm, {**form_of(security, confirm), "code": pyotp.TOTP(secret).now()})
    assert "recovery-codes" in enrolled.text, enrolled.status_code
    post_every_form_without_token(security, current)

    # The page of the link that confirms a new contact email.
    contact = system.url("/activate/me/contact-email")
    new_contact = unique_email("contact")
    since = mail_mark(system)
    post(contact, {**form_of(system.url("/activate/me"), contact), "contact_email": new_contact})
    contact_link = wait_for_mail(system, new_contact, CONTACT_LINK, since).group(0)
    post_every_form_without_token(contact_link, {})

    assert {
        "/activate/sign-in",
        "/activate/password-resets/new",
        "/activate/password-resets/" + token,
        "/activate/me/workspaces",
        "/activate/me/password",
        "/activate/me/secret-question",
        "/activate/me/contact-email",
        "/activate/sign-out",
        "/activate/me/deactivation",
        "/activate/me/second-factor",
        "/activate/me/second-factor/confirm",
        "/activate/me/second-factor/removal",
        contact_link.removeprefix(system.base_url),
    } <= refused, sorted(refused)
    assert any(re.fullmatch(r"/activate/sign-in/[^/]+", action) for action in refused)
    assert True in everywhere, "no « Se déconnecter partout » form found"
    # Nothing refused took effect: the session lives, the contact email and the workspaces as they were.
    account = web.get(system.url("/activate/api/me"), timeout=HTTP_TIMEOUT)
    assert account.status_code == 200, account.text
    assert account.json()["contact_email"] == member.login_email
