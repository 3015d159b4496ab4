"""FHIR TestReports: the real files, value sets, the upload page, the CI endpoint, the
command, CapabilityStatement suggestions and the coverage matrix."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from support import HELIX_CLAIMS, aipo, client_for, page_text

from cas.models import Application
from evidence.models import (
    EvidenceBlob,
    EvidenceFile,
    FhirTestReport,
    FhirTestReportAction,
    FhirTestReportTest,
)
from evidence.testreports import TestReportInvalid, parse_testreport

DATA = Path(__file__).parent / "data"
HL7_EXAMPLE = DATA / "fhir-testing-ig_testreport-example.xml"
ENGINE_READ = DATA / "testscript-engine_example_read_test.json"
ENGINE_SEARCH = DATA / "testscript-engine_example_search.json"
ENGINE_SCRIPT = DATA / "testscript-engine_testscript-example-readtest.json"

R5_REPORT = {
    "resourceType": "TestReport",
    "name": "MHD read",
    "status": "completed",
    "testScript": "https://example.org/TestScript/mhd-read",
    "result": "fail",
    "score": 50,
    "tester": "Helix CI",
    "issued": "2026-03-25T10:15:00+01:00",
    "participant": [{"type": "server", "uri": "https://fhir.helix.example"}],
    "test": [
        {
            "name": "Read",
            "action": [
                {"operation": {"result": "pass", "message": "GET"}},
                {"assert": {"result": "warning", "message": "slow"}},
            ],
        },
        {"name": "Search", "action": [{"assert": {"result": "fail", "message": "no match"}}]},
    ],
}


def nothing_stored() -> bool:
    return not (
        FhirTestReport.objects.exists()
        or EvidenceFile.objects.exists()
        or EvidenceBlob.objects.exists()
    )


# --- Parsing (pure) ---


def test_the_hl7_example_parses_with_every_outcome():
    summary = parse_testreport(HL7_EXAMPLE.read_bytes())
    assert (summary.fhir_version, summary.status, summary.result) == ("R5", "completed", "pass")
    assert summary.score == 100.0 and summary.tester == "HL7 Execution Engine"
    assert summary.issued == "2016-10-07T08:25:34-05:00"
    assert [p["display"] for p in summary.participants] == [
        "Crucible",
        "HealthIntersections STU3",
    ]
    assert [(t.section, t.name, t.outcome) for t in summary.tests] == [
        ("setup", "Setup", "pass"),
        ("test", "Read Patient", "pass"),
        ("teardown", "Teardown", "pass"),
    ]
    assert len(summary.tests[1].actions) == 10
    assert summary.tests[1].actions[0].message == "GET Patient/fixture-patient-create"
    assert summary.warnings == ("$.title: read as name (FHIR R6 spelling of TestReport.name)",)


@pytest.mark.parametrize("path", [ENGINE_READ, ENGINE_SEARCH])
def test_the_testscript_engine_output_is_refused_naming_each_coding(path):
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(path.read_bytes())
    first = refusal.value.problems[0]
    assert first.path.endswith("[0].operation.result")
    assert "is a Coding object, but FHIR requires a plain code here" in first.message
    assert "send the code 'pass' itself" in first.message


def test_a_report_without_its_test_script_names_the_path():
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(ENGINE_SCRIPT.read_bytes())
    assert [p.path for p in refusal.value.problems] == ["$.testScript"]


def test_an_r4b_report_is_detected_from_its_test_script_reference():
    report = copy.deepcopy(R5_REPORT)
    report["testScript"] = {"reference": "TestScript/mhd-read"}
    summary = parse_testreport(json.dumps(report).encode())
    assert summary.fhir_version == "R4B"
    assert [t.outcome for t in summary.tests] == ["warning", "fail"]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"status": "done"}, "$.status", "'done' is not one of: completed, in-progress"),
        ({"result": "passed"}, "$.result", "'passed' is not one of: pass, fail, pending"),
        ({"result": None}, "$.result", "is required"),
        ({"resourceType": "Patient"}, "$.resourceType", "'Patient' is not a TestReport"),
        ({"score": "high"}, "$.score", "Decimal"),
        ({"colour": "blue"}, "$.colour", "is not an element of a FHIR R5 TestReport"),
    ],
)
def test_a_bad_report_names_the_json_path(change, path, message):
    report = {**copy.deepcopy(R5_REPORT), **change}
    report = {k: v for k, v in report.items() if v is not None}
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(json.dumps(report).encode())
    assert any(p.path == path and message in p.message for p in refusal.value.problems), [
        str(p) for p in refusal.value.problems
    ]


def test_a_bad_action_result_names_its_path():
    report = copy.deepcopy(R5_REPORT)
    report["test"][1]["action"][0]["assert"]["result"] = "broken"
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(json.dumps(report).encode())
    assert str(refusal.value.problems[0]) == (
        "$.test[1].action[0].assert.result: 'broken' is not one of: "
        "pass, skip, fail, warning, error"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "neither FHIR JSON nor FHIR XML"),
        (b"[1, 2]", "a FHIR resource is a JSON object"),
        (b"<TestReport><oops></TestReport>", "not well-formed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><TestReport/>', "may not declare a DOCTYPE"),
    ],
)
def test_a_file_that_is_not_fhir_is_refused(data, message):
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(data)
    assert message in str(refusal.value)


# --- The upload page ---


def post_report(client, application, data: bytes, name: str = "report.json", aipos=()):
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(
        f"/applications/{application.pk}/testreports/", {"file": handle, "aipos": list(aipos)}
    )


@pytest.mark.django_db
def test_a_vendor_uploads_the_hl7_example_and_sees_each_test(make_application, vendor_alice):
    application = make_application("draft")
    xds = aipo(*HELIX_CLAIMS[0])
    client = client_for(vendor_alice)
    response = post_report(
        client, application, HL7_EXAMPLE.read_bytes(), "example.xml", aipos=[xds.pk]
    )
    assert response.status_code == 302
    report = FhirTestReport.objects.get()
    assert (report.result, report.score, report.tester) == ("pass", 100.0, "HL7 Execution Engine")
    assert report.issued.isoformat() == "2016-10-07T13:25:34+00:00"
    assert len(report.participants) == 2 and list(report.aipos.all()) == [xds]
    assert FhirTestReportTest.objects.count() == 3
    assert FhirTestReportAction.objects.count() == 15
    page = page_text(client.get(response.url))
    assert "Read Patient" in page and "Patient.name.given 'Peter'" in page
    assert report.evidence_file.blob.kind == "xml"


@pytest.mark.django_db
def test_the_engine_output_is_refused_on_the_page_and_the_case_is_unchanged(
    make_application, vendor_alice
):
    application = make_application("draft")
    response = post_report(client_for(vendor_alice), application, ENGINE_READ.read_bytes())
    assert response.status_code == 400
    page = page_text(response)
    assert "The TestReport was refused" in page
    assert "$.test[0].action[0].operation.result" in page
    assert "is a Coding object" in page
    assert nothing_stored()


# --- The CI endpoint ---


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def push(client, application, body, *, aipos=(), content_type="application/fhir+json"):
    query = "&".join(f"aipo={a}" for a in aipos)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"/api/applications/{application.pk}/testreports/?{query}",
        data=data,
        content_type=content_type,
    )


@pytest.mark.django_db
def test_ci_pushes_a_testreport_into_its_draft_case(make_application, vendor_alice):
    application = make_application("draft")
    response = push(api_for(vendor_alice), application, R5_REPORT, aipos=["PDQm/PDC/NONE"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["result"], body["score"], body["fhir_version"]) == ("fail", 50.0, "R5")
    assert body["aipos"] == ["PDQm / PDC / NONE"]
    assert [t["outcome"] for t in body["tests"]] == ["warning", "fail"]
    assert body["tests"][0]["actions"][1] == {
        "kind": "assert",
        "result": "warning",
        "message": "slow",
    }
    assert FhirTestReport.objects.get().application == application


@pytest.mark.django_db
def test_ci_gets_each_problem_with_its_path(make_application, vendor_alice):
    application = make_application("draft")
    response = push(api_for(vendor_alice), application, ENGINE_READ.read_bytes())
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert problems[0]["path"] == "$.test[0].action[0].operation.result"
    assert nothing_stored()


@pytest.mark.django_db
def test_ci_cannot_push_into_a_foreign_case(make_application, vendor_bob):
    application = make_application("draft")
    response = push(api_for(vendor_bob), application, R5_REPORT)
    assert response.status_code == 404
    assert nothing_stored()


@pytest.mark.django_db
def test_ci_cannot_push_once_the_case_is_with_the_lab(pending_case, vendor_alice):
    response = push(api_for(vendor_alice), pending_case, R5_REPORT)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"{pending_case.reference} is decision pending: a CI pipeline can only push "
        "TestReports while the case is a draft or answering a request for information."
    )
    assert nothing_stored()


@pytest.mark.django_db
def test_ci_cannot_push_into_a_submitted_case(make_application, vendor_alice):
    application = make_application("submitted")
    response = push(api_for(vendor_alice), application, R5_REPORT)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"{application.reference} is submitted: a CI pipeline can only push TestReports "
        "while the case is a draft or answering a request for information."
    )
    assert nothing_stored()
    # The vendor may still add it on the page while the officer has not started.
    response = post_report(client_for(vendor_alice), application, json.dumps(R5_REPORT).encode())
    assert response.status_code == 302
    assert FhirTestReport.objects.get().application == application


@pytest.mark.django_db
def test_ci_gets_413_naming_the_limit_for_a_body_over_it(make_application, vendor_alice, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    application = make_application("draft")
    big = dict(R5_REPORT, description="x" * 2000)
    response = push(api_for(vendor_alice), application, big)
    assert response.status_code == 413
    assert "the limit is 1000 bytes (1,000 bytes)" in response.json()["detail"]
    assert nothing_stored()


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest_read = 0

    def read(self, size=-1):
        self.largest_read = max(self.largest_read, size if size >= 0 else len(self.getvalue()))
        return super().read(size)


@pytest.mark.parametrize(
    ("declared", "body", "read"),
    [
        ("50000", b"{}", 0),  # the declared length alone refuses it, nothing read
        ("", b"{" + b" " * 50_000 + b"}", 1001),  # no length: one byte past the limit
        ("10", b"{" + b" " * 50_000 + b"}", 1001),  # a lying length: the same
    ],
)
def test_the_push_parser_never_reads_past_the_limit(settings, declared, body, read):
    from rest_framework.test import APIRequestFactory

    from evidence.api import PayloadTooLarge, RawFhirParser

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    request = APIRequestFactory().post("/", data=b"", content_type="application/fhir+json")
    request.META["CONTENT_LENGTH"] = declared
    stream = CountingStream(body)
    with pytest.raises(PayloadTooLarge) as refused:
        RawFhirParser().parse(stream, parser_context={"request": request})
    assert refused.value.status_code == 413
    assert "the limit is 1000 bytes (1,000 bytes)" in str(refused.value.detail)
    assert stream.largest_read == read
    assert stream.tell() <= 1001


@pytest.mark.django_db
def test_the_upload_page_gets_413_naming_the_limit(make_application, vendor_alice, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    application = make_application("draft")
    body = json.dumps(dict(R5_REPORT, description="x" * 2000)).encode()
    response = post_report(client_for(vendor_alice), application, body)
    assert response.status_code == 413
    assert "the limit is 1000 bytes (1,000 bytes)" in page_text(response)
    assert nothing_stored()


@pytest.mark.django_db
def test_ci_needs_a_token(make_application):
    application = make_application("draft")
    assert push(APIClient(), application, R5_REPORT).status_code in (401, 403)
    assert nothing_stored()


@pytest.mark.django_db
def test_ci_names_an_aipo_it_does_not_know(make_application, vendor_alice):
    application = make_application("draft")
    response = push(api_for(vendor_alice), application, R5_REPORT, aipos=["NOPE/X"])
    assert response.status_code == 400
    assert "aipo='NOPE/X' is not PROFILE/ACTOR/OPTION" in response.json()["detail"]
    assert nothing_stored()


@pytest.mark.django_db
def test_the_endpoint_is_documented_in_the_openapi_schema(vendor_alice):
    response = client_for(vendor_alice).get("/api/schema/", {"format": "json"})
    operation = response.json()["paths"]["/api/applications/{id}/testreports/"]["post"]
    assert operation["operationId"] == "testreport_push"
    assert "application/fhir+json" in operation["requestBody"]["content"]
    assert {"201", "400", "404", "409", "413"} <= set(operation["responses"])
    assert "once submitted, a case refuses pushes with 409" in operation["description"]
    assert "413 naming the limit" in operation["description"]
    assert "examples" in operation["responses"]["400"]["content"]["application/json"]


# --- The command ---


def test_check_testreport_prints_the_summary_as_json():
    out = io.StringIO()
    call_command("check_testreport", str(HL7_EXAMPLE), stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["result"] == "pass" and summary["tests"][1]["name"] == "Read Patient"


def test_check_testreport_prints_the_errors_and_fails():
    err = io.StringIO()
    with pytest.raises(CommandError, match="12 problem"):
        call_command("check_testreport", str(ENGINE_READ), stderr=err)
    assert "$.test[0].action[0].operation.result: is a Coding object" in err.getvalue()


# --- CapabilityStatement ---

CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "kind": "instance",
    "instantiates": [
        "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder|4.2.3",
        "https://profiles.ihe.net/ITI/PDQm/CapabilityStatement/IHE.PDQm.PatientDemographicsConsumer",
        "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server",
    ],
}


def post_capability(client, application, body):
    handle = io.BytesIO(json.dumps(body).encode() if isinstance(body, dict) else body)
    handle.name = "capabilities.json"
    return client.post(f"/applications/{application.pk}/capability-statement/", {"file": handle})


@pytest.mark.django_db
def test_a_capability_statement_suggests_claims_the_vendor_adds(make_application, vendor_alice):
    application = make_application("draft")
    client = client_for(vendor_alice)
    response = post_capability(client, application, CAPABILITY)
    page = page_text(response)
    responder = aipo("MHD", "DOC_RESPONDER")
    assert f'value="{responder.pk}"' in page
    assert "Already claimed: PDQm / PDC / NONE" in page
    assert "us-core-server" in page
    response = client.post(
        f"/applications/{application.pk}/capability-statement/",
        {"add": "1", "aipos": [responder.pk]},
    )
    assert response.status_code == 302
    claims = {str(a) for a in Application.objects.get(pk=application.pk).claimed_aipos.all()}
    assert claims == {
        "XDS.b / DOC_CONSUMER / NONE",
        "PDQm / PDC / NONE",
        "MHD / DOC_RESPONDER / NONE",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the file is not FHIR JSON"),
        ({"resourceType": "Patient"}, "'Patient' is not a CapabilityStatement"),
        ({"resourceType": "CapabilityStatement"}, "declares no IHE CapabilityStatement"),
        ({"resourceType": "CapabilityStatement", "imports": [7]}, "$.imports[0]: must be"),
    ],
)
def test_a_bad_capability_statement_is_explained(make_application, vendor_alice, body, message):
    application = make_application("draft")
    response = post_capability(client_for(vendor_alice), application, body)
    assert response.status_code == 400
    assert message in page_text(response)
    assert application.claims.count() == 2


@pytest.mark.django_db
def test_claims_cannot_be_added_after_submission(make_application, vendor_alice):
    application = make_application("submitted")
    responder = aipo("MHD", "DOC_RESPONDER")
    response = client_for(vendor_alice).post(
        f"/applications/{application.pk}/capability-statement/",
        {"add": "1", "aipos": [responder.pk]},
    )
    assert response.status_code == 409
    assert "Claims can only change while the application is a draft" in page_text(response)
    assert application.claims.count() == 2


# --- Coverage matrix ---


@pytest.mark.django_db
def test_the_coverage_matrix_shows_each_claim_against_its_evidence(
    make_application, vendor_alice, vendor_bob, officer_erin, lab, assessor_carol
):
    from labs.models import TestRecord

    application = make_application("draft")
    pdq = aipo(*HELIX_CLAIMS[1])
    push(api_for(vendor_alice), application, R5_REPORT, aipos=["PDQm/PDC/NONE"])
    # A lab result written directly: the matrix only reads the current record of each AIPO.
    TestRecord.objects.create(
        application=application, aipo=pdq, result="fail", recorded_by=assessor_carol
    )

    page = page_text(client_for(officer_erin).get(f"/applications/{application.pk}/coverage/"))
    assert 'class="cell good"' in page and "Pass (" in page
    assert "IHE-Europe Connectathon 2026, Brussels" in page
    assert 'class="cell bad" title="1 report(s); latest MHD read">fail (50%)' in page
    assert '<td class="cell bad">Fail</td>' in page

    response = client_for(vendor_alice).get(f"/applications/{application.pk}/coverage.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_profile = {row["Profile"]: row for row in rows}
    assert by_profile["PDQm"]["TestReport"] == "fail (50%)"
    assert by_profile["PDQm"]["Lab result"] == "Fail"
    assert by_profile["XDS.b"]["Connectathon"].startswith("Pass (")
    assert by_profile["XDS.b"]["TestReport"] == "none"
    assert by_profile["PDQm"]["Files"] == "testreport-api.json"

    for url in (
        f"/applications/{application.pk}/coverage/",
        f"/applications/{application.pk}/coverage.csv",
    ):
        assert client_for(vendor_bob).get(url).status_code == 404


@pytest.mark.django_db
def test_the_coverage_matrix_shows_a_pass_outside_the_evidence_window_as_too_old(
    make_application, vendor_alice, settings
):
    import datetime as dt

    from support import results_csv

    from evidence.models import ConnectathonEvent
    from evidence.services import connectathon_import, missing_connectathon_evidence

    settings.EVIDENCE_MAX_AGE_YEARS = 3
    application = make_application("draft", passed=[HELIX_CLAIMS[1]])
    old = ConnectathonEvent.objects.create(
        name="IHE-Europe Connectathon 2015, Luxembourg",
        start_date=dt.date(2015, 4, 13),
        end_date=dt.date(2015, 4, 17),
    )
    rows = [("Helix Health Systems", "HelixEHR", *HELIX_CLAIMS[0], "Pass")]
    connectathon_import(event=old, stream=io.BytesIO(results_csv(rows)), by=None)

    client = client_for(vendor_alice)
    page = page_text(client.get(f"/applications/{application.pk}/coverage/"))
    assert '<td class="cell warn" title="IHE-Europe Connectathon 2015, Luxembourg: before' in page
    assert "Pass (2015, too old)" in page
    response = client.get(f"/applications/{application.pk}/coverage.csv")
    by_profile = {
        row["Profile"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))
    }
    assert by_profile["XDS.b"]["Connectathon"] == "Pass (2015, too old)"
    assert by_profile["PDQm"]["Connectathon"].startswith("Pass (20")
    assert "too old" not in by_profile["PDQm"]["Connectathon"]
    # The same judgement as the submission check.
    assert [str(a) for a in missing_connectathon_evidence(application=application)] == [
        "XDS.b / DOC_CONSUMER / NONE"
    ]


@pytest.mark.django_db
def test_a_json_object_without_resource_type_is_refused(make_application, vendor_alice):
    body = {k: v for k, v in R5_REPORT.items() if k != "resourceType"}
    with pytest.raises(TestReportInvalid) as refusal:
        parse_testreport(json.dumps(body).encode())
    assert str(refusal.value) == "$.resourceType: is required"
    application = make_application("draft")
    response = push(api_for(vendor_alice), application, body)
    assert response.status_code == 400
    assert response.json()["problems"] == [{"path": "$.resourceType", "message": "is required"}]
    assert nothing_stored()


@pytest.mark.django_db
def test_a_test_or_setup_without_actions_is_a_skip_with_a_warning(make_application, vendor_alice):
    # An action with neither operation nor assert checks nothing either.
    body = dict(
        R5_REPORT,
        setup={"action": [{"id": "nothing-here"}]},
        test=[{"name": "Empty", "action": []}, *R5_REPORT["test"]],
    )
    expected = [
        "$.setup: has no actions, so nothing was checked; reported as skip",
        "$.test[0]: has no actions, so nothing was checked; reported as skip",
    ]
    summary = parse_testreport(json.dumps(body).encode())
    assert [(t.name, t.outcome) for t in summary.tests] == [
        ("Setup", "skip"),
        ("Empty", "skip"),
        ("Read", "warning"),
        ("Search", "fail"),
    ]
    assert list(summary.warnings) == expected
    application = make_application("draft")
    response = push(api_for(vendor_alice), application, body)
    assert response.status_code == 201
    assert [t["outcome"] for t in response.json()["tests"]] == ["skip", "skip", "warning", "fail"]
    assert response.json()["warnings"] == expected
    assert FhirTestReport.objects.get().warnings == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("issued", "stored"),
    [
        ("2026-03-25T10:15:00+01:00", "2026-03-25T09:15:00+00:00"),
        ("2026-03-25T09:15:00Z", "2026-03-25T09:15:00+00:00"),
        ("2026-03-25", "2026-03-25T00:00:00+00:00"),
        ("2026-03", "2026-03-01T00:00:00+00:00"),
        ("2026", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_issued_is_stored_as_an_aware_instant_and_kept_as_sent(
    make_application, vendor_alice, issued, stored
):
    import datetime as dt
    import warnings

    application = make_application("draft")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Django's "received a naive datetime"
        response = push(api_for(vendor_alice), application, dict(R5_REPORT, issued=issued))
    assert response.status_code == 201, response.content
    assert response.json()["issued_as_sent"] == issued
    report = FhirTestReport.objects.get()
    assert report.issued.astimezone(dt.UTC).isoformat() == stored
    assert report.issued_text == issued
    assert report.warnings == []


XML_WITH_EXTENSIONS = b"""<?xml version="1.0" encoding="UTF-8"?>
<TestReport xmlns="http://hl7.org/fhir">
  <name value="MHD read"/>
  <status value="completed"/>
  <testScript value="https://example.org/TestScript/mhd-read"/>
  <result value="pass">
    <extension url="https://example.org/fhir/StructureDefinition/graded-by">
      <valueString value="Helix CI"/>
    </extension>
  </result>
  <score id="s1" value="100"/>
  <issued value="2026-03-25T10:15:00+01:00"/>
  <test>
    <name value="Read"/>
    <action>
      <assert>
        <result value="pass"/>
        <requirement><linkUri value="https://example.org/req/1"/></requirement>
      </assert>
    </action>
  </test>
</TestReport>
"""


def test_fhir_xml_keeps_primitive_values_with_extensions_and_repeating_elements_as_lists():
    from evidence.testreports import _load

    resource = _load(XML_WITH_EXTENSIONS)
    assert resource["result"] == "pass"
    assert resource["_result"] == {
        "extension": [
            {
                "url": "https://example.org/fhir/StructureDefinition/graded-by",
                "valueString": "Helix CI",
            }
        ]
    }
    assert (resource["score"], resource["_score"]) == ("100", {"id": "s1"})
    # One <requirement> is still a list: the model says it repeats.
    assert resource["test"][0]["action"][0]["assert"]["requirement"] == [
        {"linkUri": "https://example.org/req/1"}
    ]
    summary = parse_testreport(XML_WITH_EXTENSIONS)
    assert (summary.result, summary.score, summary.name) == ("pass", 100.0, "MHD read")
    assert [(t.name, t.outcome) for t in summary.tests] == [("Read", "pass")]


@pytest.mark.django_db
def test_the_upload_page_accepts_fhir_xml_with_extensions(make_application, vendor_alice):
    application = make_application("draft")
    response = post_report(client_for(vendor_alice), application, XML_WITH_EXTENSIONS, "report.xml")
    assert response.status_code == 302
    assert FhirTestReport.objects.get().result == "pass"
