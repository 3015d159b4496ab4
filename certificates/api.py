"""Certificate status changes over the API: the same services as the certificate page."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas.api import _errors
from certificates import fhir, lifecycle, services
from certificates.models import Certificate


class StatusChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=True)
    replacement = serializers.CharField(
        max_length=40, required=False, help_text="supersede only: the replacing certificate"
    )


class CertificateStatusSerializer(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    status_changed_at = serializers.DateTimeField(allow_null=True)
    superseded_by = serializers.CharField(source="superseded_by.number", allow_null=True)


def _status(certificate: Certificate) -> dict:
    return CertificateStatusSerializer(certificate).data


class CertificateStatusChange(APIView):
    """POST /api/certificates/<number>/<action>/ with a reason (and a replacement to
    supersede). 400 bad input, 403 not allowed, 404 no such certificate, 409 wrong state."""

    action = ""

    @extend_schema(
        request=StatusChangeSerializer,
        responses={200: CertificateStatusSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, number: str) -> Response:
        # Refusals (ActionRefused and its 403/409 kinds) become {"detail": ...} responses in
        # cas.api.exception_handler, as for the case API.
        # PostgreSQL cannot hold a NUL in a query: such a number is simply unknown.
        certificate = None if "\x00" in number else services.find_certificate(number)
        if certificate is None:
            raise Http404("No such certificate")
        data = StatusChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"]
        if self.action == "supersede":
            changed = lifecycle.certificate_supersede(
                certificate=certificate,
                replacement_number=data.validated_data.get("replacement", ""),
                by=request.user,
                reason=reason,
            )
        else:
            service = getattr(lifecycle, f"certificate_{self.action}")
            changed = service(certificate=certificate, by=request.user, reason=reason)
        return Response(_status(changed))


# --- FHIR R5 view of a certificate (public) ---


class FhirJsonRenderer(renderers.JSONRenderer):
    media_type = fhir.FHIR_JSON
    format = "fhir"


class FirstRenderer(BaseContentNegotiation):
    """FHIR JSON whatever the client accepts: the resource has one representation."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def certificate_facts(certificate: Certificate) -> fhir.CertificateFacts:
    verdict = services.status_verdict(certificate)
    return fhir.CertificateFacts(
        number=certificate.number,
        status=verdict.code,
        status_title=verdict.title,
        status_changed_at=certificate.status_changed_at,
        issued_at=certificate.issued_at,
        decision_date=certificate.decision_date,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        content=certificate.content,
        jws=certificate.jws,
    )


class CertificateFhirView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = FirstRenderer

    @extend_schema(
        operation_id="certificate_fhir",
        summary="A certificate as a FHIR R5 VerificationResult",
        description="Public. The certificate's number, status, certified scope (one "
        "validationProcess per AIPO) and validity, as `application/fhir+json`; the mapping is "
        "in the README. An unknown number answers 404 with an OperationOutcome.",
        tags=["certificates"],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR R5 VerificationResult"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="FHIR OperationOutcome"),
        },
    )
    def get(self, request: Request, number: str) -> Response:
        # PostgreSQL cannot hold a NUL in a query: such a number is simply unknown.
        certificate = None if "\x00" in number else services.find_certificate(number)
        if certificate is None:
            outcome = fhir.operation_outcome(
                code="not-found", text=f"No certificate {number[:40]} was issued by this scheme."
            )
            return Response(outcome, status=404)
        resource = fhir.verification_result(
            certificate_facts(certificate), site_url=settings.SITE_URL
        )
        return Response(resource)
