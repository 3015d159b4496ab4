from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from cas.errors import ActionRefused
from certificates import keys, services
from certificates.models import Certificate, SigningKey

PURPOSES = [SigningKey.Purpose.JWS, SigningKey.Purpose.PDF]


class Command(BaseCommand):
    help = (
        "Manage the signing keys: create the first ones, list them, rotate to new ones, "
        "revoke a compromised key, and re-issue every certificate a revoked key signed."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        create = sub.add_parser("create", help="Make an active key for each purpose that has none.")
        create.add_argument("--purpose", choices=PURPOSES, action="append")
        create.add_argument(
            "--ca-cert", help="PEM certificate of your own root CA, to issue the PDF keys under."
        )
        create.add_argument("--ca-key", help="Its unencrypted PEM private key (P-256).")
        sub.add_parser("list", help="Every key with its status and certificates signed.")
        rotate = sub.add_parser("rotate", help="New active keys; the old ones are retired.")
        rotate.add_argument("--purpose", choices=PURPOSES, action="append")
        revoke = sub.add_parser("revoke", help="Revoke a key; its certificates await re-issue.")
        revoke.add_argument("kid")
        revoke.add_argument("--reason", required=True)
        sub.add_parser("reissue", help="Re-issue every live certificate signed by a revoked key.")

    def handle(self, *args, command: str, **options) -> None:
        try:
            getattr(self, f"do_{command}")(**options)
        except (ActionRefused, keys.KeyStoreError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc

    def do_create(
        self, purpose: list[str] | None = None, ca_cert: str = "", ca_key: str = "", **_
    ) -> None:
        if bool(ca_cert) != bool(ca_key):
            raise CommandError("Give both --ca-cert and --ca-key, or neither.")
        if ca_cert:
            try:
                cert_pem, key_pem = Path(ca_cert).read_bytes(), Path(ca_key).read_bytes()
            except OSError as exc:
                raise CommandError(f"Cannot read the CA files: {exc}") from exc
            root = services.scheme_root_import(cert_pem=cert_pem, key_pem=key_pem)
            self.stdout.write(f"root: imported {root.kid}")
        for name in purpose or PURPOSES:
            if SigningKey.objects.filter(purpose=name, status=SigningKey.Status.ACTIVE).exists():
                self.stdout.write(f"{name}: an active key exists already (use rotate).")
                continue
            (key,) = services.signing_keys_rotate(purposes=[name])
            self.stdout.write(f"{name}: created {key.kid}")

    def do_list(self, **_) -> None:
        rows = SigningKey.objects.annotate(
            jws_signed=Count("jws_certificates", distinct=True),
            pdf_signed=Count("pdf_certificates", distinct=True),
            live=Count(
                "jws_certificates",
                filter=Q(jws_certificates__status__in=Certificate.LIVE_STATUSES),
                distinct=True,
            )
            + Count(
                "pdf_certificates",
                filter=Q(pdf_certificates__status__in=Certificate.LIVE_STATUSES),
                distinct=True,
            ),
        ).order_by("purpose", "created_at")
        published = {k["kid"] for k in keys.published_jwks()["keys"]}
        self.stdout.write(f"{'kid':32} {'purpose':7} {'status':8} {'signed':>6} {'live':>5}  notes")
        for key in rows:
            signed = key.jws_signed + key.pdf_signed
            notes = []
            if key.kid in published:
                notes.append("in JWKS")
            if key.revoked_reason:
                notes.append(f"revoked: {key.revoked_reason}")
            self.stdout.write(
                f"{key.kid:32} {key.purpose:7} {key.status:8} {signed:>6} {key.live:>5}  "
                + "; ".join(notes)
            )

    def do_rotate(self, purpose: list[str] | None = None, **_) -> None:
        for key in services.signing_keys_rotate(purposes=purpose or PURPOSES):
            self.stdout.write(f"{key.purpose}: {key.kid} is now the active key")

    def do_revoke(self, kid: str, reason: str, **_) -> None:
        key, affected = services.signing_key_revoke(kid=kid, reason=reason)
        self.stdout.write(
            f"Revoked {key.kid}. {affected} certificate(s) show 'signature key revoked: re-issue "
            "pending'; run `manage.py signing_keys reissue`."
        )

    def do_reissue(self, **_) -> None:
        numbers = services.certificates_reissue_pending()
        self.stdout.write(f"Re-issued: {', '.join(numbers) or 'nothing was pending'}")
