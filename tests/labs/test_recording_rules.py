"""Who may record what: competence per domain, conflicts of interest (lab and person),
accreditation scope; checked at assignment and at every recording."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from support import aipo, client_for, page_text

from cas.models import Application, ConflictDeclaration, Domain, Profile
from labs.models import Accreditation, AssessorCompetence, ConflictOfInterest, TestRecord

pytestmark = pytest.mark.django_db


def grid_post(client, application, data):
    return client.post(f"/lab/cases/{application.pk}/grid/", data)


def row_key(application, profile):
    return f"a{application.claims.get(aipo__profile__keyword=profile).aipo_id}"


def test_an_assessor_records_only_inside_their_competence(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    AssessorCompetence.objects.filter(user=assessor_carol).delete()
    AssessorCompetence.objects.create(
        lab=case_cast["lab_org"], user=assessor_carol, domain=Domain.objects.get(keyword="RAD")
    )
    key = row_key(application, "XDS.b")
    response = grid_post(client_for(assessor_carol), application, {f"{key}-result": "pass"})
    assert response.status_code == 400
    page = page_text(response)
    assert "no recorded competence in the ITI domain" in page
    assert "competent in ITI" in page
    assert not TestRecord.objects.exists()


def test_an_assessor_competent_in_the_domain_records(make_application, case_cast, assessor_carol):
    application = make_application("in_assessment", **case_cast)
    key = row_key(application, "XDS.b")
    response = grid_post(client_for(assessor_carol), application, {f"{key}-result": "pass"})
    assert response.status_code == 302
    assert TestRecord.objects.get().recorded_by == assessor_carol


def test_a_lab_conflict_in_force_blocks_assignment_but_not_once_it_ended(
    make_application, case_cast, officer_erin, helix
):
    application = make_application("submitted", **case_cast)
    today = timezone.localdate()
    ended = ConflictOfInterest.objects.create(
        lab=case_cast["lab_org"],
        organisation=helix,
        reason="consulting for Helix in 2024",
        valid_from=today - dt.timedelta(days=800),
        valid_until=today - dt.timedelta(days=1),
    )
    ConflictOfInterest.objects.create(
        lab=case_cast["lab_org"],
        organisation=helix,
        reason="joint venture from next month",
        valid_from=today + dt.timedelta(days=30),
    )
    assign = {"lab": case_cast["lab_org"].pk}
    client = client_for(officer_erin)
    response = client.post(f"/applications/{application.pk}/assign-lab/", assign)
    assert response.status_code == 302
    assert Application.objects.get(pk=application.pk).lab_id == case_cast["lab_org"].pk

    other = make_application("submitted", version="5.2", **case_cast)
    ended.valid_until = None
    ended.save()
    response = client.post(f"/applications/{other.pk}/assign-lab/", assign)
    assert response.status_code == 400
    assert "declared a conflict of interest with Helix Health Systems" in page_text(response)
    assert Application.objects.get(pk=other.pk).lab is None


def test_a_lab_conflict_with_the_vendors_group_blocks_assignment(
    make_application, case_cast, officer_erin, helix
):
    from cas.models import Organisation

    group = Organisation.objects.create(kind="vendor", name="Helix Group plc")
    Organisation.objects.filter(pk=helix.pk).update(parent=group)
    application = make_application("submitted", **case_cast)
    ConflictOfInterest.objects.create(
        lab=case_cast["lab_org"], organisation=group, reason="group-wide contract"
    )
    response = client_for(officer_erin).post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 400


def test_a_lab_conflict_declared_after_assignment_stops_every_recording(
    make_application, case_cast, assessor_carol, helix
):
    application = make_application("in_assessment", **case_cast)
    ConflictOfInterest.objects.create(
        lab=case_cast["lab_org"], organisation=helix, reason="acquired a stake in Helix"
    )
    key = row_key(application, "XDS.b")
    response = grid_post(client_for(assessor_carol), application, {f"{key}-result": "pass"})
    assert response.status_code == 400
    assert "Brussels Interoperability Test Lab declared a conflict of interest" in page_text(
        response
    )
    assert not TestRecord.objects.exists()


def test_an_assessors_own_declared_conflict_stops_their_recording(
    make_application, case_cast, assessor_carol, reviewer_dave, helix
):
    application = make_application("in_assessment", **case_cast)
    ConflictDeclaration.objects.create(
        user=assessor_carol,
        organisation=helix,
        reason="spouse works at Helix",
        valid_from=timezone.localdate() - dt.timedelta(days=1),
    )
    key = row_key(application, "XDS.b")
    response = grid_post(client_for(assessor_carol), application, {f"{key}-result": "pass"})
    assert response.status_code == 400
    assert "Carol declared a conflict of interest with Helix Health Systems" in page_text(response)
    assert not TestRecord.objects.exists()
    # A colleague without a conflict records.
    response = grid_post(client_for(reviewer_dave), application, {f"{key}-result": "pass"})
    assert response.status_code == 302
    assert TestRecord.objects.get().recorded_by == reviewer_dave


def test_an_expired_personal_declaration_no_longer_blocks(
    make_application, case_cast, assessor_carol, helix
):
    from labs import services as lab_services

    application = make_application("in_assessment", **case_cast)
    today = timezone.localdate()
    ConflictDeclaration.objects.create(
        user=assessor_carol,
        organisation=helix,
        reason="former employee",
        valid_from=today - dt.timedelta(days=900),
        valid_until=today - dt.timedelta(days=200),
    )
    record = lab_services.test_record_create(
        application=application,
        aipo=aipo("XDS.b", "DOC_CONSUMER"),
        result="pass",
        by=assessor_carol,
    )
    assert record.pk


def test_a_profile_scope_covers_only_that_profile(make_application, case_cast, officer_erin):
    application = make_application("submitted", **case_cast)
    accreditation = Accreditation.objects.get(lab=case_cast["lab_org"])
    accreditation.scope_domains.clear()
    accreditation.scope_profiles.set([Profile.objects.get(keyword="XDS.b")])
    response = client_for(officer_erin).post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "scope does not cover PDQm." in page_text(response)
    accreditation.scope_profiles.add(Profile.objects.get(keyword="PDQm"))
    response = client_for(officer_erin).post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 302


def test_a_claim_covered_only_by_two_accreditations_between_them_is_refused_at_assignment(
    make_application, case_cast, officer_erin
):
    # The report cites one accreditation, and approval insists on one covering every
    # claimed profile; assignment must not accept what approval would refuse later.
    application = make_application("submitted", **case_cast)
    accreditation = Accreditation.objects.get(lab=case_cast["lab_org"])
    accreditation.scope_domains.clear()
    accreditation.scope_profiles.set([Profile.objects.get(keyword="XDS.b")])
    second = Accreditation.objects.create(
        lab=case_cast["lab_org"],
        body="BELAC",
        number="BELAC 612-MOBILE",
        valid_from=accreditation.valid_from,
        valid_until=accreditation.valid_until,
    )
    second.scope_profiles.set([Profile.objects.get(keyword="PDQm")])
    response = client_for(officer_erin).post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert "no single accreditation of it covers all of PDQm, XDS.b" in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "submitted"


def test_a_lab_whose_competent_assessors_all_declared_a_conflict_cannot_be_assigned(
    make_application, case_cast, assessor_carol, reviewer_dave, officer_erin, helix
):
    application = make_application("submitted", **case_cast)
    since = timezone.localdate() - dt.timedelta(days=10)
    ConflictDeclaration.objects.create(
        user=assessor_carol, organisation=helix, reason="ex-employee", valid_from=since
    )
    assign = {"lab": case_cast["lab_org"].pk}
    client = client_for(officer_erin)
    # Dave is still free: the lab can take the case.
    assert "every assessor" not in page_text(client.get(f"/applications/{application.pk}/"))
    ConflictDeclaration.objects.create(
        user=reviewer_dave, organisation=helix, reason="shares", valid_from=since
    )
    response = client.post(f"/applications/{application.pk}/assign-lab/", assign)
    assert response.status_code == 400
    assert (
        "every assessor competent in ITI declared a conflict of interest with Helix Health Systems"
        in page_text(response)
    )
    assert Application.objects.get(pk=application.pk).lab is None


def test_a_lab_with_nobody_competent_in_a_claimed_domain_cannot_be_assigned(
    make_application, case_cast, assessor_carol, reviewer_dave, officer_erin
):
    application = make_application("submitted", **case_cast)
    AssessorCompetence.objects.filter(lab=case_cast["lab_org"]).delete()
    client = client_for(officer_erin)
    response = client.post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 400
    assert (
        "nobody at Brussels Interoperability Test Lab is recorded as competent in ITI"
        in page_text(response)
    )
    assert Application.objects.get(pk=application.pk).lab is None
    AssessorCompetence.objects.create(
        lab=case_cast["lab_org"], user=reviewer_dave, domain=Domain.objects.get(keyword="ITI")
    )
    response = client.post(
        f"/applications/{application.pk}/assign-lab/", {"lab": case_cast["lab_org"].pk}
    )
    assert response.status_code == 302
    assert Application.objects.get(pk=application.pk).lab_id == case_cast["lab_org"].pk
