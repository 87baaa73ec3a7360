"""« Je ne connais pas mon SIRET » through the real structure app, on a store imported from the
shipped sample (services/structure/data), against a real Redis: the JSON API, the page without
JavaScript, the way back to step 1 (identify's page), the 422s, the 503 and the rate limit."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.identify.app import create_app as identify_app
from services.structure import companies
from services.structure.app import create_app
from services.structure.sirene.sources import Register
from services.structure.sirene.stock_import import import_stock
from services.structure.sirene.stock_progress import NoProgress
from shared.settings import Settings

API = "/structure/api/companies"
PAGE = "/structure/entreprises"
SAMPLE = Path(Settings().sirene_dir)

PIED_DE_COCHON = {
    "siret": "81880244900038",
    "company_name": "SNC AU PIED DE COCHON LGE",
    "address": "59 RUE DE TOCQUEVILLE",
    "postal_code": "75017",
    "city": "PARIS 17",
    "open": True,
}
LA_POSTE = "356000000"
LA_POSTE_RENNES, LA_POSTE_CLOSED = "35600000009075", "35600000049837"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("sirene") / "sirene.sqlite3"
    import_stock(SAMPLE, db, progress=NoProgress())
    return db


@pytest.fixture
def stock_settings(settings, store) -> Settings:
    return replace(settings, sirene_source=("stock",), sirene_db=str(store))


@pytest.fixture
def client(stock_settings, redis_client):
    return create_app(stock_settings, client=redis_client).test_client()


def search(client, **query):
    return client.get(API, query_string=query)


def sirets(answer) -> list[str]:
    return [hit["siret"] for hit in answer.json["results"]]


# --- the API ----------------------------------------------------------------------------------


def test_the_api_is_documented(client):
    operation = client.get("/structure/openapi.json").json["paths"][API]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "postal_code", "city"}
    assert {"200", "422", "429", "503"} <= set(operation["responses"])


def test_by_name(client):
    answer = search(client, q="pied de cochon")
    assert answer.status_code == 200, answer.json
    assert answer.json == {"results": [PIED_DE_COCHON], "total": 1}


def test_by_siren_typed_in_groups_every_establishment_open_or_closed(client):
    answer = search(client, q="356 000 000")
    assert answer.status_code == 200, answer.json
    found = {hit["siret"]: hit["open"] for hit in answer.json["results"]}
    assert set(found) == {"35600000000048", LA_POSTE_RENNES, LA_POSTE_CLOSED}
    assert found[LA_POSTE_CLOSED] is False and found[LA_POSTE_RENNES] is True
    assert answer.json["total"] == 3


def test_by_siret_typed_in_groups(client):
    answer = search(client, q="302 068 382 00050")
    assert sirets(answer) == ["30206838200050"]
    assert answer.json["results"][0]["company_name"] == "BOULANGERIE DES TROIS MOULINS"


def test_a_postal_code_narrows_the_search(client):
    assert sirets(search(client, q=LA_POSTE, postal_code="35000")) == [LA_POSTE_RENNES]
    assert search(client, q="pied de cochon", postal_code="35000").json == {"results": [], "total": 0}


def test_bad_input_is_422_naming_each_field(client):
    answer = search(client, q="a", postal_code="750", city="x" * 61)
    assert answer.status_code == 422
    assert answer.json["errors"] == {
        "q": [companies.SHORT_QUERY],
        "postal_code": [companies.BAD_POSTAL_CODE],
        "city": [companies.LONG_CITY],
    }
    missing = search(client)
    assert missing.status_code == 422
    assert missing.json["errors"] == {"q": [companies.MISSING_QUERY]}


def test_no_source_able_to_search_is_503_with_retry_after(stock_settings, redis_client):
    nothing_searches = create_app(stock_settings, client=redis_client, register=Register([], []))
    answer = nothing_searches.test_client().get(API, query_string={"q": "pied de cochon"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(companies.RETRY_AFTER_SECONDS)
    assert answer.json["message"] == companies.SearchUnavailable.default_message


def test_a_store_not_imported_yet_is_503_too(settings, redis_client, tmp_path):
    missing = replace(settings, sirene_source=("stock",), sirene_db=str(tmp_path / "none.sqlite3"))
    answer = create_app(missing, client=redis_client).test_client().get(API, query_string={"q": "cochon"})
    assert answer.status_code == 503
    assert "Retry-After" in answer.headers


def test_the_api_and_the_page_share_one_limit_per_client_address(stock_settings, redis_client):
    limited = replace(stock_settings, rate_limit_company_search_per_ip="3 per minute")
    client = create_app(limited, client=redis_client).test_client()
    assert search(client, q="cochon").status_code == 200
    assert client.get(PAGE, query_string={"q": "cochon"}).status_code == 200
    assert search(client, q="moulins").status_code == 200
    refused = search(client, q="moulins")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    page = client.get(PAGE, query_string={"q": "cochon"})
    assert page.status_code == 429
    assert "Trop de tentatives" in page.get_data(as_text=True)
    other = client.get(API, query_string={"q": "cochon"}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200  # counted per client address


# --- the page, without JavaScript --------------------------------------------------------------


def text_of(page) -> str:
    return unescape(page.get_data(as_text=True))


def test_the_page_alone_is_the_form(client):
    page = client.get(PAGE)
    html = text_of(page)
    assert page.status_code == 200
    assert 'action="/structure/entreprises"' in html and 'method="get"' in html
    assert '<label for="q">' in html
    assert "Résultats" not in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_page_shows_what_it_found_and_links_the_open_ones_to_step_one(client):
    page = client.get(PAGE, query_string={"q": "356 000 000", "postal_code": "", "city": ""})
    html = text_of(page)
    assert page.status_code == 200
    assert len(re.findall(r'<li class="company-result', html)) == 3
    assert "OFFICE POSTAL FICTIF" in html and "3 établissements trouvés" in html
    assert "356 000 000 09075" in html  # the SIRET, formatted
    assert html.count(">Ouvert<") == 2 and html.count(">Fermé<") == 1
    links = re.findall(r'href="(/identify/\?siret=\d+)"', html)
    assert sorted(links) == [f"/identify/?siret={s}" for s in ("35600000000048", LA_POSTE_RENNES)]
    assert f"siret={LA_POSTE_CLOSED}" not in html
    assert "Cet établissement est fermé" in html
    assert 'value="356 000 000"' in html  # what was typed, kept in the form


def test_choosing_a_result_lands_on_step_one_with_the_siret_filled(client, settings, redis_client):
    html = text_of(client.get(PAGE, query_string={"q": "pied de cochon"}))
    (link,) = re.findall(r'href="(/identify/\?siret=\d+)"', html)
    step_one = identify_app(settings, client=redis_client).test_client().get(link)
    assert step_one.status_code == 200
    assert re.search(r'id="siret" name="siret" type="text" value="81880244900038"', text_of(step_one))


def test_nothing_found_says_so(client):
    page = client.get(PAGE, query_string={"q": "zzqx introuvable"})
    assert page.status_code == 200
    assert "Aucun établissement ne correspond à votre recherche" in text_of(page)


def test_errors_are_shown_next_to_their_fields(client):
    page = client.get(PAGE, query_string={"q": "a", "postal_code": "7501", "city": ""})
    html = text_of(page)
    assert page.status_code == 422
    assert 'id="q-erreur"' in html and companies.SHORT_QUERY in html
    assert 'id="postal_code-erreur"' in html and companies.BAD_POSTAL_CODE in html
    assert 'aria-describedby="postal_code-aide postal_code-erreur" aria-invalid="true"' in html
    assert 'href="#q"' in html  # the summary leads to the field
    assert "city-erreur" not in html


def test_the_page_says_when_the_search_is_unavailable(stock_settings, redis_client):
    app = create_app(stock_settings, client=redis_client, register=Register([], []))
    page = app.test_client().get(PAGE, query_string={"q": "pied de cochon"})
    assert page.status_code == 503
    assert page.headers["Retry-After"] == str(companies.RETRY_AFTER_SECONDS)
    assert "momentanément indisponible" in text_of(page)


def test_the_script_and_its_style_are_served(client):
    script = client.get("/structure/static/company-search.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b'role", "combobox"' in script.data
    assert client.get("/structure/static/company-search.css").status_code == 200


# --- step 1's side ---------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: which fields each holds, by the HTML rules (the enclosing form, or
    the one the `form` attribute names), and whether a form was opened inside another."""

    def __init__(self) -> None:
        super().__init__()
        self.open_form: str | None = None
        self.nested = False
        self.fields: dict[str, list[str]] = {}
        self.actions: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.nested |= self.open_form is not None
            self.open_form = a.get("id") or a.get("action") or "?"
            self.actions[self.open_form] = (a.get("method", "get"), a.get("action", ""))
            self.fields.setdefault(self.open_form, [])
        elif tag in ("input", "select", "button") and (a.get("name") or tag == "button"):
            owner = a.get("form") or self.open_form
            self.fields.setdefault(owner or "none", []).append(a.get("name") or f"button:{a.get('type')}")

    def handle_endtag(self, tag):
        if tag == "form":
            self.open_form = None


@pytest.fixture
def identify(settings, redis_client):
    return identify_app(settings, client=redis_client).test_client()


def test_step_one_holds_the_search_as_its_own_get_form_not_nested(identify):
    html = identify.get("/identify/").get_data(as_text=True)
    forms = Forms()
    forms.feed(html)
    assert not forms.nested
    assert forms.actions["company-search-form"] == ("get", "/structure/entreprises")
    assert forms.fields["company-search-form"] == ["q", "postal_code", "city", "button:submit"]
    assert not {"q", "postal_code", "city"} & set(forms.fields["/identify/"])
    assert "<summary>Je ne connais pas mon SIRET</summary>" in html
    assert '<script src="/structure/static/company-search.js" defer></script>' in html
    assert 'aria-live="polite"' in html


@pytest.mark.parametrize(
    ("given", "filled"),
    [("81880244900038", "81880244900038"), ("818 802 449 00038", "818 802 449 00038")],
)
def test_step_one_takes_the_chosen_siret(identify, given, filled):
    html = text_of(identify.get("/identify/", query_string={"siret": given}))
    assert f'id="siret" name="siret" type="text" value="{filled}"' in html


@pytest.mark.parametrize("given", ['"><script>alert(1)</script>', "8188024490003A", "1" * 21, ""])
def test_step_one_ignores_anything_else_than_digits_and_spaces(identify, given):
    html = identify.get("/identify/", query_string={"siret": given}).get_data(as_text=True)
    assert 'id="siret" name="siret" type="text" value=""' in html
    assert "<script>alert" not in html
