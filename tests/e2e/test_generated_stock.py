"""The issue's « done when »: with SIRENE_DIR pointing at INSEE-format files (generated here, zipped
as published), `make sirene-import` then `make run` let an open SIRET of those files go through
the four steps with its pre-fill; the company search finds it by name; an unknown SIRET is refused
with the date of the files' data."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from bench.sirene import write_stock
from services.structure.sirene.model import Establishment
from services.structure.sirene.stock_rows import (
    ESTABLISHMENTS_FILE,
    LEGAL_UNITS_FILE,
    establishment_from_rows,
)
from tests.e2e.conftest import ROOT, start_system
from tests.e2e.test_flow import link_in_mail_to, wait_status
from tests.integration.test_structure_support import unknown_siret

pytestmark = pytest.mark.e2e

PASSWORD = "Facture-2026"
UNKNOWN_AS_OF_FILES = (
    "Ce numéro SIRET est inconnu de la base SIRENE de l'INSEE (données à jour au 31/10/2025)."
)


def rows(directory: Path, csv_name: str) -> list[dict[str, str]]:
    """A stock file's rows, read from its zip as INSEE publishes it."""
    with zipfile.ZipFile(directory / csv_name.replace(".csv", ".zip")) as archive:
        (member,) = archive.namelist()
        with archive.open(member) as raw:
            return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))


def open_establishments(directory: Path) -> dict[str, Establishment]:
    """Every open, diffusible establishment of the files, joined with its unit by the test itself."""
    units = {row["siren"]: row for row in rows(directory, LEGAL_UNITS_FILE)}
    found = {}
    for row in rows(directory, ESTABLISHMENTS_FILE):
        establishment = establishment_from_rows(row, units.get(row["siren"]))
        if establishment.open and establishment.diffusible and establishment.address:
            found[establishment.siret] = establishment
    return found


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sirene-files")
    write_stock(directory, 3000, zipped=True, seed=7, as_of="2025-10-31")
    return directory


@pytest.fixture(scope="module")
def system_on_generated_files(generated, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("var-generated")
    env = {**os.environ, "SIRENE_DIR": str(generated), "SIRENE_DB": str(var_dir / "sirene.sqlite3")}
    imported = subprocess.run(  # what `make sirene-import` runs
        [sys.executable, "-m", "services.structure.sirene.stock_import"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    with start_system(var_dir, SIRENE_DIR=env["SIRENE_DIR"], SIRENE_DB=env["SIRENE_DB"]) as system:
        yield system


def test_an_open_siret_of_the_files_goes_through_the_four_steps(generated, system_on_generated_files):
    system = system_on_generated_files
    siret, known = random.Random(2026).choice(sorted(open_establishments(generated).items()))
    email = "gen.stock@example.fr"
    mails_before = len(system.smtp.recorder.messages)

    # « Je ne connais pas mon SIRET »: the company is found by its name and postcode.
    words = known.company_name.split()
    found = requests.get(
        system.url("/structure/api/companies"),
        params={"q": " ".join(words[-2:]), "postal_code": known.postal_code},
        timeout=10,
    )
    assert found.status_code == 200, found.text
    assert siret in [hit["siret"] for hit in found.json()["results"]]

    started = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier": siret},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    registration_id = started.json()["registration_id"]

    form = requests.get(system.url(f"/structure/api/registrations/{registration_id}"), timeout=30)
    assert form.status_code == 200, form.text
    assert (form.json()["prefill_source"], form.json()["verified"]) == ("stock", True)
    prefill = form.json()["prefill"]
    assert {k: prefill[k] for k in ("company_name", "address", "postal_code", "city")} == {
        "company_name": known.company_name,
        "address": known.address,
        "postal_code": known.postal_code,
        "city": known.city,
    }
    confirmed = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"),
        json={
            "structure": {k: v for k, v in prefill.items() if v},
            "user": {"last_name": "Martin", "first_name": "Paul", "login_email_confirmation": email},
            "features": {"payment_requests": True, "dume": False},
        },
        timeout=10,
    )
    assert confirmed.status_code == 201, confirmed.text

    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={"workspaces": ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"]},
        timeout=30,
    )
    assert chosen.status_code == 201, chosen.text
    token = link_in_mail_to(system, email, mails_before).rsplit("/", 1)[1]
    question = requests.get(system.url(f"/activate/api/activations/{token}"), timeout=10).json()[
        "secret_questions"
    ][0]
    activated = requests.post(
        system.url(f"/activate/api/activations/{token}"),
        json={
            "password": PASSWORD,
            "password_confirmation": PASSWORD,
            "secret_question": question,
            "secret_answer": "Médor",
        },
        timeout=10,
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["structure_id"] == confirmed.json()["structure_id"]
    assert wait_status(system, registration_id, "activated") == "activated"


def test_a_siret_the_files_do_not_know_is_refused_with_their_date(system_on_generated_files):
    system = system_on_generated_files
    started = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": "inconnu@example.fr", "identifier": unknown_siret()},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    registration_id = started.json()["registration_id"]
    form = requests.get(system.url(f"/structure/api/registrations/{registration_id}"), timeout=30)
    assert form.status_code == 422
    (message,) = form.json()["errors"]["identifier"]
    assert message == UNKNOWN_AS_OF_FILES
