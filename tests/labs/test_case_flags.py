"""Flags on assigned cases: a recurrence after acknowledgement raises a new flag, and a case is
flagged when the accreditation covering its profiles lapses even if another one stays valid."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from support import client_for, page_text

from cas.models import Domain
from labs.models import Accreditation, CaseFlag
from labs.services import accreditation_save

pytestmark = pytest.mark.django_db


def set_status(client, accreditation, status, reason):
    return client.post(
        f"/lab/accreditations/{accreditation.pk}/status/", {"status": status, "reason": reason}
    )


def flagged_mail(mailoutbox, application):
    return [m for m in mailoutbox if "flagged" in m.subject and application.reference in m.subject]


def test_a_second_suspension_after_acknowledgement_raises_a_new_flag_and_mails_it(
    make_application, case_cast, officer_erin, mailoutbox, django_capture_on_commit_callbacks
):
    application = make_application("in_assessment", **case_cast)
    accreditation = Accreditation.objects.get(lab=case_cast["lab_org"])
    client = client_for(officer_erin)
    with django_capture_on_commit_callbacks(execute=True):
        set_status(client, accreditation, "suspended", "first audit finding")
    first = CaseFlag.objects.get()
    client.post(f"/lab/flags/{first.pk}/acknowledge/", {"note": "lab told to pause"})
    with django_capture_on_commit_callbacks(execute=True):
        set_status(client, accreditation, "active", "finding closed")
        set_status(client, accreditation, "suspended", "second audit finding")
    flags = list(CaseFlag.objects.order_by("pk"))
    assert len(flags) == 2
    assert flags[0].acknowledged_at is not None and flags[1].acknowledged_at is None
    assert flags[1].kind == "suspended"
    assert len(flagged_mail(mailoutbox, application)) == 2  # one officer, mailed twice
    page = page_text(client.get("/lab/accreditations/"))
    assert "Acknowledge" in page


def test_an_open_flag_is_not_raised_twice(
    make_application, case_cast, officer_erin, mailoutbox, django_capture_on_commit_callbacks
):
    application = make_application("in_assessment", **case_cast)
    accreditation = Accreditation.objects.get(lab=case_cast["lab_org"])
    client = client_for(officer_erin)
    with django_capture_on_commit_callbacks(execute=True):
        set_status(client, accreditation, "suspended", "first audit finding")
        set_status(client, accreditation, "active", "finding closed")
        set_status(client, accreditation, "suspended", "again")
    assert CaseFlag.objects.count() == 1
    assert len(flagged_mail(mailoutbox, application)) == 1


def test_a_case_is_flagged_when_its_scope_is_suspended_while_another_scope_stays_valid(
    make_application, case_cast, officer_erin, mailoutbox, django_capture_on_commit_callbacks
):
    lab = case_cast["lab_org"]
    application = make_application("in_assessment", **case_cast)
    radiology = Accreditation.objects.create(
        lab=lab,
        body="DAkkS",
        number="D-PL-99999",
        valid_from=timezone.localdate() - dt.timedelta(days=30),
        valid_until=timezone.localdate() + dt.timedelta(days=700),
    )
    radiology.scope_domains.add(Domain.objects.get(keyword="RAD"))
    iti = Accreditation.objects.get(lab=lab, body="BELAC")
    with django_capture_on_commit_callbacks(execute=True):
        response = set_status(client_for(officer_erin), iti, "suspended", "ITI scope suspended")
    assert response.status_code == 302
    flag = CaseFlag.objects.get()
    assert flag.application_id == application.pk
    assert flag.accreditation_id == iti.pk and flag.kind == "suspended"
    assert "BELAC 612-TEST is suspended" in flag.reason
    assert len(flagged_mail(mailoutbox, application)) == 1


def test_a_case_is_flagged_when_no_accreditation_covers_its_profiles_any_more(
    make_application, case_cast, officer_erin
):
    lab = case_cast["lab_org"]
    application = make_application("in_assessment", **case_cast)
    iti = Accreditation.objects.get(lab=lab)
    accreditation_save(
        accreditation=iti,
        by=officer_erin,
        reason="scope reduced to RAD",
        scope_domains=[Domain.objects.get(keyword="RAD")],
    )
    flag = CaseFlag.objects.get()
    assert flag.application_id == application.pk and flag.kind == "out_of_scope"
    assert "none of its accreditations covers PDQm, XDS.b" in flag.reason
