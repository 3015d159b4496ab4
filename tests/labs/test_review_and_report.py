"""Technical review by a second lab member, and the lab's test report it releases."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from support import aipo, client_for, page_text

from cas import services
from cas.models import Application
from labs import services as lab_services
from labs.models import TestRecord, TestReport
from labs.tasks import release_test_report

pytestmark = pytest.mark.django_db


def pdf_pages(report: TestReport) -> list[str]:
    with report.pdf.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return [page.extract_text() for page in reader.pages]


def flat(text: str) -> str:
    return " ".join(text.split())


def approve_through_page(application, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(reviewer).post(
            f"/lab/cases/{application.pk}/review/approve/", {"note": "records complete"}
        )
    assert response.status_code == 302, page_text(response)
    return response


def test_it_refuses_approval_by_the_recorder_through_the_review_page(
    make_application, case_cast, assessor_carol
):
    application = make_application("in_review", **case_cast)
    client = client_for(assessor_carol)
    page = page_text(client.get(f"/lab/cases/{application.pk}/review/"))
    assert "a second member of the lab must review it" in page
    assert "Approve and release" not in page
    response = client.post(f"/lab/cases/{application.pk}/review/approve/")
    assert response.status_code == 403
    assert "second member of the assigned lab" in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"
    assert not TestReport.objects.exists()


def test_a_second_member_approves_and_the_report_is_released(
    make_application, case_cast, reviewer_dave, django_capture_on_commit_callbacks, mailoutbox
):
    application = make_application("in_review", **case_cast)
    page = page_text(client_for(reviewer_dave).get(f"/lab/cases/{application.pk}/review/"))
    assert "XDS.b / DOC_CONSUMER / NONE" in page and "PDQm / PDC / NONE" in page
    approve_through_page(application, reviewer_dave, django_capture_on_commit_callbacks)
    assert Application.objects.get(pk=application.pk).state == "decision_pending"
    report = TestReport.objects.get(application=application)
    assert report.number == application.reference.replace("APP", "TR") + "-1"
    assert report.authorised_by == reviewer_dave and report.amends is None
    assert any(report.number in m.subject for m in mailoutbox)


def test_the_reviewer_returns_with_comments_and_comments_are_required(
    make_application, case_cast, reviewer_dave
):
    application = make_application("in_review", **case_cast)
    client = client_for(reviewer_dave)
    refused = client.post(f"/lab/cases/{application.pk}/review/return/", {"comments": "  "})
    assert refused.status_code == 400
    assert "Say what must be reworked" in page_text(refused)
    assert Application.objects.get(pk=application.pk).state == "in_review"
    done = client.post(
        f"/lab/cases/{application.pk}/review/return/", {"comments": "PDQm: attach the log"}
    )
    assert done.status_code == 302
    assert Application.objects.get(pk=application.pk).state == "in_assessment"
    page = page_text(client.get(f"/lab/cases/{application.pk}/review/"))
    assert "PDQm: attach the log" in page


def test_the_report_states_what_iso_17025_asks_on_every_page(
    make_application,
    case_cast,
    reviewer_dave,
    assessor_carol,
    settings,
    iti_claims,
    django_capture_on_commit_callbacks,
):
    settings.SCHEME_NAME = "IHE Conformity Assessment Scheme"
    settings.SCHEME_VERSION = "2.0"
    claims = iti_claims(30)
    application = make_application("in_assessment", claims=claims, **case_cast)
    for n, claim in enumerate(claims):
        lab_services.test_record_create(
            application=application,
            aipo=aipo(*claim),
            result="fail" if n == 3 else "pass",
            by=assessor_carol,
            test_case=f"TC-{n:03d}",
            test_case_name=f"Conformance {n}",
            tool="Gazelle EVS" if n % 2 else "NIST XDS Toolkit",
            tool_version="7.2" if n % 2 else "4.4",
            comment="timeout on query" if n == 3 else "",
        )
    application = services.application_complete_assessment(
        application=application, by=assessor_carol
    )
    approve_through_page(application, reviewer_dave, django_capture_on_commit_callbacks)
    report = TestReport.objects.get(application=application)
    pages = pdf_pages(report)
    assert len(pages) >= 2
    for n, text in enumerate(pages, start=1):
        assert f"Page {n} of {len(pages)}" in text
        assert report.number in text
    text = flat(" ".join(pages))
    assert "End of report" in flat(pages[-1])
    assert "End of report" not in flat(" ".join(pages[:-1]))
    for expected in (
        f"Report id: {report.number}",
        "Brussels Interoperability Test Lab",
        "BELAC, accreditation number BELAC 612-TEST (ISO/IEC 17025:2017)",
        "CAS-LAB-007",
        "Helix Health Systems",
        "Rue de la Loi 42",
        "HelixEHR",
        "Exact version 5.1",
        application.reference,
        "IHE Conformity Assessment Scheme, version 2.0",
        "Gazelle EVS 7.2",
        "NIST XDS Toolkit 4.4",
        "relate only to the items tested",
        "approved by Dave",
        "Report authorised by Dave",
        "timeout on query",
    ):
        assert expected in text, expected
    application = Application.objects.get(pk=application.pk)
    assert f"Application received {application.submitted_at:%Y-%m-%d}" in text
    first = TestRecord.objects.filter(application=application).earliest("recorded_at")
    assert f"Dates of testing {first.recorded_at:%Y-%m-%d} to" in text
    for claim in claims:
        assert " / ".join(claim) in text
    assert re.search(r"Fail", text)


def test_running_the_release_twice_keeps_one_report(
    make_application, case_cast, reviewer_dave, django_capture_on_commit_callbacks
):
    application = make_application("in_review", **case_cast)
    approve_through_page(application, reviewer_dave, django_capture_on_commit_callbacks)
    first = TestReport.objects.get(application=application)
    assert release_test_report.delay(application.pk).get() == first.number
    assert lab_services.test_report_release(application_id=application.pk) == first
    assert TestReport.objects.filter(application=application).count() == 1


def test_the_lab_manager_amends_a_report_with_a_new_id_and_both_stay_downloadable(
    make_application,
    case_cast,
    assessor_carol,
    reviewer_dave,
    vendor_alice,
    vendor_bob,
    officer_frank,
    django_capture_on_commit_callbacks,
):
    import hashlib

    application = make_application("in_review", **case_cast)
    approve_through_page(application, reviewer_dave, django_capture_on_commit_callbacks)
    first = TestReport.objects.get(application=application)
    with first.pdf.open("rb") as handle:
        first_bytes = handle.read()
    url = f"/lab/cases/{application.pk}/report/amend/"
    refused = client_for(assessor_carol).post(url, {"reason": "typo"})
    assert refused.status_code == 403
    assert "Only a lab manager" in page_text(refused)
    no_reason = client_for(reviewer_dave).post(url, {"reason": " "})
    assert no_reason.status_code == 400
    assert TestReport.objects.filter(application=application).count() == 1

    done = client_for(reviewer_dave).post(url, {"reason": "Lab address corrected"})
    assert done.status_code == 302
    second = TestReport.objects.get(amends=first)
    assert second.number == first.number[:-1] + "2"
    text = flat(" ".join(pdf_pages(second)))
    assert f"Test report - amendment to {first.number}" in text
    assert "Lab address corrected" in text
    assert f"Report id: {second.number}" in text

    # The original is untouched and both are available to whoever may see the case.
    with TestReport.objects.get(pk=first.pk).pdf.open("rb") as handle:
        assert handle.read() == first_bytes
    assert hashlib.sha256(first_bytes).hexdigest() == first.sha256
    for person in (vendor_alice, officer_frank, reviewer_dave):
        for report in (first, second):
            response = client_for(person).get(f"/lab/reports/{report.number}/")
            assert response.status_code == 200
            assert b"".join(response.streaming_content).startswith(b"%PDF")
    for report in (first, second):
        assert client_for(vendor_bob).get(f"/lab/reports/{report.number}/").status_code == 404
    # What the case page shows (it includes labs/_case_lab.html).
    from django.template.loader import render_to_string

    panel = render_to_string(
        "labs/_case_lab.html", {"application": application, "user": vendor_alice}
    )
    assert f"/lab/reports/{first.number}/" in panel and f"/lab/reports/{second.number}/" in panel
    lab_page = page_text(client_for(reviewer_dave).get(f"/lab/cases/{application.pk}/review/"))
    assert f"amends {first.number}: Lab address corrected" in lab_page
    # Amending the superseded report is refused: only the latest can be amended.
    with pytest.raises(lab_services.Conflict):
        lab_services.test_report_amend(report=first, by=reviewer_dave, reason="again")


def test_a_second_approval_releases_a_report_amending_the_first(
    make_application, case_cast, reviewer_dave, django_capture_on_commit_callbacks
):
    """Should a case ever be approved again (e.g. sent back to the lab and re-reviewed), the
    new approval's report amends the previous one, naming the rework."""
    from django.db import transaction

    from cas.audit import audit_record

    application = make_application("in_review", **case_cast)
    approve_through_page(application, reviewer_dave, django_capture_on_commit_callbacks)
    first = TestReport.objects.get(application=application)
    application = Application.objects.get(pk=application.pk)
    with transaction.atomic():
        audit_record(
            obj=application,
            action="return_for_rework",
            by=reviewer_dave,
            reason="ATNA syslog evidence missing",
        )
        audit_record(obj=application, action="approve_report", by=reviewer_dave)
    second = lab_services.test_report_release(application_id=application.pk)
    assert second.amends == first
    assert "ATNA syslog evidence missing" in second.amendment_reason
    assert lab_services.test_report_release(application_id=application.pk) == second
    assert f"amendment to {first.number}" in flat(" ".join(pdf_pages(second)))


def test_the_command_releases_a_report_whose_task_never_ran(
    make_application, case_cast, reviewer_dave
):
    from django.core.management import call_command

    application = make_application("in_review", **case_cast)
    # No on-commit callbacks run here: as if the worker was down at the approval.
    services.application_approve_report(application=application, by=reviewer_dave)
    assert not TestReport.objects.exists()
    out = io.StringIO()
    call_command("release_test_reports", stdout=out)
    report = TestReport.objects.get(application=application)
    assert report.number in out.getvalue()
    call_command("release_test_reports", stdout=io.StringIO())
    assert TestReport.objects.count() == 1
