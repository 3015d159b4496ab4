"""A report or certificate cites only an accreditation in force that covers the case's scope;
the technical review is refused when the lab holds none."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from pypdf import PdfReader
from support import client_for, page_text

from cas.models import Application, Domain
from certificates.services import certificate_content
from labs.models import Accreditation, TestReport

pytestmark = pytest.mark.django_db


def report_text(report: TestReport) -> str:
    with report.pdf.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def a_later_suspended_accreditation(lab) -> Accreditation:
    """Valid longer than the BELAC one and covering ITI, but suspended."""
    suspended = Accreditation.objects.create(
        lab=lab,
        body="COFRAC",
        number="COFRAC 1-9999",
        valid_from=timezone.localdate() - dt.timedelta(days=10),
        valid_until=timezone.localdate() + dt.timedelta(days=900),
        status=Accreditation.Status.SUSPENDED,
    )
    suspended.scope_domains.add(Domain.objects.get(keyword="ITI"))
    return suspended


def test_the_report_cites_the_accreditation_in_force_not_a_later_suspended_one(
    make_application, case_cast, reviewer_dave, django_capture_on_commit_callbacks
):
    application = make_application("in_review", **case_cast)
    a_later_suspended_accreditation(case_cast["lab_org"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(reviewer_dave).post(
            f"/lab/cases/{application.pk}/review/approve/", {"note": "ok"}
        )
    assert response.status_code == 302, page_text(response)
    text = report_text(TestReport.objects.get(application=application))
    assert "BELAC 612-TEST" in text
    assert "COFRAC" not in text


@pytest.mark.parametrize("status", ["suspended", "withdrawn"])
def test_the_review_is_refused_when_the_accreditation_is_not_active(
    make_application, case_cast, reviewer_dave, status
):
    application = make_application("in_review", **case_cast)
    Accreditation.objects.filter(lab=case_cast["lab_org"]).update(status=status)
    response = client_for(reviewer_dave).post(
        f"/lab/cases/{application.pk}/review/approve/", {"note": "ok"}
    )
    assert response.status_code == 400
    assert "holds no accreditation in force" in page_text(response)
    assert "XDS.b" in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"
    assert not TestReport.objects.exists()


def test_the_review_is_refused_when_no_accreditation_covers_the_claimed_profiles(
    make_application, case_cast, reviewer_dave
):
    application = make_application("in_review", **case_cast)
    accreditation = Accreditation.objects.get(lab=case_cast["lab_org"])
    accreditation.scope_domains.set([Domain.objects.get(keyword="RAD")])
    response = client_for(reviewer_dave).post(
        f"/lab/cases/{application.pk}/review/approve/", {"note": "ok"}
    )
    assert response.status_code == 400
    page = page_text(response)
    assert "Brussels Interoperability Test Lab holds no accreditation in force" in page
    assert "PDQm" in page and "XDS.b" in page
    assert Application.objects.get(pk=application.pk).state == "in_review"
    assert not TestReport.objects.exists()


def test_the_certificate_cites_the_accreditation_in_force_on_the_decision_date(
    make_application, case_cast
):
    application = make_application("certified", **case_cast)
    a_later_suspended_accreditation(case_cast["lab_org"])
    content = certificate_content(application=application)
    assert content["lab_accreditation_number"] == "BELAC 612-TEST"
    assert content["accreditation_body"] == "BELAC"
