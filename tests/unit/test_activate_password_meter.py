"""The live meter (password-meter.js) against the shape of the server's password rule: same verdict.

The server's rule (domain) is the authority; the meter must call a password acceptable
(level 3 or 4) exactly when it has the shape the server requires (`domain.password_errors`:
length, groups, no control character). The server's other refusals, common passwords and those
built from the person's names or emails (`domain.password_problems`), stay on the server: the
page says so next to the field. Here the thresholds are checked in the file's text; Node runs
the script itself in tests/integration/test_activate_password_meter.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.activate import domain

SCRIPT = Path(__file__).parents[2] / "services" / "activate" / "static" / "password-meter.js"

# password → (the server finds the rule's shape, meter level)
TABLE = {
    "": (False, 0),
    "faible": (False, 1),  # short, one group
    "motdepasse": (False, 2),  # long enough, one group
    "Motdepasse": (False, 2),  # two groups
    "Aa1!": (False, 2),  # four groups, too short
    "Aa1!aaa": (False, 2),  # 7 characters
    "Aa1!aaaa": (True, 3),  # 8 characters, 4 groups, shorter than 12
    "Motdepasse1": (True, 3),  # 3 groups
    "Motdepasse1!": (True, 4),  # 12 characters, 4 groups
    "été-été-été": (False, 2),  # accents and hyphens are one group: special
    "Été2026été": (True, 3),  # lower case, digits, special (É and é are not ASCII)
    "Facture-2026-Été": (True, 4),
    "ｍｏｔｄｅｐａｓｓｅ１２": (False, 2),  # full-width: NFKC makes it ASCII, 2 groups
    "Moﬁ1234": (True, 3),  # the ligature ﬁ becomes "fi" under NFKC: 8 characters
    "Aa1😀xyz": (False, 2),  # 7 code points (8 UTF-16 units): too short for the server
    "Motdepasse😀": (True, 3),  # the emoji is special
    "Aa1" + "a" * 125: (True, 3),  # 128 characters: the longest accepted
    "Aa1!" + "a" * 125: (False, 1),  # 129 characters
    "Motdepasse1\t": (False, 1),  # a control character
}


def server_accepts(password: str) -> bool:
    """The shape of the rule, as the meter can check it (no list, no personal data)."""
    return not domain.password_errors(domain.normalise_password(password))


def test_the_list_and_the_personal_data_are_checked_by_the_server_only():
    """A password the meter rates « Très satisfaisant » can still be refused when it is sent."""
    assert TABLE["Motdepasse1!"] == (True, 4)
    refused = domain.password_problems(domain.normalise_password("Motdepasse1!"))
    assert refused and "trop courant" in refused[0]
    personal = ("Marie", "Curie", "marie.curie@example.fr", None)
    assert domain.password_problems("Curie-Radium-1898", personal) == [
        "Le mot de passe ne doit reprendre ni votre nom, ni votre prénom, ni votre adresse électronique."
    ]
    assert "passwords.py" in SCRIPT.read_text(encoding="utf-8")  # the script says where they are


@pytest.mark.parametrize("password", TABLE)
def test_the_table_is_the_servers_verdict(password):
    assert server_accepts(password) is TABLE[password][0]


def test_the_script_has_the_servers_thresholds():
    source = SCRIPT.read_text(encoding="utf-8")

    def constant(name: str) -> int:
        return int(re.search(rf"var {name} = (\d+);", source).group(1))

    assert constant("MIN_LENGTH") == domain.PASSWORD_MIN_LENGTH
    assert constant("MAX_LENGTH") == domain.PASSWORD_MAX_LENGTH
    assert constant("MIN_GROUPS") == domain.PASSWORD_MIN_GROUPS
    assert 'normalize("NFKC")' in source and "Array.from(" in source  # as the server counts
    for label in ("Insuffisant", "Faible", "Satisfaisant", "Très satisfaisant"):
        assert f'"{label}"' in source
