"""recherche-entreprises as a source and a search, against a local server answering in its
format, with the shared budget, back-off and cache in a real Redis."""

from __future__ import annotations

import logging

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.structure.sirene.model import MASKED, CompanyHit, CompanyQuery, Establishment, SourceUnavailable
from services.structure.sirene.recherche import RechercheEntreprises
from tests.clock import Clock
from tests.servers import free_port
from tests.sirene_http import (
    Reply,
    SireneHttpServer,
    recherche_matching,
    recherche_non_diffusible,
    recherche_page,
    recherche_siege,
    recherche_unit,
)

SIREN = "855200507"
HEAD_OFFICE = "85520050700046"
BRANCH = "85520050700129"
NOBODY = "12345678900011"


@pytest.fixture
def api():
    server = SireneHttpServer().start()
    server.script("/search", Reply(body=recherche_page([])))
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recherche(api, redis_client, clock) -> RechercheEntreprises:
    return client_of(api, redis_client, clock)


def client_of(api: SireneHttpServer, client: redis.Redis, clock: Clock, **options) -> RechercheEntreprises:
    return RechercheEntreprises(api.url, client, clock=clock, **options)


def unit(**fields) -> dict:
    return recherche_unit(
        SIREN,
        siege=recherche_siege(HEAD_OFFICE),
        matching=[recherche_matching(BRANCH, nom_commercial="ATELIER DE CEBAZAT")],
        **fields,
    )


def answer(*units: dict, total: int | None = None) -> Reply:
    return Reply(body=recherche_page(units, total))


# --- look-ups ------------------------------------------------------------------------------------


def test_a_branch_is_found_among_the_matching_establishments(api, recherche):
    api.script("/search", answer(unit()))

    assert recherche.lookup(BRANCH) == Establishment(
        siret=BRANCH,
        open=True,
        diffusible=True,
        company_name="MICHELIN ET CIE",
        label="ATELIER DE CEBAZAT",
        address="ZI DE LADOUX 23 RUE DE LA VAISSIERE",
        address_complement_1="",
        address_complement_2="",
        postal_code="63118",
        city="CEBAZAT",
    )
    [request] = api.received
    assert (request.path, request.param("q")) == ("/search", BRANCH)


def test_the_head_office_is_read_from_its_address_fields(api, recherche):
    siege = recherche_siege(
        HEAD_OFFICE,
        numero_voie="12",
        indice_repetition="T",
        type_voie="BD",
        libelle_voie="DES ETATS-UNIS",
        complement_adresse="BATIMENT B",
        distribution_speciale="BP 42",
        liste_enseignes=["PNEUS DU CENTRE"],
    )
    api.script(
        "/search", answer(recherche_unit(SIREN, siege=siege, matching=[recherche_matching(HEAD_OFFICE)]))
    )

    found = recherche.lookup(HEAD_OFFICE)

    assert (found.address, found.address_complement_1, found.address_complement_2, found.label) == (
        "12 TER BOULEVARD DES ETATS-UNIS",
        "BATIMENT B",
        "BP 42",
        "PNEUS DU CENTRE",
    )


def test_a_siret_in_no_result_is_unknown_and_remembered(api, recherche, redis_client):
    api.script("/search", answer(unit()))

    assert recherche.lookup(NOBODY) is None
    assert recherche.lookup(NOBODY) is None

    assert len(api.received) == 1
    assert 86_000 < redis_client.ttl(f"structure:sirene:cache:recherche:{NOBODY}") <= 86_400


def test_a_cached_answer_is_given_to_any_process_without_a_request(api, recherche, redis_client, clock):
    api.script("/search", answer(unit()))
    first = recherche.lookup(BRANCH)

    assert client_of(api, redis_client, clock).lookup(BRANCH) == first
    assert len(api.received) == 1


def test_a_closed_establishment_and_a_ceased_unit_are_closed(api, recherche):
    closed = recherche_unit(SIREN, matching=[recherche_matching(BRANCH, etat_administratif="F")])
    api.script("/search", answer(closed), answer(unit(etat_administratif="C")))

    assert recherche.lookup(BRANCH).open is False
    assert recherche.lookup(HEAD_OFFICE).open is False


def test_a_non_diffusible_unit_gives_only_its_city(api, recherche):
    api.script("/search", answer(recherche_non_diffusible(unit())))

    assert recherche.lookup(BRANCH) == Establishment(BRANCH, True, False, "", "", "", "", "", "", "CEBAZAT")


def test_without_statut_diffusion_masked_names_say_non_diffusible(api, recherche):
    hidden = recherche_non_diffusible(unit())
    del hidden["statut_diffusion"]
    api.script("/search", answer(hidden))

    found = recherche.lookup(HEAD_OFFICE)

    assert (found.diffusible, found.company_name, found.address) == (False, "", "")


def test_a_foreign_head_office_gives_its_foreign_city(api, recherche):
    siege = recherche_siege(
        HEAD_OFFICE,
        adresse="10 KOENIGSALLEE DUSSELDORF ALLEMAGNE",
        numero_voie="10",
        type_voie=None,
        libelle_voie="KOENIGSALLEE",
        code_postal=None,
        commune=None,
        libelle_commune=None,
        libelle_commune_etranger="DUSSELDORF",
        libelle_pays_etranger="ALLEMAGNE",
    )
    api.script("/search", answer(recherche_unit(SIREN, siege=siege)))

    found = recherche.lookup(HEAD_OFFICE)

    assert (found.address, found.postal_code, found.city) == ("10 KOENIGSALLEE", "", "DUSSELDORF")


def test_the_data_is_dated_today(recherche, clock):
    assert recherche.as_of() == "2027-01-15"


# --- searches ------------------------------------------------------------------------------------


def test_a_search_asks_for_the_words_and_the_postal_code_and_lists_establishments(api, recherche):
    other = recherche_unit(
        "552100554", nom_complet="SOCIETE DES PNEUS (SDP)", nom_raison_sociale="SOCIETE DES PNEUS"
    )
    api.script("/search", answer(unit(), other, total=2))

    results = recherche.search(CompanyQuery("michelin", postal_code="63118", city="Cébazat", limit=50))

    [request] = api.received
    assert (request.param("q"), request.param("code_postal"), request.param("per_page")) == (
        "michelin Cébazat",
        "63118",
        "25",
    )
    # The first unit's branch is in 63118; the second lists no match, and its head office is elsewhere.
    assert results.results == [
        CompanyHit(BRANCH, "MICHELIN ET CIE", "ZI DE LADOUX 23 RUE DE LA VAISSIERE", "63118", "CEBAZAT", True)
    ]
    assert results.total == 2


def test_a_search_without_matching_establishments_lists_the_head_office(api, recherche):
    api.script("/search", answer(recherche_unit(SIREN, siege=recherche_siege(HEAD_OFFICE)), total=1))

    results = recherche.search(CompanyQuery("michelin", limit=3))

    assert [(h.siret, h.address, h.postal_code) for h in results.results] == [
        (HEAD_OFFICE, "23 PLACE DES CARMES DECHAUX", "63000")
    ]
    assert api.received[0].param("per_page") == "3"
    assert api.received[0].param("code_postal") is None


def test_a_non_diffusible_hit_has_its_name_masked_and_no_street(api, recherche):
    api.script("/search", answer(recherche_non_diffusible(unit())))

    results = recherche.search(CompanyQuery("85520050700129"))

    assert results.results == [CompanyHit(BRANCH, MASKED, "", "", "CEBAZAT", True)]


def test_the_same_search_again_is_answered_from_the_cache(api, recherche, redis_client):
    api.script("/search", answer(unit()))

    first = recherche.search(CompanyQuery("Michelin ", postal_code="63118"))
    again = recherche.search(CompanyQuery("michelin", postal_code="63118"))

    assert again == first
    assert len(api.received) == 1
    [key] = redis_client.keys("structure:sirene:search:recherche:*")
    assert "michelin" not in key.lower()
    assert 0 < redis_client.ttl(key) <= 300


def test_a_query_too_short_for_the_api_is_not_sent(api, recherche):
    assert recherche.search(CompanyQuery("mi", postal_code="63000")).results == []
    assert recherche.search(CompanyQuery(" ")).results == []
    assert api.received == []


def test_a_postal_code_alone_is_a_search(api, recherche):
    api.script("/search", answer(unit()))

    recherche.search(CompanyQuery("", postal_code="63118"))

    [request] = api.received
    assert (request.param("q"), request.param("code_postal")) == (None, "63118")


# --- the shared budget and back-off --------------------------------------------------------------


def test_the_8th_request_in_a_second_is_not_sent_whichever_process_asks(api, redis_client, clock):
    first, second = client_of(api, redis_client, clock), client_of(api, redis_client, clock)
    sirets = [f"{n:014d}" for n in range(1, 9)]

    for n, siret in enumerate(sirets[:7]):
        clock.advance(0.1)
        assert (first if n % 2 else second).lookup(siret) is None
    with pytest.raises(SourceUnavailable):
        second.lookup(sirets[7])
    with pytest.raises(SourceUnavailable):
        first.search(CompanyQuery("michelin"))
    assert len(api.received) == 7

    clock.advance(0.45)  # a second after the first request: its slot is free again
    assert first.lookup(sirets[7]) is None
    assert len(api.received) == 8


def test_a_429_stops_every_process_for_retry_after(api, redis_client, clock):
    first, second = client_of(api, redis_client, clock), client_of(api, redis_client, clock)
    api.script("/search", Reply(429, {"erreur": "Trop de requêtes"}, {"Retry-After": "30"}), answer(unit()))

    with pytest.raises(SourceUnavailable):
        first.lookup(BRANCH)
    clock.advance(29)
    with pytest.raises(SourceUnavailable):
        second.search(CompanyQuery("michelin"))
    assert len(api.received) == 1

    clock.advance(2)
    assert second.lookup(BRANCH).siret == BRANCH
    assert len(api.received) == 2


def test_without_retry_after_the_back_off_starts_at_a_second_and_grows(api, recherche, clock):
    too_many = Reply(429, {"erreur": "Trop de requêtes"})
    api.script("/search", too_many, too_many, answer(unit()))

    with pytest.raises(SourceUnavailable):
        recherche.lookup(BRANCH)
    clock.advance(1.1)
    with pytest.raises(SourceUnavailable):  # sent: 429 again, now 2 s
        recherche.lookup(BRANCH)
    clock.advance(1.1)
    with pytest.raises(SourceUnavailable):  # not sent
        recherche.lookup(BRANCH)
    clock.advance(1)
    assert recherche.lookup(BRANCH).siret == BRANCH
    assert len(api.received) == 3


# --- what makes it unavailable -------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 400, 404])
def test_an_error_status_is_unavailable_and_not_remembered(api, recherche, status):
    api.script("/search", Reply(status, {"erreur": "Erreur"}), answer(unit()))

    with pytest.raises(SourceUnavailable):
        recherche.lookup(BRANCH)
    assert recherche.lookup(BRANCH).siret == BRANCH


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        {"results": [], "page": 1},
        {"results": "none", "total_results": 0},
        {"results": [["85520050700129"]], "total_results": 1},
        recherche_page([recherche_unit(SIREN, siege=recherche_siege(HEAD_OFFICE, etat_administratif=None))]),
        recherche_page([recherche_unit(SIREN, matching=[recherche_matching("8552005070012")])]),
    ],
    ids=["malformed", "no-total", "results-not-a-list", "result-not-an-object", "no-state", "bad-siret"],
)
def test_an_answer_not_as_documented_is_unavailable(api, recherche, body):
    api.script("/search", Reply(200, body))

    with pytest.raises(SourceUnavailable):
        recherche.search(CompanyQuery("michelin"))


def test_a_slow_answer_is_unavailable(api, redis_client, clock):
    recherche = client_of(api, redis_client, clock, read_timeout=0.2)
    api.script("/search", Reply(body=recherche_page([unit()]), delay=5))

    with pytest.raises(SourceUnavailable):
        recherche.lookup(BRANCH)


def test_a_server_that_does_not_listen_is_unavailable(redis_client, clock):
    recherche = RechercheEntreprises(f"http://127.0.0.1:{free_port()}", redis_client, clock=clock)

    with pytest.raises(SourceUnavailable):
        recherche.search(CompanyQuery("michelin"))


def test_without_redis_it_is_unavailable_and_sends_nothing(api, clock):
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    recherche = client_of(api, dead, clock)

    with pytest.raises(SourceUnavailable):
        recherche.lookup(BRANCH)
    with pytest.raises(SourceUnavailable):
        recherche.search(CompanyQuery("michelin"))
    assert api.received == []


def test_failures_are_logged_without_the_query(api, recherche, caplog):
    api.script("/search", Reply(503, {"erreur": "indisponible"}))

    with caplog.at_level(logging.WARNING), pytest.raises(SourceUnavailable) as raised:
        recherche.search(CompanyQuery("jean dupont boulanger"))

    assert "503" in caplog.text
    assert "dupont" not in caplog.text.lower()
    assert "dupont" not in str(raised.value).lower()
