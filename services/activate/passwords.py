"""Passwords: which ones are refused beyond the rule's shape, and argon2id hashing.

Refused (ASVS 6.2.4 and 6.2.12, CNIL 2022-100), once the rule's shape is met (see `domain`):
- a common or breached-style password: the list shipped in `data/common-passwords.txt` (from
  zxcvbn's frequency lists, plus French words and names; see the file's header for its source
  and licence). A password matches when, folded (case and accents ignored), it is on the list
  whole, or once the digits, punctuation and spaces around it are stripped, the separators
  inside it removed and the usual substitutions undone: "Motdepasse2024!" → "motdepasse",
  "P@ssw0rd!" → "password", "Mot-de-passe_1" → "motdepasse"; a word that holds all the letters
  but 3 or fewer is looked up alone ("Banana12!X" → "banana"); with fewer than 4 letters, the
  part made of digits and signs is looked up too ("Ab123456!" → "123456").
- a password built from the person's own data: it contains (case, accents and separators
  ignored) their first or last name, or the local part or domain name of their email, or any
  word of 3 characters or more of those.
The list is a file rather than a run-time dependency on zxcvbn: what is refused is fixed and
reviewable in the repository, French entries could be added, and nothing is computed per request
but a few set look-ups.

argon2id: m=19456 KiB, t=2, p=1 (about 25 ms here) is one of OWASP's equivalent settings. Hash
what `domain` normalised (the password in NFKC, the answer folded), and normalise the same way
before verifying. A future login (or secret-answer check) must use `verify_and_update`, and
store the new hash it returns: hashes made with older parameters are upgraded as people log in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt"
MIN_WORD = 3  # shorter forms, names and email parts are not looked for
FEW_LETTERS = 4  # fewer letters than this besides a word: the word is looked up alone

TOO_COMMON = (
    "Ce mot de passe est trop courant : il figure, tel quel ou à des chiffres, des signes ou des "
    "substitutions près (@ pour a, 0 pour o…), parmi les mots de passe les plus utilisés ou dans un "
    "dictionnaire. Choisissez-en un autre, par exemple une phrase de plusieurs mots."
)
TOO_PERSONAL = (
    "Le mot de passe ne doit reprendre ni votre nom, ni votre prénom, ni votre adresse électronique."
)

# The usual substitutions, undone. "1" and "!" stand for "i" or for "l": both are tried.
_AS_I = str.maketrans("@431!0$57", "aaeiioost")
_AS_L = str.maketrans("@431!0$57", "aaelloost")
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits, punctuation and spaces at either end
_TAIL = re.compile(r"[\W\d_]+$")
_SEPARATORS = re.compile(r"[\s._\-]+")
_LETTERS = re.compile(r"[^\W\d_]")
_WORDS = re.compile(r"[^\W\d_]+")
_NOT_WORD = re.compile(r"[\W_]+")
_SIGNS_AT_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def fold(text: str) -> str:
    """Case and accents ignored: "Françoise" → "francoise" (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (read once per process, on first use)."""
    with open(COMMON_PASSWORDS, encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


def _undone(text: str) -> set[str]:
    return {text, text.translate(_AS_I), text.translate(_AS_L)}


def base_forms(password: str) -> set[str]:
    """What a password is looked up as: whole, stripped of what surrounds it, substitutions undone."""
    folded = fold(password)
    forms = {folded}
    for trimmed in (_EDGES.sub("", folded), _TAIL.sub("", folded)):
        for undone in _undone(trimmed):
            forms.add(_EDGES.sub("", undone))
    forms |= {_SEPARATORS.sub("", form) for form in forms}
    for form in list(forms):  # a word that holds all the letters but a few: "Banana12!X" → "banana"
        letters = len(_LETTERS.findall(form))
        forms.update(word for word in _WORDS.findall(form) if letters - len(word) < FEW_LETTERS)
    if len(_LETTERS.findall(folded)) < FEW_LETTERS:  # "Ab123456!" → "123456"
        forms.add(_SIGNS_AT_EDGES.sub("", _LETTERS.sub("", folded)))
    return {form for form in forms if len(form) >= MIN_WORD}


def is_common(password: str) -> bool:
    listed = common_passwords()
    return any(form in listed for form in base_forms(password))


def personal_words(values: Iterable[str | None]) -> set[str]:
    """The words a password must not contain, from names and email addresses.

    A name gives itself (separators removed) and each of its words; an email gives its local part
    (likewise) and each label of its domain but the last ("jean.dupont@mairie-lyon.fr" →
    "jeandupont", "jean", "dupont", "mairielyon", "mairie", "lyon"). Only words of 3 characters or
    more count. Words are split at separators only, not between letters and digits: splitting
    "fleur-3fa91b2c" into "fa" and "91" would refuse passwords for what a generator put there.
    """
    words: set[str] = set()
    for value in values:
        if not value:
            continue
        folded = fold(value.strip())
        local, at, domain = folded.rpartition("@")
        parts = [local, *domain.split(".")[:-1]] if at else [folded]
        for part in parts:
            words.add(_NOT_WORD.sub("", part))
            words.update(_NOT_WORD.split(part))
    return {word for word in words if len(word) >= MIN_WORD}


def is_personal(password: str, words: set[str]) -> bool:
    """Case, accents and separators ignored ("Jean-Pierre" is in "jeanpierre!"); substitutions are
    not undone here: with names of 3 letters, that would refuse too many unrelated passwords."""
    folded = fold(password)
    return any(word in form for word in words for form in (folded, _SEPARATORS.sub("", folded)))


def weaknesses(password: str, personal: Iterable[str | None] = ()) -> list[str]:
    """Why a password that has the rule's shape is still refused (French); empty when it is not."""
    problems = []
    if is_common(password):
        problems.append(TOO_COMMON)
    if is_personal(password, personal_words(personal)):
        problems.append(TOO_PERSONAL)
    return problems


# --- hashing -------------------------------------------------------------------------------------


def make_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


def hash_secret(hasher: PasswordHasher, value: str) -> str:
    return hasher.hash(value)


def verify(hasher: PasswordHasher, stored_hash: str, value: str) -> bool:
    try:
        return hasher.verify(stored_hash, value)
    except (VerificationError, InvalidHashError):
        return False


def verify_and_update(hasher: PasswordHasher, stored_hash: str, value: str) -> tuple[bool, str | None]:
    """Whether `value` matches, and a new hash to store when the stored one used other parameters.

    `(False, None)`: wrong value (or not a hash). `(True, None)`: right, the hash is current.
    `(True, new_hash)`: right, and `stored_hash` was made with other argon2 parameters (or
    variant) than `hasher`'s: the caller stores `new_hash` in place of it, in the same step.
    """
    if not verify(hasher, stored_hash, value):
        return False, None
    if hasher.check_needs_rehash(stored_hash):
        return True, hasher.hash(value)
    return True, None
