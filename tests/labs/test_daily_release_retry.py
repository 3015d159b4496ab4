"""The daily beat task also releases a test report whose on-commit release failed."""

from __future__ import annotations

import pytest

from cas import services
from labs.models import Accreditation, TestReport
from labs.tasks import check_accreditations

pytestmark = pytest.mark.django_db


def test_the_daily_check_releases_a_report_whose_task_never_ran(
    make_application, case_cast, reviewer_dave
):
    application = make_application("in_review", **case_cast)
    # No on-commit callbacks run here: as if the worker was down at the approval.
    services.application_approve_report(application=application, by=reviewer_dave)
    assert not TestReport.objects.exists()
    summary = check_accreditations.apply().get()
    report = TestReport.objects.get(application=application)
    assert summary["released"] == [report.number]
    assert check_accreditations.apply().get()["released"] == []
    assert TestReport.objects.count() == 1


def test_a_report_that_cannot_be_released_stays_pending_and_is_not_invented(
    make_application, case_cast, reviewer_dave
):
    application = make_application("in_review", **case_cast)
    services.application_approve_report(application=application, by=reviewer_dave)
    Accreditation.objects.filter(lab=case_cast["lab_org"]).update(status="suspended")
    summary = check_accreditations.apply().get()
    assert summary["released"] == []
    assert not TestReport.objects.exists()
    Accreditation.objects.filter(lab=case_cast["lab_org"]).update(status="active")
    assert check_accreditations.apply().get()["released"] == [
        TestReport.objects.get(application=application).number
    ]
