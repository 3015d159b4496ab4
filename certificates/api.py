"""Certificate status changes over the API: the same services as the certificate page."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas.api import ErrorSerializer, _errors
from cas.models import Organisation
from certificates import fhir, lifecycle, registry, services
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


def _verification_response(verification: services.Verification, *, status: int = 200) -> Response:
    return Response(VerificationSerializer(verification_data(verification)).data, status=status)


# Every route answering for one certificate number shares the "lookup" limit (ratelimit.py).
TOO_MANY = {
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many certificate look-ups from this address (verifications, "
        "certificate records, PDFs and FHIR views count together, OPENCAS_VERIFY_RATE); "
        "the Retry-After header says when to try again.",
    )
}


@method_decorator(rate_limited("lookup", json=True), name="dispatch")
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
            **TOO_MANY,
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


@method_decorator(rate_limited("lookup", json=True), name="dispatch")
class VerifyApi(APIView):
    """POST /api/verify/ with a PDF (multipart field `pdf`), a QR code's text (`qr`) or a
    number: both verdicts, with the codes and messages of the verify page. Public and
    rate-limited; 400 when nothing usable is given or the file is empty, 404 for a number
    never issued (as GET /api/verify/<number>/), 413 for a file over 10 MB, 415 for a body
    that is neither multipart, a form nor JSON."""

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
            400: OpenApiResponse(
                ErrorSerializer, description="Nothing to verify given, or the file is empty."
            ),
            404: OpenApiResponse(
                VerificationSerializer,
                description="A number (`number`) that was never issued: the same body and "
                "status as GET /api/verify/{number}/. A PDF or QR code always answers 200.",
            ),
            413: OpenApiResponse(ErrorSerializer, description="The file is too large."),
            415: OpenApiResponse(
                ErrorSerializer,
                description="The body is neither multipart/form-data, a form nor JSON.",
            ),
            **TOO_MANY,
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
            if upload.size == 0:
                return Response(
                    {"detail": "The file is empty: send the certificate PDF."}, status=400
                )
            return _verification_response(services.verify_pdf(pdf_bytes=upload.read()))
        if isinstance(qr, str) and qr.strip():
            return _verification_response(services.verify_qr(text=qr.strip()[:4000]))
        if isinstance(number, str) and number.strip():
            verification = services.verify_number(number=number.strip()[:40])
            status = 404 if verification.status.certificate is None else 200
            return _verification_response(verification, status=status)
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


def _fhir_throttled(message: str) -> dict:
    return fhir.operation_outcome(code="throttled", text=message)


@method_decorator(rate_limited("lookup", body=_fhir_throttled), name="dispatch")
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
            429: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="FHIR OperationOutcome (code `throttled`): too many certificate "
                "look-ups from this address; Retry-After says when to try again.",
            ),
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


# --- The public registry (read only, no login) ---


class RegistryScopeSerializer(serializers.Serializer):
    profile = serializers.CharField(source="profile_keyword")
    profile_name = serializers.CharField()
    actor = serializers.CharField(source="actor_keyword")
    actor_name = serializers.CharField()
    option = serializers.CharField(source="option_keyword")
    option_name = serializers.CharField()
    tf_revision = serializers.CharField(default="")


class RegistryCertificateSerializer(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.ChoiceField(
        choices=registry.PUBLIC_STATUSES,
        source="shown_status",
        help_text="The status today: an active certificate past its end date is expired.",
    )
    vendor_id = serializers.IntegerField(source="application.vendor_id")
    vendor_name = serializers.CharField(source="content.vendor_name")
    product_name = serializers.CharField(source="content.product_name")
    product_version = serializers.CharField(source="content.product_version")
    lab_id = serializers.IntegerField(source="application.lab_id", allow_null=True)
    lab_name = serializers.CharField(source="content.lab_name")
    decision_date = serializers.DateField()
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    scope = RegistryScopeSerializer(source="content.scope", many=True)


def registry_record(c: Certificate) -> dict:
    content = c.content
    return {
        "number": c.number,
        "status": c.shown_status,
        "vendor_id": c.application.vendor_id,
        "vendor_name": content.get("vendor_name", ""),
        "product_name": content.get("product_name", ""),
        "product_version": content.get("product_version", ""),
        "lab_id": c.application.lab_id,
        "lab_name": content.get("lab_name", ""),
        "decision_date": c.decision_date.isoformat(),
        "valid_from": c.valid_from.isoformat(),
        "valid_until": c.valid_until.isoformat(),
        "scope": [
            {
                "profile": s["profile_keyword"],
                "profile_name": s["profile_name"],
                "actor": s["actor_keyword"],
                "actor_name": s["actor_name"],
                "option": s["option_keyword"],
                "option_name": s["option_name"],
                "tf_revision": s.get("tf_revision", ""),
            }
            for s in content.get("scope", [])
        ],
    }


class RegistryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Matching certificates, counted up to a cap (1,000 by default, "
        "REGISTRY_COUNT_CAP)."
    )
    count_capped = serializers.BooleanField(
        help_text="True when more certificates match than the cap: `count` is then the cap. "
        "Every match can still be paged through: follow `next` (past the counted "
        "certificates it pages by certificate number, `after=`)."
    )
    page = serializers.IntegerField(
        allow_null=True, help_text="The page number; null when paged by `after` / `before`."
    )
    page_size = serializers.IntegerField(source="filters.page_size")
    num_pages = serializers.IntegerField(
        help_text="The pages of the counted certificates; when count_capped, more follow."
    )
    next = serializers.SerializerMethodField()
    previous = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    @extend_schema_field(RegistryCertificateSerializer(many=True))
    def get_results(self, page) -> list[dict]:
        # Built by hand: nested serializers took longer than the queries at 200 rows. The
        # fields are RegistryCertificateSerializer's (tests compare the two).
        return [registry_record(c) for c in page.certificates]

    def _link(self, query: str) -> str:
        request = self.context["request"]
        return request.build_absolute_uri(request.path + "?" + query)

    def get_next(self, page) -> str | None:
        return self._link(page.next_query) if page.has_next else None

    def get_previous(self, page) -> str | None:
        return self._link(page.previous_query) if page.has_previous else None


class RegistryHistorySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    reason = serializers.CharField()


class RegistryCertificateDetailSerializer(RegistryCertificateSerializer):
    status_label = serializers.CharField()
    status_meaning = serializers.CharField()
    status_changed_at = serializers.DateTimeField(allow_null=True)
    status_reason = serializers.CharField()
    superseded_by = serializers.CharField(source="superseded_by.number", allow_null=True)
    replaces = serializers.ListField(child=serializers.CharField())
    vendor_address = serializers.CharField(source="content.vendor_address")
    accreditation_body = serializers.CharField(source="content.accreditation_body")
    lab_accreditation_number = serializers.CharField(source="content.lab_accreditation_number")
    scheme_name = serializers.CharField(source="content.scheme_name")
    scheme_version = serializers.CharField(source="content.scheme_version")
    issued_at = serializers.DateTimeField(allow_null=True)
    history = RegistryHistorySerializer(many=True)


class RegistryOrganisationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    country = serializers.CharField()
    address = serializers.CharField()


class RegistryAccreditationSerializer(serializers.Serializer):
    body = serializers.CharField()
    number = serializers.CharField()
    standard = serializers.CharField()
    authorisation_number = serializers.CharField()
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    status = serializers.CharField()
    scope_domains = serializers.SerializerMethodField()
    scope_profiles = serializers.SerializerMethodField()

    def get_scope_domains(self, accreditation) -> list[str]:
        return [d.keyword for d in accreditation.scope_domains.all()]

    def get_scope_profiles(self, accreditation) -> list[str]:
        return [p.keyword for p in accreditation.scope_profiles.all()]


class RegistryVendorSerializer(RegistryOrganisationSerializer):
    certificates = RegistryPageSerializer()


class RegistryLabSerializer(RegistryOrganisationSerializer):
    accreditations = RegistryAccreditationSerializer(many=True)
    certificates = RegistryPageSerializer()


def _registry_parameters(names) -> list[OpenApiParameter]:
    types = {
        "page": OpenApiTypes.INT,
        "page_size": OpenApiTypes.INT,
        **{n: OpenApiTypes.DATE for n in registry.PARAMETERS if n.endswith(("_from", "_to"))},
    }
    return [
        OpenApiParameter(
            name,
            types.get(name, OpenApiTypes.STR),
            description=registry.PARAMETER_HELP[name],
            enum=registry.PUBLIC_STATUSES if name == "status" else None,
        )
        for name in names
    ]


class PublicRegistryView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def _page(self, request: Request, params, **fixed) -> registry.RegistryPage:
        # InvalidRegistryQuery is an ActionRefused: cas.api.exception_handler answers 400.
        return registry.registry_page(filters=registry.registry_filters_from(params, **fixed))

    def _organisation_page(self, request: Request, **fixed) -> registry.RegistryPage:
        """A vendor's or lab's certificates: only the paging parameters count (as on the
        pages); a search filter would make a vendor look absent."""
        paging = {name: request.query_params.get(name, "") for name in registry.PAGING}
        return self._page(request, paging, **fixed)


class RegistryCertificateList(PublicRegistryView):
    """The registry search: the same filters and pages as /registry/."""

    @extend_schema(
        operation_id="registry_certificates_list",
        parameters=_registry_parameters(registry.PARAMETERS),
        responses={200: RegistryPageSerializer, **_errors(400)},
    )
    def get(self, request: Request) -> Response:
        page = self._page(request, request.query_params)
        return Response(RegistryPageSerializer(page, context={"request": request}).data)


@method_decorator(rate_limited("lookup", json=True), name="dispatch")
class RegistryCertificateDetail(PublicRegistryView):
    """One certificate's full public record: scope, lab, dates, status and its history.
    Rate-limited with the other look-ups by number."""

    @extend_schema(
        operation_id="registry_certificates_retrieve",
        responses={200: RegistryCertificateDetailSerializer, **_errors(404), **TOO_MANY},
    )
    def get(self, request: Request, number: str) -> Response:
        certificate = services.find_certificate(number)
        if certificate is None:
            raise Http404("No such certificate")
        verdict = services.status_verdict(certificate)
        shown = verdict.code if verdict.code in registry.STATUS_LABELS else certificate.status
        certificate.shown_status = shown
        certificate.status_label = registry.STATUS_LABELS[shown]
        certificate.status_meaning = {c: m for c, _, m in registry.STATUS_LEGEND}[shown]
        certificate.history = registry.certificate_history(certificate)
        certificate.replaces = list(
            certificate.supersedes.order_by("number").values_list("number", flat=True)
        )
        return Response(RegistryCertificateDetailSerializer(certificate).data)


class RegistryVendorDetail(PublicRegistryView):
    """A vendor and its public certificates (paged: page, page_size, after, before); 404 if it
    has none (search filters are ignored here)."""

    @extend_schema(
        operation_id="registry_vendors_retrieve",
        parameters=_registry_parameters(registry.PAGING),
        responses={200: RegistryVendorSerializer, **_errors(400, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        vendor = Organisation.objects.filter(kind=Organisation.Kind.VENDOR, pk=pk).first()
        if vendor is None:
            raise Http404("No such vendor in the registry")
        page = self._organisation_page(request, vendor_id=vendor.pk)
        if page.count == 0:
            raise Http404("No such vendor in the registry")
        data = {"pk": vendor.pk, "name": vendor.name, "country": vendor.country}
        data |= {"address": vendor.address, "certificates": page}
        return Response(RegistryVendorSerializer(data, context={"request": request}).data)


class RegistryLabDetail(PublicRegistryView):
    """A test laboratory, its accreditations and the public certificates of its cases."""

    @extend_schema(
        operation_id="registry_labs_retrieve",
        parameters=_registry_parameters(registry.PAGING),
        responses={200: RegistryLabSerializer, **_errors(400, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        lab = Organisation.objects.filter(kind=Organisation.Kind.LAB, pk=pk).first()
        if lab is None:
            raise Http404("No such laboratory")
        data = {"pk": lab.pk, "name": lab.name, "country": lab.country, "address": lab.address}
        data["certificates"] = self._organisation_page(request, lab_id=lab.pk)
        data["accreditations"] = lab.accreditations.prefetch_related(
            "scope_domains", "scope_profiles"
        )
        return Response(RegistryLabSerializer(data, context={"request": request}).data)


# --- end of the public registry ---
