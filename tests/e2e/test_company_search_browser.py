"""« Je ne connais pas mon SIRET » in a real Chromium, on the whole system (whose store holds the
shipped sample): without JavaScript, the form and its results page; with it, the combobox on the
step-1 page, used with the keyboard. axe checks both pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import VIEWPORTS, assert_accessible, shoot
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

SIRET_FIELD = re.compile("^Numéro de SIRET")
SEARCH_FIELD = re.compile("^Nom, SIREN ou SIRET de l'entreprise")


def open_page(browser: Browser, javascript: bool = True) -> Page:
    context = browser.new_context(
        viewport=VIEWPORTS["desktop"], locale="fr-FR", java_script_enabled=javascript
    )
    context.set_default_timeout(15000)
    return context.new_page()


def open_the_search(page: Page, system) -> None:
    page.goto(system.url("/identify/"))
    page.get_by_text("Je ne connais pas mon SIRET", exact=True).click()


def test_without_javascript_search_then_choose_lands_on_step_one_with_the_siret(chromium, running_system):
    page = open_page(chromium, javascript=False)
    open_the_search(page, running_system)
    page.get_by_label(SEARCH_FIELD).fill("356 000 000")
    page.get_by_label(re.compile("^Code postal")).fill("35000")
    page.get_by_role("button", name="Rechercher").click()

    expect(page).to_have_url(re.compile(r"/structure/entreprises\?q=356\+000\+000&postal_code=35000"))
    expect(page.get_by_text("1 établissement trouvé")).to_be_visible()
    expect(page.get_by_text("356 000 000 09075", exact=True)).to_be_visible()
    shoot(page, ARTIFACTS, "desktop-1-entreprises-sans-js")
    page.get_by_role("link", name=re.compile("^Choisir OFFICE POSTAL FICTIF")).click()

    expect(page).to_have_url(re.compile(r"/identify/\?siret=35600000009075$"))
    expect(page.get_by_label(SIRET_FIELD)).to_have_value("35600000009075")
    page.context.close()


def test_the_results_page_is_accessible_and_a_closed_establishment_not_choosable(chromium, running_system):
    page = open_page(chromium)
    page.goto(running_system.url("/structure/entreprises?q=356000000"))
    results = page.locator(".company-result")
    expect(results).to_have_count(3)
    closed = results.filter(has_text="Fermé")
    expect(closed).to_have_count(1)
    expect(closed.get_by_role("link")).to_have_count(0)
    expect(closed).to_contain_text("Cet établissement est fermé")
    assert_accessible(page)
    page.goto(running_system.url("/structure/entreprises?q=a&postal_code=123"))
    expect(page.locator("#q-erreur")).to_be_visible()
    expect(page.locator("#postal_code-erreur")).to_be_visible()
    assert_accessible(page)
    page.context.close()


def test_with_javascript_the_combobox_fills_the_siret_field(chromium, running_system):
    page = open_page(chromium)
    open_the_search(page, running_system)
    search = page.get_by_role("combobox", name=SEARCH_FIELD)
    expect(search).to_have_attribute("aria-expanded", "false")
    assert_accessible(page)

    search.press_sequentially("pied de coch")
    listbox = page.get_by_role("listbox")
    expect(search).to_have_attribute("aria-expanded", "true")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(page.locator("#company-search-status")).to_contain_text("1 établissement trouvé")
    expect(search).to_be_focused()

    search.press("ArrowDown")
    option = listbox.get_by_role("option").first
    expect(option).to_have_attribute("aria-selected", "true")
    expect(search).to_have_attribute("aria-activedescendant", option.get_attribute("id") or "")
    expect(option).to_contain_text("SNC AU PIED DE COCHON LGE")
    assert_accessible(page)  # with the list open
    shoot(page, ARTIFACTS, "desktop-1-suggestions")

    search.press("Enter")
    siret = page.get_by_label(SIRET_FIELD)
    expect(siret).to_have_value("818 802 449 00038")
    expect(siret).to_be_focused()
    expect(search).to_have_attribute("aria-expanded", "false")
    expect(page).to_have_url(re.compile(r"/identify/$"))  # chosen in place: no page was loaded
    page.context.close()


def test_with_javascript_a_closed_establishment_is_offered_but_not_chosen(chromium, running_system):
    page = open_page(chromium)
    open_the_search(page, running_system)
    search = page.get_by_role("combobox", name=SEARCH_FIELD)
    search.press_sequentially("356000000")
    options = page.get_by_role("listbox").get_by_role("option")
    expect(options).to_have_count(3)
    closed = options.filter(has_text="Fermé")
    expect(closed).to_have_attribute("aria-disabled", "true")
    closed_at = [text.find("Fermé") >= 0 for text in options.all_inner_texts()].index(True)
    for _ in range(closed_at + 1):
        search.press("ArrowDown")
    search.press("Enter")
    expect(page.get_by_label(SIRET_FIELD)).to_have_value("")
    expect(page.locator("#company-search-status")).to_contain_text("fermé")
    search.press("Escape")
    expect(search).to_have_attribute("aria-expanded", "false")
    page.context.close()
