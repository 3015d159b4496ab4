"""Accreditation: history of every change, expiry warnings (frozen time), blocking, flags."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client
from support import client_for, page_text

from cas.models import Application, Domain
from labs.models import (
    Accreditation,
    AccreditationChange,
    AccreditationWarning,
    CaseFlag,
)
from labs.services import accreditations_check
from labs.tasks import check_accreditations

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)


def at(day: dt.date):
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC))


@pytest.fixture
def accreditation(lab) -> Accreditation:
    accreditation = Accreditation.objects.get(lab=lab)
    Accreditation.objects.filter(pk=accreditation.pk).update(
        valid_from=TODAY - dt.timedelta(days=700), valid_until=TODAY + dt.timedelta(days=90)
    )
    return Accreditation.objects.get(pk=accreditation.pk)


def warnings_sent(mailoutbox) -> list[str]:
    return [m.subject for m in mailoutbox if "expires in" in m.subject]


def test_it_warns_the_lab_and_the_officers_60_30_and_7_days_before_expiry_once_each(
    accreditation,
    assessor_carol,
    reviewer_dave,
    officer_erin,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    until = accreditation.valid_until
    sent_on = {}
    for offset in range(90, -3, -1):  # every day, and twice a day, from 90 days out
        day = until - dt.timedelta(days=offset)
        for _ in range(2):
            before = len(mailoutbox)
            with at(day), django_capture_on_commit_callbacks(execute=True):
                check_accreditations.delay().get()
            if len(mailoutbox) > before:
                sent_on.setdefault(offset, []).extend(mailoutbox[before:])
    assert sorted(sent_on, reverse=True) == [60, 30, 7]
    for offset, messages in sent_on.items():
        recipients = sorted(a for m in messages for a in m.to)
        assert recipients == sorted(
            [assessor_carol.email, reviewer_dave.email, officer_erin.email]
        ), offset
        assert f"expires in {offset} days" in messages[0].subject
        assert until.isoformat() in messages[0].body
    assert list(
        AccreditationWarning.objects.order_by("days_before").values_list("days_before", flat=True)
    ) == [7, 30, 60]


def test_a_job_first_run_late_sends_only_the_nearest_warning(
    accreditation, reviewer_dave, mailoutbox, django_capture_on_commit_callbacks
):
    with (
        at(accreditation.valid_until - dt.timedelta(days=5)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        accreditations_check()
        accreditations_check()
    assert warnings_sent(mailoutbox) == [
        f"Accreditation {accreditation} of {accreditation.lab} expires in 5 days"
    ]


def test_an_extension_starts_the_warnings_again_and_keeps_the_history(
    accreditation, officer_erin, mailoutbox, django_capture_on_commit_callbacks
):
    from labs.services import accreditation_save

    with (
        at(accreditation.valid_until - dt.timedelta(days=7)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        accreditations_check()
        accreditation.valid_until += dt.timedelta(days=365)
        accreditation_save(accreditation=accreditation, by=officer_erin, reason="renewed")
        accreditations_check()  # 372 days left: nothing
    with (
        at(accreditation.valid_until - dt.timedelta(days=60)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        accreditations_check()
    assert len(warnings_sent(mailoutbox)) == 2
    change = AccreditationChange.objects.filter(accreditation=accreditation).last()
    assert change.reason == "renewed" and change.changed_by == officer_erin
    assert [name for name, _old, _new in change.differences()] == ["valid_until"]


def test_after_expiry_no_assignment_and_assigned_cases_are_flagged_and_mailed(
    make_application,
    case_cast,
    accreditation,
    officer_erin,
    officer_frank,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    with at(accreditation.valid_until - dt.timedelta(days=20)):
        in_assessment = make_application("in_assessment", **case_cast)
        in_review = make_application("in_review", version="5.2", **case_cast)
        waiting = make_application("submitted", version="5.3", **case_cast)
    with at(accreditation.valid_until + dt.timedelta(days=1)):
        with django_capture_on_commit_callbacks(execute=True):
            check_accreditations.delay().get()
            check_accreditations.delay().get()  # idempotent: no second flag, no second mail
        response = client_for(officer_erin).post(
            f"/applications/{waiting.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
        )
        assert response.status_code == 400
        assert f"expired on {accreditation.valid_until:%Y-%m-%d}" in page_text(response)
        assert Application.objects.get(pk=waiting.pk).lab is None
        page = page_text(client_for(officer_frank).get("/lab/accreditations/"))
    flags = CaseFlag.objects.order_by("application_id")
    assert [f.application_id for f in flags] == [in_assessment.pk, in_review.pk]
    assert all(f.kind == "expired" for f in flags)
    assert f"expired on {accreditation.valid_until:%Y-%m-%d}" in flags[0].reason
    flagged_mail = [m for m in mailoutbox if "flagged" in m.subject]
    assert sorted(m.to[0] for m in flagged_mail) == sorted(
        [officer_erin.email, officer_frank.email] * 2
    )
    assert in_assessment.reference in page and in_review.reference in page
    assert "expired on" in page


def test_suspension_blocks_assignment_and_flags_assigned_cases_at_once(
    make_application,
    case_cast,
    accreditation,
    officer_erin,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    assigned = make_application("in_assessment", **case_cast)
    waiting = make_application("submitted", version="5.2", **case_cast)
    client = client_for(officer_erin)
    refused = client.post(
        f"/lab/accreditations/{accreditation.pk}/status/", {"status": "suspended", "reason": ""}
    )
    assert refused.status_code == 302
    assert Accreditation.objects.get(pk=accreditation.pk).status == "active"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/lab/accreditations/{accreditation.pk}/status/",
            {"status": "suspended", "reason": "BELAC suspended scope ITI after audit"},
        )
    assert Accreditation.objects.get(pk=accreditation.pk).status == "suspended"
    flag = CaseFlag.objects.get()
    assert flag.application_id == assigned.pk and flag.kind == "suspended"
    assert "is suspended" in flag.reason
    assert any(assigned.reference in m.subject for m in mailoutbox)
    response = client.post(
        f"/applications/{waiting.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "is suspended" in page_text(response)
    change = AccreditationChange.objects.filter(accreditation=accreditation).last()
    assert change.before["status"] == "active" and change.after["status"] == "suspended"
    assert change.reason == "BELAC suspended scope ITI after audit"
    page = page_text(client.get("/lab/accreditations/"))
    assert "status: active → suspended" in page

    ack = client.post(f"/lab/flags/{flag.pk}/acknowledge/", {"note": "lab told to pause"})
    assert ack.status_code == 302
    assert CaseFlag.objects.get(pk=flag.pk).acknowledged_by == officer_erin


def test_the_admin_keeps_the_history_of_an_accreditation(accreditation, django_user_model):
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    iti, rad = Domain.objects.get(keyword="ITI"), Domain.objects.get(keyword="RAD")
    response = admin.post(
        f"/admin/labs/accreditation/{accreditation.pk}/change/",
        {
            "lab": accreditation.lab_id,
            "body": "BELAC",
            "number": accreditation.number,
            "standard": "ISO/IEC 17025:2017",
            "authorisation_number": "CAS-LAB-008",
            "scope_domains": [iti.pk, rad.pk],
            "valid_from": accreditation.valid_from.isoformat(),
            "valid_until": accreditation.valid_until.isoformat(),
            "status": "active",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    change = AccreditationChange.objects.filter(accreditation=accreditation).last()
    assert change.changed_by.username == "root"
    assert dict((k, (o, n)) for k, o, n in change.differences()) == {
        "authorisation_number": ("CAS-LAB-007", "CAS-LAB-008"),
        "scope_domains": (["ITI"], ["ITI", "RAD"]),
    }
    assert (
        admin.post(
            f"/admin/labs/accreditation/{accreditation.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Accreditation.objects.filter(pk=accreditation.pk).exists()
    backwards = admin.post(
        f"/admin/labs/accreditation/{accreditation.pk}/change/",
        {
            "lab": accreditation.lab_id,
            "body": "BELAC",
            "number": accreditation.number,
            "standard": "ISO/IEC 17025:2017",
            "valid_from": accreditation.valid_until.isoformat(),
            "valid_until": accreditation.valid_from.isoformat(),
            "status": "active",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )
    assert backwards.status_code == 200
    assert "cannot end before it starts" in page_text(backwards)
    assert AccreditationChange.objects.filter(accreditation=accreditation).count() == 1


def test_only_officers_change_accreditations_and_vendors_see_none(
    accreditation, reviewer_dave, vendor_alice
):
    response = client_for(reviewer_dave).post(
        f"/lab/accreditations/{accreditation.pk}/status/",
        {"status": "withdrawn", "reason": "we quit"},
    )
    assert response.status_code == 404
    assert Accreditation.objects.get(pk=accreditation.pk).status == "active"
    assert "Change status" not in page_text(client_for(reviewer_dave).get("/lab/accreditations/"))
    assert client_for(vendor_alice).get("/lab/accreditations/").status_code == 404
