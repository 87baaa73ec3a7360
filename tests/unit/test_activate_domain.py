"""activate's rules, without servers: workspaces, the password rule, answers, link states."""

from __future__ import annotations

import pytest

from services.activate import domain, links
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS, WORKSPACE_CODES, WORKSPACES
from services.activate.domain import Account, AccountStatus
from services.activate.links import TokenGone, TokenRecord, TokenState
from shared.errors import Conflict, Invalid, NotFound
from shared.timestamps import iso_utc


def account(**changes) -> Account:
    base = Account(
        registration_id="r1",
        account_id="a1",
        structure_id="s1",
        last_name="Curie",
        first_name="Marie",
        login_email="marie@example.fr",
        contact_email="marie@example.fr",
        survey_consent=False,
    )
    return Account(**{**base.__dict__, **changes})


# --- workspaces ----------------------------------------------------------------------------------


def test_catalogue_is_the_spec_table_in_order():
    assert WORKSPACE_CODES == (
        "SOLLICITATIONS_EMISES",
        "FACTURES_EMISES",
        "DEMANDE_REMBOURSEMENT_TIC",
        "ENGAGEMENTS",
        "FACTURES_A_VALIDER",
        "FACTURES_DE_TRAVAUX",
        "MEMOIRES_FRAIS_JUSTICE",
        "RACCORDEMENT_EDI_API",
        "SUIVI_DES_FLUX",
    )
    assert DEFAULT_WORKSPACES == ("SOLLICITATIONS_EMISES", "FACTURES_EMISES")
    by_code = {w.code: w for w in WORKSPACES}
    assert by_code["RACCORDEMENT_EDI_API"].description == (
        "Permet de demander et de suivre le raccordement de vos structures pour l'utilisation des modes "
        "EDI et API"
    )
    assert by_code["FACTURES_A_VALIDER"].label == "Factures à valider"
    assert by_code["SUIVI_DES_FLUX"].description == "Réservé aux structures raccordées émettant des flux EDI"


def test_omitted_workspaces_are_the_defaults():
    assert domain.kept_workspaces(None) == DEFAULT_WORKSPACES


def test_chosen_workspaces_are_deduplicated_and_in_catalogue_order():
    chosen = domain.kept_workspaces(["ENGAGEMENTS", "FACTURES_EMISES", "ENGAGEMENTS", "factures_emises"])
    assert chosen == ("FACTURES_EMISES", "ENGAGEMENTS")


def test_empty_choice_is_allowed():
    assert domain.kept_workspaces([]) == ()


def test_unknown_workspaces_are_named():
    with pytest.raises(Invalid) as caught:
        domain.kept_workspaces(["FACTURES_EMISES", "NOPE", "AUTRE"])
    (message,) = caught.value.errors["workspaces"]
    assert "AUTRE, NOPE" in message and "inconnu" in message


def test_workspaces_are_chosen_once():
    domain.ensure_workspaces_can_be_chosen(account())
    with pytest.raises(Conflict):
        domain.ensure_workspaces_can_be_chosen(account(status=AccountStatus.AWAITING_ACTIVATION))


def test_login_used_by_another_active_account_conflicts():
    domain.ensure_login_free(account(), None)
    domain.ensure_login_free(account(), "r1")
    with pytest.raises(Conflict):
        domain.ensure_login_free(account(), "r2")
    assert domain.login_key(" Marie@Example.FR ") == domain.login_key("marie@example.fr")


def test_resend_rules():
    with pytest.raises(NotFound):
        domain.ensure_link_can_be_resent(account())
    with pytest.raises(Conflict):
        domain.ensure_link_can_be_resent(account(status=AccountStatus.ACTIVE))
    domain.ensure_link_can_be_resent(account(status=AccountStatus.AWAITING_ACTIVATION))
    domain.ensure_link_can_be_resent(account(status=AccountStatus.EXPIRED))


def test_only_accounts_past_step_three_and_not_active_await_activation():
    assert [account(status=status).awaits_activation for status in AccountStatus] == [
        status in (AccountStatus.AWAITING_ACTIVATION, AccountStatus.EXPIRED) for status in AccountStatus
    ]
    assert not account().awaits_activation and not account(status=AccountStatus.ACTIVE).awaits_activation


def test_the_email_typed_for_a_new_link_is_compared_as_logins_are():
    assert domain.requested_login(" Marie@Example.FR ") == domain.login_key("marie@example.fr")
    assert domain.requested_login("pas une adresse") == "pas une adresse"  # looked up, found by no one
    for typed in ("", "  ", "a" * (domain.LOGIN_EMAIL_MAX_LENGTH + 1)):
        with pytest.raises(Invalid) as caught:
            domain.requested_login(typed)
        assert list(caught.value.errors) == ["login_email"]


def test_timestamps_are_iso_utc_seconds():
    assert iso_utc(1_700_000_000.9) == "2023-11-14T22:13:20+00:00"
    assert domain.token_expiry(1_700_000_000.9, 3600) == 1_700_003_600


# --- the password rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Abcdefg1",  # 8 chars: upper, lower, digit
        "abcdefg1!",  # lower, digit, special
        "ABCDEFG1!",  # upper, digit, special
        "Abcdefgh!",  # upper, lower, special
        "élève123",  # accents count as special: lower, digit, special
        "ÉCOLE2024",  # É is special (not ASCII upper): upper, special, digit
        "mot de passe 1",  # a space is special
        "A" * 60 + "b" * 60 + "12345678",  # 128 characters
        "Пароль123x",  # Cyrillic letters are special: special, digit, lower
    ],
)
def test_acceptable_passwords(password):
    assert domain.password_errors(domain.normalise_password(password)) == []


@pytest.mark.parametrize(
    "password",
    [
        "Abcdef1",  # 7 characters
        "abcdefgh",  # one group
        "abcdefgh12",  # two groups
        "ABCDEFGH12",  # two groups
        "éèàùçâêî",  # only special
        "ábcdéfgh",  # lower + special only
    ],
)
def test_weak_passwords_are_refused_with_the_rule(password):
    assert domain.password_errors(domain.normalise_password(password)) == [domain.PASSWORD_RULE]


def test_password_rule_message_is_the_one_shown():
    assert domain.PASSWORD_RULE == (
        "Le mot de passe doit contenir au moins 8 caractères et au moins 3 des 4 types : "
        "majuscules, minuscules, chiffres, caractères spéciaux."
    )


def test_password_of_129_characters_is_refused():
    errors = domain.password_errors("Ab1" + "x" * 126)
    assert errors == ["Le mot de passe doit contenir au plus 128 caractères."]


def test_password_with_control_character_is_refused():
    assert any("contrôle" in e for e in domain.password_errors("Abcdefg1\t"))


def test_password_groups_count_ascii_only_for_letters_and_digits():
    assert domain.password_groups("Aa1!") == 4
    assert domain.password_groups("é") == 1
    assert domain.password_groups("٣") == 1  # an Arabic-Indic digit is "special", not a digit


def test_password_is_nfkc_normalised():
    decomposed = "E\u0301cole123"  # É as E + combining accent
    assert domain.normalise_password(decomposed) == "École123"
    assert domain.normalise_password("Ｐａｓｓ１２３４") == "Pass1234"  # full-width forms


# --- the activation form -------------------------------------------------------------------------


QUESTION = SECRET_QUESTIONS[0]


def test_good_form_is_returned_normalised():
    form = domain.check_activation_form(
        "Ruisseau-Calme-7", "Ruisseau-Calme-7", f"  {QUESTION} ", "  Rex   le  Chien "
    )
    assert form == domain.ActivationForm("Ruisseau-Calme-7", QUESTION, "rex le chien")


def test_every_faulty_field_is_named_at_once():
    with pytest.raises(Invalid) as caught:
        domain.check_activation_form("court", "autre", "Quelle est votre couleur préférée ?", "   ")
    errors = caught.value.errors
    assert set(errors) == {"password", "password_confirmation", "secret_question", "secret_answer"}
    assert errors["password"] == [domain.PASSWORD_RULE]
    assert errors["password_confirmation"] == ["La confirmation ne correspond pas au mot de passe."]
    assert "liste" in errors["secret_question"][0]
    assert "obligatoire" in errors["secret_answer"][0]


def test_missing_fields_are_each_named():
    with pytest.raises(Invalid) as caught:
        domain.check_activation_form("", "", "", "")
    assert set(caught.value.errors) == {
        "password",
        "password_confirmation",
        "secret_question",
        "secret_answer",
    }


def test_confirmation_compares_normalised_forms():
    form = domain.check_activation_form("E\u0301cole-Ruisseau-7", "École-Ruisseau-7", QUESTION, "x")
    assert form.password == "École-Ruisseau-7"


def test_answer_of_more_than_100_characters_is_refused():
    domain.check_activation_form("Ruisseau-Calme-7", "Ruisseau-Calme-7", QUESTION, "a" * 100)
    with pytest.raises(Invalid) as caught:
        domain.check_activation_form("Ruisseau-Calme-7", "Ruisseau-Calme-7", QUESTION, "a" * 101)
    assert set(caught.value.errors) == {"secret_answer"}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ALTRAN", "altran"),
        ("  Altran\t\n Group  ", "altran group"),
        ("Straße", "strasse"),
        ("Ｒｅｘ", "rex"),
        ("E\u0301milie", "émilie"),
        ("\u00a0Émilie\u2003Dupont ", "émilie dupont"),
    ],
)
def test_answer_normalisation(raw, expected):
    assert domain.normalise_answer(raw) == expected


def test_secret_questions_are_french_questions():
    assert 5 <= len(SECRET_QUESTIONS) <= 6
    assert "Quel est le nom de votre premier animal de compagnie ?" in SECRET_QUESTIONS
    assert all(q.endswith(" ?") for q in SECRET_QUESTIONS)


# --- link states ---------------------------------------------------------------------------------


def record(**changes) -> TokenRecord:
    return TokenRecord(**{**TokenRecord("h1", "r1", 1000).__dict__, **changes})


def activated(waiting: Account) -> Account:
    return domain.activate(waiting)[0]


def test_account_statuses_and_link_states_are_distinct():
    """Both have an "expired" (the stored text), but an account's is not a link's."""
    assert AccountStatus.EXPIRED == TokenState.EXPIRED == "expired"
    assert AccountStatus.EXPIRED is not TokenState.EXPIRED
    assert type(AccountStatus.EXPIRED) is not type(TokenState.EXPIRED)


def test_issued_link_is_usable_until_its_expiry():
    assert links.ensure_token_usable(record(), 999.9) == record()
    with pytest.raises(TokenGone) as caught:
        links.ensure_token_usable(record(), 1000)
    assert caught.value.reason is TokenState.EXPIRED and caught.value.registration_id == "r1"
    assert caught.value.status == 410 and "expiré" in caught.value.message


@pytest.mark.parametrize("state", [TokenState.USED, TokenState.REPLACED, TokenState.EXPIRED])
def test_dead_links_are_gone(state):
    with pytest.raises(TokenGone) as caught:
        links.ensure_token_usable(record(state=state), 0)
    assert caught.value.reason is state


def test_unknown_link_is_not_found():
    with pytest.raises(NotFound):
        links.ensure_token_usable(None, 0)


def test_link_must_be_the_accounts_current_one():
    same = str.__eq__
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1", token_expires_at=1000)
    assert links.ensure_token_is_accounts(record(), waiting, same) == waiting
    with pytest.raises(TokenGone) as caught:
        links.ensure_token_is_accounts(
            record(), account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h2"), same
        )
    assert caught.value.reason is TokenState.REPLACED
    with pytest.raises(TokenGone) as caught:
        links.ensure_token_is_accounts(record(), activated(waiting), same)
    assert caught.value.reason is TokenState.USED


def test_lapsed_link_expires_only_the_account_it_belongs_to():
    same = str.__eq__
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1")
    lapsed, event = links.link_lapsed(waiting, record(), same)
    assert lapsed.status is AccountStatus.EXPIRED
    assert (event.registration_id, event.account_id, event.token_expires_at) == (
        "r1",
        "a1",
        "1970-01-01T00:16:40+00:00",
    )
    other = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h2")
    assert links.link_lapsed(other, record(), same) is None
    assert links.link_lapsed(activated(waiting), record(), same) is None
    assert links.link_lapsed(None, record(), same) is None


def test_the_sweep_expires_issued_links_past_their_expiry_only():
    assert links.sweep_step(record(), 1000) is links.SweepStep.EXPIRE
    assert links.sweep_step(record(), 999) is links.SweepStep.WAIT
    for dead in (TokenState.USED, TokenState.REPLACED, TokenState.EXPIRED):
        assert links.sweep_step(record(state=dead), 5000) is links.SweepStep.FORGET
    assert links.sweep_step(None, 5000) is links.SweepStep.FORGET


def test_a_new_link_replaces_the_previous_one_only_if_it_still_worked():
    replaced = TokenState.REPLACED
    assert links.retired_link_fate(record(), replaced) is replaced
    assert links.retired_link_fate(record(state=TokenState.USED), replaced) is None
    assert links.retired_link_fate(record(state=TokenState.EXPIRED), replaced) is None
    assert links.retired_link_fate(None, replaced) is None


def test_a_request_by_email_renews_the_latest_links_unless_an_active_account_uses_it():
    many = [f"r{n}" for n in range(links.MAX_LINKS_PER_REQUEST + 2)]
    assert links.renewed_on_request(None, many) == many[: links.MAX_LINKS_PER_REQUEST]
    assert links.renewed_on_request(None, ["r1"]) == ["r1"]
    assert links.renewed_on_request(None, []) == []
    assert links.renewed_on_request("holder", ["r1"]) == []


def test_first_user_becomes_principal_manager():
    active, event = domain.activate(account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1"))
    assert (active.status, active.role, active.token_hash) == ("active", "GESTIONNAIRE_PRINCIPAL", None)
    assert (event.account_id, event.structure_id, event.role) == ("a1", "s1", "GESTIONNAIRE_PRINCIPAL")


# --- the structure's claim -----------------------------------------------------------------------

DEADLINE = 1_800_604_800


def test_the_claim_deadline_is_read_from_structure_confirmed():
    data = {
        "structure_id": "s1",
        "user": {"last_name": "Curie", "first_name": "Marie", "login_email": "marie@example.fr"},
    }
    assert domain.pending_account("r1", "a1", data).claim_expires_at is None  # an older event
    stamped = {**data, "claim_expires_at": iso_utc(DEADLINE)}
    assert domain.pending_account("r1", "a1", stamped).claim_expires_at == DEADLINE


def test_an_account_not_active_by_its_claim_deadline_has_lapsed():
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1", claim_expires_at=DEADLINE)
    assert not domain.claim_lapsed(waiting, DEADLINE - 0.001)
    assert domain.claim_lapsed(waiting, DEADLINE)
    assert not domain.claim_lapsed(activated(waiting), DEADLINE + 3600)
    assert not domain.claim_lapsed(account(), DEADLINE + 10**9)  # no deadline: never
    assert domain.claim_lapsed(account(status=AccountStatus.RELEASED), 0)  # released: whatever the time
    with pytest.raises(domain.ClaimLapsed) as caught:
        domain.ensure_claim_open(waiting, DEADLINE)
    assert caught.value.status == 404 and "Recommencez" in caught.value.message


def test_a_release_closes_an_account_not_active_and_only_once():
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1", token_expires_at=1000)
    closed = domain.release(waiting)
    assert (closed.status, closed.token_hash, closed.token_expires_at) == (AccountStatus.RELEASED, None, None)
    assert not closed.awaits_activation and closed.released
    assert domain.release(closed) is None
    assert domain.release(activated(waiting)) is None


def test_a_link_dies_with_its_structure_s_claim():
    same = str.__eq__
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1", claim_expires_at=DEADLINE)
    live = record(expires_at=DEADLINE + 3600)
    assert links.ensure_link_opens(live, waiting, DEADLINE - 1, same) == (live, waiting)
    with pytest.raises(TokenGone) as caught:
        links.ensure_link_opens(live, waiting, DEADLINE, same)
    assert caught.value.reason is TokenState.EXPIRED and caught.value.message == links.CLAIM_LAPSED
    with pytest.raises(TokenGone) as caught:  # voided by the release: still told why
        links.ensure_link_opens(record(state=TokenState.EXPIRED), domain.release(waiting), 0, same)
    assert caught.value.message == links.CLAIM_LAPSED
    with pytest.raises(NotFound):
        links.ensure_link_opens(None, None, 0, same)


def test_a_dead_link_of_a_lapsed_account_offers_nothing_more():
    waiting = account(status=AccountStatus.AWAITING_ACTIVATION, token_hash="h1", claim_expires_at=DEADLINE)
    assert links.after_dead_link(waiting, DEADLINE - 1) is links.NextStep.NEW_LINK
    assert links.after_dead_link(waiting, DEADLINE) is links.NextStep.NONE
    assert links.after_dead_link(activated(waiting), DEADLINE) is links.NextStep.SIGN_IN
    assert links.after_dead_link(None, 0) is links.NextStep.NONE


def test_a_release_expires_a_link_that_still_worked_only():
    expired = TokenState.EXPIRED
    assert links.retired_link_fate(record(), expired) is expired
    assert links.retired_link_fate(record(state=TokenState.USED), expired) is None
    assert links.retired_link_fate(record(state=TokenState.REPLACED), expired) is None
