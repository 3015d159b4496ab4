"""Certificate status changes over the API: the same services as the certificate page."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cas.api import _errors
from certificates import lifecycle, services
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
        certificate = services.find_certificate(number)
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
