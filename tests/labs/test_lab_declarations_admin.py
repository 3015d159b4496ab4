"""Lab-level conflicts of interest and competences: audited when recorded or changed in the
admin, never deleted (a conflict ends by setting valid_until)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from cas.models import AuditEntry, Domain
from labs.models import AssessorCompetence, ConflictOfInterest

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_root(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    return client


def entries(obj) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk)
        ).order_by("id")
    )


def test_a_lab_conflict_is_audited_when_declared_and_ended_and_cannot_be_deleted(
    admin_client_root, lab, helix
):
    today = timezone.localdate()
    form = {
        "lab": lab.pk,
        "organisation": helix.pk,
        "reason": "acquired a stake",
        "valid_from": today.isoformat(),
        "valid_until": "",
    }
    response = admin_client_root.post("/admin/labs/conflictofinterest/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    conflict = ConflictOfInterest.objects.get()
    end = today + dt.timedelta(days=30)
    response = admin_client_root.post(
        f"/admin/labs/conflictofinterest/{conflict.pk}/change/",
        {**form, "valid_until": end.isoformat()},
    )
    assert response.status_code == 302
    audit = entries(conflict)
    assert [e.action for e in audit] == ["create", "update"]
    assert all(e.actor_name == "root" for e in audit)
    assert f"valid_until:  -> {end.isoformat()}" in audit[1].reason

    delete_page = admin_client_root.post(
        f"/admin/labs/conflictofinterest/{conflict.pk}/delete/", {"post": "yes"}
    )
    assert delete_page.status_code == 403
    bulk = admin_client_root.post(
        "/admin/labs/conflictofinterest/",
        {"action": "delete_selected", "_selected_action": [conflict.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert ConflictOfInterest.objects.filter(pk=conflict.pk).exists()


def test_a_competence_is_audited_when_recorded_and_cannot_be_deleted(
    admin_client_root, lab, assessor_carol
):
    rad = Domain.objects.get(keyword="RAD")
    response = admin_client_root.post(
        "/admin/labs/assessorcompetence/add/",
        {
            "lab": lab.pk,
            "user": assessor_carol.pk,
            "domain": rad.pk,
            "authorised_on": timezone.localdate().isoformat(),
            "note": "RAD training 2026",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    competence = AssessorCompetence.objects.get(domain=rad)
    audit = entries(competence)
    assert [e.action for e in audit] == ["create"]
    assert "RAD" in audit[0].reason
    response = admin_client_root.post(
        f"/admin/labs/assessorcompetence/{competence.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert AssessorCompetence.objects.filter(pk=competence.pk).exists()
