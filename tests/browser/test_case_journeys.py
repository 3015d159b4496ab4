"""A vendor and an officer working a case in a real Chromium, against a live server."""

from __future__ import annotations

import io
import re

import pytest
from support import HELIX_CLAIMS, log_in, results_csv

from cas.models import Application, CaseMessage, Product
from evidence.services import connectathon_import

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def helix_ehr_with_results(connectathon_2026, vendor_alice, helix) -> Product:
    """HelixEHR, with a Pass at Connectathon 2026 for each of HELIX_CLAIMS."""
    product = Product.objects.create(vendor=helix, name="HelixEHR")
    rows = [(helix.name, "HelixEHR", *claim, "Pass") for claim in HELIX_CLAIMS]
    connectathon_import(event=connectathon_2026, stream=io.BytesIO(results_csv(rows)), by=None)
    return product


def tick(page, profile: str, actor_name: str) -> None:
    page.check(f"input[aria-label='{profile} {actor_name} None']")


def test_a_vendor_builds_and_submits_an_application(live_server, helix_ehr_with_results, open_page):
    page = open_page()
    log_in(page, live_server.url, "vendor_alice")

    page.goto(f"{live_server.url}/products/{helix_ehr_with_results.pk}/")
    page.fill("input[name=version]", "6.0")
    page.click("button:has-text('Add version')")
    page.wait_for_selector(".messages >> text=Version 6.0 added.")

    page.click("text=My work")
    page.click("text=Start an application")
    page.fill("input[name=q]", "XDS.b")
    page.click("button:has-text('Search')")
    page.select_option("select[name=product_version]", label="HelixEHR 6.0")
    tick(page, "XDS.b", "Document Consumer")
    page.click("button:has-text('Create draft application')")
    page.wait_for_url(re.compile(r"/applications/\d+/$"))
    assert "Draft" in page.inner_text("h1")

    page.click("text=change the claims")
    page.fill("input[name=q]", "PDQm")
    page.click("button:has-text('Search')")
    assert page.is_checked("input[aria-label='XDS.b Document Consumer None']")
    tick(page, "PDQm", "Patient Demographics Consumer")
    page.click("button:has-text('Save claims')")
    page.wait_for_selector(".messages >> text=Claims saved: 2 AIPOs.")

    page.click("button:has-text('Submit application')")
    page.wait_for_selector(".messages >> text=Application submitted.")
    assert "Submitted" in page.inner_text("h1")
    application = Application.objects.get()
    assert application.state == "submitted"
    assert sorted(str(a) for a in application.claimed_aipos.all()) == [
        "PDQm / PDC / NONE",
        "XDS.b / DOC_CONSUMER / NONE",
    ]


def test_an_officer_requests_information_and_the_vendor_answers(
    live_server, make_application, officer_erin, open_page
):
    application = make_application("submitted")
    case_url = f"{live_server.url}/applications/{application.pk}/"

    officer = open_page()
    log_in(officer, live_server.url, "officer_erin")
    officer.click(f"text={application.reference}")  # from the screening queue
    officer.fill("textarea[name=message]", "Which PDQm release does 5.1 implement?")
    officer.click("button:has-text('Request information')")
    officer.wait_for_selector(".messages >> text=Information requested")
    assert "Information requested" in officer.inner_text("h1")

    vendor = open_page()
    log_in(vendor, live_server.url, "vendor_alice")
    assert "Information requested: your answer is needed: 1" in vendor.inner_text("main")
    vendor.goto(case_url)
    assert "Which PDQm release does 5.1 implement?" in vendor.inner_text("main")
    vendor.fill("textarea[name=message]", "PDQm 3.1.0, as the release notes say.")
    vendor.click("button:has-text('Answer and resubmit')")
    vendor.wait_for_selector(".messages >> text=Answer sent")
    assert "Submitted" in vendor.inner_text("h1")

    officer.reload()
    thread = officer.inner_text("main")
    assert "Which PDQm release does 5.1 implement?" in thread
    assert "PDQm 3.1.0, as the release notes say." in thread
    assert list(CaseMessage.objects.values_list("kind", flat=True)) == ["info_request", "answer"]
