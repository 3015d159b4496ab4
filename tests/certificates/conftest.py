from __future__ import annotations

import pytest

from cas import services
from certificates.services import certificate_issue


@pytest.fixture
def granted(pending_case, officer_frank):
    """A case granted by Frank; its issuance task has not run (tests run in a transaction)."""
    return services.application_grant(application=pending_case, by=officer_frank)


@pytest.fixture
def certificate(granted):
    return certificate_issue(application_id=granted.pk)


@pytest.fixture
def issue_another(
    make_application, lab, assessor_carol, reviewer_dave, officer_erin, officer_frank
):
    """Issue one more Helix certificate, for another version of HelixEHR."""

    def build(version: str):
        application = make_application(
            "decision_pending",
            lab_org=lab,
            recorder=assessor_carol,
            reviewer=reviewer_dave,
            officer=officer_erin,
            version=version,
        )
        application = services.application_grant(application=application, by=officer_frank)
        return certificate_issue(application_id=application.pk)

    return build
