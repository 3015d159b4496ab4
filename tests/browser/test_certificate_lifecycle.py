"""An officer suspends a certificate in Chromium; the buyer sees it; the vendor withdraws it.

The certificate is issued before Chromium starts (pyHanko's asyncio.run and Playwright's
loop do not mix in one thread).
"""

from __future__ import annotations

import re

import pytest
from support import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_officer_suspends_and_the_vendor_withdraws_in_public_view(
    live_server, certified, vendor_alice, officer_frank, open_page
):
    page = open_page()
    log_in(page, live_server.url, "officer_frank")
    page.goto(f"{live_server.url}/certificates/{certified.number}/")
    page.click("form[action$='/suspend/'] button")  # no reason: the browser asks for one
    assert page.inner_text("#certificate-status").startswith("Active")
    page.fill("form[action$='/suspend/'] input[name=reason]", "Open nonconformity NC-12")
    page.click("form[action$='/suspend/'] button")
    page.wait_for_selector(".messages >> text=suspended")
    assert "Suspended" in page.inner_text("#certificate-status")
    assert "withdrawn on" in page.inner_text("#certificate-status")
    page.goto(f"{live_server.url}/certificates/manage/")
    assert certified.number in page.inner_text("main")

    buyer = open_page()
    buyer.goto(f"{live_server.url}/verify/{certified.number}")
    status = buyer.inner_text("#status-verdict")
    assert "Suspended" in status and "Open nonconformity NC-12" in status

    vendor = open_page()
    log_in(vendor, live_server.url, "vendor_alice")
    vendor.goto(f"{live_server.url}/certificates/{certified.number}/")
    assert "Suspend" not in vendor.inner_text("#certificate-actions")
    vendor.fill("form[action$='/withdraw/'] input[name=reason]", "HelixEHR 5.1 discontinued")
    vendor.click("form[action$='/withdraw/'] button")
    vendor.wait_for_selector(".messages >> text=withdrawn")
    history = vendor.inner_text("#status-history")
    assert re.search(r"active → suspended \(Open nonconformity NC-12\)", history)
    assert "suspended → withdrawn (HelixEHR 5.1 discontinued)" in history
