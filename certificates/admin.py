from __future__ import annotations

from django.contrib import admin

from cas.admin import AppendOnlyAdmin
from certificates.models import Certificate, SigningKey


@admin.register(Certificate)
class CertificateAdmin(AppendOnlyAdmin):
    """Issued certificates are never edited: only superseded by a new one."""

    list_display = ["number", "status", "valid_from", "valid_until"]
    list_filter = ["status"]
    search_fields = ["number"]


@admin.register(SigningKey)
class SigningKeyAdmin(AppendOnlyAdmin):
    """Keys change only through `manage.py signing_keys`, which audits every change."""

    list_display = ["kid", "purpose", "status", "created_at", "revoked_at"]
    list_filter = ["purpose", "status"]
