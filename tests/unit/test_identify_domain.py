"""Step 1 rules: email, structure identifiers, status progress."""

from __future__ import annotations

import re

import pytest

from services.identify import domain, wording
from shared.errors import Invalid

VALID_SIRETS = [
    "73282932000074",
    "35600000009075",
    "35600000000048",
    "35600000049837",
    "30206838200050",
    "31719324100013",
    "44126652500019",
    "79068156300017",
    "81880244900038",
]


@pytest.mark.parametrize("number", VALID_SIRETS)
def test_valid_sirets_are_accepted(number):
    assert domain.identify_structure("SIRET", number, None) == domain.StructureIdentity("SIRET", number, "FR")


def test_spaces_typed_in_a_siret_are_tolerated():
    assert domain.identify_structure("SIRET", " 818 802 449 00038 ", "fr").identifier == "81880244900038"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("73282932000079", "clé de contrôle"),
        ("35600000049838", "clé de contrôle"),  # La Poste's rule
        ("1234567890123", "14 chiffres"),
        ("7328293200007A", "que des chiffres"),
    ],
)
def test_invalid_sirets_are_refused_with_a_french_reason(number, message):
    with pytest.raises(Invalid) as caught:
        domain.identify_structure("SIRET", number, None)
    assert message in caught.value.errors["identifier"][0]


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("DE136695976", "DE"),
        ("BE0403019261", "BE"),
        ("IT00743110157", "IT"),
        ("ESA13585625", "ES"),
        ("NL004495445B01", "NL"),
    ],
)
def test_eu_vat_numbers_give_their_country(number, country):
    assert domain.identify_structure("UE_HORS_FRANCE", number, None).country == country


def test_a_french_vat_number_is_not_a_foreign_structure():
    with pytest.raises(Invalid, match="SIRET"):
        domain.identify_structure("UE_HORS_FRANCE", "FR40303265045", None)


def test_eu_vat_with_another_country_is_refused():
    with pytest.raises(Invalid) as caught:
        domain.identify_structure("UE_HORS_FRANCE", "DE136695976", "IT")
    assert "country" in caught.value.errors


PRIVATE_ID = domain.private_person_identifier(bytes(range(10)))


def identify(kind, identifier, country=None):
    return domain.identify_structure(kind, identifier, country, PRIVATE_ID)


def refusal(kind, identifier, country=None) -> dict[str, list[str]]:
    with pytest.raises(Invalid) as caught:
        identify(kind, identifier, country)
    return caught.value.errors


@pytest.mark.parametrize(
    ("kind", "typed", "country", "expected"),
    [
        ("SIRET", "818 802 449 00038", "FR", ("81880244900038", "FR")),
        ("UE_HORS_FRANCE", "de 136.695-976", None, ("DE136695976", "DE")),
        ("UE_HORS_FRANCE", "EL094259216", "GR", ("EL094259216", "GR")),  # Greece's VAT prefix is EL
        ("UE_HORS_FRANCE", "ATU13585627", "", ("ATU13585627", "AT")),
        ("HORS_UE", "ab-123", "CH", ("AB-123", "CH")),
        ("HORS_UE", " EIN  12-3456789 ", "us", ("EIN 12-3456789", "US")),
        ("HORS_UE", "1" * 18, "JP", ("1" * 18, "JP")),
        ("RIDET", "1234567001", None, ("1234567001", "NC")),  # RID of 7 digits and rank 001
        ("RIDET", "123 456.002", "NC", ("123456002", "NC")),  # RID of 6 digits, separators typed
        ("TAHITI", "003970-001", None, ("003970001", "PF")),
        ("TAHITI", "a12345 002", "PF", ("A12345002", "PF")),  # since 2011: a letter and 5 digits
        ("AUTRE", " en cours / 2026-11 ", None, ("EN COURS / 2026-11", "FR")),
        ("AUTRE", "K-42", "BE", ("K-42", "BE")),
    ],
)
def test_each_identifier_type_accepts_its_format(kind, typed, country, expected):
    assert identify(kind, typed, country) == domain.StructureIdentity(kind, *expected)


@pytest.mark.parametrize(
    ("kind", "typed", "country", "field", "message"),
    [
        ("SIRET", "", None, "identifier", "Le numéro SIRET est obligatoire."),
        (
            "SIRET",
            "81880244900038",
            "BE",
            "country",
            "Cet identifiant est celui d'une structure du pays France",
        ),
        ("UE_HORS_FRANCE", "", None, "identifier", "Le numéro de TVA intracommunautaire est obligatoire."),
        ("UE_HORS_FRANCE", "136695976", None, "identifier", "commence par le code de son pays"),
        ("UE_HORS_FRANCE", "CHE116281710", None, "identifier", "commence par le code de son pays"),
        ("UE_HORS_FRANCE", "DE13669597", None, "identifier", "n'a pas la longueur attendue"),
        ("UE_HORS_FRANCE", "DE136695977", None, "identifier", "clé de contrôle"),
        ("UE_HORS_FRANCE", "FR40303265045", None, "identifier", "saisissez son numéro SIRET"),
        ("UE_HORS_FRANCE", "DE136695976", "IT", "country", "pays Allemagne (DE)"),
        ("HORS_UE", "", "CH", "identifier", "L'identifiant est obligatoire."),
        ("HORS_UE", "1" * 19, "CH", "identifier", "18 caractères au plus"),
        ("HORS_UE", "AB_123", "CH", "identifier", "lettres (sans accent), des chiffres"),
        ("HORS_UE", "ÉTÉ-1", "CH", "identifier", "lettres (sans accent)"),
        ("HORS_UE", "- / .", "CH", "identifier", "lettres (sans accent)"),
        ("HORS_UE", "AB-123", None, "country", "Le pays est obligatoire"),
        ("HORS_UE", "AB-123", "DE", "country", "dans l'Union européenne"),
        ("HORS_UE", "AB-123", "FR", "country", "numéro SIRET"),
        ("HORS_UE", "AB-123", "RE", "country", "numéro SIRET"),  # La Réunion: in SIRENE
        ("HORS_UE", "AB-123", "NC", "country", "numéro RIDET"),
        ("HORS_UE", "AB-123", "PF", "country", "numéro TAHITI"),
        ("HORS_UE", "AB-123", "QQ", "country", "ne désigne aucun pays"),
        ("HORS_UE", "AB-123", "C1", "country", "deux lettres"),
        ("RIDET", "", None, "identifier", "Le numéro RIDET est obligatoire."),
        ("RIDET", "1234567", None, "identifier", "9 ou 10 chiffres"),  # the RID alone
        ("RIDET", "12345678901", None, "identifier", "9 ou 10 chiffres"),
        ("RIDET", "12345A001", None, "identifier", "9 ou 10 chiffres"),
        ("RIDET", "1234567000", None, "identifier", "commence à 001"),
        ("RIDET", "1234567001", "FR", "country", "pays Nouvelle-Calédonie (NC)"),
        ("TAHITI", "", None, "identifier", "Le numéro TAHITI est obligatoire."),
        ("TAHITI", "003970", None, "identifier", "9 caractères"),  # the company alone
        ("TAHITI", "AB1234001", None, "identifier", "9 caractères"),  # two letters
        ("TAHITI", "12345A001", None, "identifier", "9 caractères"),  # the letter comes first
        ("TAHITI", "0039700012", None, "identifier", "9 caractères"),
        ("TAHITI", "003970-000", None, "identifier", "commence à 001"),
        ("TAHITI", "003970-001", "NC", "country", "pays Polynésie française (PF)"),
        ("AUTRE", "", None, "identifier", "L'identifiant est obligatoire."),
        ("AUTRE", "A" * 51, None, "identifier", "50 caractères au plus"),
        ("AUTRE", "<script>", None, "identifier", "lettres (sans accent)"),
        ("AUTRE", "K-42", "ZZ", "country", "ne désigne aucun pays"),
        ("PARTICULIER", "", "ZZ", "country", "ne désigne aucun pays"),
    ],
)
def test_each_identifier_type_refuses_a_bad_value_in_french_on_its_field(
    kind, typed, country, field, message
):
    errors = refusal(kind, typed, country)
    assert list(errors) == [field]
    assert message in errors[field][0]


def test_a_bad_identifier_and_a_bad_country_are_named_together():
    assert set(refusal("HORS_UE", "AB_123", "XX")) == {"identifier", "country"}


def test_a_private_person_types_no_identifier_and_gets_the_one_drawn_for_the_registration():
    assert PRIVATE_ID == "PAAAQEAYEAUDAOCAJ" and len(PRIVATE_ID) <= domain.FOREIGN_IDENTIFIER_MAX
    assert identify("PARTICULIER", "", None) == domain.StructureIdentity("PARTICULIER", PRIVATE_ID, "FR")
    assert identify("particulier", None, "ch") == domain.StructureIdentity("PARTICULIER", PRIVATE_ID, "CH")
    # One typed is ignored (the hint says so): the person is not their own identifier.
    assert identify("PARTICULIER", "81880244900038", None).identifier == PRIVATE_ID


def test_each_private_person_identifier_is_its_own():
    drawn = {domain.private_person_identifier(bytes([n]) * 10) for n in range(50)}
    assert len(drawn) == 50
    assert all(re.fullmatch(r"P[A-Z2-7]{16}", identifier) for identifier in drawn)


def test_a_private_person_s_registration_must_be_given_its_identifier():
    with pytest.raises(ValueError):
        domain.identify_structure("PARTICULIER", "", None)


def test_every_type_has_a_name_and_a_format_to_show():
    assert [w.code for w in wording.IDENTIFIER_TYPES] == list(domain.IDENTIFIER_TYPES)
    assert all(w.option and w.name and w.expected_format.endswith(".") for w in wording.IDENTIFIER_TYPES)
    assert "9 ou 10 chiffres" in wording.BY_CODE["RIDET"].expected_format
    assert "003970-001" in wording.BY_CODE["TAHITI"].expected_format
    assert wording.wording_of("INCONNU").name == "INCONNU"


def test_unknown_identifier_type_is_refused():
    with pytest.raises(Invalid) as caught:
        domain.identify_structure("DUNS", "123", None)
    assert "identifier_type" in caught.value.errors


def test_emails_are_validated_and_normalised():
    assert domain.normalise_login_email(" Jean.Dupont@Exämple.FR ") == "Jean.Dupont@exämple.fr"
    for bad in ("jean", "jean@", "jean@localhost", "a b@example.com"):
        with pytest.raises(Invalid):
            domain.normalise_login_email(bad)


def at(status, expires=None):
    return domain.Progress(status, expires)


def test_status_moves_forward_through_the_steps():
    assert domain.progress_after(at("started"), "StructureConfirmed", {}) == at("structure_confirmed")
    chosen = domain.progress_after(at("structure_confirmed"), "WorkspacesChosen", {"token_expires_at": "T1"})
    assert chosen == at("workspaces_chosen", "T1")
    assert domain.progress_after(chosen, "AccountActivated", {}).status == "activated"


def test_nothing_moves_an_activated_registration_back():
    for event in ("StructureConfirmed", "WorkspacesChosen", "ActivationTokenExpired"):
        assert domain.progress_after(at("activated", "T1"), event, {"token_expires_at": "T2"}) is None


def test_only_the_newest_link_can_expire_the_registration():
    assert (
        domain.progress_after(
            at("workspaces_chosen", "T2"), "ActivationTokenExpired", {"token_expires_at": "T1"}
        )
        is None
    )
    assert domain.progress_after(
        at("workspaces_chosen", "T2"), "ActivationTokenExpired", {"token_expires_at": "T2"}
    ) == at("expired", "T2")


def test_a_new_link_revives_an_expired_registration():
    assert domain.progress_after(
        at("expired", "T1"), "ActivationLinkIssued", {"token_expires_at": "T2"}
    ) == at("workspaces_chosen", "T2")


def test_late_structure_event_does_not_undo_later_steps():
    assert domain.progress_after(at("workspaces_chosen", "T1"), "StructureConfirmed", {}) is None


def test_a_released_structure_expires_its_registration_unless_activated():
    for status in ("started", "structure_confirmed", "workspaces_chosen"):
        assert domain.progress_after(at(status, "T1"), "StructureReleased", {}) == at("expired", "T1")
    assert domain.progress_after(at("expired", "T1"), "StructureReleased", {}) is None
    assert domain.progress_after(at("activated", "T1"), "StructureReleased", {}) is None
