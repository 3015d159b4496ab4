"""Buyers follow a certificate by e-mail: double opt-in, a mail per status change, unsubscribe."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from support import client_for, page_text

from certificates import lifecycle, services
from certificates.models import CertificateSubscription

pytestmark = pytest.mark.django_db

BUYER_MAIL = "Procurement@Hospital.example"


def follow(client, certificate, capture, email: str = BUYER_MAIL):
    with capture(execute=True):
        return client.post(
            f"/certificates/{certificate.number}/follow/", {"email": email}, follow=True
        )


def link_in(message, kind: str) -> str:
    """The path of the confirm or unsubscribe link in a mail."""
    match = re.search(rf"https://opencas\.example(/subscriptions/[\w-]+/{kind}/)", message.body)
    assert match, message.body
    return match.group(1)


def mails_to(outbox, address: str) -> list:
    return [m for m in outbox if m.to == [address.lower()]]


def confirmed_follower(client, certificate, capture, outbox, email: str = BUYER_MAIL):
    follow(client, certificate, capture, email)
    client.post(link_in(mails_to(outbox, email)[-1], "confirm"))
    outbox.clear()


def suspend(certificate, officer, capture, reason: str = "Audit found PDQm failures"):
    with capture(execute=True):
        return lifecycle.certificate_suspend(certificate=certificate, by=officer, reason=reason)


def test_it_walks_the_whole_double_opt_in_and_mails_the_status_change(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    response = follow(buyer, certificate, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert "a message with a confirmation link is on its way" in page_text(response)
    [confirmation] = mailoutbox
    assert confirmation.to == ["procurement@hospital.example"]
    assert f"Confirm: follow certificate {certificate.number}" == confirmation.subject
    page = buyer.get(link_in(confirmation, "confirm"))
    assert page.status_code == 200
    assert "Confirm" in page_text(page) and "procurement@hospital.example" in page_text(page)
    confirmed = buyer.post(link_in(confirmation, "confirm"))
    assert "Confirmed: procurement@hospital.example will be told" in page_text(confirmed)
    mailoutbox.clear()

    suspend(certificate, officer_erin, django_capture_on_commit_callbacks)

    [update] = mails_to(mailoutbox, BUYER_MAIL)
    assert update.subject == f"Certificate {certificate.number} is now suspended"
    assert "it is now suspended" in update.body
    assert "Reason: Audit found PDQm failures" in update.body
    assert f"changed on {timezone.localdate():%Y-%m-%d}" in update.body
    assert link_in(update, "unsubscribe")


def test_it_does_not_confirm_when_the_link_is_only_opened(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    Client().get(link_in(mailoutbox[0], "confirm"))  # a mail scanner prefetching the link
    mailoutbox.clear()
    suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    assert mails_to(mailoutbox, BUYER_MAIL) == []
    assert CertificateSubscription.objects.get().confirmed_at is None


def test_it_mails_nothing_to_an_address_that_never_confirmed(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    follow(buyer, certificate, django_capture_on_commit_callbacks, "idle@hospital.example")
    mailoutbox.clear()
    suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    assert mails_to(mailoutbox, "idle@hospital.example") == []


def test_it_stops_mailing_after_a_one_click_unsubscribe(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    certificate = suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    [update] = mails_to(mailoutbox, BUYER_MAIL)
    # One click from the mail client: a bare POST, no page, no CSRF token.
    response = Client(enforce_csrf_checks=True).post(link_in(update, "unsubscribe"))
    assert response.status_code == 200
    assert "no longer follows certificate" in page_text(response)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_reinstate(
            certificate=certificate, by=officer_erin, reason="Fixed and re-tested"
        )
    assert mails_to(mailoutbox, BUYER_MAIL) == []


def test_it_asks_before_unsubscribing_when_the_link_is_only_opened(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    page = Client().get(link_in(mails_to(mailoutbox, BUYER_MAIL)[0], "unsubscribe"))
    assert "Stop sending procurement@hospital.example updates" in page_text(page)
    assert CertificateSubscription.objects.get().unsubscribed_at is None


def test_it_mails_each_follower_once_per_status_change(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    # The same address asking twice and confirming both links still gets one mail per change.
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    for message in mailoutbox:
        assert buyer.post(link_in(message, "confirm")).status_code == 200
    mailoutbox.clear()
    confirmed_follower(
        Client(), certificate, django_capture_on_commit_callbacks, mailoutbox, "it@clinic.example"
    )

    certificate = suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_reinstate(certificate=certificate, by=officer_erin, reason="Fixed")

    for address in (BUYER_MAIL, "it@clinic.example"):
        subjects = [m.subject for m in mails_to(mailoutbox, address)]
        assert subjects == [
            f"Certificate {certificate.number} is now suspended",
            f"Certificate {certificate.number} is now active",
        ]


def test_it_tells_followers_of_the_replacement_when_superseded(
    certificate,
    issue_another,
    officer_erin,
    buyer,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    newer = issue_another("6.0")
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_supersede(
            certificate=certificate,
            replacement_number=newer.number,
            by=officer_erin,
            reason="New version certified",
        )
    [update] = mails_to(mailoutbox, BUYER_MAIL)
    assert "it is now superseded" in update.body
    assert f"Replaced by certificate {newer.number}." in update.body


def test_it_tells_followers_when_the_certificate_is_reissued(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        services.certificate_reissue(certificate=certificate, reason="signature key k1 revoked")
    [update] = mails_to(mailoutbox, BUYER_MAIL)
    assert update.subject == f"Certificate {certificate.number} was re-issued"
    assert "Why: signature key k1 revoked" in update.body
    assert "still active" in update.body


def test_it_answers_alike_whether_or_not_the_address_already_follows(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    again = follow(Client(), certificate, django_capture_on_commit_callbacks)
    stranger = follow(Client(), certificate, django_capture_on_commit_callbacks, "new@x.example")

    def answer(response) -> str:
        text = page_text(response)
        return re.search(r"Thank you\. If (\S+) can receive mail.*?days\.", text).group(0)

    assert again.status_code == stranger.status_code == 200
    assert answer(again).replace("procurement@hospital.example", "A") == answer(stranger).replace(
        "new@x.example", "A"
    )
    # Only the mailbox learns the difference: the follower is told it already follows.
    [reminder] = mails_to(mailoutbox, BUYER_MAIL)
    assert reminder.subject == f"You already follow certificate {certificate.number}"
    assert "/confirm/" not in reminder.body and link_in(reminder, "unsubscribe")
    [newcomer] = mails_to(mailoutbox, "new@x.example")
    assert link_in(newcomer, "confirm")


def test_it_limits_a_follower_and_a_stranger_alike(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    for address in (BUYER_MAIL, "stranger@x.example"):
        statuses = [
            follow(Client(), certificate, django_capture_on_commit_callbacks, address).status_code
            for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429], address


def test_it_says_a_link_that_is_not_valid_is_not_valid(buyer):
    for path in (
        "/subscriptions/not-a-token/confirm/",
        "/subscriptions/" + "x" * 43 + "/unsubscribe/",
    ):
        for method in (buyer.get, buyer.post):
            response = method(path)
            assert response.status_code == 404
            assert "This link is not valid" in page_text(response)


def test_it_says_an_expired_confirmation_link_expired_and_confirms_nothing(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    link = link_in(mailoutbox[0], "confirm")
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=8)):
        response = buyer.post(link)
    assert response.status_code == 410
    assert "This confirmation link expired on" in page_text(response)
    assert f"Ask again from the page of certificate {certificate.number}" in page_text(response)
    assert CertificateSubscription.objects.get().confirmed_at is None


def test_it_gives_each_request_its_own_unguessable_token(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    follow(buyer, certificate, django_capture_on_commit_callbacks)
    first, second = (link_in(m, "confirm") for m in mailoutbox)
    assert first != second
    tokens = CertificateSubscription.objects.values_list("token", flat=True)
    assert all(len(token) >= 40 for token in tokens)  # 256 random bits


def test_it_limits_confirmation_requests_per_address_and_day(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    for _ in range(5):
        assert follow(buyer, certificate, django_capture_on_commit_callbacks).status_code == 200
    refused = follow(buyer, certificate, django_capture_on_commit_callbacks)
    assert refused.status_code == 429
    assert "Too many confirmation requests for this address today" in page_text(refused)
    assert len(mailoutbox) == 5
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=1, minutes=1)):
        assert follow(buyer, certificate, django_capture_on_commit_callbacks).status_code == 200


def test_it_limits_confirmation_requests_per_certificate_and_day(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox, settings
):
    settings.CERTIFICATE_SUBSCRIPTION_MAX_PER_CERTIFICATE_PER_DAY = 3
    for n in range(3):
        follow(buyer, certificate, django_capture_on_commit_callbacks, f"p{n}@x.example")
    refused = follow(buyer, certificate, django_capture_on_commit_callbacks, "p9@x.example")
    assert refused.status_code == 429
    assert f"Too many people asked to follow {certificate.number} today" in page_text(refused)
    assert mails_to(mailoutbox, "p9@x.example") == []


def test_it_refuses_what_is_not_an_email_address_and_stores_nothing(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    for bad in ("", "not an address", "a@b", "x" * 300 + "@x.example", "\x00@x.example"):
        response = follow(buyer, certificate, django_capture_on_commit_callbacks, bad)
        assert response.status_code == 400, bad
        assert "e-mail address" in page_text(response)
    assert not CertificateSubscription.objects.exists()
    assert mailoutbox == []


def test_it_offers_no_following_of_a_revoked_certificate(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_revoke(certificate=certificate, by=officer_erin, reason="Fraud")
    assert "Follow this certificate" not in page_text(
        buyer.get(f"/certificates/{certificate.number}/")
    )
    response = follow(buyer, certificate, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "there is nothing to follow" in page_text(response)


def test_it_shows_the_follow_form_on_the_certificate_page(certificate, vendor_alice):
    for client in (Client(), client_for(vendor_alice)):
        page = page_text(client.get(f"/certificates/{certificate.number}/"))
        assert "Follow this certificate" in page


@pytest.mark.postgres
def test_it_says_a_link_with_a_nul_in_its_token_is_not_valid(buyer):
    # PostgreSQL refuses a NUL in a text: the token must never reach the query.
    token = "a" * 30 + "%00" + "b" * 10
    for kind in ("confirm", "unsubscribe"):
        for method in (buyer.get, buyer.post):
            response = method(f"/subscriptions/{token}/{kind}/")
            assert response.status_code == 404
            assert "This link is not valid" in page_text(response)


def test_it_says_a_token_with_characters_no_token_has_is_not_valid(buyer):
    for token in ("a" * 30 + "!" + "b" * 10, "a" * 30 + "%20" + "b" * 10, "é" * 30):
        for kind in ("confirm", "unsubscribe"):
            response = buyer.post(f"/subscriptions/{token}/{kind}/")
            assert response.status_code == 404, token
            assert "This link is not valid" in page_text(response)


def test_it_offers_one_click_unsubscribe_in_the_headers_of_a_status_mail(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    confirmed_follower(buyer, certificate, django_capture_on_commit_callbacks, mailoutbox)
    suspend(certificate, officer_erin, django_capture_on_commit_callbacks)
    [update] = mails_to(mailoutbox, BUYER_MAIL)
    link = link_in(update, "unsubscribe")
    assert update.extra_headers["List-Unsubscribe"] == f"<https://opencas.example{link}>"
    assert update.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert update.message()["List-Unsubscribe"] == f"<https://opencas.example{link}>"
    # What a mail client does with them: a bare POST to the link, and no more mail.
    assert Client(enforce_csrf_checks=True).post(link).status_code == 200
    assert CertificateSubscription.objects.filter(unsubscribed_at__isnull=True).count() == 0


def test_it_stops_one_client_from_using_up_a_certificates_daily_follow_requests(
    certificate, buyer, django_capture_on_commit_callbacks, mailoutbox, settings
):
    settings.CERTIFICATE_FOLLOW_RATE = "3/day"
    for n in range(3):
        assert follow(buyer, certificate, django_capture_on_commit_callbacks, f"p{n}@x.example")
    refused = follow(buyer, certificate, django_capture_on_commit_callbacks, "p9@x.example")
    assert refused.status_code == 429
    assert f"Too many requests to follow {certificate.number} from your network" in page_text(
        refused
    )
    assert mails_to(mailoutbox, "p9@x.example") == []
    # Another client still can.
    other = Client(REMOTE_ADDR="192.0.2.7")
    ok = follow(other, certificate, django_capture_on_commit_callbacks, "p9@x.example")
    assert ok.status_code == 200 and len(mails_to(mailoutbox, "p9@x.example")) == 1
