"""The certificate lifecycle through the pages: who may change what, with a reason, in public."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone
from support import client_for, page_text

from cas.errors import ActionRefused
from cas.models import AuditEntry
from certificates import lifecycle
from certificates.models import Certificate
from certificates.tasks import expire_certificates, withdraw_overdue_suspensions

pytestmark = pytest.mark.django_db


def change(client, certificate, action: str, capture, **data):
    with capture(execute=True):
        return client.post(f"/certificates/{certificate.number}/{action}/", data)


def words(response) -> str:
    """The page's text without tags, whitespace collapsed: what a reader sees."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())


def reload(certificate) -> Certificate:
    return Certificate.objects.get(pk=certificate.pk)


def history(certificate) -> list[tuple[str, str, str, str]]:
    entries = AuditEntry.objects.filter(
        object_type="certificates.certificate", object_id=str(certificate.pk)
    ).order_by("id")
    return [(e.action, e.from_state, e.to_state, e.reason) for e in entries]


def test_it_lets_an_officer_suspend_with_a_reason_shown_publicly_and_mailed(
    certificate, officer_erin, vendor_alice, buyer, django_capture_on_commit_callbacks, mailoutbox
):
    response = change(
        client_for(officer_erin),
        certificate,
        "suspend",
        django_capture_on_commit_callbacks,
        reason="Surveillance audit found PDQm failures",
    )
    assert response.status_code == 302
    assert reload(certificate).status == "suspended"
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert "Suspended" in page and "Surveillance audit found PDQm failures" in page
    assert "active → suspended (Surveillance audit found PDQm failures)" in page
    today = f"{timezone.localdate():%Y-%m-%d}"
    assert f"{today}: active → suspended" in page
    assert history(certificate)[-1] == (
        "suspend",
        "active",
        "suspended",
        "Surveillance audit found PDQm failures",
    )
    (mail,) = [m for m in mailoutbox if certificate.number in m.subject]
    assert mail.to == [vendor_alice.email]
    assert "now suspended" in mail.subject
    assert "Surveillance audit found PDQm failures" in mail.body


def test_it_refuses_a_suspension_without_a_reason_and_changes_nothing(
    certificate, officer_erin, django_capture_on_commit_callbacks, mailoutbox
):
    before = history(certificate)
    response = change(
        client_for(officer_erin), certificate, "suspend", django_capture_on_commit_callbacks
    )
    assert response.status_code == 400
    assert "A suspension needs a reason" in page_text(response)
    assert reload(certificate).status == "active"
    assert history(certificate) == before and mailoutbox == []


def test_it_refuses_a_vendor_suspending_its_own_certificate(
    certificate, vendor_alice, django_capture_on_commit_callbacks
):
    response = change(
        client_for(vendor_alice),
        certificate,
        "suspend",
        django_capture_on_commit_callbacks,
        reason="please",
    )
    assert response.status_code == 403
    assert "Only a scheme officer" in page_text(response)
    assert reload(certificate).status == "active"


def test_it_lets_the_vendor_request_withdrawal_of_its_own_certificate(
    certificate, vendor_alice, buyer, django_capture_on_commit_callbacks
):
    page = page_text(client_for(vendor_alice).get(f"/certificates/{certificate.number}/"))
    # The actions card only: the page's status legend names every status.
    actions = page.split('id="certificate-actions"', 1)[-1].split("</div>", 1)[0]
    assert "Request withdrawal" in actions and "Suspend" not in actions
    response = change(
        client_for(vendor_alice),
        certificate,
        "withdraw",
        django_capture_on_commit_callbacks,
        reason="HelixEHR 5.1 is discontinued",
    )
    assert response.status_code == 302
    assert reload(certificate).status == "withdrawn"
    entry = AuditEntry.objects.filter(action="withdraw").get()
    assert entry.actor == vendor_alice
    page = page_text(buyer.get(f"/verify/{certificate.number}"))
    assert "Withdrawn" in page and "HelixEHR 5.1 is discontinued" in page


def test_it_refuses_a_competitor_withdrawing_someone_elses_certificate(
    certificate, vendor_bob, django_capture_on_commit_callbacks
):
    page = page_text(client_for(vendor_bob).get(f"/certificates/{certificate.number}/"))
    assert 'id="certificate-actions"' not in page and "Withdraw this certificate" not in page
    response = change(
        client_for(vendor_bob),
        certificate,
        "withdraw",
        django_capture_on_commit_callbacks,
        reason="sabotage",
    )
    assert response.status_code == 403
    assert reload(certificate).status == "active"
    assert not AuditEntry.objects.filter(action="withdraw").exists()


def test_it_requires_a_reason_to_revoke_and_then_revokes(
    certificate, officer_frank, buyer, django_capture_on_commit_callbacks
):
    client = client_for(officer_frank)
    refused = change(client, certificate, "revoke", django_capture_on_commit_callbacks, reason=" ")
    assert refused.status_code == 400 and "A revocation needs a reason" in page_text(refused)
    assert reload(certificate).status == "active"
    change(
        client,
        certificate,
        "revoke",
        django_capture_on_commit_callbacks,
        reason="Certificate obtained with falsified test evidence",
    )
    assert reload(certificate).status == "revoked"
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert "Revoked" in page and "falsified test evidence" in page


def test_it_reinstates_a_suspended_certificate(
    certificate, officer_erin, django_capture_on_commit_callbacks
):
    client = client_for(officer_erin)
    change(client, certificate, "suspend", django_capture_on_commit_callbacks, reason="audit")
    change(
        client,
        certificate,
        "reinstate",
        django_capture_on_commit_callbacks,
        reason="fixed in 5.1.1",
    )
    assert reload(certificate).status == "active"
    assert [h[:3] for h in history(certificate)[-2:]] == [
        ("suspend", "active", "suspended"),
        ("reinstate", "suspended", "active"),
    ]


def test_it_answers_409_for_a_change_the_state_does_not_allow(
    certificate, officer_erin, django_capture_on_commit_callbacks
):
    response = change(
        client_for(officer_erin),
        certificate,
        "reinstate",
        django_capture_on_commit_callbacks,
        reason="nothing to reinstate",
    )
    assert response.status_code == 409
    assert "is active: 'reinstate' is not possible" in page_text(response)


def test_it_supersedes_a_certificate_and_both_pages_say_so(
    certificate, issue_another, officer_erin, buyer, django_capture_on_commit_callbacks
):
    newer = issue_another("5.2")
    response = change(
        client_for(officer_erin),
        certificate,
        "supersede",
        django_capture_on_commit_callbacks,
        replacement=newer.number,
        reason="HelixEHR 5.2 replaces 5.1",
    )
    assert response.status_code == 302
    old = reload(certificate)
    assert old.status == "superseded" and old.superseded_by == newer
    old_page = words(buyer.get(f"/certificates/{certificate.number}/"))
    assert f"Superseded by {newer.number}" in old_page and "HelixEHR 5.2 replaces 5.1" in old_page
    new_page = words(buyer.get(f"/certificates/{newer.number}/"))
    assert f"Replaces {certificate.number}" in new_page
    verify = page_text(buyer.get(f"/verify/{certificate.number}"))
    assert f"replaced by {newer.number}" in verify


def test_it_refuses_to_supersede_with_an_unknown_or_the_same_certificate(
    certificate, officer_erin, django_capture_on_commit_callbacks
):
    client = client_for(officer_erin)
    unknown = change(
        client,
        certificate,
        "supersede",
        django_capture_on_commit_callbacks,
        replacement="CAS-2026-999999",
        reason="x",
    )
    assert unknown.status_code == 400 and "No issued certificate CAS-2026-999999" in page_text(
        unknown
    )
    itself = change(
        client,
        certificate,
        "supersede",
        django_capture_on_commit_callbacks,
        replacement=certificate.number,
        reason="x",
    )
    assert itself.status_code == 400 and "cannot replace itself" in page_text(itself)
    assert reload(certificate).status == "active" and reload(certificate).superseded_by is None


def test_it_expires_certificates_past_their_validity_on_schedule(certificate, buyer, mailoutbox):
    with time_machine.travel(
        dt.datetime.combine(certificate.valid_until, dt.time(12), tzinfo=dt.UTC), tick=False
    ):
        assert expire_certificates.delay().get() == []
    after = certificate.valid_until + dt.timedelta(days=1)
    with time_machine.travel(dt.datetime.combine(after, dt.time(1), tzinfo=dt.UTC), tick=False):
        # The beat task runs outside any request; its mail goes out on commit.
        assert expire_certificates.delay().get() == [certificate.number]
        assert expire_certificates.delay().get() == []
    assert reload(certificate).status == "expired"
    assert history(certificate)[-1][:3] == ("expire", "active", "expired")
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert f"validity ended on {certificate.valid_until:%Y-%m-%d}" in page


def test_it_warns_the_vendor_then_withdraws_a_suspension_left_unresolved(
    certificate,
    officer_erin,
    vendor_alice,
    settings,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    settings.CERTIFICATE_SUSPENSION_MAX_DAYS = 30
    settings.CERTIFICATE_SUSPENSION_WARNING_DAYS = 7
    start = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        suspended = lifecycle.certificate_suspend(
            certificate=certificate, by=officer_erin, reason="Open nonconformity NC-12"
        )
    mailoutbox.clear()

    def run_on(day: dt.datetime) -> dict:
        with time_machine.travel(day, tick=False), django_capture_on_commit_callbacks(execute=True):
            return withdraw_overdue_suspensions.delay().get()

    assert run_on(start + dt.timedelta(days=22)) == {"warned": [], "withdrawn": []}
    assert mailoutbox == []
    assert run_on(start + dt.timedelta(days=23, hours=1)) == {
        "warned": [suspended.number],
        "withdrawn": [],
    }
    (warning,) = mailoutbox
    assert warning.to == [vendor_alice.email]
    assert "will be withdrawn on 2026-12-31" in warning.subject
    assert "Open nonconformity NC-12" in warning.body
    # Warned once, not on every run.
    assert run_on(start + dt.timedelta(days=25)) == {"warned": [], "withdrawn": []}
    assert len(mailoutbox) == 1 and reload(certificate).status == "suspended"

    assert run_on(start + dt.timedelta(days=30, hours=1)) == {
        "warned": [],
        "withdrawn": [suspended.number],
    }
    final = reload(certificate)
    assert final.status == "withdrawn"
    assert "suspension not resolved within 30 days" in final.status_reason
    assert "now withdrawn" in mailoutbox[-1].subject


def test_it_does_not_withdraw_a_suspension_that_was_lifted(
    certificate, officer_erin, settings, django_capture_on_commit_callbacks
):
    settings.CERTIFICATE_SUSPENSION_MAX_DAYS = 30
    start = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="audit")
    with time_machine.travel(start + dt.timedelta(days=5), tick=False):
        lifecycle.certificate_reinstate(
            certificate=reload(certificate), by=officer_erin, reason="resolved"
        )
    with time_machine.travel(start + dt.timedelta(days=40), tick=False):
        assert withdraw_overdue_suspensions.delay().get() == {"warned": [], "withdrawn": []}
    assert reload(certificate).status == "active"


def test_it_shows_officers_the_suspended_certificates_and_hides_the_page_from_others(
    certificate, officer_erin, vendor_alice, buyer
):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="audit")
    page = page_text(client_for(officer_erin).get("/certificates/manage/"))
    assert certificate.number in page and "audit" in page
    assert client_for(vendor_alice).get("/certificates/manage/").status_code == 403
    assert buyer.get("/certificates/manage/").status_code == 302


@pytest.mark.parametrize("action", ["suspend", "reinstate", "withdraw", "revoke", "supersede"])
def test_it_answers_garbage_with_a_refusal_never_a_500_and_changes_nothing(
    action, certificate, buyer, vendor_alice, vendor_bob, assessor_carol, officer_frank
):
    garbage = {"reason": "\x00", "replacement": "' OR 1=1 --"}
    for client in (buyer, *(client_for(u) for u in (vendor_alice, vendor_bob, assessor_carol))):
        response = client.post(f"/certificates/{certificate.number}/{action}/", garbage)
        assert response.status_code in (302, 400, 403, 409), (action, response.status_code)
    response = client_for(officer_frank).post(
        f"/certificates/{certificate.number}/{action}/", garbage
    )
    assert response.status_code in (400, 409)
    assert (
        client_for(officer_frank).get(f"/certificates/{certificate.number}/{action}/").status_code
        == 405
    )
    assert reload(certificate).status == "active"
    assert [h[0] for h in history(certificate)] == ["allocate", "issue"]


def test_it_never_withdraws_a_suspension_without_warning_the_vendor_first(
    certificate,
    officer_erin,
    vendor_alice,
    settings,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    # Beat was down through the warning window: the first run is already past the deadline.
    settings.CERTIFICATE_SUSPENSION_MAX_DAYS = 30
    settings.CERTIFICATE_SUSPENSION_WARNING_DAYS = 7
    start = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        suspended = lifecycle.certificate_suspend(
            certificate=certificate, by=officer_erin, reason="Open nonconformity NC-12"
        )
    mailoutbox.clear()

    def run_on(day: dt.datetime) -> dict:
        with time_machine.travel(day, tick=False), django_capture_on_commit_callbacks(execute=True):
            return withdraw_overdue_suspensions.delay().get()

    late = start + dt.timedelta(days=40)
    assert run_on(late) == {"warned": [suspended.number], "withdrawn": []}
    (warning,) = mailoutbox
    assert warning.to == [vendor_alice.email]
    assert "will be withdrawn on 2027-01-17" in warning.subject  # 40 + 7 days after the start
    assert reload(certificate).status == "suspended"
    assert run_on(late + dt.timedelta(days=6, hours=23)) == {"warned": [], "withdrawn": []}
    assert reload(certificate).status == "suspended" and len(mailoutbox) == 1

    assert run_on(late + dt.timedelta(days=7)) == {"warned": [], "withdrawn": [suspended.number]}
    assert reload(certificate).status == "withdrawn"
    assert "now withdrawn" in mailoutbox[-1].subject


def test_the_public_reason_of_a_supersede_is_the_officers_own_once(
    certificate, issue_another, officer_erin, buyer, django_capture_on_commit_callbacks
):
    newer = issue_another("5.2")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_supersede(
            certificate=certificate,
            replacement_number=newer.number,
            by=officer_erin,
            reason="HelixEHR 5.2 replaces 5.1",
        )
    old = reload(certificate)
    assert old.status_reason == "HelixEHR 5.2 replaces 5.1"
    verify = words(buyer.get(f"/verify/{certificate.number}"))
    assert f"replaced by {newer.number}: HelixEHR 5.2 replaces 5.1" in verify
    assert verify.count(f"replaced by {newer.number}") == 1
    listed = buyer.get("/.well-known/opencas-status-list.json").json()["certificates"]
    entry = next(e for e in listed if e["number"] == certificate.number)
    assert entry["reason"] == "HelixEHR 5.2 replaces 5.1"
    assert entry["superseded_by"] == newer.number


def test_a_supersede_rechecks_the_replacement_under_lock(
    certificate, issue_another, officer_erin, monkeypatch
):
    # Another officer withdraws the replacement between the form's lookup and the change:
    # the supersede sees the locked, fresh row and refuses.
    newer = issue_another("5.2")
    real_change = lifecycle._change

    def withdrawn_meanwhile(**kwargs):
        if kwargs["action"] == "supersede":
            lifecycle.certificate_withdraw(
                certificate=reload(newer), by=officer_erin, reason="withdrawn meanwhile"
            )
        return real_change(**kwargs)

    monkeypatch.setattr(lifecycle, "_change", withdrawn_meanwhile)
    with pytest.raises(ActionRefused, match=f"{newer.number} is withdrawn"):
        lifecycle.certificate_supersede(
            certificate=certificate,
            replacement_number=newer.number,
            by=officer_erin,
            reason="HelixEHR 5.2 replaces 5.1",
        )
    old = reload(certificate)
    assert old.status == "active" and old.superseded_by is None
