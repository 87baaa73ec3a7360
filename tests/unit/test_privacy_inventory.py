"""docs/privacy.md against the code: every Redis key the services and the shared code write, and
every event stream, is in the inventory; every service key of the inventory still exists; the
register of processing (RGPD art. 30) has each of its parts."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

from shared import contracts
from shared.bus import DEAD_LETTERS
from shared.events import stream_for
from tests.privacy_inventory import DOC, inventory

ROOT = Path(__file__).resolve().parents[2]
PART = "{}"
# A key: a root (a word, or a part made at run time) and more parts, each after a colon, with at
# least one word among them (`{host}:{port}` is no key), and no space (a sentence is no key).
KEY = re.compile(r"^(?:\{\}|[a-z][a-z-]*)(?::(?:\{\}|[A-Za-z0-9_.-]*))+$")
WORD = re.compile(r"(?:^|:)[a-z][a-z-]+(?::|$)")
SERVICE_KEY = re.compile(r"^(?:activate|identify|structure|notify):")
KEY_ROOT = re.compile(r"^[a-z]+(?::[a-z-]+)*$")  # a prefix given to a library, or composed with more parts


def _string_constants(tree: ast.Module) -> dict[str, str]:
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            value = node.value.value
            constants.update({t.id: value for t in node.targets if isinstance(t, ast.Name)})
    return {name: value for name, value in constants.items() if isinstance(value, str)}


def key_templates(path: Path) -> set[str]:
    """The key-like strings of a module, f-strings included: each `{…}` made `{}`, but a module
    constant's name, replaced by its value; a constant named `…PREFIX` whose value is a key's
    root (`limits`, given to Flask-Limiter) stands for `prefix:{}`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _string_constants(tree)
    prefixes = {v for name, v in constants.items() if name.endswith("PREFIX") and KEY_ROOT.match(v)}
    in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    found = {f"{prefix}:{PART}" for prefix in prefixes}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                elif isinstance(value.value, ast.Name) and value.value.id in constants:
                    parts.append(constants[value.value.id])
                else:
                    parts.append(PART)
            found.add("".join(parts))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings:
            found.add(node.value)
    return {text for text in found - prefixes if KEY.match(text) and WORD.search(text)}


def code_keys() -> dict[str, Path]:
    """Every key template of services/ and shared/ (their repositories and the rest), and every
    stream: `events:<Type>` of each event of the contract, and the dead letters."""
    found: dict[str, Path] = {}
    for path in sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]):
        for template in key_templates(path):
            found.setdefault(template, path.relative_to(ROOT))
    found.pop(stream_for(PART), None)  # `events:{}`: each stream is named below
    for event_type in contracts._SCHEMAS:
        found[stream_for(event_type)] = Path("shared/contracts.py")
    found[DEAD_LETTERS] = Path("shared/bus.py")
    return found


def as_name(template: str) -> str:
    """A name the template could give: each part made `x`."""
    return template.replace(PART, "x")


def test_the_code_finds_keys_and_streams_to_check():
    keys = code_keys()
    for expected in (
        "activate:account:{}",
        "activate:contact-email-links:{}",
        "identify:registration:{}",
        "structure:by-identifier:{}:{}:{}",
        "notify:registration-emails:{}",
        "{}:seen:{}:{}",
        "limits:{}",
        "events:AccountDeactivated",
        "dead-letters",
    ):
        assert expected in keys
    assert not [k for k in keys if " " in k or "//" in k]


def test_every_key_and_stream_of_the_code_is_in_the_inventory():
    places = inventory()
    missing = sorted(
        f"{template} ({path})"
        for template, path in code_keys().items()
        if not any(place.matches(as_name(template)) for place in places)
    )
    assert missing == [], "add these to the inventory of docs/privacy.md"


def test_every_service_key_of_the_inventory_is_still_in_the_code():
    names = [as_name(template) for template in code_keys()]
    stale = sorted(
        written
        for place in inventory()
        for written, pattern in zip(place.names, place.patterns, strict=True)
        if SERVICE_KEY.match(written) and not any(fnmatch.fnmatchcase(n, pattern) for n in names)
    )
    assert stale == [], "these keys are no longer written by the code: remove them from docs/privacy.md"


def test_each_place_with_personal_data_says_how_long_and_what_erasure_does():
    for place in inventory():
        assert place.retention, place.names
        if place.personal == "no":
            assert place.on_erasure in ("no", "kept", "deleted"), place.names
        else:
            assert place.on_erasure != "no", f"{place.names}: personal data, and nothing said of erasure"


def test_the_register_of_processing_has_every_part_article_30_asks_for():
    text = DOC.read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip().casefold() for line in text.splitlines() if line.startswith("##")}
    for part in (
        "controller",
        "purposes",
        "legal basis",
        "categories of people",
        "categories of data",
        "recipients",
        "retention",
        "transfers",
        "security measures",
    ):
        assert any(heading.endswith(part) or part in heading for heading in headings), part
