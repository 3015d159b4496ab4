"""Certificate status changes over the API: the same services as the certificate page."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas.api import ErrorSerializer, _errors
from certificates import fhir, lifecycle, services
from certificates.models import Certificate
from certificates.ratelimit import rate_limited
from certificates.views import MAX_VERIFY_UPLOAD


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


# --- Verification (public, no login): the same services and verdicts as the verify page ---


class SignatureVerdictSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    code = serializers.CharField(
        help_text="PDF: valid, modified, untrusted (unknown signer), unsigned, not_pdf, "
        "unreadable, key_revoked; QR: valid, unknown_key, bad_signature, malformed, "
        "key_revoked, mismatch"
    )
    message = serializers.CharField()
    signer = serializers.CharField(allow_blank=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    timestamped_at = serializers.DateTimeField(allow_null=True)


class StatusVerdictSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="true only for an active, unexpired certificate")
    code = serializers.CharField(
        help_text="active, suspended, withdrawn, revoked, expired, superseded, key_revoked, "
        "unknown (no such number), claimed (the number of a document that failed its check)"
    )
    title = serializers.CharField()
    message = serializers.CharField(help_text="since when and why, in plain words")
    number = serializers.CharField(allow_blank=True)
    status = serializers.CharField(allow_blank=True, help_text="the certificate's own status")
    since = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    superseded_by = serializers.CharField(allow_blank=True)
    valid_from = serializers.DateField(allow_null=True)
    valid_until = serializers.DateField(allow_null=True)


class VerificationSerializer(serializers.Serializer):
    signature = SignatureVerdictSerializer(
        allow_null=True, help_text="null when there is no signed document to check"
    )
    status = StatusVerdictSerializer()
    payload = serializers.DictField(
        allow_null=True, help_text="the signed QR payload, when a QR code was verified"
    )


class VerifyRequestSerializer(serializers.Serializer):
    pdf = serializers.FileField(required=False, help_text="the certificate PDF (multipart)")
    qr = serializers.CharField(
        required=False, max_length=4000, help_text="the QR code's text (URL or compact JWS)"
    )
    number = serializers.CharField(required=False, max_length=40)


def verification_data(verification: services.Verification) -> dict:
    signature = verification.signature
    status = verification.status
    certificate = status.certificate
    return {
        "signature": None
        if signature is None
        else {
            "ok": signature.ok,
            "code": signature.code,
            "message": signature.message,
            "signer": signature.signer,
            "signed_at": signature.signed_at,
            "timestamped_at": signature.timestamped_at,
        },
        "status": {
            "ok": status.ok,
            "code": status.code,
            "title": status.title,
            "message": status.message,
            "number": certificate.number if certificate else "",
            "status": certificate.status if certificate else "",
            "since": certificate.status_changed_at if certificate else None,
            "reason": certificate.status_reason if certificate else "",
            "superseded_by": certificate.superseded_by.number
            if certificate and certificate.superseded_by_id
            else "",
            "valid_from": certificate.valid_from if certificate else None,
            "valid_until": certificate.valid_until if certificate else None,
        },
        "payload": verification.payload,
    }


def _verification_response(verification: services.Verification) -> Response:
    return Response(VerificationSerializer(verification_data(verification)).data)


@method_decorator(rate_limited("verify", json=True), name="dispatch")
class VerifyNumberApi(APIView):
    """GET /api/verify/<number>/: the status verdict (since when, why) and the signature
    verdict of the stored PDF. Public; rate-limited per client address (429 + Retry-After).
    An unknown number answers 404 with the same body (status code "unknown")."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="verify_number",
        responses={
            200: VerificationSerializer,
            404: OpenApiResponse(VerificationSerializer, description="No such certificate."),
            429: OpenApiResponse(ErrorSerializer, description="Too many requests."),
        },
    )
    def get(self, request: Request, number: str) -> HttpResponse:
        return self.answer(number)

    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET" and "number" in kwargs:
            # A cached answer is served as it is, before DRF's request wrapping and content
            # negotiation (renderer_classes is JSON only, so that changes nothing).
            cached = self.cached(kwargs["number"])
            if cached is not None:
                return cached
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def _key(number: str) -> str | None:
        # The answer depends only on the certificate's state (services.verification_state).
        state = services.verification_state(number=number[:40])
        return f"verify:json:{state}" if state else None

    def cached(self, number: str) -> HttpResponse | None:
        self.state_key = self._key(number)
        hit = cache.get(self.state_key) if self.state_key else None
        return None if hit is None else self._response(*hit)

    def answer(self, number: str) -> HttpResponse:
        verification = services.verify_number(number=number[:40])
        status = 404 if verification.status.certificate is None else 200
        body = JSONRenderer().render(VerificationSerializer(verification_data(verification)).data)
        key = getattr(self, "state_key", None)
        if key:
            cache.set(key, (status, body), services.VERDICT_CACHE_SECONDS)
        return self._response(status, body)

    @staticmethod
    def _response(status: int, body: bytes) -> HttpResponse:
        return HttpResponse(body, status=status, content_type="application/json")


@method_decorator(rate_limited("verify", json=True), name="dispatch")
class VerifyApi(APIView):
    """POST /api/verify/ with a PDF (multipart field `pdf`), a QR code's text (`qr`) or a
    number: both verdicts, with the codes and messages of the verify page. Public and
    rate-limited; 400 when nothing usable is given, 413 for a file over 10 MB."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="verify",
        request={
            "multipart/form-data": VerifyRequestSerializer,
            "application/json": VerifyRequestSerializer,
        },
        responses={
            200: VerificationSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Nothing to verify given."),
            413: OpenApiResponse(ErrorSerializer, description="The file is too large."),
            429: OpenApiResponse(ErrorSerializer, description="Too many requests."),
        },
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("pdf")
        qr = request.data.get("qr") if hasattr(request.data, "get") else None
        number = request.data.get("number") if hasattr(request.data, "get") else None
        if upload is not None:
            if upload.size > MAX_VERIFY_UPLOAD:
                return Response(
                    {"detail": f"The file is larger than {MAX_VERIFY_UPLOAD // 2**20} MB."},
                    status=413,
                )
            return _verification_response(services.verify_pdf(pdf_bytes=upload.read()))
        if isinstance(qr, str) and qr.strip():
            return _verification_response(services.verify_qr(text=qr.strip()[:4000]))
        if isinstance(number, str) and number.strip():
            return _verification_response(services.verify_number(number=number.strip()[:40]))
        return Response(
            {"detail": "Give a PDF file (pdf), a QR code's text (qr) or a certificate number."},
            status=400,
        )


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
