"""The lab's REST API: assigned cases, current results, recording (one or many, all or
nothing), amending, and the released reports; with the same refusals and isolation as the
lab pages."""

from __future__ import annotations

import logging

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from support import aipo

from cas.models import AuditEntry, ConflictDeclaration, Domain, Membership, Organisation
from labs.models import AssessorCompetence, ConflictOfInterest, TestRecord, TestReport
from labs.services import test_report_release as release_report

pytestmark = pytest.mark.django_db


def api_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def records_url(application) -> str:
    return f"/api/lab/cases/{application.pk}/records/"


def record(user, application, *rows):
    return api_for(user).post(records_url(application), {"records": list(rows)}, format="json")


XDS = {"profile": "XDS.b", "actor": "DOC_CONSUMER"}
PDQM = {"profile": "PDQm", "actor": "PDC"}


@pytest.fixture
def assessing(make_application, case_cast):
    return make_application("in_assessment", **case_cast)


@pytest.fixture
def olga(django_user_model, catalogue):
    """An assessor of another lab."""
    other = Organisation.objects.create(kind="lab", name="Second Test Lab")
    user = django_user_model.objects.create_user("assessor_olga", password="x")
    Membership.objects.create(user=user, organisation=other, role="assessor")
    return user


# --- The lab's cases ---


def test_it_lists_the_cases_assigned_to_the_lab_with_their_progress(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "pass"})
    response = api_for(assessor_carol).get("/api/lab/cases/")
    assert response.status_code == 200
    (case,) = response.json()["results"]
    assert (case["reference"], case["state"]) == (assessing.reference, "in_assessment")
    assert (case["claimed"], case["recorded"]) == (2, 1)


def test_it_shows_another_lab_none_of_the_cases(assessing, olga):
    response = api_for(olga).get("/api/lab/cases/")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_it_answers_the_case_list_404_to_someone_outside_every_lab(assessing, vendor_alice):
    assert api_for(vendor_alice).get("/api/lab/cases/").status_code == 404


def test_it_asks_for_a_token_on_every_lab_endpoint(assessing):
    case = f"/api/lab/cases/{assessing.pk}"
    for method, url in (
        ("get", "/api/lab/cases/"),
        ("get", f"{case}/records/"),
        ("post", f"{case}/records/"),
        ("post", f"{case}/records/amend/"),
        ("get", f"{case}/reports/"),
        ("post", f"{case}/reports/amend/"),
    ):
        response = getattr(APIClient(), method)(url, {}, format="json")
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"].startswith("Token")
    assert not TestRecord.objects.exists()


# --- Current records ---


def test_it_shows_the_current_records_and_the_aipos_without_a_result(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "fail", "test_case": "XDS-1"})
    response = api_for(assessor_carol).get(records_url(assessing))
    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "in_assessment"
    (only,) = data["records"]
    assert (only["aipo"]["profile"], only["test_case"], only["result"]) == (
        "XDS.b",
        "XDS-1",
        "fail",
    )
    assert only["recorded_by"] == "assessor_carol"
    assert [a["profile"] for a in data["missing"]] == ["PDQm"]


def test_it_hides_a_case_from_another_labs_assessor_and_logs_it(assessing, olga, caplog):
    caplog.set_level(logging.WARNING, logger="opencas.access")
    response = api_for(olga).get(records_url(assessing))
    assert response.status_code == 404
    assert assessing.reference not in response.content.decode()
    assert any("foreign application" in r.getMessage() for r in caplog.records)


def test_it_refuses_the_cases_vendor_and_officer_the_lab_endpoints_with_403(
    assessing, vendor_alice, officer_erin
):
    for user in (vendor_alice, officer_erin):
        response = api_for(user).get(records_url(assessing))
        assert response.status_code == 403
        assert "Only members of the assigned lab" in response.json()["detail"]


# --- Recording ---


def test_it_records_several_results_at_once(assessing, assessor_carol):
    response = record(
        assessor_carol,
        assessing,
        {**XDS, "result": "pass", "test_case": "XDS-1", "tool": "Gazelle", "evidence": ["a", "b"]},
        {"aipo": aipo("PDQm", "PDC").pk, "result": "inconclusive", "comment": "timeout"},
    )
    assert response.status_code == 201
    assert {r["result"] for r in response.json()["records"]} == {"pass", "inconclusive"}
    assert response.json()["missing"] == []
    stored = TestRecord.objects.get(aipo=aipo("XDS.b", "DOC_CONSUMER"))
    assert (stored.recorded_by.username, stored.evidence_list) == ("assessor_carol", ["a", "b"])
    assert AuditEntry.objects.filter(action="record_result").count() == 2


def test_it_stores_nothing_when_one_row_names_an_aipo_the_case_does_not_claim(
    assessing, assessor_carol
):
    response = record(
        assessor_carol,
        assessing,
        {**XDS, "result": "pass"},
        {"profile": "PIX", "actor": "PAT_IDENTITY_X_REF_MGR", "result": "pass"},
    )
    assert response.status_code == 400
    body = response.json()
    assert "nothing was stored" in body["detail"]
    assert list(body["errors"]) == ["1"]
    assert "is not claimed in" in body["errors"]["1"]
    assert not TestRecord.objects.exists()


def test_it_names_an_aipo_that_is_not_in_the_catalogue(assessing, assessor_carol):
    response = record(
        assessor_carol, assessing, {"profile": "NOPE", "actor": "X", "result": "pass"}
    )
    assert response.status_code == 400
    assert response.json()["errors"]["0"] == "Not in the catalogue: NOPE / X / NONE."
    assert not TestRecord.objects.exists()


def test_it_refuses_a_result_outside_the_assessors_competence(assessing, assessor_carol):
    AssessorCompetence.objects.filter(user=assessor_carol).delete()
    AssessorCompetence.objects.create(
        lab=assessing.lab, user=assessor_carol, domain=Domain.objects.get(keyword="RAD")
    )
    response = record(assessor_carol, assessing, {**XDS, "result": "pass"})
    assert response.status_code == 400
    assert "no recorded competence in the ITI domain" in response.json()["errors"]["0"]
    assert not TestRecord.objects.exists()


def test_it_refuses_an_assessor_who_declared_a_conflict_with_the_vendor(
    assessing, assessor_carol, helix
):
    ConflictDeclaration.objects.create(
        user=assessor_carol,
        organisation=helix,
        reason="ex-employee",
        valid_from=timezone.localdate(),
    )
    response = record(assessor_carol, assessing, {**XDS, "result": "pass"})
    assert response.status_code == 403
    assert "declared a conflict of interest with Helix" in response.json()["detail"]
    assert not TestRecord.objects.exists()


def test_it_refuses_results_once_the_lab_declared_a_conflict_with_the_vendor(
    assessing, assessor_carol, helix
):
    ConflictOfInterest.objects.create(lab=assessing.lab, organisation=helix, reason="merger talks")
    response = record(assessor_carol, assessing, {**XDS, "result": "pass"})
    assert response.status_code == 403
    assert "Brussels Interoperability Test Lab declared a conflict" in response.json()["detail"]
    assert not TestRecord.objects.exists()


def test_it_refuses_results_once_the_assessment_is_complete(pending_case, assessor_carol):
    before = TestRecord.objects.count()
    response = record(assessor_carol, pending_case, {**XDS, "result": "fail"})
    assert response.status_code == 409
    assert "results can only be recorded during the assessment" in response.json()["detail"]
    assert TestRecord.objects.count() == before


def test_it_refuses_an_unknown_result(assessing, assessor_carol):
    response = record(assessor_carol, assessing, {**XDS, "result": "maybe"})
    assert response.status_code == 400
    assert "maybe" in response.json()["detail"]
    assert not TestRecord.objects.exists()


def test_it_needs_a_reason_to_record_a_test_case_again(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "pass", "test_case": "T1"})
    response = record(assessor_carol, assessing, {**XDS, "result": "fail", "test_case": "T1"})
    assert response.status_code == 400
    assert "an amendment needs a reason" in response.json()["errors"]["0"]
    assert TestRecord.objects.get().result == "pass"


def test_it_changes_nothing_for_another_labs_assessor_or_the_vendor(assessing, olga, vendor_alice):
    assert record(olga, assessing, {**XDS, "result": "pass"}).status_code == 404
    assert record(vendor_alice, assessing, {**XDS, "result": "pass"}).status_code == 403
    assert not TestRecord.objects.exists()


# --- Amending ---


def amend(user, application, record_id, **data):
    return api_for(user).post(
        f"/api/lab/cases/{application.pk}/records/amend/",
        {"record": record_id, **data},
        format="json",
    )


def test_it_amends_a_record_as_a_new_version_that_keeps_the_old_one(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "fail", "test_case": "T1", "tool": "G"})
    first = TestRecord.objects.get()
    response = amend(assessor_carol, assessing, first.pk, result="pass", reason="rerun fixed")
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["replaces"], body["result"]) == (2, first.pk, "pass")
    assert (body["test_case"], body["tool"], body["amendment_reason"]) == ("T1", "G", "rerun fixed")
    current = api_for(assessor_carol).get(records_url(assessing)).json()["records"]
    assert [r["id"] for r in current] == [body["id"]]
    assert TestRecord.objects.get(pk=first.pk).result == "fail"


def test_it_refuses_an_amendment_without_a_reason(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "fail"})
    response = amend(assessor_carol, assessing, TestRecord.objects.get().pk, result="pass")
    assert response.status_code == 400
    assert "needs a reason" in response.json()["detail"]
    assert TestRecord.objects.count() == 1


def test_it_refuses_to_amend_a_version_that_was_amended_already(assessing, assessor_carol):
    record(assessor_carol, assessing, {**XDS, "result": "fail"})
    first = TestRecord.objects.get()
    amend(assessor_carol, assessing, first.pk, result="pass", reason="rerun")
    response = amend(assessor_carol, assessing, first.pk, result="inconclusive", reason="again")
    assert response.status_code == 409
    assert "was amended already" in response.json()["detail"]
    assert TestRecord.objects.count() == 2


def test_it_answers_404_for_a_record_of_another_case(
    assessing, make_application, case_cast, assessor_carol
):
    other = make_application("in_assessment", version="7.0", **case_cast)
    record(assessor_carol, other, {**XDS, "result": "pass"})
    response = amend(
        assessor_carol, assessing, TestRecord.objects.get().pk, result="fail", reason="x"
    )
    assert response.status_code == 404
    assert TestRecord.objects.count() == 1


def test_it_hides_the_amendment_endpoint_from_another_lab(assessing, assessor_carol, olga):
    record(assessor_carol, assessing, {**XDS, "result": "fail"})
    response = amend(olga, assessing, TestRecord.objects.get().pk, result="pass", reason="x")
    assert response.status_code == 404
    assert TestRecord.objects.count() == 1


# --- Reports ---


@pytest.fixture
def reported(pending_case):
    """The approved case with its test report released (the on-commit task, run here)."""
    release_report(application_id=pending_case.pk)
    return pending_case


def test_it_lists_the_released_test_report_of_an_approved_case(reported, reviewer_dave):
    response = api_for(reviewer_dave).get(f"/api/lab/cases/{reported.pk}/reports/")
    assert response.status_code == 200
    (report,) = response.json()
    assert report["number"] == TestReport.objects.get(application=reported).number
    assert report["amends"] is None


def test_a_lab_manager_who_recorded_nothing_issues_an_amended_report(reported, reviewer_dave):
    first = TestReport.objects.get(application=reported)
    response = api_for(reviewer_dave).post(
        f"/api/lab/cases/{reported.pk}/reports/amend/", {"reason": "typo"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["amends"] == first.number
    assert TestReport.objects.filter(application=reported).count() == 2


def test_the_assessor_who_recorded_the_results_cannot_amend_the_report(reported, assessor_carol):
    response = api_for(assessor_carol).post(
        f"/api/lab/cases/{reported.pk}/reports/amend/", {"reason": "typo"}, format="json"
    )
    assert response.status_code == 403
    assert TestReport.objects.filter(application=reported).count() == 1


def test_it_refuses_an_id_past_any_rows_range_without_touching_the_database(
    assessing, assessor_carol
):
    huge = 10**30
    response = record(assessor_carol, assessing, {"aipo": huge, "result": "pass"})
    assert response.status_code == 400
    assert "less than or equal to" in response.json()["detail"]
    response = amend(assessor_carol, assessing, huge, reason="x")
    assert response.status_code == 400
    assert not TestRecord.objects.exists()


def test_it_names_the_valid_results_when_refusing_an_unknown_one(assessing, assessor_carol):
    response = record(assessor_carol, assessing, {**XDS, "result": "passed"})
    assert response.status_code == 400
    assert (
        '"passed" is not a valid result: use one of pass, fail, inconclusive, not_applicable.'
        in response.json()["detail"]
    )


def test_it_words_a_refused_batch_for_an_api_client_not_a_page(assessing, assessor_carol):
    response = record(
        assessor_carol, assessing, {"profile": "NOPE", "actor": "X", "result": "pass"}
    )
    detail = response.json()["detail"]
    assert detail.startswith("1 record refused, so nothing was stored")
    assert "named in `errors`" in detail and "grid" not in detail
