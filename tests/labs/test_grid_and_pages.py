"""The recording grid through HTTP, the lab's "my cases" list, and who sees which page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from support import client_for, page_text

from cas.models import Application, AuditEntry
from labs.models import TestRecord

pytestmark = pytest.mark.django_db


def keys(application) -> dict[str, str]:
    return {
        c.aipo.profile.keyword: f"a{c.aipo_id}"
        for c in application.claims.select_related("aipo__profile")
    }


def test_one_post_records_every_row_with_all_its_fields(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    response = client_for(assessor_carol).post(
        f"/lab/cases/{application.pk}/grid/",
        {
            f"{k['XDS.b']}-result": "pass",
            f"{k['XDS.b']}-test_case": "XDSb-11897",
            f"{k['XDS.b']}-test_case_name": "Stored query: FindDocuments",
            f"{k['XDS.b']}-tool": "NIST XDS Toolkit",
            f"{k['XDS.b']}-tool_version": "7.11.2",
            f"{k['XDS.b']}-comment": "all 14 queries answered",
            f"{k['XDS.b']}-evidence_links": "https://gazelle.example/logs/881, EVS-2026-0042",
            f"{k['PDQm']}-result": "not_applicable",
        },
    )
    assert response.status_code == 302
    xds = TestRecord.objects.get(aipo__profile__keyword="XDS.b")
    assert (xds.test_case, xds.test_case_name, xds.tool, xds.tool_version) == (
        "XDSb-11897",
        "Stored query: FindDocuments",
        "NIST XDS Toolkit",
        "7.11.2",
    )
    assert xds.evidence_list == ["https://gazelle.example/logs/881", "EVS-2026-0042"]
    assert xds.recorded_by == assessor_carol and xds.recorded_at
    assert TestRecord.objects.get(aipo__profile__keyword="PDQm").result == "not_applicable"
    assert (
        AuditEntry.objects.filter(object_id=str(application.pk), action="record_result").count()
        == 2
    )


def test_one_bad_row_stores_nothing_and_names_the_row(make_application, case_cast, assessor_carol):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    client = client_for(assessor_carol)
    url = f"/lab/cases/{application.pk}/grid/"
    no_result = client.post(
        url, {f"{k['XDS.b']}-result": "pass", f"{k['PDQm']}-test_case": "PDQm-001"}
    )
    assert no_result.status_code == 400
    page = page_text(no_result)
    assert "nothing was stored" in page
    assert "Choose a result" in page
    assert 'value="PDQm-001"' in page  # what was typed is kept
    bad_value = client.post(url, {f"{k['XDS.b']}-result": "pass", f"{k['PDQm']}-result": "maybe"})
    assert bad_value.status_code == 400
    assert "'maybe' is not a result" in page_text(bad_value)
    nul = client.post(url, {f"{k['XDS.b']}-result": "pass", f"{k['PDQm']}-comment": "a\x00b"})
    assert nul.status_code == 400
    assert "contains a NUL character" in page_text(nul)
    assert not TestRecord.objects.exists()
    assert not AuditEntry.objects.filter(action="record_result").exists()
    empty = client.post(url, {})
    assert empty.status_code == 400
    assert "Nothing to record" in page_text(empty)


def test_the_amendment_reason_is_asked_only_where_a_record_exists(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    client = client_for(assessor_carol)
    url = f"/lab/cases/{application.pk}/grid/"
    client.post(url, {f"{k['XDS.b']}-result": "fail"})
    record = TestRecord.objects.get()
    page = page_text(client.get(url))
    assert f'name="r{record.pk}-reason"' in page
    assert f'name="{k["PDQm"]}-reason"' not in page
    assert f'name="{k["XDS.b"]}-result"' not in page  # the recorded row is the record's
    # Sending the grid back unchanged does not amend anything.
    unchanged = client.post(url, {f"r{record.pk}-result": "fail", f"{k['PDQm']}-result": "pass"})
    assert unchanged.status_code == 302
    assert TestRecord.objects.count() == 2 and not TestRecord.objects.filter(version=2).exists()


def test_another_test_case_for_an_aipo_is_a_second_record_not_an_amendment(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    client = client_for(assessor_carol)
    url = f"/lab/cases/{application.pk}/grid/"
    client.post(url, {f"{k['XDS.b']}-result": "pass", f"{k['XDS.b']}-test_case": "TC-1"})
    response = client.post(
        url,
        {
            "extra-aipo": k["XDS.b"][1:],
            "extra-result": "inconclusive",
            "extra-test_case": "TC-2",
        },
    )
    assert response.status_code == 302, re.findall(r'role="alert"[^<]*<', page_text(response))
    current = TestRecord.objects.current().filter(aipo__profile__keyword="XDS.b")
    assert sorted((r.test_case, r.version, r.result) for r in current) == [
        ("TC-1", 1, "pass"),
        ("TC-2", 1, "inconclusive"),
    ]


def test_the_grid_completes_the_assessment(make_application, case_cast, assessor_carol):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    client = client_for(assessor_carol)
    refused = client.post(f"/lab/cases/{application.pk}/complete/", follow=True)
    assert "no result for" in page_text(refused)
    assert Application.objects.get(pk=application.pk).state == "in_assessment"
    client.post(
        f"/lab/cases/{application.pk}/grid/",
        {f"{k['XDS.b']}-result": "pass", f"{k['PDQm']}-result": "pass"},
    )
    done = client.post(f"/lab/cases/{application.pk}/complete/")
    assert done.status_code == 302
    assert Application.objects.get(pk=application.pk).state == "in_review"


def test_lab_pages_are_for_the_assigned_lab_and_foreign_cases_are_404(
    make_application, case_cast, vendor_alice, vendor_bob, officer_erin, django_user_model
):
    from cas.models import Membership, Organisation

    application = make_application("in_assessment", **case_cast)
    olga = django_user_model.objects.create_user("assessor_olga", password="x")
    Membership.objects.create(
        user=olga,
        organisation=Organisation.objects.create(kind="lab", name="Other Lab"),
        role="assessor",
    )
    for page in ("grid", "review"):
        url = f"/lab/cases/{application.pk}/{page}/"
        assert client_for(vendor_bob).get(url).status_code == 404
        assert client_for(olga).get(url).status_code == 404
        assert client_for(vendor_alice).get(url).status_code == 403
        assert client_for(officer_erin).get(url).status_code == 403
    k = keys(application)
    response = client_for(olga).post(
        f"/lab/cases/{application.pk}/grid/", {f"{k['XDS.b']}-result": "pass"}
    )
    assert response.status_code == 404
    assert not TestRecord.objects.exists()
    assert client_for(vendor_alice).get("/lab/").status_code == 404


def test_my_cases_lists_assessments_and_reviews_due_with_their_ages(
    make_application, case_cast, assessor_carol, reviewer_dave
):
    start = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assessing = make_application("in_assessment", **case_cast)
    with time_machine.travel(start + dt.timedelta(days=3), tick=False):
        reviewing = make_application("in_review", version="5.2", **case_cast)
    with time_machine.travel(start + dt.timedelta(days=10), tick=False):
        dave = page_text(client_for(reviewer_dave).get("/lab/"))
        carol = page_text(client_for(assessor_carol).get("/lab/"))
    assert assessing.reference in dave and reviewing.reference in dave
    assert "10 days" in dave and "7 days" in dave
    assert "0 of 2 AIPOs" in dave
    assert f'href="/lab/cases/{reviewing.pk}/review/">Review</a>' in dave
    assert "you recorded results: another member reviews" in carol
