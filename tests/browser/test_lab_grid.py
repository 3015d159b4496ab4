"""An assessor enters the results of 30 claimed AIPOs in the grid with the keyboard only."""

from __future__ import annotations

import os

import pytest
from support import PASSWORD

from cas.models import AIPO, Application
from labs.models import TestRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The first letter picks the option in a focused <select>, as a person would type it.
KEYS = {"p": "pass", "f": "fail", "i": "inconclusive", "n": "not_applicable"}


@pytest.fixture
def thirty_aipo_case(make_application, lab, assessor_carol, reviewer_dave, officer_erin):
    aipos = AIPO.objects.with_names().filter(profile__domain__keyword="ITI").order_by("pk")[:30]
    claims = [(a.profile.keyword, a.actor.keyword, a.option.keyword) for a in aipos]
    assert len(claims) == 30
    return make_application(
        "in_assessment",
        claims=claims,
        lab_org=lab,
        recorder=assessor_carol,
        reviewer=reviewer_dave,
        officer=officer_erin,
    )


def tab_until(page, element_id: str, limit: int = 600) -> None:
    for _ in range(limit):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} is not reachable with Tab")


def test_an_assessor_records_30_results_with_the_keyboard_only(
    live_server, thirty_aipo_case, open_page
):
    page = open_page()
    application = thirty_aipo_case
    page.goto(live_server.url + "/accounts/login/")
    # Django's login form focuses the username field on arrival.
    assert page.evaluate("document.activeElement.name") == "username"
    page.keyboard.type("assessor_carol")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Log out")

    page.goto(f"{live_server.url}/lab/cases/{application.pk}/grid/")
    # The first result is focused on arrival; Tab walks result, test case id and name, tool,
    # version, comment, evidence, then the next row's result.
    assert page.evaluate("document.activeElement.name").endswith("-result")
    letters = list(KEYS)
    expected = []
    for n in range(30):
        letter = letters[n % 4] if n % 5 == 0 else "p"
        page.keyboard.press(letter)
        for text in (f"TC-{n:03d}", f"Case {n}", "Gazelle EVS", "7.2", f"note {n}", f"EV-{n}"):
            page.keyboard.press("Tab")
            page.keyboard.type(text)
        expected.append((f"TC-{n:03d}", KEYS[letter]))
        if n < 29:
            page.keyboard.press("Tab")
    page.screenshot(path=os.environ.get("OPENCAS_GRID_SCREENSHOT", "/tmp/lab-grid.png"))
    page.keyboard.press("Enter")  # submits the one form
    page.wait_for_selector(".messages >> text=30 results recorded.")

    records = TestRecord.objects.filter(application=application).order_by("test_case")
    assert [(r.test_case, r.result) for r in records] == sorted(expected)
    assert all(r.tool_label == "Gazelle EVS 7.2" for r in records)
    assert records[7].comment == "note 7" and records[7].evidence_list == ["EV-7"]
    assert {r.aipo_id for r in records} == set(application.claims.values_list("aipo_id", flat=True))

    # Still with the keyboard: on to "Complete assessment" and press it.
    tab_until(page, "complete-assessment")
    page.keyboard.press("Enter")
    page.wait_for_selector(".messages >> text=Assessment completed")
    assert Application.objects.get(pk=application.pk).state == "in_review"
