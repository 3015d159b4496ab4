"""Records, reports and accreditation history are append-only through every interface:
the model, its querysets, the services, the pages and the admin (a superuser included)."""

from __future__ import annotations

import pytest
from django.test import Client
from support import aipo, client_for, page_text

from labs import services as lab_services
from labs.models import AccreditationChange, AppendOnlyViolation, TestRecord, TestReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(make_application, case_cast, assessor_carol):
    application = make_application("in_assessment", **case_cast)
    record = lab_services.test_record_create(
        application=application,
        aipo=aipo("XDS.b", "DOC_CONSUMER"),
        result="fail",
        by=assessor_carol,
        test_case="XDSb-11966",
        tool="Gazelle EVS",
        tool_version="7.2",
        comment="metadata rejected",
    )
    return application, record


@pytest.fixture
def released(make_application, case_cast, reviewer_dave, django_capture_on_commit_callbacks):
    application = make_application("in_review", version="5.2", **case_cast)
    with django_capture_on_commit_callbacks(execute=True):
        from cas import services

        services.application_approve_report(application=application, by=reviewer_dave)
    return TestReport.objects.get(application=application)


def snapshot(record) -> dict:
    return {f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields}


def test_the_model_refuses_saving_an_existing_record_and_deleting_one(recorded):
    _application, record = recorded
    before = snapshot(TestRecord.objects.get(pk=record.pk))
    record.result = "pass"
    with pytest.raises(AppendOnlyViolation, match="cannot be changed"):
        record.save()
    with pytest.raises(AppendOnlyViolation, match="cannot be deleted"):
        record.delete()
    assert snapshot(TestRecord.objects.get(pk=record.pk)) == before


def test_querysets_refuse_bulk_updates_and_deletes(recorded, released):
    _application, record = recorded
    before = snapshot(TestRecord.objects.get(pk=record.pk))
    for queryset in (
        TestRecord.objects.all(),
        TestRecord.objects.filter(pk=record.pk).current(),
        TestReport.objects.all(),
        AccreditationChange.objects.all(),
    ):
        with pytest.raises(AppendOnlyViolation):
            queryset.update()
        with pytest.raises(AppendOnlyViolation):
            queryset.delete()
    assert snapshot(TestRecord.objects.get(pk=record.pk)) == before
    assert TestReport.objects.filter(pk=released.pk).exists()


def test_the_base_manager_and_the_private_doors_refuse_too(recorded, released):
    """Related lookups and Django internals (save(), the deletion collector) go through the
    base manager and QuerySet._update/_raw_delete: those refuse as the public doors do."""
    _application, record = recorded
    before = snapshot(TestRecord.objects.get(pk=record.pk))
    for model in (TestRecord, TestReport, AccreditationChange):
        queryset = model._base_manager.all()
        with pytest.raises(AppendOnlyViolation, match="amend, never update"):
            queryset.update(pk=1)
        with pytest.raises(AppendOnlyViolation, match="amend, never update"):
            queryset._update({})
        with pytest.raises(AppendOnlyViolation, match="nothing is ever deleted"):
            queryset._raw_delete(using="default")
        with pytest.raises(AppendOnlyViolation, match="nothing is ever deleted"):
            queryset.delete()
    assert snapshot(TestRecord.objects.get(pk=record.pk)) == before
    assert TestReport.objects.filter(pk=released.pk).exists()


def test_an_issued_report_cannot_be_changed_or_deleted(released):
    released.amendment_reason = "edited"
    with pytest.raises(AppendOnlyViolation):
        released.save()
    with pytest.raises(AppendOnlyViolation):
        released.delete()
    assert TestReport.objects.get(pk=released.pk).amendment_reason == ""


def test_the_service_amends_with_a_new_version_and_keeps_the_original(recorded, assessor_carol):
    application, original = recorded
    before = snapshot(original)
    with pytest.raises(lab_services.ActionRefused, match="an amendment needs a reason"):
        lab_services.test_record_create(
            application=application,
            aipo=original.aipo,
            result="pass",
            by=assessor_carol,
            test_case="XDSb-11966",
        )
    amended = lab_services.test_record_create(
        application=application,
        aipo=original.aipo,
        result="pass",
        by=assessor_carol,
        test_case="XDSb-11966",
        amendment_reason="retested with the fixed metadata",
    )
    assert (amended.version, amended.replaces_id) == (2, original.pk)
    assert snapshot(TestRecord.objects.get(pk=original.pk)) == before
    assert list(TestRecord.objects.filter(application=application).current()) == [amended]


def test_the_grid_page_amends_with_a_reason_and_the_original_stays_readable(
    recorded, assessor_carol, reviewer_dave
):
    application, original = recorded
    before = snapshot(original)
    client = client_for(assessor_carol)
    key = f"r{original.pk}"
    row = {
        f"{key}-result": "pass",
        f"{key}-test_case": "XDSb-11966",
        f"{key}-tool": "Gazelle EVS",
        f"{key}-tool_version": "7.2",
        f"{key}-comment": "metadata accepted",
    }
    grid = f"/lab/cases/{application.pk}/grid/"
    refused = client.post(grid, row)
    assert refused.status_code == 400
    assert "an amendment needs a reason" in page_text(refused)
    assert TestRecord.objects.count() == 1
    done = client.post(grid, {**row, f"{key}-reason": "vendor patch 5.1.1 retested"})
    assert done.status_code == 302
    assert snapshot(TestRecord.objects.get(pk=original.pk)) == before
    amended = TestRecord.objects.get(replaces=original)
    assert (amended.result, amended.amendment_reason) == ("pass", "vendor patch 5.1.1 retested")
    review = page_text(client_for(reviewer_dave).get(f"/lab/cases/{application.pk}/review/"))
    assert "earlier version v1" in review and "metadata rejected" in review
    assert "metadata accepted" in review


def test_a_superuser_cannot_change_or_delete_records_reports_or_history_in_the_admin(
    recorded, released, django_user_model
):
    _application, record = recorded
    change = AccreditationChange.objects.create(
        accreditation=released.application.lab.accreditations.get(),
        after={"status": "active"},
        reason="seed",
    )
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    before = {obj._meta.label: snapshot(obj) for obj in (record, released, change)}
    for model, obj in (
        ("labs/testrecord", record),
        ("labs/testreport", released),
        ("labs/accreditationchange", change),
    ):
        assert admin.get(f"/admin/{model}/{obj.pk}/change/").status_code == 200  # readable
        edited = admin.post(
            f"/admin/{model}/{obj.pk}/change/",
            {"result": "pass", "number": "TR-FORGED", "reason": "forged"},
        )
        assert edited.status_code == 403, model
        deleted = admin.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"})
        assert deleted.status_code == 403, model
        bulk = admin.post(
            f"/admin/{model}/",
            {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
        )
        assert bulk.status_code in (200, 302, 403), model
        assert admin.get(f"/admin/{model}/add/").status_code == 403
    for obj in (record, released, change):
        assert snapshot(type(obj).objects.get(pk=obj.pk)) == before[obj._meta.label]
