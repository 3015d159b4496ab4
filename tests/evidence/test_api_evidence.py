"""The evidence API: a case's evidence (files, FHIR TestReports, Connectathon results), a
multipart upload through the page's service and checks, one file's metadata and bytes."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from support import aipo

from cas.models import AuditEntry
from evidence.models import EvidenceBlob, EvidenceFile

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
REPORT = {
    "resourceType": "TestReport",
    "name": "PDQm consumer query",
    "status": "completed",
    "testScript": "https://example.org/TestScript/pdqm",
    "result": "pass",
    "test": [{"name": "Query", "action": [{"assert": {"result": "pass"}}]}],
}


def api_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upload(user, application, data: bytes = PDF, name: str = "conformance.pdf", **fields):
    return api_for(user).post(
        f"/api/applications/{application.pk}/evidence/",
        {"file": named(data, name), **fields},
        format="multipart",
    )


@pytest.fixture
def draft(make_application):
    return make_application("draft")


# --- Upload ---


def test_a_vendor_uploads_a_file_for_a_claimed_aipo(draft, vendor_alice):
    response = upload(
        vendor_alice, draft, aipo=["XDS.b/DOC_CONSUMER/NONE"], description="Gazelle log"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["original_name"], body["kind"], body["size"]) == (
        "conformance.pdf",
        "pdf",
        len(PDF),
    )
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["aipos"] == ["XDS.b / DOC_CONSUMER / NONE"]
    assert body["description"] == "Gazelle log"
    evidence = EvidenceFile.objects.get()
    assert list(evidence.aipos.all()) == [aipo("XDS.b", "DOC_CONSUMER")]
    assert AuditEntry.objects.filter(action="add_evidence").count() == 1


def test_it_accepts_an_aipo_named_by_its_id(draft, vendor_alice):
    claimed = aipo("PDQm", "PDC")
    response = upload(vendor_alice, draft, aipo=[str(claimed.pk)])
    assert response.status_code == 201
    assert list(EvidenceFile.objects.get().aipos.all()) == [claimed]


def test_it_refuses_a_file_whose_content_is_not_its_extension(draft, vendor_alice):
    response = upload(vendor_alice, draft, data=b"#!/bin/sh\nrm -rf /\n", name="report.pdf")
    assert response.status_code == 400
    assert "the two must agree" in response.json()["detail"]
    assert not EvidenceBlob.objects.exists()


def test_it_refuses_an_aipo_the_case_does_not_claim(draft, vendor_alice):
    response = upload(vendor_alice, draft, aipo=["PIX/PAT_IDENTITY_X_REF_MGR/NONE"])
    assert response.status_code == 400
    assert "not claimed" in response.json()["detail"]
    assert not EvidenceFile.objects.exists()


def test_it_refuses_an_aipo_that_is_not_in_the_catalogue(draft, vendor_alice):
    response = upload(vendor_alice, draft, aipo=["NOPE/X/NONE"])
    assert response.status_code == 400
    assert "is not PROFILE/ACTOR/OPTION of the catalogue" in response.json()["detail"]
    assert not EvidenceFile.objects.exists()


def test_it_refuses_the_same_bytes_twice_in_one_case(draft, vendor_alice):
    upload(vendor_alice, draft)
    response = upload(vendor_alice, draft, name="again.pdf")
    assert response.status_code == 400
    assert "already attached" in response.json()["detail"]
    assert EvidenceFile.objects.count() == 1


def test_it_refuses_a_file_over_the_limit_with_413(draft, vendor_alice, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 50
    response = upload(vendor_alice, draft)
    assert response.status_code == 413
    assert "the limit is 50 bytes" in response.json()["detail"]
    assert not EvidenceFile.objects.exists()


def test_it_refuses_evidence_once_the_case_is_with_the_lab(pending_case, vendor_alice):
    response = upload(vendor_alice, pending_case)
    assert response.status_code == 409
    assert "evidence can only be added while the case is a draft" in response.json()["detail"]
    assert not EvidenceFile.objects.exists()


def test_an_officer_cannot_add_evidence_for_the_vendor(draft, officer_erin):
    response = upload(officer_erin, draft)
    assert response.status_code == 403
    assert "Only the vendor of the case" in response.json()["detail"]


def test_it_needs_a_file(draft, vendor_alice):
    response = api_for(vendor_alice).post(
        f"/api/applications/{draft.pk}/evidence/", {"description": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert "file" in response.json()["errors"]


def test_a_competitor_cannot_upload_to_or_read_the_case(draft, vendor_bob, caplog):
    caplog.set_level(logging.WARNING, logger="opencas.access")
    assert upload(vendor_bob, draft).status_code == 404
    response = api_for(vendor_bob).get(f"/api/applications/{draft.pk}/evidence/")
    assert response.status_code == 404
    assert draft.reference not in response.content.decode()
    assert not EvidenceFile.objects.exists()
    assert any("foreign application" in r.getMessage() for r in caplog.records)


def test_it_asks_for_a_token(draft):
    assert APIClient().get(f"/api/applications/{draft.pk}/evidence/").status_code == 401
    assert upload(None, draft).status_code == 401
    assert not EvidenceFile.objects.exists()


# --- The list ---


def test_it_lists_files_testreports_and_matched_connectathon_results(draft, vendor_alice):
    upload(vendor_alice, draft, aipo=["XDS.b/DOC_CONSUMER/NONE"])
    pushed = api_for(vendor_alice).post(
        f"/api/applications/{draft.pk}/testreports/?aipo=PDQm/PDC/NONE",
        json.dumps(REPORT),
        content_type="application/fhir+json",
    )
    assert pushed.status_code == 201
    response = api_for(vendor_alice).get(f"/api/applications/{draft.pk}/evidence/")
    assert response.status_code == 200
    body = response.json()
    assert body["application"] == draft.reference
    names = [f["original_name"] for f in body["files"]]
    assert names[0] == "conformance.pdf" and len(names) == 2  # the report's file too
    (report,) = body["testreports"]
    assert (report["name"], report["result"], report["aipos"]) == (
        "PDQm consumer query",
        "pass",
        ["PDQm / PDC / NONE"],
    )
    grades = {(c["aipo"], c["grade"], c["counts"]) for c in body["connectathon"]}
    assert grades == {
        ("XDS.b / DOC_CONSUMER / NONE", "passed", True),
        ("PDQm / PDC / NONE", "passed", True),
    }


def test_the_assigned_lab_reads_the_evidence_too(pending_case, assessor_carol):
    response = api_for(assessor_carol).get(f"/api/applications/{pending_case.pk}/evidence/")
    assert response.status_code == 200
    assert response.json()["files"] == []


# --- One file ---


def test_it_gives_a_files_metadata_and_exact_bytes(draft, vendor_alice):
    file_id = upload(vendor_alice, draft).json()["id"]
    client = api_for(vendor_alice)
    meta = client.get(f"/api/evidence/files/{file_id}/")
    assert meta.status_code == 200
    assert meta.json()["content"] == f"/api/evidence/files/{file_id}/content/"
    content = client.get(meta.json()["content"])
    assert content.status_code == 200
    assert content["Content-Type"] == "application/pdf"
    assert content["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in content["Content-Disposition"]
    assert b"".join(content.streaming_content) == PDF


def test_a_competitor_gets_404_for_a_file_of_the_case(draft, vendor_alice, vendor_bob):
    file_id = upload(vendor_alice, draft).json()["id"]
    for url in (f"/api/evidence/files/{file_id}/", f"/api/evidence/files/{file_id}/content/"):
        response = api_for(vendor_bob).get(url)
        assert response.status_code == 404
        assert b"%PDF" not in response.content
        assert b"conformance" not in response.content


def test_an_unknown_file_is_404_and_anonymous_is_401(draft, vendor_alice):
    assert api_for(vendor_alice).get("/api/evidence/files/987654/").status_code == 404
    assert APIClient().get("/api/evidence/files/987654/content/").status_code == 401


def test_it_refuses_an_aipo_id_that_is_no_plain_number_or_past_any_row(draft, vendor_alice):
    for value in ("²", "9" * 30):
        response = upload(vendor_alice, draft, aipo=[value])
        assert response.status_code == 400, value
        assert "aipo=" in response.json()["detail"]
    assert not EvidenceFile.objects.exists()
