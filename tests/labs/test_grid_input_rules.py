"""The grid refuses what it cannot store faithfully: a stale grid, over-long text, a test case
id already recorded; evidence references split on newlines or commas only."""

from __future__ import annotations

import re

import pytest
from support import client_for, page_text

from cas.models import Application
from labs import services as lab_services
from labs.models import TestRecord

pytestmark = pytest.mark.django_db


def keys(application) -> dict[str, str]:
    return {
        c.aipo.profile.keyword: f"a{c.aipo_id}"
        for c in application.claims.select_related("aipo__profile")
    }


def shown_keys(page: str) -> list[str]:
    return re.findall(r'name="shown" value="([^"]+)"', page)


def test_a_stale_grid_is_refused_with_409_and_stores_nothing(
    make_application, case_cast, assessor_carol, reviewer_dave
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    url = f"/lab/cases/{application.pk}/grid/"
    client = client_for(assessor_carol)
    opened = shown_keys(client.get(url).content.decode())
    assert sorted(opened) == sorted([k["XDS.b"], k["PDQm"], "extra"])
    # Meanwhile a colleague records XDS.b: the row a<XDS.b> is now r<record>.
    client_for(reviewer_dave).post(url, {f"{k['XDS.b']}-result": "fail", "shown": opened})
    before = TestRecord.objects.count()
    response = client.post(
        url,
        {
            "shown": opened,
            f"{k['XDS.b']}-result": "pass",
            f"{k['PDQm']}-result": "pass",
        },
    )
    assert response.status_code == 409
    assert "results changed since you opened the grid: reload" in page_text(response)
    assert TestRecord.objects.count() == before
    assert not TestRecord.objects.filter(aipo__profile__keyword="PDQm").exists()


def test_a_stale_grid_is_refused_even_when_only_an_untouched_row_changed(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    url = f"/lab/cases/{application.pk}/grid/"
    client = client_for(assessor_carol)
    opened = shown_keys(client.get(url).content.decode())
    client.post(url, {f"{k['XDS.b']}-result": "fail"})
    response = client.post(url, {"shown": opened, f"{k['PDQm']}-result": "pass"})
    assert response.status_code == 409
    assert TestRecord.objects.count() == 1


def test_an_over_long_comment_is_refused_naming_the_field_and_limit(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    response = client_for(assessor_carol).post(
        f"/lab/cases/{application.pk}/grid/",
        {
            f"{k['XDS.b']}-result": "pass",
            f"{k['XDS.b']}-comment": "x" * 5001,
            f"{k['PDQm']}-result": "pass",
        },
    )
    assert response.status_code == 400
    page = page_text(response)
    assert "The comment is 5001 characters long; the limit is 5000" in page
    assert not TestRecord.objects.exists()


def test_an_over_long_review_note_is_refused_not_cut(make_application, case_cast, reviewer_dave):
    application = make_application("in_review", **case_cast)
    response = client_for(reviewer_dave).post(
        f"/lab/cases/{application.pk}/review/approve/", {"note": "y" * 2001}
    )
    assert response.status_code == 400
    assert "The note is 2001 characters long; the limit is 2000" in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"


def test_evidence_splits_on_newlines_and_commas_not_on_spaces(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    url = f"/lab/cases/{application.pk}/grid/"
    client = client_for(assessor_carol)
    response = client.post(
        url,
        {
            f"{k['XDS.b']}-result": "pass",
            f"{k['XDS.b']}-evidence_links": "Gazelle log 881, https://evs.example/r/42",
        },
    )
    assert response.status_code == 302
    record = TestRecord.objects.get()
    assert record.evidence_list == ["Gazelle log 881", "https://evs.example/r/42"]
    # The grid shows them comma-separated, and sending the row back unchanged amends nothing.
    page = client.get(url).content.decode()
    assert 'value="Gazelle log 881, https://evs.example/r/42"' in page
    again = client.post(
        url,
        {
            "shown": shown_keys(page),
            f"r{record.pk}-result": "pass",
            f"r{record.pk}-evidence_links": "Gazelle log 881, https://evs.example/r/42",
            f"{k['PDQm']}-result": "pass",
        },
    )
    assert again.status_code == 302
    assert not TestRecord.objects.filter(version=2).exists()
    assert lab_services.split_evidence("a b\nc d\r\ne,f") == ["a b", "c d", "e", "f"]


def test_another_test_case_row_reusing_a_recorded_id_says_to_amend_the_row_above(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_assessment", **case_cast)
    k = keys(application)
    url = f"/lab/cases/{application.pk}/grid/"
    client = client_for(assessor_carol)
    client.post(url, {f"{k['XDS.b']}-result": "pass", f"{k['XDS.b']}-test_case": "TC-1"})
    response = client.post(
        url,
        {
            "extra-aipo": k["XDS.b"][1:],
            "extra-result": "fail",
            "extra-test_case": "TC-1",
            f"{k['PDQm']}-result": "pass",
        },
    )
    assert response.status_code == 400
    assert "test case TC-1 is already recorded for this AIPO: amend its row above" in page_text(
        response
    )
    assert TestRecord.objects.count() == 1
