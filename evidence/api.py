"""The REST endpoint a vendor's CI uses to push a FHIR TestReport into its case."""

from __future__ import annotations

import contextlib

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cas import permissions
from cas.errors import ActionRefused
from cas.models import AIPO
from evidence import services
from evidence.models import FhirTestReport


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
