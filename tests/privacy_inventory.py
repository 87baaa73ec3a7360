"""docs/privacy.md's inventory as the tests read it.

Each row of its table names places (the first column: Redis key patterns, stream names, in
backquotes; `{…}` stands for any part), whether they hold personal data (the first word of the
second column: `yes` in clear, `hashed` or `sealed` only, `no`), and what erasing an account
does to them (the first word of the last column: `erased`, `deleted`, `kept`, or `no` when there
is nothing to erase). The unit test checks the table against the code; the end-to-end scan
checks each place where it finds a person against the row that names the place.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"
PERSONAL_KINDS = ("yes", "hashed", "sealed", "no")
ERASURE_KINDS = ("erased", "deleted", "kept", "no")

_BACKQUOTED = re.compile(r"`([^`]+)`")
_PART = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Place:
    """One row of the inventory."""

    patterns: tuple[str, ...]  # fnmatch patterns, `{…}` made `*`
    names: tuple[str, ...]  # as written
    personal: str  # PERSONAL_KINDS
    on_erasure: str  # ERASURE_KINDS
    retention: str

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def specificity(self, name: str) -> int:
        """How much of `name` the best matching pattern spells out (its characters but `*`)."""
        return max(len(p.replace("*", "")) for p in self.patterns if fnmatch.fnmatchcase(name, p))


def _first_word(cell: str) -> str:
    words = re.findall(r"[a-zà-ÿ]+", cell.casefold())
    return words[0] if words else ""


def pattern_of(written: str) -> str:
    """`activate:account:{registration_id}` → `activate:account:*`."""
    return _PART.sub("*", written)


def inventory(doc: Path = DOC) -> list[Place]:
    """The rows of the table whose header begins with « Key or stream »."""
    places: list[Place] = []
    in_table = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("| Key or stream"):
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            if places:
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-", " ", ":"}:
            continue
        names = tuple(_BACKQUOTED.findall(cells[0]))
        personal, on_erasure = _first_word(cells[1]), _first_word(cells[-1])
        assert names, f"docs/privacy.md: a row names no place: {line}"
        assert personal in PERSONAL_KINDS, f"docs/privacy.md: {names[0]}: personal data {cells[1]!r}"
        assert on_erasure in ERASURE_KINDS, f"docs/privacy.md: {names[0]}: on erasure {cells[-1]!r}"
        places.append(Place(tuple(pattern_of(n) for n in names), names, personal, on_erasure, cells[-2]))
    assert places, "docs/privacy.md has no inventory table (a header beginning « | Key or stream »)"
    return places


def place_of(name: str, places: list[Place]) -> Place | None:
    """The row that names `name` most precisely, if any."""
    matching = [place for place in places if place.matches(name)]
    return max(matching, key=lambda place: place.specificity(name)) if matching else None
