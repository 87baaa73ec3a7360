"""A local stand-in for the INSEE API Sirene 3.11 and recherche-entreprises: a threaded HTTP
server on 127.0.0.1 that answers what each test scripts, in the documented formats, and records
every request it gets with its headers.

    server = SireneHttpServer().start()
    server.script("/siret/55210055400013", Reply(body=insee_answer("55210055400013")))
    server.script("/search", Reply(429, headers={"Retry-After": "30"}), Reply(body=recherche_page([])))

A path's replies are given in turn, the last one again and again; a path with no script gets
INSEE's 404. `Reply(delay=…)` answers late (the wait ends when the server stops), a string or
bytes body is sent as it is (malformed JSON), anything else as JSON.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class SireneHttpServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._received: list[Received] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SireneHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def script(self, path: str, *replies: Reply) -> None:
        """The replies to GET `path` (the query string aside), in turn; the last one repeats."""
        if not replies:
            raise ValueError("script at least one reply")
        with self._lock:
            self._scripts[path] = list(replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def received_on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(path)
            if not replies:
                return Reply(404, insee_error(404, "Aucun élément trouvé"))
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                with server._lock:
                    server._received.append(
                        Received(
                            "GET",
                            parts.path,
                            parse_qs(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()},
                        )
                    )
                reply = server._next_reply(parts.path)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                body = reply.body
                if isinstance(body, str):
                    body = body.encode()
                elif not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
                pass

        return Handler


# --- the INSEE API Sirene 3.11's answers --------------------------------------------------------


def insee_error(status: int, message: str) -> dict[str, Any]:
    return {"header": {"statut": status, "message": message}}


def insee_unit(**fields: Any) -> dict[str, Any]:
    """`uniteLegale` of `GET /siret/{siret}`: a company by default."""
    unit: dict[str, Any] = {
        "etatAdministratifUniteLegale": "A",
        "statutDiffusionUniteLegale": "O",
        "dateCreationUniteLegale": "1955-01-01",
        "categorieJuridiqueUniteLegale": "5710",
        "denominationUniteLegale": "MICHELIN ET CIE",
        "sigleUniteLegale": None,
        "sexeUniteLegale": None,
        "nomUniteLegale": None,
        "nomUsageUniteLegale": None,
        "prenom1UniteLegale": None,
        "prenomUsuelUniteLegale": None,
        "activitePrincipaleUniteLegale": "22.11Z",
        "nicSiegeUniteLegale": "00013",
    }
    unit.update(fields)
    return unit


def insee_address(**fields: Any) -> dict[str, Any]:
    address: dict[str, Any] = {
        "complementAdresseEtablissement": None,
        "numeroVoieEtablissement": "23",
        "indiceRepetitionEtablissement": None,
        "dernierNumeroVoieEtablissement": None,
        "indiceRepetitionDernierNumeroVoieEtablissement": None,
        "typeVoieEtablissement": "PL",
        "libelleVoieEtablissement": "DES CARMES DECHAUX",
        "codePostalEtablissement": "63000",
        "libelleCommuneEtablissement": "CLERMONT-FERRAND",
        "libelleCommuneEtrangerEtablissement": None,
        "distributionSpecialeEtablissement": None,
        "codeCommuneEtablissement": "63113",
        "codeCedexEtablissement": None,
        "libelleCedexEtablissement": None,
        "codePaysEtrangerEtablissement": None,
        "libellePaysEtrangerEtablissement": None,
    }
    address.update(fields)
    return address


def insee_period(state: str = "A", date_fin: str | None = None, **fields: Any) -> dict[str, Any]:
    period: dict[str, Any] = {
        "dateFin": date_fin,
        "dateDebut": "2008-01-01",
        "etatAdministratifEtablissement": state,
        "changementEtatAdministratifEtablissement": False,
        "enseigne1Etablissement": None,
        "denominationUsuelleEtablissement": None,
        "changementDenominationUsuelleEtablissement": False,
        "activitePrincipaleEtablissement": "22.11Z",
        "caractereEmployeurEtablissement": "O",
    }
    period.update(fields)
    return period


def insee_answer(
    siret: str,
    *,
    unit: Mapping[str, Any] | None = None,
    address: Mapping[str, Any] | None = None,
    periods: Sequence[Mapping[str, Any]] | None = None,
    diffusion: str = "O",
) -> dict[str, Any]:
    """The answer to `GET /siret/{siret}`: an open establishment of a company by default."""
    return {
        "header": {"statut": 200, "message": "ok"},
        "etablissement": {
            "siren": siret[:9],
            "nic": siret[9:],
            "siret": siret,
            "statutDiffusionEtablissement": diffusion,
            "dateCreationEtablissement": "1955-01-01",
            "etablissementSiege": True,
            "nombrePeriodesEtablissement": len(periods) if periods else 1,
            "uniteLegale": dict(unit) if unit is not None else insee_unit(),
            "adresseEtablissement": dict(address) if address is not None else insee_address(),
            "adresse2Etablissement": {},
            "periodesEtablissement": [dict(p) for p in periods] if periods is not None else [insee_period()],
        },
    }


# --- recherche-entreprises' answers ---------------------------------------------------------------


def recherche_siege(siret: str, **fields: Any) -> dict[str, Any]:
    """`siege`: a head office with every address field."""
    siege: dict[str, Any] = {
        "siret": siret,
        "activite_principale": "22.11Z",
        "adresse": "23 PLACE DES CARMES DECHAUX 63000 CLERMONT-FERRAND",
        "numero_voie": "23",
        "indice_repetition": None,
        "type_voie": "PL",
        "libelle_voie": "DES CARMES DECHAUX",
        "complement_adresse": None,
        "distribution_speciale": None,
        "code_postal": "63000",
        "commune": "63113",
        "libelle_commune": "CLERMONT-FERRAND",
        "libelle_commune_etranger": None,
        "libelle_pays_etranger": None,
        "cedex": None,
        "libelle_cedex": None,
        "est_siege": True,
        "etat_administratif": "A",
        "nom_commercial": None,
        "liste_enseignes": None,
        "date_creation": "1955-01-01",
    }
    siege.update(fields)
    return siege


def recherche_matching(siret: str, **fields: Any) -> dict[str, Any]:
    """One of `matching_etablissements`: its address in one line."""
    establishment: dict[str, Any] = {
        "siret": siret,
        "activite_principale": "22.11Z",
        "adresse": "ZI DE LADOUX 23 RUE DE LA VAISSIERE 63118 CEBAZAT",
        "code_postal": "63118",
        "commune": "63063",
        "libelle_commune": "CEBAZAT",
        "est_siege": False,
        "etat_administratif": "A",
        "nom_commercial": None,
        "liste_enseignes": None,
        "date_creation": "1980-01-01",
    }
    establishment.update(fields)
    return establishment


def recherche_unit(
    siren: str,
    *,
    siege: Mapping[str, Any] | None = None,
    matching: Sequence[Mapping[str, Any]] = (),
    **fields: Any,
) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "siren": siren,
        "nom_complet": "MICHELIN ET CIE",
        "nom_raison_sociale": "MICHELIN ET CIE",
        "sigle": None,
        "nombre_etablissements": 1 + len(matching),
        "nombre_etablissements_ouverts": 1 + len(matching),
        "siege": dict(siege) if siege is not None else recherche_siege(f"{siren}00013"),
        "matching_etablissements": [dict(m) for m in matching],
        "etat_administratif": "A",
        "nature_juridique": "5710",
        "statut_diffusion": "O",
    }
    unit.update(fields)
    return unit


def recherche_page(results: Sequence[Mapping[str, Any]], total: int | None = None, per_page: int = 10):
    total = len(results) if total is None else total
    return {
        "results": [dict(r) for r in results],
        "total_results": total,
        "page": 1,
        "per_page": per_page,
        "total_pages": max(1, -(-total // per_page)),
    }


NON_DIFFUSIBLE = "[NON-DIFFUSIBLE]"


def recherche_non_diffusible(unit: dict[str, Any]) -> dict[str, Any]:
    """The unit as the API shows a non-diffusible one: names and streets replaced."""
    hidden = dict(unit, statut_diffusion="P", nom_complet=NON_DIFFUSIBLE, nom_raison_sociale=NON_DIFFUSIBLE)
    street = (
        "adresse",
        "numero_voie",
        "indice_repetition",
        "type_voie",
        "libelle_voie",
        "complement_adresse",
        "distribution_speciale",
        "code_postal",
        "nom_commercial",
        "cedex",
        "libelle_cedex",
    )

    def hide(establishment: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (NON_DIFFUSIBLE if k in street else v) for k, v in establishment.items()}

    hidden["siege"] = hide(unit["siege"])
    hidden["matching_etablissements"] = [hide(m) for m in unit["matching_etablissements"]]
    return hidden
