"""The INSEE API Sirene 3.11 source against a local server answering in its formats, with the
shared budget, back-off and cache in a real Redis."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.structure.sirene.http_budget import Budget
from services.structure.sirene.insee import KEY_HEADER, InseeApi
from services.structure.sirene.model import Establishment, SourceUnavailable
from tests.clock import Clock
from tests.servers import free_port
from tests.sirene_http import (
    Reply,
    SireneHttpServer,
    insee_address,
    insee_answer,
    insee_error,
    insee_period,
    insee_unit,
)

SIRET = "55210055400013"
OTHER = "55210055400021"
KEY = "test-insee-key"


@pytest.fixture
def api():
    server = SireneHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def insee(api, redis_client, clock) -> InseeApi:
    return client_of(api, redis_client, clock)


def client_of(api: SireneHttpServer, client: redis.Redis, clock: Clock, **options) -> InseeApi:
    """One process's client: several share the server's budget through Redis."""
    return InseeApi(api.url, KEY, client, clock=clock, **options)


def path(siret: str) -> str:
    return f"/siret/{siret}"


# --- what an answer says -------------------------------------------------------------------------


def test_an_open_establishment_of_a_company(api, insee):
    api.script(path(SIRET), Reply(body=insee_answer(SIRET)))

    assert insee.lookup(SIRET) == Establishment(
        siret=SIRET,
        open=True,
        diffusible=True,
        company_name="MICHELIN ET CIE",
        label="",
        address="23 PLACE DES CARMES DECHAUX",
        address_complement_1="",
        address_complement_2="",
        postal_code="63000",
        city="CLERMONT-FERRAND",
    )
    [request] = api.received
    assert request.path == "/siret/55210055400013"
    assert request.headers[KEY_HEADER.lower()] == KEY


def test_the_current_period_says_closed_whatever_the_older_ones_say(api, insee):
    periods = [
        insee_period("A", "2015-06-30"),
        insee_period("F", None, dateDebut="2015-07-01"),  # the current one, not listed first
        insee_period("A", "2007-12-31"),
    ]
    api.script(path(SIRET), Reply(body=insee_answer(SIRET, periods=periods)))

    assert insee.lookup(SIRET).open is False


def test_an_open_establishment_of_a_ceased_unit_is_closed(api, insee):
    api.script(
        path(SIRET), Reply(body=insee_answer(SIRET, unit=insee_unit(etatAdministratifUniteLegale="C")))
    )

    assert insee.lookup(SIRET).open is False


def test_an_individual_goes_by_the_name_in_use_and_the_sign_of_the_current_period(api, insee):
    person = insee_unit(
        categorieJuridiqueUniteLegale="1000",
        denominationUniteLegale=None,
        sexeUniteLegale="F",
        nomUniteLegale="DUPONT",
        nomUsageUniteLegale="MARTIN",
        prenom1UniteLegale="MARIE",
        prenomUsuelUniteLegale="MARIE",
    )
    periods = [insee_period("A", None, enseigne1Etablissement="AU BON PAIN"), insee_period("A", "2010-01-01")]
    address = insee_address(
        numeroVoieEtablissement="4",
        indiceRepetitionEtablissement="B",
        typeVoieEtablissement="RUE",
        libelleVoieEtablissement="DU FOUR",
        complementAdresseEtablissement="BATIMENT A",
        distributionSpecialeEtablissement="BP 12",
    )
    api.script(path(SIRET), Reply(body=insee_answer(SIRET, unit=person, periods=periods, address=address)))

    found = insee.lookup(SIRET)

    assert found.company_name == "MADAME MARIE MARTIN"
    assert found.label == "AU BON PAIN"
    assert (found.address, found.address_complement_1, found.address_complement_2) == (
        "4 BIS RUE DU FOUR",
        "BATIMENT A",
        "BP 12",
    )


def test_a_non_diffusible_unit_gives_only_its_postal_code_and_city(api, insee):
    masked = insee_unit(
        statutDiffusionUniteLegale="P",
        denominationUniteLegale=None,
        nomUniteLegale="[ND]",
        nomUsageUniteLegale="[ND]",
        prenom1UniteLegale="[ND]",
        prenomUsuelUniteLegale="[ND]",
        sexeUniteLegale="[ND]",
    )
    address = insee_address(
        numeroVoieEtablissement="[ND]", typeVoieEtablissement="[ND]", libelleVoieEtablissement="[ND]"
    )
    api.script(path(SIRET), Reply(body=insee_answer(SIRET, unit=masked, address=address, diffusion="P")))

    assert insee.lookup(SIRET) == Establishment(
        SIRET, True, False, "", "", "", "", "", "63000", "CLERMONT-FERRAND"
    )


def test_a_non_diffusible_establishment_of_a_diffusible_unit_shows_no_name_or_street(api, insee):
    api.script(path(SIRET), Reply(body=insee_answer(SIRET, diffusion="P")))

    found = insee.lookup(SIRET)

    assert (found.diffusible, found.company_name, found.address) == (False, "", "")
    assert (found.postal_code, found.city) == ("63000", "CLERMONT-FERRAND")


def test_a_foreign_address_gives_its_foreign_city(api, insee):
    address = insee_address(
        numeroVoieEtablissement="10",
        typeVoieEtablissement=None,
        libelleVoieEtablissement="KOENIGSALLEE",
        codePostalEtablissement=None,
        libelleCommuneEtablissement=None,
        codeCommuneEtablissement=None,
        libelleCommuneEtrangerEtablissement="DUSSELDORF",
        codePaysEtrangerEtablissement="99109",
        libellePaysEtrangerEtablissement="ALLEMAGNE",
    )
    api.script(path(SIRET), Reply(body=insee_answer(SIRET, address=address)))

    found = insee.lookup(SIRET)

    assert (found.address, found.postal_code, found.city) == ("10 KOENIGSALLEE", "", "DUSSELDORF")


def test_the_data_is_dated_today(insee, clock):
    clock.now = 1_800_000_000.0  # 2027-01-15 08:00 UTC

    assert insee.as_of() == "2027-01-15"


# --- unknown, and the cache ------------------------------------------------------------------------


def test_a_404_is_unknown_and_remembered_for_a_day(api, insee, redis_client):
    api.script(path(SIRET), Reply(404, insee_error(404, "Aucun élément trouvé pour le siret 55210055400013")))

    assert insee.lookup(SIRET) is None
    assert insee.lookup(SIRET) is None

    assert len(api.received) == 1
    assert 86_000 < redis_client.ttl(f"structure:sirene:cache:insee:{SIRET}") <= 86_400


def test_a_known_establishment_is_answered_from_the_cache_by_any_process(api, insee, redis_client, clock):
    api.script(path(SIRET), Reply(body=insee_answer(SIRET)))
    first = insee.lookup(SIRET)

    assert client_of(api, redis_client, clock).lookup(SIRET) == first
    assert len(api.received) == 1


def test_a_404_in_another_format_is_not_read_as_unknown(api, insee):
    api.script(path(SIRET), Reply(404, "<html>Not Found</html>"))

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)


def test_a_malformed_siret_is_unknown_without_asking(api, insee):
    assert insee.lookup("5521005540001") is None
    assert insee.lookup("../../siren/55210055") is None
    assert api.received == []


# --- 429: a back-off shared by every process ------------------------------------------------------


def test_a_429_stops_every_process_for_retry_after(api, redis_client, clock):
    first, second = client_of(api, redis_client, clock), client_of(api, redis_client, clock)
    api.script(path(SIRET), Reply(429, insee_error(429, "Too Many Requests"), {"Retry-After": "40"}))
    api.script(path(OTHER), Reply(body=insee_answer(OTHER)))

    with pytest.raises(SourceUnavailable):
        first.lookup(SIRET)
    clock.advance(39)
    with pytest.raises(SourceUnavailable):
        second.lookup(OTHER)
    assert [r.path for r in api.received] == [path(SIRET)]

    clock.advance(2)
    assert second.lookup(OTHER).siret == OTHER
    assert [r.path for r in api.received] == [path(SIRET), path(OTHER)]


def test_a_retry_after_date_is_honoured(api, insee, clock):
    until = formatdate(clock.now + 90, usegmt=True)
    api.script(
        path(SIRET),
        Reply(429, insee_error(429, "Too Many Requests"), {"Retry-After": until}),
        Reply(404, insee_error(404, "Aucun élément trouvé")),
    )

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)
    clock.advance(80)
    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)
    clock.advance(11)
    assert insee.lookup(SIRET) is None
    assert len(api.received) == 2


def test_without_retry_after_the_back_off_grows_and_a_good_answer_resets_it(api, insee, clock):
    too_many = Reply(429, insee_error(429, "Too Many Requests"))
    api.script(path(SIRET), too_many, too_many, Reply(body=insee_answer(SIRET)))
    api.script(path(OTHER), too_many, Reply(404, insee_error(404, "Aucun élément trouvé")))

    with pytest.raises(SourceUnavailable):  # 429 → 10 s
        insee.lookup(SIRET)
    clock.advance(11)
    with pytest.raises(SourceUnavailable):  # 429 → 20 s
        insee.lookup(SIRET)
    clock.advance(11)
    with pytest.raises(SourceUnavailable):  # still backing off: not sent
        insee.lookup(SIRET)
    assert len(api.received) == 2
    clock.advance(10)
    assert insee.lookup(SIRET).siret == SIRET
    with pytest.raises(SourceUnavailable):  # 429 → 10 s again
        insee.lookup(OTHER)
    clock.advance(11)
    assert insee.lookup(OTHER) is None
    assert len(api.received) == 5


# --- the budget: 30 requests a minute, shared ------------------------------------------------------


def test_the_31st_request_in_a_minute_is_not_sent_whichever_process_asks(api, redis_client, clock):
    first, second = client_of(api, redis_client, clock), client_of(api, redis_client, clock)
    sirets = [f"{n:014d}" for n in range(1, 32)]

    for n, siret in enumerate(sirets[:30]):
        clock.advance(1)
        assert (first if n % 2 else second).lookup(siret) is None
    with pytest.raises(SourceUnavailable):
        first.lookup(sirets[30])
    assert len(api.received) == 30

    clock.advance(31)  # a minute after the first request: its slot is free again
    assert second.lookup(sirets[30]) is None
    assert len(api.received) == 31


def test_a_cached_answer_spends_no_budget(api, redis_client, clock):
    one_a_minute = Budget(requests=1, per_seconds=60, first_backoff=10, max_backoff=300)
    insee = client_of(api, redis_client, clock, budget=one_a_minute)
    api.script(path(SIRET), Reply(body=insee_answer(SIRET)))

    insee.lookup(SIRET)
    insee.lookup(SIRET)

    with pytest.raises(SourceUnavailable):
        insee.lookup(OTHER)
    assert len(api.received) == 1


# --- what makes it unavailable -------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 401, 403, 400])
def test_an_error_status_is_unavailable_and_not_remembered(api, insee, status):
    api.script(path(SIRET), Reply(status, insee_error(status, "Erreur")), Reply(body=insee_answer(SIRET)))

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)
    assert insee.lookup(SIRET).siret == SIRET


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        {"header": {"statut": 200, "message": "ok"}},
        ["etablissement"],
        {"etablissement": {**insee_answer(SIRET)["etablissement"], "uniteLegale": None}},
        {"etablissement": {**insee_answer(SIRET)["etablissement"], "adresseEtablissement": "23 PLACE"}},
        insee_answer(SIRET, periods=[insee_period("A", "2020-01-01")]),
        insee_answer(SIRET, periods=[insee_period("A"), insee_period("F")]),
        insee_answer(SIRET, periods=[insee_period("X")]),
        insee_answer(OTHER),
    ],
    ids=[
        "malformed",
        "empty",
        "no-establishment",
        "a-list",
        "no-unit",
        "address-not-an-object",
        "no-current-period",
        "two-current-periods",
        "unknown-state",
        "another-siret",
    ],
)
def test_an_answer_not_as_documented_is_unavailable(api, insee, body):
    api.script(path(SIRET), Reply(200, body))

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)


def test_a_slow_answer_is_unavailable(api, redis_client, clock):
    insee = client_of(api, redis_client, clock, read_timeout=0.2)
    api.script(path(SIRET), Reply(body=insee_answer(SIRET), delay=5))

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)


def test_a_server_that_does_not_listen_is_unavailable(redis_client, clock):
    insee = InseeApi(f"http://127.0.0.1:{free_port()}", KEY, redis_client, clock=clock)

    with pytest.raises(SourceUnavailable):
        insee.lookup(SIRET)


def test_without_redis_it_is_unavailable_and_sends_nothing(api, clock):
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    api.script(path(SIRET), Reply(body=insee_answer(SIRET)))

    with pytest.raises(SourceUnavailable):
        client_of(api, dead, clock).lookup(SIRET)
    assert api.received == []


def test_failures_are_logged_without_the_siret_or_the_key(api, insee, caplog):
    api.script(path(SIRET), Reply(503, insee_error(503, f"Service indisponible pour {SIRET}")))

    with caplog.at_level(logging.WARNING), pytest.raises(SourceUnavailable) as raised:
        insee.lookup(SIRET)

    assert "503" in caplog.text
    for secret in (SIRET, KEY):
        assert secret not in caplog.text
        assert secret not in str(raised.value)
