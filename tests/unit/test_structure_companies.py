"""« Je ne connais pas mon SIRET »: the query's rules and the handler, on a register in memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.structure import companies
from services.structure.companies import SearchUnavailable, compact_number, company_query, search_companies
from services.structure.companies_pages import shown
from services.structure.sirene.model import (
    MASKED,
    CompanyHit,
    CompanyQuery,
    CompanyResults,
    SourceUnavailable,
)
from shared.errors import Invalid

PIED_DE_COCHON = CompanyHit(
    "81880244900038", "SNC AU PIED DE COCHON LGE", "59 RUE DE TOCQUEVILLE", "75017", "PARIS 17", True
)


class FakeRegister:
    """Answers every search with `results`, or cannot search at all; remembers what it was asked."""

    def __init__(self, results: CompanyResults | None = None, *, down: bool = False) -> None:
        self.results = results or CompanyResults([PIED_DE_COCHON], 1)
        self.down = down
        self.asked: list[CompanyQuery] = []

    def search(self, query: CompanyQuery) -> CompanyResults:
        self.asked.append(query)
        if self.down:
            raise SourceUnavailable("every searching source is down")
        return self.results


def errors_of(text: str = "cochon", postal_code: str = "", city: str = "") -> dict[str, list[str]]:
    with pytest.raises(Invalid) as refused:
        company_query(text, postal_code, city)
    return refused.value.errors


def test_a_name_is_searched_trimmed_with_its_spaces_tidied():
    assert company_query("  au   pied\tde cochon ") == CompanyQuery("au pied de cochon", "", "", 10)


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("552 100 554 00013", "55210055400013"),
        ("552 100 554", "552100554"),
        ("552.100.554", "552100554"),
        ("818\u00a0802\u202f449 00038", "81880244900038"),  # no-break spaces from a copied document
        ("81880244900038", "81880244900038"),
    ],
)
def test_a_siren_or_siret_typed_in_groups_is_searched_as_one_number(typed, searched):
    assert company_query(typed).text == searched


def test_a_name_with_digits_keeps_its_spaces():
    assert compact_number("boulangerie 75017") == "boulangerie 75017"
    assert compact_number("3 moulins") == "3 moulins"


def test_invisible_characters_of_a_copy_and_paste_are_dropped():
    assert company_query("cochon\u200b\u00ad").text == "cochon"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", companies.MISSING_QUERY),
        ("   ", companies.MISSING_QUERY),
        ("a", companies.SHORT_QUERY),
        (" 7 ", companies.SHORT_QUERY),
        ("x" * 101, companies.LONG_QUERY),
        ("coch\x00on", companies.CONTROL_CHARACTERS),
    ],
)
def test_the_text_is_required_between_2_and_100_characters(typed, message):
    assert errors_of(typed) == {"q": [message]}


def test_the_bounds_of_the_text_are_allowed():
    assert company_query("ab").text == "ab"
    assert company_query("x" * 100).text == "x" * 100
    assert company_query("   " + "x" * 100 + "   ").text == "x" * 100  # counted once trimmed


@pytest.mark.parametrize("postal_code", ["7501", "750170", "75 017", "2A004", "abcde"])
def test_a_postal_code_has_5_digits(postal_code):
    assert errors_of(postal_code=postal_code) == {"postal_code": [companies.BAD_POSTAL_CODE]}


def test_postal_code_and_city_narrow_the_search():
    assert company_query("cochon", " 75017 ", "  Paris  17 ") == CompanyQuery("cochon", "75017", "Paris 17")


def test_a_city_has_60_characters_at_most():
    assert company_query("cochon", city="x" * 60).city == "x" * 60
    assert errors_of(city="x" * 61) == {"city": [companies.LONG_CITY]}


def test_every_faulty_field_is_named_at_once():
    errors = errors_of("a", "123", "x" * 61)
    assert errors == {
        "q": [companies.SHORT_QUERY],
        "postal_code": [companies.BAD_POSTAL_CODE],
        "city": [companies.LONG_CITY],
    }


def test_the_handler_asks_the_register_and_gives_its_answer():
    register = FakeRegister()
    assert search_companies("818 802 449", "75017", "", register) == CompanyResults([PIED_DE_COCHON], 1)
    assert register.asked == [CompanyQuery("818802449", "75017", "", companies.RESULTS_SHOWN)]


def test_a_faulty_query_never_reaches_the_register():
    register = FakeRegister()
    with pytest.raises(Invalid):
        search_companies("a", "", "", register)
    assert register.asked == []


def test_no_source_able_to_search_is_a_503_with_retry_after():
    with pytest.raises(SearchUnavailable) as unavailable:
        search_companies("cochon", "", "", FakeRegister(down=True))
    error = unavailable.value
    assert error.status == 503
    assert error.headers == {"Retry-After": str(companies.RETRY_AFTER_SECONDS)}
    assert error.message.startswith("La recherche d'entreprises est momentanément indisponible")


# --- how the results page shows a hit -------------------------------------------------------------


def test_an_open_establishment_is_shown_formatted_with_its_way_back_to_step_one():
    hit = shown(PIED_DE_COCHON)
    assert hit.siret_formatted == "818 802 449 00038"
    assert hit.place == "75017 PARIS 17"
    assert hit.choose_url == "/identify/?siret=81880244900038"


def test_a_closed_establishment_cannot_be_chosen():
    assert shown(replace(PIED_DE_COCHON, open=False)).choose_url is None


def test_a_non_diffusible_unit_is_named_as_such_never_by_its_mask():
    hit = shown(CompanyHit("90678901100010", MASKED, "", "69004", "LYON 4E ARRONDISSEMENT", True))
    assert hit.company_name == "Entreprise non diffusible"
    assert hit.address == ""
    assert hit.place == "69004 LYON 4E ARRONDISSEMENT"
