"""Issued certificates, test records and audit entries cannot be changed through the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from cas.models import AuditEntry
from certificates.models import Certificate
from certificates.services import certificate_issue
from labs import models as labs_models

pytestmark = pytest.mark.django_db


def test_it_refuses_admin_edits_and_deletes_of_append_only_records(
    pending_case, officer_frank, django_user_model
):
    from cas import services

    granted = services.application_grant(application=pending_case, by=officer_frank)
    certificate = certificate_issue(application_id=granted.pk)
    record = labs_models.TestRecord.objects.first()
    entry = AuditEntry.objects.first()
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    for model, obj in (
        ("certificates/certificate", certificate),
        ("labs/testrecord", record),
        ("cas/auditentry", entry),
    ):
        admin.post(f"/admin/{model}/{obj.pk}/change/", {"status": "revoked", "result": "fail"})
        response = admin.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403, model
    assert Certificate.objects.get(pk=certificate.pk).status == "active"
    assert labs_models.TestRecord.objects.get(pk=record.pk).result == record.result
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
