"""An amended test report is authorised by a lab manager who recorded none of its results."""

from __future__ import annotations

import pytest
from support import client_for, page_text

from cas.models import Membership
from labs.models import TestReport

pytestmark = pytest.mark.django_db


def test_a_lab_manager_who_recorded_results_cannot_authorise_an_amended_report(
    make_application, case_cast, assessor_carol, reviewer_dave, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        application = make_application("decision_pending", **case_cast)
    Membership.objects.filter(user=assessor_carol).update(role=Membership.Role.LAB_MANAGER)
    url = f"/lab/cases/{application.pk}/report/amend/"
    refused = client_for(assessor_carol).post(url, {"reason": "Lab address corrected"})
    assert refused.status_code == 403
    assert "recorded results of" in page_text(refused)
    assert "recorded none of them" in page_text(refused)
    assert TestReport.objects.filter(application=application).count() == 1

    done = client_for(reviewer_dave).post(url, {"reason": "Lab address corrected"})
    assert done.status_code == 302
    assert TestReport.objects.filter(application=application).count() == 2
