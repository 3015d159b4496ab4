"""Certificate status changes: one service per change, each locked, audited, mailed, public.

suspend, reinstate, withdraw, revoke, supersede are people's decisions; expire and the
withdrawal of an overdue suspension are scheduled (certificates.tasks, Celery beat).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import rules
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.mail import member_emails, notify
from certificates import permissions
from certificates.models import Certificate
from certificates.status_list import status_list_publish_on_commit
from certificates.subscriptions import subscribers_notify

MAX_REASON = 2000


def _clean_reason(reason: str, *, what: str) -> str:
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise ActionRefused(f"{what} needs a reason: it is published with the certificate.")
    if len(reason) > MAX_REASON:
        raise ActionRefused(f"The reason is longer than {MAX_REASON} characters.")
    return reason


def _certificate_url(certificate: Certificate) -> str:
    return f"{settings.SITE_URL}/certificates/{certificate.number}/"


def _tell_vendor(certificate: Certificate, *, template: str, **extra: str) -> None:
    notify(
        template=template,
        to=member_emails(certificate.application.vendor),
        context={
            "number": certificate.number,
            "product": f"{certificate.content['product_name']} "
            f"{certificate.content['product_version']}",
            "status": certificate.get_status_display(),
            "reason": certificate.status_reason,
            "url": _certificate_url(certificate),
            **extra,
        },
    )


def _change(
    *,
    certificate: Certificate,
    action: str,
    by,
    reason: str,
    allowed: rules.Predicate | None,
    not_allowed: str = "",
    check: Callable[..., None] | None = None,
    kwargs: dict | None = None,
    also_lock: Certificate | None = None,
) -> Certificate:
    """Lock, check who and what, transition, save, audit, then mail and re-sign the status
    list on commit. `allowed` is None for the scheduler, which acts as the system.

    With also_lock (a supersede's replacement), both rows are locked in primary-key order
    (so two officers crossing supersedes cannot deadlock) and `check` gets the fresh locked
    copy of the other row as its second argument."""
    expected = certificate.status
    with transaction.atomic():
        pks = sorted({certificate.pk, also_lock.pk} if also_lock else {certificate.pk})
        rows = {
            row.pk: row
            for row in Certificate.objects.select_for_update()
            .select_related("application__vendor")
            .filter(pk__in=pks)
            .order_by("pk")
        }
        locked = rows[certificate.pk]
        other = rows.get(also_lock.pk) if also_lock else None
        method = getattr(locked, action)
        if locked.status != expected or not can_proceed(method):
            raise Conflict(
                f"{locked.number} is {locked.get_status_display().lower()}: "
                f"'{action}' is not possible from that state. Reload the page to see why."
            )
        if allowed is not None and not allowed.test(by, locked):
            raise NotAllowed(not_allowed)
        if check is not None:
            check(locked, other) if also_lock else check(locked)
        if other is not None:
            kwargs = {**(kwargs or {}), "replacement": other}
        from_state = locked.status
        method(at=timezone.now(), reason=reason, **(kwargs or {}))
        locked.save()
        audit_record(
            obj=locked,
            action=action,
            by=by,
            from_state=from_state,
            to_state=locked.status,
            reason=reason,
        )
        _tell_vendor(locked, template="certificate_status_changed", action=action)
        subscribers_notify(certificate=locked, action=action)
        status_list_publish_on_commit()
    return locked


OFFICERS_ONLY = "Only a scheme officer can change the status of a certificate."


def certificate_suspend(*, certificate: Certificate, by, reason: str) -> Certificate:
    return _change(
        certificate=certificate,
        action="suspend",
        by=by,
        reason=_clean_reason(reason, what="A suspension"),
        allowed=permissions.can_suspend,
        not_allowed=OFFICERS_ONLY,
    )


def certificate_reinstate(*, certificate: Certificate, by, reason: str) -> Certificate:
    def check(locked: Certificate) -> None:
        if locked.valid_until < timezone.localdate():
            raise ActionRefused(
                f"{locked.number} ran out on {locked.valid_until:%Y-%m-%d}: it cannot be "
                "reinstated, only replaced by a new certificate."
            )

    return _change(
        certificate=certificate,
        action="reinstate",
        by=by,
        reason=_clean_reason(reason, what="A reinstatement"),
        allowed=permissions.can_reinstate,
        not_allowed=OFFICERS_ONLY,
        check=check,
    )


def certificate_withdraw(*, certificate: Certificate, by, reason: str) -> Certificate:
    """Withdrawal on the vendor's request (or by an officer, e.g. for the vendor)."""
    return _change(
        certificate=certificate,
        action="withdraw",
        by=by,
        reason=_clean_reason(reason, what="A withdrawal"),
        allowed=permissions.can_withdraw,
        not_allowed="Only the certificate's vendor or a scheme officer can withdraw it.",
    )


def certificate_revoke(*, certificate: Certificate, by, reason: str) -> Certificate:
    return _change(
        certificate=certificate,
        action="revoke",
        by=by,
        reason=_clean_reason(reason, what="A revocation"),
        allowed=permissions.can_revoke,
        not_allowed=OFFICERS_ONLY,
    )


def certificate_supersede(
    *, certificate: Certificate, replacement_number: str, by, reason: str
) -> Certificate:
    """A newer certificate replaces this one; both pages say so."""
    reason = _clean_reason(reason, what="A replacement")
    number = (replacement_number or "").strip().upper()
    replacement = Certificate.objects.public().filter(number=number).first()
    if replacement is None:
        raise ActionRefused(f"No issued certificate {number or '(none given)'} to replace it.")

    def check(locked: Certificate, replacement: Certificate) -> None:
        # `replacement` is the row as locked now, not as read before the transaction.
        if replacement.pk == locked.pk:
            raise ActionRefused("A certificate cannot replace itself.")
        if replacement.status != Certificate.Status.ACTIVE:
            raise ActionRefused(
                f"{replacement.number} is {replacement.get_status_display().lower()}: only an "
                "active certificate can replace another."
            )
        if replacement.application.vendor_id != locked.application.vendor_id:
            raise ActionRefused(
                f"{replacement.number} belongs to another vendor: it cannot replace "
                f"{locked.number}."
            )

    return _change(
        certificate=certificate,
        action="supersede",
        by=by,
        # Only the officer's reason: the pages and the status list name the replacement.
        reason=reason,
        allowed=permissions.can_supersede,
        not_allowed=OFFICERS_ONLY,
        check=check,
        also_lock=replacement,
    )


# --------------------------------------------------------------------------- scheduled


def certificates_expire(*, today: dt.date | None = None) -> list[str]:
    """Active or suspended certificates past their validity become expired."""
    today = today or timezone.localdate()
    done = []
    due = Certificate.objects.live().filter(valid_until__lt=today).order_by("number")
    for certificate in due:
        try:
            _change(
                certificate=certificate,
                action="expire",
                by=None,
                reason=f"validity ended on {certificate.valid_until:%Y-%m-%d}",
                allowed=None,
            )
        except Conflict:
            continue  # changed by someone else meanwhile; the next run looks again
        done.append(certificate.number)
    return done


def suspension_deadline(certificate: Certificate) -> dt.datetime | None:
    if certificate.status != Certificate.Status.SUSPENDED or not certificate.status_changed_at:
        return None
    return certificate.status_changed_at + dt.timedelta(
        days=settings.CERTIFICATE_SUSPENSION_MAX_DAYS
    )


def suspensions_resolve_overdue() -> dict[str, list[str]]:
    """Warn the vendor ahead of the deadline once; withdraw a suspension past it.

    Never withdraw without the warning: a suspension found past its deadline unwarned (beat
    was down, or the settings shortened the period) is warned now, and withdrawn no earlier
    than the warning period after that mail."""
    now = timezone.now()
    warn_ahead = dt.timedelta(days=settings.CERTIFICATE_SUSPENSION_WARNING_DAYS)
    warned, withdrawn = [], []
    suspended = Certificate.objects.filter(status=Certificate.Status.SUSPENDED).order_by("number")
    for certificate in suspended:
        deadline = suspension_deadline(certificate)
        if deadline is None:
            continue
        warned_at = certificate.withdrawal_warned_at
        if warned_at is not None:
            if now < max(deadline, warned_at + warn_ahead):
                continue
            try:
                _change(
                    certificate=certificate,
                    action="withdraw",
                    by=None,
                    reason=(
                        f"suspension not resolved within {settings.CERTIFICATE_SUSPENSION_MAX_DAYS}"
                        f" days (suspended on {certificate.status_changed_at:%Y-%m-%d}: "
                        f"{certificate.status_reason})"
                    ),
                    allowed=None,
                )
            except Conflict:
                continue
            withdrawn.append(certificate.number)
        elif now >= deadline - warn_ahead:
            with transaction.atomic():
                locked = Certificate.objects.select_for_update().get(pk=certificate.pk)
                if locked.status != Certificate.Status.SUSPENDED or locked.withdrawal_warned_at:
                    continue
                locked.withdrawal_warned_at = now
                locked.save(update_fields=["withdrawal_warned_at"])
                _tell_vendor(
                    locked,
                    template="certificate_withdrawal_warning",
                    deadline=f"{max(deadline, now + warn_ahead):%Y-%m-%d}",
                )
            warned.append(certificate.number)
    return {"warned": warned, "withdrawn": withdrawn}
