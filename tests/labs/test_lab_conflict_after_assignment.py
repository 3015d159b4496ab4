"""A lab-level conflict declared after assignment stops completion, review and release,
not only recording."""

from __future__ import annotations

import pytest
from support import HELIX_CLAIMS, aipo, client_for, page_text

from cas.models import Application
from labs import services as lab_services
from labs.models import ConflictOfInterest, TestReport

pytestmark = pytest.mark.django_db

MESSAGE = "Brussels Interoperability Test Lab declared a conflict of interest with Helix Health"


def declare_conflict(lab, organisation) -> None:
    ConflictOfInterest.objects.create(
        lab=lab, organisation=organisation, reason="acquired a stake in the applicant"
    )


def test_it_refuses_completing_the_assessment(make_application, case_cast, assessor_carol, helix):
    application = make_application("in_assessment", **case_cast)
    for claim in HELIX_CLAIMS:
        lab_services.test_record_create(
            application=application, aipo=aipo(*claim), result="pass", by=assessor_carol
        )
    declare_conflict(case_cast["lab_org"], helix)
    response = client_for(assessor_carol).post(
        f"/lab/cases/{application.pk}/complete/", follow=True
    )
    assert MESSAGE in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_assessment"


def test_it_refuses_approving_the_review_so_no_report_is_released(
    make_application, case_cast, reviewer_dave, helix, django_capture_on_commit_callbacks
):
    application = make_application("in_review", **case_cast)
    declare_conflict(case_cast["lab_org"], helix)
    client = client_for(reviewer_dave)
    page = page_text(client.get(f"/lab/cases/{application.pk}/review/"))
    assert "Approve and release" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/lab/cases/{application.pk}/review/approve/", {"note": "ok"})
    assert response.status_code == 403
    assert MESSAGE in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"
    assert not TestReport.objects.exists()


def test_it_refuses_returning_for_rework(make_application, case_cast, reviewer_dave, helix):
    application = make_application("in_review", **case_cast)
    declare_conflict(case_cast["lab_org"], helix)
    response = client_for(reviewer_dave).post(
        f"/lab/cases/{application.pk}/review/return/", {"comments": "attach the log"}
    )
    assert response.status_code == 403
    assert MESSAGE in page_text(response)
    assert Application.objects.get(pk=application.pk).state == "in_review"


def test_it_refuses_amending_the_report(
    make_application, case_cast, reviewer_dave, helix, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        application = make_application("decision_pending", **case_cast)
    assert TestReport.objects.count() == 1
    declare_conflict(case_cast["lab_org"], helix)
    response = client_for(reviewer_dave).post(
        f"/lab/cases/{application.pk}/report/amend/", {"reason": "address corrected"}
    )
    assert response.status_code == 403
    assert "Brussels Interoperability Test Lab declared a conflict of interest" in page_text(
        response
    )
    assert TestReport.objects.count() == 1
