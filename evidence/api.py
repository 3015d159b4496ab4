"""The REST endpoints of a case's evidence: the FHIR TestReport push a vendor's CI uses,
the list of a case's evidence, the upload of a file, and one file's metadata and bytes.

The same lookups and services as the evidence pages: `get_application_for` (a foreign case,
or a file of one, is a logged 404) and evidence/services.py (the checks on the bytes, the
states that accept evidence, the size limit)."""

from __future__ import annotations

import contextlib
import re

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas import permissions
from cas.api import _errors
from cas.errors import ActionRefused
from cas.models import AIPO
from evidence import services
from evidence.files import allowed_extensions
from evidence.models import ConnectathonResult, EvidenceFile, FhirTestReport


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def _refuse_size(size: int) -> None:
    try:
        services.check_upload_size(size)
    except services.TooLarge as exc:
        raise PayloadTooLarge(exc.message) from None


class RawFhirParser(BaseParser):
    """Keeps the body as bytes: the TestReport is stored exactly as it was sent.

    The declared length is checked before anything is read, and at most one byte more than
    the limit is ever read (a client may send more than it declares, or declare nothing).
    """

    media_type = "application/fhir+json"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        if stream is None:
            return b""
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        with contextlib.suppress(ValueError):  # no usable length: the read below bounds it
            _refuse_size(int(declared or 0))
        data = stream.read(services.max_upload_bytes() + 1)
        _refuse_size(len(data))
        return data


class RawJsonParser(RawFhirParser):
    media_type = "application/json"


class RawFhirXmlParser(RawFhirParser):
    media_type = "application/fhir+xml"


EXAMPLE_REPORT = {
    "resourceType": "TestReport",
    "name": "MHD Document Responder read",
    "status": "completed",
    "testScript": "https://example.org/TestScript/mhd-read",
    "result": "pass",
    "score": 100,
    "tester": "Helix CI",
    "issued": "2026-03-25T10:15:00+01:00",
    "participant": [{"type": "server", "uri": "https://fhir.helix.example/r4"}],
    "test": [{"name": "Read DocumentReference", "action": [{"assert": {"result": "pass"}}]}],
}


def _report_json(report: FhirTestReport) -> dict:
    return {
        "id": report.pk,
        "application": report.application.reference,
        "fhir_version": report.fhir_version,
        "name": report.name,
        "status": report.status,
        "result": report.result,
        "score": report.score,
        "tester": report.tester,
        "issued": report.issued.isoformat() if report.issued else None,
        "issued_as_sent": report.issued_text,
        "participants": report.participants,
        "warnings": report.warnings,
        "aipos": [str(a) for a in report.aipos.with_names()],
        "tests": [
            {
                "section": t.section,
                "name": t.name,
                "outcome": t.outcome,
                "actions": [
                    {"kind": a.kind, "result": a.result, "message": a.message}
                    for a in t.actions.all()
                ],
            }
            for t in report.tests.prefetch_related("actions")
        ],
    }


def _aipos_from(values: list[str]) -> list[AIPO]:
    aipos = []
    for value in values:
        parts = [part.strip() for part in value.split("/")]
        if len(parts) == 2:
            parts.append("NONE")
        aipo = AIPO.objects.with_names().by_keywords(*parts).first() if len(parts) == 3 else None
        if aipo is None:
            raise ActionRefused(
                f"aipo={value!r} is not PROFILE/ACTOR/OPTION of the catalogue "
                "(e.g. MHD/DOC_RESPONDER/NONE)."
            )
        aipos.append(aipo)
    return aipos


class TestReportPush(APIView):
    parser_classes = [RawFhirParser, RawJsonParser, RawFhirXmlParser]

    @extend_schema(
        operation_id="testreport_push",
        summary="Push a FHIR TestReport into your own case",
        description=(
            "Send one FHIR TestReport (R5, or R4B: detected from testScript) as the request "
            "body, e.g. from a CI pipeline with `Authorization: Token <your token>`. The case "
            "must be your organisation's and a draft or answering a request for information: "
            "once submitted, a case refuses pushes with 409. "
            "The report is checked first: status and result against their FHIR value sets, "
            "then the whole resource; a refusal lists each problem with its JSON path and "
            "leaves the case unchanged. A body over EVIDENCE_MAX_UPLOAD_BYTES is refused with "
            "413 naming the limit, before it is read. Name the claimed AIPOs it supports with "
            "repeated `aipo=PROFILE/ACTOR/OPTION` query parameters."
        ),
        parameters=[
            OpenApiParameter(
                "aipo",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                many=True,
                description="a claimed AIPO the report supports, e.g. MHD/DOC_RESPONDER/NONE",
            )
        ],
        request={
            "application/fhir+json": OpenApiTypes.OBJECT,
            "application/json": OpenApiTypes.OBJECT,
            "application/fhir+xml": OpenApiTypes.STR,
        },
        responses={
            201: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="stored; the parsed summary",
                examples=[
                    OpenApiExample(
                        "Stored",
                        value={
                            "id": 12,
                            "application": "APP-2026-00042",
                            "fhir_version": "R5",
                            "name": "MHD Document Responder read",
                            "status": "completed",
                            "result": "pass",
                            "score": 100.0,
                            "tester": "Helix CI",
                            "issued": "2026-03-25T09:15:00+00:00",
                            "participants": [
                                {"type": "server", "uri": "https://fhir.helix.example/r4"}
                            ],
                            "warnings": [],
                            "aipos": ["MHD / DOC_RESPONDER / NONE"],
                            "tests": [
                                {
                                    "section": "test",
                                    "name": "Read DocumentReference",
                                    "outcome": "pass",
                                    "actions": [
                                        {"kind": "assert", "result": "pass", "message": ""}
                                    ],
                                }
                            ],
                        },
                    )
                ],
            ),
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="refused: each problem names its JSON path",
                examples=[
                    OpenApiExample(
                        "Coding instead of code",
                        value={
                            "detail": "The TestReport was refused: ...",
                            "problems": [
                                {
                                    "path": "$.test[0].action[0].operation.result",
                                    "message": "is a Coding object, but FHIR requires a "
                                    "plain code here, one of: pass, skip, fail, warning, error",
                                }
                            ],
                        },
                    )
                ],
            ),
            401: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="no valid token or session"
            ),
            404: OpenApiResponse(description="no such case, or not yours"),
            409: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="the case is not a draft or answering a request for information",
                examples=[
                    OpenApiExample(
                        "Wrong state",
                        value={
                            "detail": "APP-2026-00042 is submitted: a CI pipeline can only "
                            "push TestReports while the case is a draft or answering a "
                            "request for information."
                        },
                    )
                ],
            ),
            413: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="larger than EVIDENCE_MAX_UPLOAD_BYTES; the message names the limit",
                examples=[
                    OpenApiExample(
                        "Too large",
                        value={
                            "detail": "The file is 21 MB; the limit is 20 MB (20,971,520 bytes)."
                        },
                    )
                ],
            ),
        },
        examples=[
            OpenApiExample("A passing R5 TestReport", value=EXAMPLE_REPORT, request_only=True)
        ],
    )
    def post(self, request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        try:  # before the body is read: a submitted case refuses whatever is sent
            services.check_can_push(application)
        except ActionRefused as exc:
            return Response({"detail": exc.message}, status=exc.status_code)
        data = request.data if isinstance(request.data, bytes) else b""
        is_xml = (request.content_type or "").startswith("application/fhir+xml")
        try:
            report = services.testreport_ingest(
                application=application,
                data=data,
                name=f"testreport-api.{'xml' if is_xml else 'json'}",
                aipos=_aipos_from(request.query_params.getlist("aipo")),
                by=request.user,
                push=True,
            )
        except services.TestReportRefused as exc:
            return Response(
                {
                    "detail": exc.message,
                    "problems": [{"path": p.path, "message": p.message} for p in exc.problems],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        except ActionRefused as exc:
            return Response({"detail": exc.message}, status=exc.status_code)
        return Response(_report_json(report), status=status.HTTP_201_CREATED)


# --- A case's evidence: list, upload, one file's metadata and bytes ---


class EvidenceFileSerializer(serializers.ModelSerializer):
    sha256 = serializers.CharField(source="blob.sha256")
    size = serializers.IntegerField(source="blob.size", help_text="Bytes.")
    kind = serializers.CharField(source="blob.kind", help_text="pdf, json, xml, text, png, ...")
    application = serializers.CharField(source="application.reference")
    aipos = serializers.SerializerMethodField(help_text="The claimed AIPOs the file supports.")
    uploaded_by = serializers.CharField(
        source="uploaded_by.get_username", allow_null=True, default=None
    )
    content = serializers.SerializerMethodField(help_text="Where to GET the file's bytes.")

    class Meta:
        model = EvidenceFile
        fields = [
            "id",
            "application",
            "original_name",
            "description",
            "kind",
            "size",
            "sha256",
            "aipos",
            "uploaded_by",
            "uploaded_at",
            "content",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aipos(self, evidence: EvidenceFile) -> list[str]:
        return [str(a) for a in evidence.aipos.with_names()]

    @extend_schema_field(OpenApiTypes.STR)
    def get_content(self, evidence: EvidenceFile) -> str:
        return reverse("api_evidence_file_content", args=[evidence.pk])


class TestReportSummarySerializer(serializers.ModelSerializer):
    __test__ = False

    aipos = serializers.SerializerMethodField()
    file = serializers.IntegerField(source="evidence_file_id", help_text="Its evidence file.")

    class Meta:
        model = FhirTestReport
        fields = [
            "id",
            "name",
            "fhir_version",
            "status",
            "result",
            "score",
            "tester",
            "issued",
            "warnings",
            "aipos",
            "file",
            "uploaded_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aipos(self, report: FhirTestReport) -> list[str]:
        return [str(a) for a in report.aipos.with_names()]


class ConnectathonMatchSerializer(serializers.Serializer):
    aipo = serializers.CharField(source="aipo_label")
    event = serializers.CharField(source="event.name")
    event_end = serializers.DateField(source="event.end_date")
    organisation_name = serializers.CharField()
    system_name = serializers.CharField()
    grade = serializers.CharField()
    grade_display = serializers.CharField(source="get_grade_display")
    counts = serializers.BooleanField(
        help_text="A Pass recent enough for the scheme's evidence rule (submission needs one "
        "for every claimed AIPO)."
    )


class CaseEvidenceSerializer(serializers.Serializer):
    application = serializers.CharField()
    files = EvidenceFileSerializer(many=True)
    testreports = TestReportSummarySerializer(many=True)
    connectathon = ConnectathonMatchSerializer(
        many=True, help_text="Results of the case's product for its claimed AIPOs."
    )


class EvidenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=f"One of: {allowed_extensions()}.")
    description = serializers.CharField(required=False, allow_blank=True, max_length=300)
    aipo = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Claimed AIPOs the file supports: PROFILE/ACTOR/OPTION (or the AIPO's id), "
        "one per field.",
    )


def _claimed_aipos(values: list[str]) -> list[AIPO]:
    """AIPOs named by id or PROFILE/ACTOR/OPTION (the service refuses unclaimed ones)."""
    by_id = [v for v in values if re.fullmatch(r"\s*\d+\s*", v, re.ASCII)]
    # An id past any column's range is simply unknown (never sent to the database).
    found = AIPO.objects.with_names().in_bulk([int(v) for v in by_id if len(v.strip()) < 10])
    aipos = []
    for value in values:
        if value in by_id:
            aipo = found.get(int(value))
            if aipo is None:
                raise ActionRefused(f"aipo={value!r}: there is no AIPO with that id.")
            aipos.append(aipo)
        else:
            aipos += _aipos_from([value])
    return aipos


def _case_evidence(application) -> dict:
    files = (
        EvidenceFile.objects.filter(application=application)
        .select_related("blob", "application", "uploaded_by")
        .order_by("uploaded_at", "pk")
    )
    reports = FhirTestReport.objects.filter(application=application).order_by("uploaded_at", "pk")
    claimed = list(application.claimed_aipos.with_names())
    names = {a.pk: str(a) for a in claimed}
    window_start = services.evidence_window_start()
    matches = []
    for result in (
        ConnectathonResult.objects.filter(
            product_id=application.product_version.product_id, aipo_id__in=names
        )
        .select_related("event")
        .order_by("-event__end_date", "aipo_id", "pk")
    ):
        result.counts = (
            result.grade == ConnectathonResult.Grade.PASSED
            and result.event.end_date >= window_start
        )
        result.aipo_label = names[result.aipo_id]
        matches.append(result)
    return {
        "application": application.reference,
        "files": files,
        "testreports": reports,
        "connectathon": matches,
    }


class CaseEvidenceView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="evidence_list",
        summary="A case's evidence",
        description="Its files, its FHIR TestReports, and the Connectathon results of its "
        "product for the claimed AIPOs. Whoever may see the case may read it.",
        tags=["evidence"],
        responses={200: CaseEvidenceSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        return Response(CaseEvidenceSerializer(_case_evidence(application)).data)

    @extend_schema(
        operation_id="evidence_upload",
        summary="Add an evidence file to your case",
        description="multipart/form-data, as the upload page: the vendor of the case, while it "
        "is a draft, submitted or answering a request for information (409 otherwise). The "
        "type comes from the bytes and must agree with the name's extension; ZIP archives "
        "are checked entry by entry; the same bytes twice in one case are refused. Over "
        "EVIDENCE_MAX_UPLOAD_BYTES: 413 naming the limit.",
        tags=["evidence"],
        request={"multipart/form-data": EvidenceUploadSerializer},
        responses={
            201: EvidenceFileSerializer,
            **_errors(400, 401, 403, 404, 409),
            413: OpenApiResponse(
                OpenApiTypes.OBJECT, description="larger than EVIDENCE_MAX_UPLOAD_BYTES"
            ),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        serializer = EvidenceUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evidence = services.evidence_file_upload(
            application=application,
            upload=data["file"],
            aipos=_claimed_aipos(data.get("aipo", [])),
            description=data.get("description", ""),
            by=request.user,
        )
        return Response(EvidenceFileSerializer(evidence).data, status=status.HTTP_201_CREATED)


def _evidence_for(user, pk: int) -> EvidenceFile:
    """The case decides who sees its files: a foreign case's file is missing, as the case."""
    evidence = (
        EvidenceFile.objects.select_related("blob", "application", "uploaded_by")
        .filter(pk=pk)
        .first()
    )
    if evidence is None:
        raise Http404("No such file")
    permissions.get_application_for(user, evidence.application_id)
    return evidence


class EvidenceFileView(APIView):
    @extend_schema(
        operation_id="evidence_file",
        summary="One evidence file's metadata",
        tags=["evidence"],
        responses={200: EvidenceFileSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(EvidenceFileSerializer(_evidence_for(request.user, pk)).data)


class EvidenceFileContentView(APIView):
    @extend_schema(
        operation_id="evidence_file_content",
        summary="One evidence file's bytes",
        description="Exactly the bytes uploaded, as an attachment with the type found at "
        "upload; their SHA-256 is the metadata's sha256.",
        tags=["evidence"],
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="the file"),
            **_errors(401, 404),
        },
    )
    def get(self, request: Request, pk: int):
        return services.evidence_file_response(_evidence_for(request.user, pk))
