"""A buyer uses the public registry in Chromium: filters, a certificate page, the CSV download."""

from __future__ import annotations

import re

import pytest

from certificates import lifecycle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_certificates(make_application, lab, assessor_carol, reviewer_dave, officer_erin):
    """HelixEHR 5.1 active (after a suspension lifted) and HelixEHR 6.0 suspended."""
    people = {
        "lab_org": lab,
        "recorder": assessor_carol,
        "reviewer": reviewer_dave,
        "officer": officer_erin,
    }
    active = make_application("certified", **people).certificates.get()
    active = lifecycle.certificate_suspend(certificate=active, by=officer_erin, reason="NC-12 open")
    active = lifecycle.certificate_reinstate(
        certificate=active, by=officer_erin, reason="NC-12 closed"
    )
    suspended = make_application("certified", version="6.0", **people).certificates.get()
    lifecycle.certificate_suspend(certificate=suspended, by=officer_erin, reason="NC-13 open")
    return active, suspended


def test_a_buyer_filters_the_registry_opens_a_certificate_and_downloads_the_csv(
    live_server, two_certificates, open_page, tmp_path
):
    active, suspended = two_certificates
    page = open_page()
    page.goto(live_server.url + "/registry/")
    assert active.number in page.inner_text("#registry-results")
    assert suspended.number in page.inner_text("#registry-results")

    page.click("summary:has-text('More filters')")
    page.fill("input[name=profile]", "PDQm")
    page.select_option("select[name=status]", "active")
    page.click("button:has-text('Apply filters')")
    page.wait_for_url(re.compile(r"profile=PDQm.*status=active"))
    results = page.inner_text("#registry-results")
    assert active.number in results and suspended.number not in results
    assert "1 certificate" in page.inner_text("#result-count")

    page.click(f"a:has-text('{active.number}')")
    page.wait_for_url(f"**/certificates/{active.number}/")
    legend = page.inner_text("#status-legend")
    assert "Suspended" in legend and "Do not rely on it until it is reinstated" in legend
    history = page.inner_text("#status-history")
    assert "active → suspended (NC-12 open)" in history
    assert "suspended → active (NC-12 closed)" in history

    page.click("nav >> text=Registry")
    with page.expect_download() as download_info:
        page.click("a:has-text('active (CSV)')")
    download = download_info.value
    assert download.suggested_filename.startswith("opencas-registry-active-")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.startswith("Certificate Number,Certificate Status,")
    assert active.number in text and suspended.number not in text
