"""The lab's REST API: its assigned cases, their current results, recording and amending.

The same lookups and services as the lab pages (labs/views.py): a case outside the user's
reach is a logged 404 (`get_application_for`), a case they see but do not work on as its
lab is a 403, and results go through `test_record_create` / `test_records_create_many`
(competence, conflict of interest, state and claim checked there, under the case's lock).
Completing the assessment, the technical review (approve, return for rework) are the case
actions of cas/api.py: POST /api/applications/{id}/complete-assessment/ and so on.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas import permissions
from cas.api import (
    AIPOSerializer,
    ApplicationSummarySerializer,
    ClaimInputSerializer,
    ErrorSerializer,
    Page,
    _aipos,
    _errors,
    _paginated,
    id_field,
)
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.models import Application, Organisation
from labs import services as lab_services
from labs.models import TestRecord, TestReport

# --- Serializers ---


class TestRecordSerializer(serializers.ModelSerializer):
    __test__ = False

    aipo = AIPOSerializer()
    evidence = serializers.ListField(
        source="evidence_list", child=serializers.CharField(), help_text="References, in order."
    )
    recorded_by = serializers.CharField(source="recorded_by.get_username")
    replaces = serializers.IntegerField(
        source="replaces_id", allow_null=True, help_text="The version this one amends."
    )

    class Meta:
        model = TestRecord
        fields = [
            "id",
            "aipo",
            "test_case",
            "test_case_name",
            "tool",
            "tool_version",
            "result",
            "comment",
            "evidence",
            "version",
            "replaces",
            "amendment_reason",
            "recorded_by",
            "recorded_at",
        ]


class LabCaseSerializer(ApplicationSummarySerializer):
    claimed = serializers.IntegerField(help_text="How many AIPOs the case claims.")
    recorded = serializers.IntegerField(help_text="How many of them have a current result.")

    class Meta(ApplicationSummarySerializer.Meta):
        fields = [*ApplicationSummarySerializer.Meta.fields, "claimed", "recorded"]


class CaseRecordsSerializer(serializers.Serializer):
    application = serializers.CharField(help_text="The case's reference.")
    state = serializers.CharField()
    records = TestRecordSerializer(many=True, help_text="The current version of each record.")
    missing = AIPOSerializer(many=True, help_text="Claimed AIPOs without any result yet.")


class TestReportSerializer(serializers.ModelSerializer):
    __test__ = False

    amends = serializers.CharField(source="amends.number", allow_null=True, default=None)
    authorised_by = serializers.CharField(source="authorised_by.get_username")
    pdf = serializers.SerializerMethodField()

    class Meta:
        model = TestReport
        fields = [
            "number",
            "amends",
            "amendment_reason",
            "reviewed_at",
            "authorised_by",
            "issued_at",
            "sha256",
            "pdf",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_pdf(self, report: TestReport) -> str:
        """The PDF's page (for a logged-in person)."""
        return reverse("lab_report_pdf", args=[report.number])


_TEXT = {
    "test_case": 200,
    "test_case_name": 300,
    "tool": 200,
    "tool_version": 60,
    "comment": 5000,
}


class RecordFieldsSerializer(serializers.Serializer):
    test_case = serializers.CharField(
        required=False, allow_blank=True, max_length=_TEXT["test_case"], help_text="Its id"
    )
    test_case_name = serializers.CharField(
        required=False, allow_blank=True, max_length=_TEXT["test_case_name"]
    )
    tool = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT["tool"])
    tool_version = serializers.CharField(
        required=False, allow_blank=True, max_length=_TEXT["tool_version"]
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=_TEXT["comment"])
    evidence = serializers.ListField(
        child=serializers.CharField(max_length=1000),
        required=False,
        max_length=100,
        help_text="References to the evidence (URLs, file names, Gazelle test instances).",
    )


RESULTS = ", ".join(TestRecord.Result.values)


def result_field(**kwargs) -> serializers.ChoiceField:
    """A result, whose refusal names the values that are accepted."""
    return serializers.ChoiceField(
        choices=TestRecord.Result.choices,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a valid result: use one of {RESULTS}.'
        },
        **kwargs,
    )


class RecordInputSerializer(RecordFieldsSerializer, ClaimInputSerializer):
    """One result: its AIPO (id, or profile / actor / option keywords) and its test case."""

    result = result_field()
    amends = id_field(
        required=False,
        help_text="The id of the current record this one amends (to change its test case id).",
    )
    amendment_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Required when the AIPO's test case already has a result.",
    )


class RecordsInputSerializer(serializers.Serializer):
    records = RecordInputSerializer(many=True, allow_empty=False, max_length=500)


class AmendInputSerializer(RecordFieldsSerializer):
    record = id_field(help_text="The id of the record to amend.")
    result = result_field(required=False, help_text="Unchanged when left out.")
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Why the record is amended. Required; refused when empty.",
    )


class ReportAmendSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Required."
    )


class RowErrorsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.JSONField(
        help_text="Each refused row's message by its position in `records` (from 0); for "
        "malformed input, the messages of each field."
    )


# --- Lookups ---


def _lab_case(user, pk: int) -> Application:
    """As the lab pages: foreign is a logged 404, seen but not the case's lab is a 403."""
    application = permissions.get_application_for(user, pk)
    if not permissions.is_case_lab_member(user, application):
        raise NotAllowed("Only members of the assigned lab work on this case's results.")
    return application


def _record_of(application: Application, record_id: int) -> TestRecord:
    record = (
        TestRecord.objects.filter(application=application, pk=record_id)
        .select_related("aipo__profile__domain", "aipo__actor", "aipo__option")
        .first()
    )
    if record is None:
        raise Http404(f"No record {record_id} in {application.reference}")
    return record


def _current_records(application: Application):
    return (
        TestRecord.objects.filter(application=application)
        .current()
        .select_related(
            "aipo__profile__domain", "aipo__actor", "aipo__option", "recorded_by", "replaces"
        )
        .order_by("aipo__profile__keyword", "aipo__actor__keyword", "test_case", "pk")
    )


def _records_response(application: Application, status_code: int = 200) -> Response:
    # The state as it is now (the FSM field cannot be refreshed in place).
    state = Application.objects.values_list("state", flat=True).get(pk=application.pk)
    records = list(_current_records(application))
    recorded = {r.aipo_id for r in records}
    missing = [
        a
        for a in application.claimed_aipos.with_names().order_by(
            "profile__keyword", "actor__keyword", "option__keyword"
        )
        if a.pk not in recorded
    ]
    data = CaseRecordsSerializer(
        {
            "application": application.reference,
            "state": state,
            "records": records,
            "missing": missing,
        }
    ).data
    return Response(data, status=status_code)


def _check_can_record(user, application: Application) -> None:
    """The case-wide refusals, with their own status, before any row is looked at (the
    service checks them again under the case's lock, row by row)."""
    if application.state != Application.State.IN_ASSESSMENT:
        raise Conflict(
            f"{application.reference} is {application.get_state_display().lower()}: "
            "results can only be recorded during the assessment."
        )
    refusal = lab_services.conflict_refusal(user=user, application=application)
    if refusal:
        raise NotAllowed(refusal)


def _text(data: dict, name: str, current: TestRecord | None = None) -> str:
    if name in data:
        return data[name]
    return getattr(current, name, "") if current is not None else ""


def _evidence(data: dict, current: TestRecord | None = None) -> str:
    if "evidence" in data:
        return "\n".join(data["evidence"])
    return current.evidence_links if current is not None else ""


# --- Views ---


class LabCaseListView(APIView):
    pagination_class = Page

    @extend_schema(
        summary="Your lab's assigned cases",
        description="Cases assigned to a lab you belong to that are in assessment or in "
        "technical review, oldest change first, with how many claimed AIPOs have a result.",
        tags=["lab"],
        responses={
            200: LabCaseSerializer(many=True),
            **_errors(401),
            404: OpenApiResponse(
                ErrorSerializer, description="Not a lab member, or no such page of results."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        lab_ids = permissions.organisation_ids(request.user, Organisation.Kind.LAB)
        if not lab_ids:
            # As the lab's "my cases" page: nothing here for someone outside every lab.
            raise Http404("You are not a member of a test laboratory.")
        cases = lab_services.assigned_cases(lab_ids=lab_ids)
        return _paginated(request, self, cases, LabCaseSerializer)


class LabRecordsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="The current results of a case",
        description="The latest version of each record (amended versions are replaced), and "
        "the claimed AIPOs that have no result yet. Members of the assigned lab only.",
        tags=["lab"],
        responses={200: CaseRecordsSerializer, **_errors(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return _records_response(_lab_case(request.user, pk))

    @extend_schema(
        summary="Record one or many results",
        description="All or nothing, as the lab's grid: if any row is refused (unknown or "
        "unclaimed AIPO, no competence in its domain, a test case already recorded without "
        "an amendment reason, a record amended meanwhile), nothing is stored and `errors` "
        "names each refused row by its position. Recording a test case that already has a "
        "result amends it, with `amendment_reason`. The case must be in assessment (409), "
        "and neither you nor your lab may have declared a conflict with the vendor (403).",
        tags=["lab"],
        request=RecordsInputSerializer,
        responses={
            201: CaseRecordsSerializer,
            400: OpenApiResponse(RowErrorsSerializer, description="Rows refused; none stored."),
            **_errors(401, 403, 404, 409),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        application = _lab_case(request.user, pk)
        serializer = RecordsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _check_can_record(request.user, application)
        rows, errors = [], {}
        for index, row in enumerate(serializer.validated_data["records"]):
            try:
                (aipo,) = _aipos([row])
                amends = None
                if "amends" in row:
                    amends = TestRecord.objects.filter(
                        application=application, pk=row["amends"]
                    ).first()
                    if amends is None:
                        raise ActionRefused(
                            f"Record {row['amends']} is not a record of {application.reference}."
                        )
            except ActionRefused as exc:
                errors[str(index)] = exc.message
                continue
            rows.append(
                lab_services.GridRow(
                    key=str(index),
                    aipo=aipo,
                    result=row["result"],
                    test_case=_text(row, "test_case"),
                    test_case_name=_text(row, "test_case_name"),
                    tool=_text(row, "tool"),
                    tool_version=_text(row, "tool_version"),
                    comment=_text(row, "comment"),
                    evidence_links=_evidence(row),
                    amendment_reason=row.get("amendment_reason", ""),
                    amends=amends,
                )
            )
        try:
            if errors:
                raise lab_services.GridRefused(errors)
            lab_services.test_records_create_many(
                application=application, rows=rows, by=request.user
            )
        except lab_services.GridRefused as exc:
            # The service's message speaks of the page's grid; a client reads `errors`.
            count = len(exc.errors)
            detail = (
                f"{count} record{'s' if count != 1 else ''} refused, so nothing was stored: "
                "correct the records named in `errors` (by their position in `records`) and "
                "send the request again."
            )
            return Response(
                {"detail": detail, "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST
            )
        return _records_response(application, status.HTTP_201_CREATED)


class LabRecordAmendView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Amend a record",
        description="Records are never changed: the amendment is a new version that "
        "replaces this one, with the reason. Fields left out keep the current values. "
        "Only the current version can be amended (409 once someone else amended it); a "
        "record that is not of this case answers 404.",
        tags=["lab"],
        request=AmendInputSerializer,
        responses={201: TestRecordSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        application = _lab_case(request.user, pk)
        serializer = AmendInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = _record_of(application, data["record"])
        _check_can_record(request.user, application)
        if not data.get("reason", "").strip():
            raise ActionRefused("An amendment needs a reason: say why the record changes.")
        amended = lab_services.test_record_create(
            application=application,
            aipo=record.aipo,
            result=data.get("result", record.result),
            by=request.user,
            test_case=_text(data, "test_case", record),
            test_case_name=_text(data, "test_case_name", record),
            tool=_text(data, "tool", record),
            tool_version=_text(data, "tool_version", record),
            comment=_text(data, "comment", record),
            evidence_links=_evidence(data, record),
            amendment_reason=data["reason"],
            amends=record,
        )
        return Response(TestRecordSerializer(amended).data, status=status.HTTP_201_CREATED)


class LabReportsView(APIView):
    @extend_schema(
        summary="The case's released test reports",
        description="Oldest first; an amended report names the one it amends.",
        tags=["lab"],
        responses={200: TestReportSerializer(many=True), **_errors(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        application = _lab_case(request.user, pk)
        reports = application.test_reports.select_related("amends", "authorised_by").order_by(
            "issued_at", "pk"
        )
        return Response(TestReportSerializer(reports, many=True).data)


class LabReportAmendView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Issue an amended test report",
        description="A lab manager of the assigned lab who recorded none of the current "
        "results authorises a new report that amends the latest one (both stay).",
        tags=["lab"],
        request=ReportAmendSerializer,
        responses={201: TestReportSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        application = _lab_case(request.user, pk)
        serializer = ReportAmendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        latest = application.test_reports.filter(amended_by__isnull=True).order_by("-pk").first()
        if latest is None:
            raise Conflict("There is no released test report to amend yet.")
        report = lab_services.test_report_amend(
            report=latest, by=request.user, reason=serializer.validated_data.get("reason", "")
        )
        return Response(TestReportSerializer(report).data, status=status.HTTP_201_CREATED)
