"""Rules of step 2, without servers: pre-fill, the look-up's outcome, every field's checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.structure import domain
from services.structure.domain import Features, Identity, StructureFields, UserForm
from services.structure.sirene.model import Establishment, Lookup
from shared.events import validate_data

LOGIN = "francoise.fleur@example.fr"
SIRET_IDENTITY = Identity("SIRET", "81880244900038", "FR")
SEED = Establishment(
    siret="81880244900038",
    open=True,
    diffusible=True,
    company_name="SNC AU PIED DE COCHON LGE",
    label="",
    address="59 RUE DE TOCQUEVILLE",
    address_complement_1="",
    address_complement_2="",
    postal_code="75017",
    city="PARIS 17",
)
GOOD_STRUCTURE = StructureFields(
    company_name="SNC AU PIED DE COCHON LGE",
    address="59 RUE DE TOCQUEVILLE",
    postal_code="75017",
    city="PARIS 17",
)
GOOD_USER = UserForm(last_name="Fleur", first_name="Françoise", login_email_confirmation=LOGIN)


def check(structure=GOOD_STRUCTURE, user=GOOD_USER, features=Features(), login=LOGIN):
    return domain.check_confirmation(structure, user, features, login)


def started(lookup, identity=SIRET_IDENTITY):
    return domain.started_registration("r-1", identity, LOGIN, lookup)


def test_prefill_of_an_open_establishment_names_its_source():
    registration = started(Lookup(SEED, "insee"))
    assert registration.lookup == domain.FOUND and registration.verified
    assert registration.prefill == replace(GOOD_STRUCTURE, country="FR")
    assert registration.prefill_source == "insee"


def test_prefill_of_unknown_and_closed_sirets_is_empty():
    unknown = started(Lookup(None, as_of="2026-10-31"))
    closed = started(Lookup(replace(SEED, open=False), "stock"))
    assert (unknown.lookup, unknown.as_of) == (domain.UNKNOWN, "2026-10-31")
    assert (closed.lookup, closed.prefill_source) == (domain.CLOSED, "none")
    assert unknown.prefill == closed.prefill == StructureFields()


def test_a_siret_no_source_could_check_starts_empty_and_unverified():
    registration = started(Lookup(None, unavailable=True))
    assert registration.lookup == domain.UNVERIFIED and not registration.verified
    assert registration.prefill == StructureFields() and domain.lookup_errors(registration.lookup) == {}
    assert domain.verification_of(registration.lookup) is domain.Verification.TO_VERIFY
    assert domain.verification_of(domain.FOUND) is domain.Verification.CHECKED


@pytest.mark.parametrize(
    "identity",
    [
        Identity("UE_HORS_FRANCE", "DE136695976", "DE"),
        Identity("HORS_UE", "EIN 12-3456789", "US"),
        Identity("RIDET", "1234567001", "NC"),
        Identity("TAHITI", "003970001", "PF"),
        Identity("PARTICULIER", "PAAAQEAYEAUDAOCAJ", "FR"),
        Identity("AUTRE", "EN COURS", "BE"),
    ],
)
def test_other_identifier_types_start_empty_in_their_country(identity):
    registration = started(None, identity)
    assert registration.lookup == domain.NOT_APPLICABLE and registration.verified
    assert registration.prefill == StructureFields(country=identity.country)
    # Even with a look-up at hand, only a SIRET is looked up.
    assert started(Lookup(SEED, "stock"), identity).prefill == StructureFields(country=identity.country)


def test_lookup_errors_are_on_identifier_in_french():
    assert domain.lookup_errors(domain.FOUND) == {}
    assert domain.lookup_errors(domain.NOT_APPLICABLE) == {}
    assert domain.lookup_errors(domain.UNKNOWN) == {
        "identifier": ["Ce numéro SIRET est inconnu de la base SIRENE de l'INSEE."]
    }
    assert "fermé" in domain.lookup_errors(domain.CLOSED)["identifier"][0]


def test_an_unknown_siret_says_the_date_of_the_data_it_was_checked_against():
    assert domain.lookup_errors(domain.UNKNOWN, "2026-10-31") == {
        "identifier": [
            "Ce numéro SIRET est inconnu de la base SIRENE de l'INSEE (données à jour au 31/10/2026)."
        ]
    }


def test_good_form_gives_a_confirmation_with_defaults():
    confirmation, errors = check()
    assert errors == {}
    assert confirmation is not None
    assert confirmation.person == domain.Person("Fleur", "Françoise", LOGIN, LOGIN, False)
    assert confirmation.features == Features(payment_requests=True, dume=False)
    assert confirmation.structure.country == "FR"


def test_values_are_trimmed_and_kept_as_typed():
    confirmation, _ = check(
        structure=replace(GOOD_STRUCTURE, company_name="  <b>O'Brien & Fils</b> ", postal_code=" 75 017 "),
        user=replace(GOOD_USER, last_name=" D'Artagnan ", first_name="Jean-Éric"),
    )
    assert confirmation.structure.company_name == "<b>O'Brien & Fils</b>"
    assert confirmation.structure.postal_code == "75017"
    assert (confirmation.person.last_name, confirmation.person.first_name) == ("D'Artagnan", "Jean-Éric")


def test_retyped_login_email_is_compared_normalised():
    _, errors = check(user=replace(GOOD_USER, login_email_confirmation=" Francoise.Fleur@EXAMPLE.fr "))
    assert errors == {}


def test_contact_email_defaults_to_login_and_is_normalised():
    confirmation, _ = check(user=replace(GOOD_USER, contact_email="Compta@Example.FR"))
    assert confirmation.person.contact_email == "Compta@example.fr"


@pytest.mark.parametrize(
    ("structure", "user", "features", "field", "message"),
    [
        ({"company_name": ""}, {}, {}, "structure.company_name", "La raison sociale est obligatoire."),
        ({"company_name": "A" * 121}, {}, {}, "structure.company_name", "au plus 120 caractères"),
        ({"label": "L" * 101}, {}, {}, "structure.label", "au plus 100"),
        ({"address": "   "}, {}, {}, "structure.address", "L'adresse est obligatoire."),
        ({"address": "59 RUE\nDE X"}, {}, {}, "structure.address", "retour à la ligne"),
        ({"address_complement_1": "c" * 101}, {}, {}, "structure.address_complement_1", "au plus 100"),
        ({"address_complement_2": "c" * 101}, {}, {}, "structure.address_complement_2", "au plus 100"),
        ({"postal_code": ""}, {}, {}, "structure.postal_code", "Le code postal est obligatoire."),
        ({"postal_code": "7501"}, {}, {}, "structure.postal_code", "5 chiffres"),
        ({"postal_code": "75O17"}, {}, {}, "structure.postal_code", "5 chiffres"),
        ({"city": ""}, {}, {}, "structure.city", "La ville est obligatoire."),
        ({"country": "FRA"}, {}, {}, "structure.country", "deux lettres"),
        ({"country": "F1"}, {}, {}, "structure.country", "deux lettres"),
        ({}, {"last_name": ""}, {}, "user.last_name", "Le nom est obligatoire."),
        ({}, {"last_name": "1234"}, {}, "user.last_name", "au moins une lettre"),
        ({}, {"first_name": "P" * 101}, {}, "user.first_name", "au plus 100"),
        ({}, {"login_email_confirmation": ""}, {}, "user.login_email_confirmation", "Resaisissez"),
        ({}, {"login_email_confirmation": "fleurf"}, {}, "user.login_email_confirmation", "invalide"),
        (
            {},
            {"login_email_confirmation": "autre@example.fr"},
            {},
            "user.login_email_confirmation",
            "ne correspondent pas",
        ),
        ({}, {"contact_email": "compta@"}, {}, "user.contact_email", "n'est pas valide"),
        (
            {},
            {},
            {"payment_requests": False},
            "features.payment_requests",
            "La fonctionnalité « Déposer des demandes de paiement » est obligatoire.",
        ),
    ],
)
def test_each_faulty_field_is_named(structure, user, features, field, message):
    confirmation, errors = check(
        replace(GOOD_STRUCTURE, **structure), replace(GOOD_USER, **user), replace(Features(), **features)
    )
    assert confirmation is None
    assert list(errors) == [field]
    assert message in errors[field][0]


def test_every_faulty_field_is_named_at_once():
    _, errors = check(
        StructureFields(country="XYZ", postal_code="?"),
        UserForm(login_email_confirmation="x@example.fr", contact_email="nope"),
        Features(payment_requests=False),
    )
    assert set(errors) == {
        "structure.company_name",
        "structure.address",
        "structure.postal_code",
        "structure.city",
        "structure.country",
        "user.last_name",
        "user.first_name",
        "user.login_email_confirmation",
        "user.contact_email",
        "features.payment_requests",
    }


def test_foreign_postal_codes_are_not_french():
    _, errors = check(replace(GOOD_STRUCTURE, country="us", postal_code="10001-1234", city="NEW YORK"))
    assert errors == {}
    _, errors = check(replace(GOOD_STRUCTURE, country="GB", postal_code="SW1A 1AA"))
    assert errors == {}


def test_event_data_follows_the_contract():
    confirmation, _ = check(features=Features(dume=True))
    event = domain.structure_confirmed(
        "r-1", "s-1", SIRET_IDENTITY, confirmation, claim_expires_at=1_800_604_800
    )
    validate_data(event.type, event.data())  # raises if the contract is broken
    assert event.claim_expires_at == "2027-01-22T08:00:00+00:00"
    assert event.type == "StructureConfirmed"
    assert event.data()["registration_id"] == "r-1" and event.structure_id == "s-1"
    assert event.structure["identifier"] == "81880244900038"
    assert event.structure["label"] is None
    assert event.user == {
        "last_name": "Fleur",
        "first_name": "Françoise",
        "login_email": LOGIN,
        "contact_email": LOGIN,
        "survey_consent": False,
    }
    assert event.features == {"payment_requests": True, "dume": True}


PRIVATE_PERSON = Identity("PARTICULIER", "PAAAQEAYEAUDAOCAJ", "FR")
BEING_REGISTERED = Identity("AUTRE", "EN COURS 2026", "FR")


def test_a_private_person_s_structure_is_named_after_them_whatever_is_sent():
    for sent in ("", "SARL Ce Que Je Veux", "A" * 500):
        confirmation, errors = domain.check_confirmation(
            replace(GOOD_STRUCTURE, company_name=sent), GOOD_USER, Features(), LOGIN, PRIVATE_PERSON
        )
        assert errors == {}
        assert confirmation.structure.company_name == "Françoise Fleur"
        assert confirmation.structure.address == "59 RUE DE TOCQUEVILLE"


def test_a_private_person_still_gives_an_address_and_their_names():
    confirmation, errors = domain.check_confirmation(
        StructureFields(label="L" * 101),
        UserForm(login_email_confirmation=LOGIN),
        Features(),
        LOGIN,
        PRIVATE_PERSON,
    )
    assert confirmation is None
    assert set(errors) == {
        "structure.label",
        "structure.address",
        "structure.postal_code",
        "structure.city",
        "user.last_name",
        "user.first_name",
    }


def test_only_a_private_person_goes_without_a_company_name():
    for identity in (None, SIRET_IDENTITY, BEING_REGISTERED):
        _, errors = domain.check_confirmation(
            replace(GOOD_STRUCTURE, company_name=""), GOOD_USER, Features(), LOGIN, identity
        )
        assert errors == {"structure.company_name": ["La raison sociale est obligatoire."]}


@pytest.mark.parametrize(
    ("identity", "being_registered"),
    [(BEING_REGISTERED, True), (SIRET_IDENTITY, False), (PRIVATE_PERSON, False)],
)
def test_a_company_being_registered_is_marked_as_such(identity, being_registered):
    confirmation, _ = domain.check_confirmation(GOOD_STRUCTURE, GOOD_USER, Features(), LOGIN, identity)
    event = domain.structure_confirmed("r-1", "s-1", identity, confirmation, claim_expires_at=1_800_604_800)
    validate_data(event.type, event.data())
    assert event.structure["being_registered"] is being_registered
    assert (event.structure["identifier_type"], event.structure["identifier"]) == (
        identity.identifier_type,
        identity.identifier,
    )


def test_a_private_person_s_event_names_the_structure_after_them():
    confirmation, _ = domain.check_confirmation(
        replace(GOOD_STRUCTURE, company_name=""), GOOD_USER, Features(), LOGIN, PRIVATE_PERSON
    )
    event = domain.structure_confirmed(
        "r-1", "s-1", PRIVATE_PERSON, confirmation, claim_expires_at=1_800_604_800
    )
    validate_data(event.type, event.data())
    assert event.structure["company_name"] == "Françoise Fleur"
    assert event.structure["identifier"] == "PAAAQEAYEAUDAOCAJ"


REGISTRATION = domain.Registration("r-1", SIRET_IDENTITY, LOGIN, domain.FOUND, GOOD_STRUCTURE)


def test_the_form_of_an_unknown_or_unusable_registration_is_refused():
    assert domain.form_of(REGISTRATION) == REGISTRATION
    with pytest.raises(domain.UnknownRegistration):
        domain.form_of(None)
    with pytest.raises(domain.UnusableIdentifier) as caught:
        domain.form_of(replace(REGISTRATION, lookup=domain.CLOSED))
    assert caught.value.errors == domain.lookup_errors(domain.CLOSED)


def test_a_registration_opens_one_structure_and_never_takes_one_over():
    assert domain.refusal(REGISTRATION, None, {}) is None
    assert isinstance(domain.refusal(None, None, {}), domain.UnknownRegistration)
    confirmed = replace(REGISTRATION, structure_id="s-1")
    assert isinstance(domain.refusal(confirmed, "s-1", {"captcha": ["x"]}), domain.AlreadyConfirmed)
    refused = domain.refusal(REGISTRATION, "s-2", {"captcha": ["x"]})
    assert isinstance(refused, domain.Refused) and refused.errors == {"captcha": ["x"]}
    taken = domain.refusal(REGISTRATION, "s-2", {})
    assert isinstance(taken, domain.StructureExists) and taken.status == 409
    assert taken.errors == {"identifier": [domain.STRUCTURE_EXISTS]}
    with pytest.raises(domain.AlreadyConfirmed):
        domain.still_open(confirmed)


# The structure's claim on its identity ------------------------------------------------------------

DEADLINE = 1_800_604_800
CLAIM = domain.Claim("s-1", SIRET_IDENTITY, "r-1", domain.ClaimStatus.CLAIMED, DEADLINE)


def test_a_claim_lasts_its_ttl_in_whole_seconds():
    assert domain.claim_deadline(1_800_000_000.7, 604_800) == DEADLINE


def test_a_claimed_structure_is_released_only_past_its_deadline_and_the_margin():
    assert domain.release_step(CLAIM, DEADLINE) is domain.ReleaseStep.WAIT
    just_before = DEADLINE + domain.RELEASE_MARGIN_SECONDS - 0.5
    assert domain.release_step(CLAIM, just_before) is domain.ReleaseStep.WAIT
    due = DEADLINE + domain.RELEASE_MARGIN_SECONDS
    assert domain.release_step(CLAIM, due) is domain.ReleaseStep.RELEASE


@pytest.mark.parametrize(
    "claim",
    [
        None,
        replace(CLAIM, status=domain.ClaimStatus.HELD),
        replace(CLAIM, status=domain.ClaimStatus.RELEASED),
        replace(CLAIM, expires_at=None),
    ],
)
def test_a_gone_held_or_released_structure_only_leaves_its_deadline(claim):
    assert domain.release_step(claim, DEADLINE + 3600) is domain.ReleaseStep.FORGET


def test_the_identity_is_freed_only_while_its_guard_names_the_structure():
    assert domain.frees_identity(CLAIM, "s-1")
    assert not domain.frees_identity(CLAIM, "s-2")
    assert not domain.frees_identity(CLAIM, None)


def test_the_release_is_announced_with_the_identity_freed():
    event = domain.structure_released(CLAIM, DEADLINE + 60)
    validate_data(event.type, event.data())
    assert (event.registration_id, event.structure_id, event.identifier_type, event.identifier) == (
        "r-1",
        "s-1",
        "SIRET",
        "81880244900038",
    )
    assert event.released_at == "2027-01-22T08:01:00+00:00"


def test_only_the_principal_manager_s_activation_holds_a_claimed_structure():
    principal = "GESTIONNAIRE_PRINCIPAL"
    assert domain.activation_step(CLAIM, principal) is domain.ActivationStep.HOLD
    assert domain.activation_step(CLAIM, "UTILISATEUR") is domain.ActivationStep.NOTHING
    assert domain.activation_step(None, principal) is domain.ActivationStep.NOTHING
    held = replace(CLAIM, status=domain.ClaimStatus.HELD)
    assert domain.activation_step(held, principal) is domain.ActivationStep.NOTHING
    released = replace(CLAIM, status=domain.ClaimStatus.RELEASED)
    assert domain.activation_step(released, principal) is domain.ActivationStep.TOO_LATE
