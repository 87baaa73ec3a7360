"""The password policy beyond the rule's shape (ASVS 6.2.4, 6.2.12), and rehashing (argon2id).

No servers: the shipped list, the personal-data check, the French messages on `password`, and
`verify_and_update` upgrading a hash made with older parameters.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from services.activate import domain, passwords
from services.activate.catalogue import SECRET_QUESTIONS
from shared.errors import Invalid

QUESTION = SECRET_QUESTIONS[0]
FLEUR = ("Françoise", "Fleur", "fleurf@example.fr", None)  # first, last, login email, contact email
DUPONT = ("Jean-Pierre", "Dupont", "jean.dupont1985@mairie-lyon.fr", "contact@exämple.fr")


def problems(password: str, personal=()) -> list[str]:
    return domain.password_problems(domain.normalise_password(password), personal)


# --- the shipped list -----------------------------------------------------------------------------


def test_the_list_is_shipped_with_its_source_and_licence():
    header = passwords.COMMON_PASSWORDS.read_text(encoding="utf-8")[:4000]
    assert "zxcvbn" in header and "MIT" in header and "Dropbox" in header
    listed = passwords.common_passwords()
    assert len(listed) > 70_000
    assert {"123456", "password", "azerty", "motdepasse", "soleil", "doudou"} <= listed
    assert all(entry == passwords.fold(entry) and len(entry) >= 3 for entry in listed)


@pytest.mark.parametrize(
    "password, seen_as",
    [
        ("Motdepasse2024!", "motdepasse"),  # the brief's example: a suffix of digits and signs
        ("MOTDEPASSE2024!", "motdepasse"),  # case does not matter
        ("2024-Motdepasse!", "motdepasse"),  # nor does the side the digits are on
        ("Mot-de-passe_1", "motdepasse"),  # separators inside
        ("mot de passe 1", "motdepasse"),
        ("P@ssw0rd!", "password"),  # substitutions undone
        ("4zerty12!", "azerty"),
        ("S0leil2024", "soleil"),
        ("Banana12!X", "banana"),  # a word holding all the letters but one
        ("Ab123456!", "123456"),  # two letters around a common password
        ("Azerty123!", "azerty"),
        ("Jetaime<3!", "jetaime"),
        ("Sunshine1!", "sunshine"),  # English, from zxcvbn's lists
        ("Chouchou75!", "chouchou"),  # French, from the supplement
        ("Éléphant2024", "elephant"),  # accents do not matter
    ],
)
def test_common_passwords_are_refused_whatever_surrounds_them(password, seen_as):
    assert domain.password_errors(domain.normalise_password(password)) == []  # the shape is right
    assert seen_as in passwords.base_forms(password) and seen_as in passwords.common_passwords()
    assert problems(password) == [passwords.TOO_COMMON]


@pytest.mark.parametrize(
    "password",
    [
        "Ruisseau-Calme-73",  # listed words, but two of them
        "Facture-2026-Été",
        "Correct-Horse-Battery",
        "Pervenche+Tilleul 9",
        "Xq9#Lm2$Vp7!",
        "Hippopotame!123456",  # a long word: the digits are not looked up alone
        "Aa1" + "é" * 125,  # 128 characters, any Unicode
        "Ѕоlеіl-Москва-42",  # Cyrillic look-alikes are letters like others
    ],
)
def test_other_passwords_are_accepted(password):
    assert problems(password, FLEUR) == []


def test_the_message_is_french_and_on_the_password_field():
    with pytest.raises(Invalid) as caught:
        domain.check_activation_form("Motdepasse2024!", "Motdepasse2024!", QUESTION, "Rex")
    assert caught.value.errors == {"password": [passwords.TOO_COMMON]}
    assert passwords.TOO_COMMON.startswith("Ce mot de passe est trop courant")


def test_the_shape_is_reported_first():
    """A password without the rule's shape is told the rule (as the meter shows it), not the list."""
    assert problems("motdepasse") == [domain.PASSWORD_RULE]
    assert problems("Ab1" + "x" * 126) == ["Le mot de passe doit contenir au plus 128 caractères."]


# --- built from the person's own data -------------------------------------------------------------


@pytest.mark.parametrize(
    "password, personal",
    [
        ("Francoise-Ruisseau-7", FLEUR),  # the first name, accents ignored
        ("xFRANÇOISEx-7", FLEUR),  # case ignored, anywhere in the password
        ("Fleurette#2026", FLEUR),  # the last name
        ("Fleurf-Ruisseau-7", FLEUR),  # the email's local part
        ("Ruisseau-Example-7", FLEUR),  # the email's domain name
        ("Jean-Pierre-Ruisseau-7", DUPONT),  # a compound first name
        ("Ruisseau.JeanPierre7", DUPONT),  # and it written together
        ("Pierre-Ruisseau-7!", DUPONT),  # one word of it
        ("Ruisseau-Dupont-7", DUPONT),
        ("Ruisseau-Dupont1985", DUPONT),  # the local part's words
        ("Mairie-Ruisseau-7", DUPONT),  # a word of the domain name
        ("Ruisseau-Lyon-77!", DUPONT),
        ("Exämple-Ruisseau-7", DUPONT),  # the contact email too
    ],
)
def test_passwords_built_from_the_names_or_emails_are_refused(password, personal):
    assert problems(password) == []  # not common in itself
    assert problems(password, personal) == [passwords.TOO_PERSONAL]


def test_words_are_split_at_separators_only():
    """A generated local part (`tag-3fa91b2c`) gives no short runs of letters or digits."""
    assert passwords.personal_words(("desktop-3fa91b2c@example.fr",)) == {
        "desktop3fa91b2c",
        "desktop",
        "3fa91b2c",
        "example",
    }
    assert problems("Facture-2026-Été", ("Fleur", "desktop-2026fac1@example.fr")) == []


def test_short_names_and_top_level_domains_are_not_looked_for():
    personal = ("Li", "Ng", "li@ng.fr", None)
    assert passwords.personal_words(personal) == set()
    assert problems("Ligne-Verte-Fr-7", personal) == []


def test_personal_words():
    assert passwords.personal_words(DUPONT) == {
        "jeanpierre",  # the first name, written together
        "jean",  # a word of it, and of the local part
        "pierre",
        "dupont",  # the last name
        "jeandupont1985",  # the local part, written together
        "dupont1985",  # a word of it
        "mairielyon",
        "mairie",
        "lyon",
        "contact",
        "example",
    }


def test_both_refusals_at_once():
    assert problems("Dupont2024!", DUPONT) == [passwords.TOO_COMMON, passwords.TOO_PERSONAL]


def test_the_form_is_checked_against_the_accounts_data():
    account = domain.Account(
        registration_id="r1",
        account_id="a1",
        structure_id="s1",
        last_name="Curie",
        first_name="Marie",
        login_email="marie.curie@example.fr",
        contact_email="labo@radium.fr",
        survey_consent=False,
    )
    assert domain.personal_data(account) == ("Marie", "Curie", "marie.curie@example.fr", "labo@radium.fr")
    with pytest.raises(Invalid) as caught:
        domain.check_activation_form(
            "Curie-Ruisseau-7", "Curie-Ruisseau-7", QUESTION, "Rex", domain.personal_data(account)
        )
    assert caught.value.errors == {"password": [passwords.TOO_PERSONAL]}
    form = domain.check_activation_form(
        "Ruisseau-Calme-73", "Ruisseau-Calme-73", QUESTION, "Rex", domain.personal_data(account)
    )
    assert form.password == "Ruisseau-Calme-73"


# --- rehash when the parameters change ------------------------------------------------------------


def test_a_current_hash_is_kept():
    hasher = passwords.make_hasher()
    stored = passwords.hash_secret(hasher, "Ruisseau-Calme-73")
    assert passwords.verify_and_update(hasher, stored, "Ruisseau-Calme-73") == (True, None)


def test_a_hash_made_with_older_parameters_is_upgraded_on_verify():
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2, type=Type.ID)
    stored = old.hash("Ruisseau-Calme-73")
    hasher = passwords.make_hasher()
    ok, upgraded = passwords.verify_and_update(hasher, stored, "Ruisseau-Calme-73")
    assert ok and upgraded is not None and upgraded != stored
    params = extract_parameters(upgraded)
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == (Type.ID, 2, 19456, 1)
    assert passwords.verify_and_update(hasher, upgraded, "Ruisseau-Calme-73") == (True, None)


def test_another_argon2_variant_is_upgraded_too():
    stored = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I).hash("Réponse")
    ok, upgraded = passwords.verify_and_update(passwords.make_hasher(), stored, "Réponse")
    assert ok and upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_wrong_value_or_a_broken_hash_gives_nothing_to_store():
    hasher = passwords.make_hasher()
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("Ruisseau-Calme-73")
    assert passwords.verify_and_update(hasher, old, "ruisseau-calme-73") == (False, None)
    assert passwords.verify_and_update(hasher, "not a hash", "Ruisseau-Calme-73") == (False, None)
