"""Every rule of the case, broken on purpose through HTTP: the refusal and its message."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from support import client_for, page_text

from cas.models import Application, AuditEntry, Domain, Membership, Organisation
from labs.models import Accreditation, ConflictOfInterest

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast(lab, assessor_carol, reviewer_dave, officer_erin, officer_frank):
    return {
        "lab_org": lab,
        "recorder": assessor_carol,
        "reviewer": reviewer_dave,
        "officer": officer_erin,
    }


def url(application: Application, action: str = "") -> str:
    return f"/applications/{application.pk}/{action + '/' if action else ''}"


def test_it_refuses_submission_naming_the_aipos_without_a_passing_result(
    make_application, vendor_alice
):
    application = make_application("draft", passed=[("XDS.b", "DOC_CONSUMER", "NONE")])
    response = client_for(vendor_alice).post(url(application, "submit"))
    assert response.status_code == 400
    page = page_text(response)
    assert "no passing Connectathon result" in page
    assert "PDQm / PDC / NONE" in page and "XDS.b / DOC_CONSUMER" not in page.split("window:")[1]
    assert Application.objects.get(pk=application.pk).state == "draft"


def test_it_does_not_count_a_no_peer_grade_as_a_pass(make_application, vendor_alice):
    from evidence.models import ConnectathonResult

    application = make_application("draft")
    ConnectathonResult.objects.filter(aipo__profile__keyword="PDQm").update(grade="no_peer")
    response = client_for(vendor_alice).post(url(application, "submit"))
    assert response.status_code == 400
    assert "PDQm / PDC / NONE" in page_text(response)


def test_it_does_not_count_a_pass_older_than_the_evidence_window(
    make_application, vendor_alice, connectathon_2026, settings
):
    application = make_application("draft")
    connectathon_2026.end_date = timezone.localdate() - dt.timedelta(days=365 * 4)
    connectathon_2026.save()
    response = client_for(vendor_alice).post(url(application, "submit"))
    assert response.status_code == 400
    assert "XDS.b / DOC_CONSUMER / NONE" in page_text(response)


def test_it_submits_when_every_claimed_aipo_passed(make_application, vendor_alice):
    application = make_application("draft")
    response = client_for(vendor_alice).post(url(application, "submit"))
    assert response.status_code == 302
    assert Application.objects.get(pk=application.pk).state == "submitted"


def test_it_refuses_a_lab_whose_accreditation_expired(make_application, cast, officer_erin):
    application = make_application("submitted", **cast)
    Accreditation.objects.filter(lab=cast["lab_org"]).update(
        valid_until=timezone.localdate() - dt.timedelta(days=1)
    )
    response = client_for(officer_erin).post(
        url(application, "assign-lab"), {"lab": cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "expired on" in page_text(response)
    assert Application.objects.get(pk=application.pk).lab is None


def test_it_refuses_a_lab_whose_scope_does_not_cover_a_claimed_profile(
    make_application, cast, officer_erin
):
    application = make_application("submitted", **cast)
    accreditation = Accreditation.objects.get(lab=cast["lab_org"])
    accreditation.scope_domains.set([Domain.objects.get(keyword="RAD")])
    response = client_for(officer_erin).post(
        url(application, "assign-lab"), {"lab": cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "does not cover PDQm, XDS.b" in page_text(response)


def test_it_refuses_a_lab_of_the_applicants_own_organisation(
    make_application, cast, officer_erin, helix
):
    application = make_application("submitted", **cast)
    Organisation.objects.filter(pk=cast["lab_org"].pk).update(parent=helix)
    response = client_for(officer_erin).post(
        url(application, "assign-lab"), {"lab": cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "belongs to the applicant's own organisation" in page_text(response)


def test_it_refuses_a_lab_with_a_declared_conflict_of_interest(
    make_application, cast, officer_erin, helix
):
    application = make_application("submitted", **cast)
    ConflictOfInterest.objects.create(lab=cast["lab_org"], organisation=helix, reason="consulting")
    response = client_for(officer_erin).post(
        url(application, "assign-lab"), {"lab": cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "conflict of interest with Helix Health Systems" in page_text(response)


def test_it_offers_only_eligible_labs_and_says_why_the_others_are_not(
    make_application, cast, officer_erin, helix
):
    application = make_application("submitted", **cast)
    Organisation.objects.create(kind="lab", name="Unaccredited Lab")
    page = page_text(client_for(officer_erin).get(url(application)))
    assert f'<option value="{cast["lab_org"].pk}">' in page
    assert "Unaccredited Lab is not eligible: it holds no accreditation." in page


def test_it_lets_only_an_officer_assign_a_lab(make_application, cast, vendor_alice):
    application = make_application("submitted", **cast)
    response = client_for(vendor_alice).post(
        url(application, "assign-lab"), {"lab": cast["lab_org"].pk}
    )
    assert response.status_code == 403
    assert "Only a scheme officer can assign a lab." in page_text(response)


def test_it_refuses_to_complete_an_assessment_with_an_aipo_unrecorded(
    make_application, cast, assessor_carol
):
    application = make_application("in_assessment", **cast)
    client = client_for(assessor_carol)
    xds = application.claims.get(aipo__profile__keyword="XDS.b").aipo_id
    client.post(url(application, "results"), {"aipo": xds, "result": "pass"})
    response = client.post(url(application, "complete"))
    assert response.status_code == 400
    assert "no result for PDQm / PDC / NONE" in page_text(response)


def test_it_refuses_approval_by_the_person_who_recorded_the_results(
    make_application, cast, assessor_carol
):
    application = make_application("in_review", **cast)
    response = client_for(assessor_carol).post(url(application, "approve"))
    assert response.status_code == 403
    assert "second member of the assigned lab" in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"


def test_it_refuses_a_decision_by_an_officer_who_took_part_in_the_assessment(
    make_application, cast, assessor_carol, scheme
):
    application = make_application("decision_pending", **cast)
    # Carol also holds an officer role: she still may not decide a case she assessed.
    Membership.objects.create(user=assessor_carol, organisation=scheme, role="scheme_officer")
    response = client_for(assessor_carol).post(url(application, "grant"))
    assert response.status_code == 403
    assert "took no part in the assessment" in page_text(response)


def test_it_refuses_a_decision_by_the_technical_reviewer(
    make_application, cast, reviewer_dave, scheme
):
    application = make_application("decision_pending", **cast)
    Membership.objects.create(user=reviewer_dave, organisation=scheme, role="scheme_officer")
    response = client_for(reviewer_dave).post(url(application, "grant"))
    assert response.status_code == 403


def test_it_reduces_the_scope_to_the_aipos_that_passed(
    make_application, cast, officer_frank, django_capture_on_commit_callbacks
):
    application = make_application("in_assessment", **cast)
    from support import aipo

    from labs.services import test_record_create

    test_record_create(
        application=application,
        aipo=aipo("XDS.b", "DOC_CONSUMER"),
        result="pass",
        by=cast["recorder"],
    )
    test_record_create(
        application=application, aipo=aipo("PDQm", "PDC"), result="fail", by=cast["recorder"]
    )
    from cas import services

    application = services.application_complete_assessment(
        application=application, by=cast["recorder"]
    )
    services.application_approve_report(application=application, by=cast["reviewer"])
    refused = client_for(officer_frank).post(url(application, "grant"), {"reason": "partial"})
    assert refused.status_code == 400
    assert "did not pass: PDQm / PDC / NONE" in page_text(refused)
    assert Application.objects.get(pk=application.pk).state == "decision_pending"
    with django_capture_on_commit_callbacks(execute=True):
        client_for(officer_frank).post(
            url(application, "grant"), {"reason": "partial", "reduce_scope": "on"}
        )
    granted = Application.objects.get(pk=application.pk)
    assert "Scope reduced; not granted: PDQm / PDC / NONE." in granted.decision_reason
    certificate = Application.objects.get(pk=application.pk).certificates.get()
    assert [s["profile_keyword"] for s in certificate.content["scope"]] == ["XDS.b"]


def test_it_answers_409_to_the_second_of_two_grants(
    make_application, cast, officer_frank, django_capture_on_commit_callbacks
):
    application = make_application("decision_pending", **cast)
    client = client_for(officer_frank)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url(application, "grant")).status_code == 302
    response = client.post(url(application, "grant"))
    assert response.status_code == 409
    assert "is now certified" in page_text(response)
    assert Application.objects.get(pk=application.pk).certificates.count() == 1


def test_it_answers_404_for_another_vendors_case_and_logs_the_attempt(
    make_application, cast, vendor_bob, caplog
):
    application = make_application("submitted", **cast)
    with caplog.at_level(logging.WARNING, logger="opencas.access"):
        for action in ("", "submit", "withdraw"):
            method = "get" if not action else "post"
            response = getattr(client_for(vendor_bob), method)(url(application, action))
            assert response.status_code == 404
    assert f"refused foreign application {application.pk}" in caplog.text
    assert Application.objects.get(pk=application.pk).state == "submitted"


def test_it_answers_404_for_a_case_not_assigned_to_the_lab(
    make_application, vendor_alice, assessor_carol
):
    application = make_application("draft")
    assert client_for(assessor_carol).get(url(application)).status_code == 404


def test_it_records_who_when_from_to_and_why_for_every_transition(
    make_application, cast, vendor_alice
):
    application = make_application("draft")
    client_for(vendor_alice).post(
        url(application, "submit"), {"reason": "ready"}, HTTP_X_REQUEST_ID="req-42"
    )
    entry = AuditEntry.objects.filter(object_id=str(application.pk), action="submit").get()
    assert (entry.actor, entry.from_state, entry.to_state, entry.reason, entry.request_id) == (
        vendor_alice,
        "draft",
        "submitted",
        "ready",
        "req-42",
    )
    page = page_text(client_for(vendor_alice).get(url(application)))
    assert "ready" in page and "vendor_alice" in page


def test_it_detects_an_audit_entry_edited_or_deleted_behind_its_back(make_application, cast):
    make_application("in_review", **cast)
    call_command("verify_audit")
    victim = AuditEntry.objects.filter(action="submit").get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cas_auditentry SET reason = 'forged' WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=f"entry {victim.pk} was altered"):
        call_command("verify_audit")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cas_auditentry WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match="does not follow the entry before it"):
        call_command("verify_audit")


def test_it_lets_the_vendor_withdraw_before_a_decision(make_application, cast, vendor_alice):
    application = make_application("in_assessment", **cast)
    response = client_for(vendor_alice).post(url(application, "withdraw"), {"reason": "later"})
    assert response.status_code == 302
    assert Application.objects.get(pk=application.pk).state == "withdrawn"
