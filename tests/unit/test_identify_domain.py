"""Step 1 rules: email, structure identifiers, status progress."""

from __future__ import annotations

import pytest

from services.identify import domain
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


def test_outside_eu_needs_a_country_outside_the_eu():
    assert domain.identify_structure("HORS_UE", "ab-123", "CH") == domain.StructureIdentity(
        "HORS_UE", "AB-123", "CH"
    )
    with pytest.raises(Invalid):
        domain.identify_structure("HORS_UE", "AB-123", None)
    with pytest.raises(Invalid):
        domain.identify_structure("HORS_UE", "AB-123", "DE")


def test_ridet_and_tahiti_have_their_territory():
    assert domain.identify_structure("RIDET", "1234567", None).country == "NC"
    assert domain.identify_structure("TAHITI", "a12345", None) == domain.StructureIdentity(
        "TAHITI", "A12345", "PF"
    )
    with pytest.raises(Invalid):
        domain.identify_structure("RIDET", "12", None)


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
