"""A buyer in Chromium: the Results Matrix to a certificate, then follows it by e-mail."""

from __future__ import annotations

import re

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_takes_a_buyer_from_the_matrix_to_a_certificate_they_then_follow(
    certified, connectathon_2026, live_server, open_page
):
    page = open_page()
    page.goto(live_server.url + "/registry/")
    page.click("nav a:has-text('Results')")
    page.click(f"a:has-text('{connectathon_2026.name}')")
    page.fill("input[name=organisation]", "helix")
    page.select_option("select[name=profile]", "PDQm")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(r"organisation=helix"))
    table = page.inner_text("table.matrix")
    assert "HelixEHR" in table and "PDQm" in table and "XDS.b" not in table
    page.click(f"table.matrix a:has-text('{certified.number}')")
    page.wait_for_url(f"**/certificates/{certified.number}/")

    mail.outbox.clear()
    page.fill("#follow input[name=email]", "buyer@hospital.example")
    page.click("#follow button[type=submit]")
    page.wait_for_selector("text=a message with a confirmation link is on its way")
    [message] = [m for m in mail.outbox if m.to == ["buyer@hospital.example"]]
    link = re.search(r"https://opencas\.example(/subscriptions/\S+/confirm/)", message.body)
    page.goto(live_server.url + link.group(1))
    page.click("button:has-text('Confirm')")
    page.wait_for_selector("text=Confirmed: buyer@hospital.example will be told")
