"""One function per business action on products and cases.

Each action locks the case row, checks the rule, runs the transition, saves, writes the
audit entry in the same transaction and queues side effects with transaction.on_commit.
Pages, API views, admin actions, commands and tasks all call these; none calls the model's
transition methods directly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable

import rules
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_fsm import can_proceed

from cas import permissions
from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.mail import member_emails, notify, officer_emails
from cas.models import (
    AIPO,
    Application,
    CaseMessage,
    ClaimedAIPO,
    ConflictDeclaration,
    Organisation,
    Product,
    ProductVersion,
)

log = logging.getLogger("opencas.cases")


def product_create(*, vendor: Organisation, name: str, description: str = "", by) -> Product:
    if vendor.pk not in permissions.organisation_ids(by, Organisation.Kind.VENDOR):
        raise NotAllowed("Only members of the vendor can register its products.")
    name = name.strip()
    if not name:
        raise ActionRefused("The product needs a name.")
    if Product.objects.filter(vendor=vendor, name__iexact=name).exists():
        raise ActionRefused(f"{vendor.name} already has a product named {name!r}.")
    with transaction.atomic():
        product = Product.objects.create(vendor=vendor, name=name, description=description)
        audit_record(obj=product, action="create", by=by, reason=f"product {name}")
    return product


def product_version_create(*, product: Product, version: str, by) -> ProductVersion:
    if product.vendor_id not in permissions.organisation_ids(by, Organisation.Kind.VENDOR):
        raise NotAllowed("Only members of the vendor can add versions of its products.")
    version = version.strip()
    if not version:
        raise ActionRefused("The version needs a version number, e.g. 4.2.1.")
    if product.versions.filter(version=version).exists():
        raise ActionRefused(f"{product.name} {version} is registered already.")
    with transaction.atomic():
        product_version = ProductVersion.objects.create(product=product, version=version)
        audit_record(obj=product_version, action="create", by=by, reason=f"version {version}")
    return product_version


def application_create(
    *, product_version: ProductVersion, aipos: Iterable[AIPO], by
) -> Application:
    vendor = product_version.product.vendor
    if vendor.pk not in permissions.organisation_ids(by, Organisation.Kind.VENDOR):
        raise NotAllowed("Only members of the vendor can apply for its products.")
    with transaction.atomic():
        application = Application.objects.create(
            reference=f"tmp-{uuid.uuid4().hex[:16]}",  # replaced below, once the id is known
            vendor=vendor,
            product_version=product_version,
            created_by=by,
        )
        application.reference = f"APP-{application.created_at:%Y}-{application.pk:05d}"
        application.save(update_fields=["reference"])
        ClaimedAIPO.objects.bulk_create(
            [ClaimedAIPO(application=application, aipo=aipo) for aipo in aipos]
        )
        audit_record(obj=application, action="create", by=by, to_state=application.state)
    return application


def application_set_claims(*, application: Application, aipos: Iterable[AIPO], by) -> None:
    aipos = list(aipos)
    with transaction.atomic():
        locked = _lock(application)
        if locked.state != Application.State.DRAFT:
            raise Conflict("Claims can only change while the application is a draft.")
        if not permissions.can_edit_draft.test(by, locked):
            raise NotAllowed("Only the vendor can change its claims.")
        locked.claims.all().delete()
        ClaimedAIPO.objects.bulk_create(
            [ClaimedAIPO(application=locked, aipo=aipo) for aipo in aipos]
        )
        labels = ", ".join(str(a) for a in aipos) or "none"
        audit_record(obj=locked, action="set_claims", by=by, reason=f"claims: {labels}")


NOT_IMPARTIAL = (
    "Only a scheme officer who took no part in the assessment or review, and who did not "
    "take a decision under appeal, can decide."
)


def _required(text: str, what: str) -> str:
    if not text.strip():
        raise ActionRefused(what)
    return text.strip()


def _lock(application: Application) -> Application:
    return Application.objects.select_for_update().get(pk=application.pk)


def run_transition(
    *,
    application: Application,
    action: str,
    by,
    allowed: rules.Predicate,
    not_allowed: str,
    reason: str = "",
    check: Callable[[Application], str | None] | None = None,
    kwargs: dict | None = None,
    on_commit: Callable[[Application], None] | None = None,
) -> Application:
    """Lock the case, check who and what, transition, save, audit; atomically."""
    expected_state = application.state
    with transaction.atomic():
        locked = _lock(application)
        method = getattr(locked, action)
        if locked.state != expected_state or not can_proceed(method):
            raise Conflict(
                f"{locked.reference} is now {locked.get_state_display().lower()}: "
                f"'{action.replace('_', ' ')}' is no longer possible from that state. "
                "Reload the page to see what happened."
            )
        if permissions.declared_conflict.test(by, locked):
            raise NotAllowed(
                f"You declared a conflict of interest with {locked.vendor.name}: "
                "you cannot act on its cases."
            )
        if permissions.is_case_lab_member(by, locked) and permissions.lab_declared_conflict(
            by, locked
        ):
            raise NotAllowed(
                f"{locked.lab.name} declared a conflict of interest with {locked.vendor.name}: "
                "the lab cannot act on its cases."
            )
        if not allowed.test(by, locked):
            raise NotAllowed(not_allowed)
        if check is not None:
            # A check may return a fuller reason for the record (e.g. the dropped scope).
            reason = check(locked) or reason
        from_state = locked.state
        method(**(kwargs or {}))
        locked.state_changed_at = timezone.now()
        locked.save()
        audit_record(
            obj=locked,
            action=action,
            by=by,
            from_state=from_state,
            to_state=locked.state,
            reason=reason,
        )
        notify_next(locked, action=action, by=by, reason=reason)
        if on_commit is not None:
            transaction.on_commit(lambda: on_commit(locked))
    # The caller's instance is stale now (and its state field is protected): use the result.
    return locked


# Who must act after each transition; the mail templates are mail/case_<action>.*.txt.
def _lab_people(application: Application) -> list[str]:
    return member_emails(application.lab)


def _vendor_people(application: Application) -> list[str]:
    return member_emails(application.vendor)


def _officers(application: Application) -> list[str]:
    return officer_emails()


NEXT_TO_ACT: dict[str, list[Callable[[Application], list[str]]]] = {
    "submit": [_officers],
    "request_info": [_vendor_people],
    "resubmit": [_officers],
    "assign_lab": [_lab_people],
    "complete_assessment": [_lab_people],
    "return_for_rework": [_lab_people],
    "approve_report": [_officers],
    "grant": [_vendor_people],
    "refuse": [_vendor_people],
    "appeal": [_officers],
    "reopen_on_appeal": [_vendor_people, _officers],
    "dismiss_appeal": [_vendor_people],
    "withdraw": [_officers, _lab_people],
}


def notify_next(application: Application, *, action: str, by, reason: str) -> None:
    """Mail the people who must act next (queued on commit, sent by a Celery task)."""
    recipients = {a for who in NEXT_TO_ACT.get(action, []) for a in who(application)}
    recipients.discard(getattr(by, "email", ""))
    notify(
        template=f"case_{action}",
        to=recipients,
        context={
            "reference": application.reference,
            "product": str(application.product_version),
            "vendor": application.vendor.name,
            "lab": application.lab.name if application.lab_id else "",
            "state": application.get_state_display(),
            "by": by.get_full_name() or by.get_username(),
            "reason": reason,
            "path": reverse("application_detail", args=[application.pk]),
        },
    )


def application_submit(*, application: Application, by, note: str = "") -> Application:
    from evidence.services import missing_connectathon_evidence

    def check(locked: Application) -> None:
        claims = list(locked.claimed_aipos.with_names())
        if not claims:
            raise ActionRefused("Claim at least one actor / profile / option before submitting.")
        missing = missing_connectathon_evidence(application=locked)
        if missing:
            raise ActionRefused(
                "Submission refused: these claimed AIPOs have no passing Connectathon result "
                "within the evidence window: " + "; ".join(str(a) for a in missing) + "."
            )

    return run_transition(
        application=application,
        action="submit",
        by=by,
        allowed=permissions.can_submit,
        not_allowed="Only the vendor can submit its application.",
        reason=note,
        check=check,
        kwargs={"at": timezone.now()},
    )


def _transition_with_message(
    *,
    application: Application,
    by,
    action: str,
    kind: str,
    message: str,
    allowed: rules.Predicate,
    not_allowed: str,
) -> Application:
    """A transition that carries a message to the other side, stored with the case."""

    def post(locked: Application) -> None:
        # Inside run_transition's transaction: a refused transition leaves no message.
        CaseMessage.objects.create(
            application=locked, kind=kind, body=message, author=by, at=timezone.now()
        )

    return run_transition(
        application=application,
        action=action,
        by=by,
        allowed=allowed,
        not_allowed=not_allowed,
        reason=message,
        check=post,
    )


def application_request_info(*, application: Application, by, message: str) -> Application:
    return _transition_with_message(
        application=application,
        by=by,
        action="request_info",
        kind=CaseMessage.Kind.INFO_REQUEST,
        message=_required(message, "Say what information the vendor must provide."),
        allowed=permissions.can_request_info,
        not_allowed="Only a scheme officer can request information.",
    )


def application_resubmit(*, application: Application, by, message: str) -> Application:
    return _transition_with_message(
        application=application,
        by=by,
        action="resubmit",
        kind=CaseMessage.Kind.ANSWER,
        message=_required(message, "Answer the information request before resubmitting."),
        allowed=permissions.can_resubmit,
        not_allowed="Only the vendor can answer and resubmit its application.",
    )


def application_assign_lab(
    *, application: Application, lab: Organisation, by, note: str = ""
) -> Application:
    from labs.services import lab_refusal_reasons

    def check(locked: Application) -> None:
        reasons = lab_refusal_reasons(lab=lab, application=locked)
        if reasons:
            raise ActionRefused(f"{lab.name} cannot be assigned: " + " ".join(reasons))

    return run_transition(
        application=application,
        action="assign_lab",
        by=by,
        allowed=permissions.can_assign_lab,
        not_allowed="Only a scheme officer can assign a lab.",
        reason=note or f"assigned to {lab.name}",
        check=check,
        kwargs={"lab": lab},
    )


def application_complete_assessment(*, application: Application, by) -> Application:
    from labs.models import TestRecord

    def check(locked: Application) -> None:
        recorded = set(
            TestRecord.objects.filter(application=locked)
            .current()
            .values_list("aipo_id", flat=True)
        )
        missing = [a for a in locked.claimed_aipos.with_names() if a.pk not in recorded]
        if missing:
            raise ActionRefused(
                "The assessment is not complete: no result for "
                + "; ".join(str(a) for a in missing)
                + "."
            )

    return run_transition(
        application=application,
        action="complete_assessment",
        by=by,
        allowed=permissions.can_complete_assessment,
        not_allowed="Only the assigned lab can complete the assessment.",
        check=check,
    )


def application_approve_report(*, application: Application, by, note: str = "") -> Application:
    from labs.services import accreditation_refusal, queue_test_report_release

    def check(locked: Application) -> None:
        # The report released on approval must cite an accreditation in force for the scope.
        refusal = accreditation_refusal(application=locked, day=timezone.localdate())
        if refusal:
            raise ActionRefused(refusal)

    return run_transition(
        application=application,
        action="approve_report",
        by=by,
        allowed=permissions.can_approve_report,
        not_allowed=(
            "The technical review must be done by a second member of the assigned lab "
            "who recorded none of the results."
        ),
        reason=note,
        check=check,
        kwargs={"by": by},
        on_commit=queue_test_report_release,
    )


def application_return_for_rework(*, application: Application, by, comments: str) -> Application:
    comments = _required(comments, "Say what must be reworked: the assessors need the comments.")
    return run_transition(
        application=application,
        action="return_for_rework",
        by=by,
        allowed=permissions.can_return_for_rework,
        not_allowed=(
            "The technical review must be done by a second member of the assigned lab "
            "who recorded none of the results."
        ),
        reason=comments,
    )


def application_grant(
    *, application: Application, by, reason: str = "", reduce_scope: bool = False
) -> Application:
    """Grant the whole scope, or (reduce_scope) only the AIPOs whose current result is Pass."""
    from labs.services import aipo_outcomes

    dropped: list[AIPO] = []

    def check(locked: Application) -> None:
        passed = {a for a, outcome in aipo_outcomes(locked).items() if outcome == "pass"}
        if not passed:
            raise ActionRefused("No claimed AIPO passed the assessment: refuse instead.")
        claims = list(locked.claims.select_related("aipo__profile", "aipo__actor", "aipo__option"))
        dropped.extend(c.aipo for c in claims if c.aipo_id not in passed)
        if dropped and not reduce_scope:
            raise ActionRefused(
                "These claimed AIPOs did not pass: "
                + "; ".join(str(a) for a in dropped)
                + ". Grant with the scope reduced to the AIPOs that passed, or refuse."
            )
        for claim in claims:
            claim.granted = claim.aipo_id in passed
            claim.save(update_fields=["granted"])

    def issue(locked: Application) -> None:
        from certificates.tasks import issue_certificate

        try:
            issue_certificate.delay(locked.pk)
        except Exception:
            # The grant is committed whatever happens here; with inline tasks a signing
            # failure must not turn the officer's page into an error. The certificate stays
            # 'issuing' and `manage.py issue_pending_certificates` finishes it.
            log.exception("issuing the certificate of %s failed", locked.reference)

    def grant_reason(locked: Application) -> str | None:
        check(locked)
        if not dropped:
            return None
        note = "Scope reduced; not granted: " + "; ".join(str(a) for a in dropped) + "."
        kwargs["reason"] = f"{reason.strip()} {note}".strip()
        return kwargs["reason"]

    kwargs = {"by": by, "at": timezone.now(), "reason": reason}
    return run_transition(
        application=application,
        action="grant",
        by=by,
        allowed=permissions.can_decide,
        not_allowed=NOT_IMPARTIAL,
        reason=reason,
        check=grant_reason,
        kwargs=kwargs,
        on_commit=issue,
    )


def application_refuse(*, application: Application, by, reason: str) -> Application:
    if not reason.strip():
        raise ActionRefused("A refusal needs the reasons, for the vendor and for an appeal.")
    return run_transition(
        application=application,
        action="refuse",
        by=by,
        allowed=permissions.can_decide,
        not_allowed=NOT_IMPARTIAL,
        reason=reason,
        kwargs={"by": by, "at": timezone.now(), "reason": reason},
    )


def application_withdraw(*, application: Application, by, reason: str = "") -> Application:
    return run_transition(
        application=application,
        action="withdraw",
        by=by,
        allowed=permissions.can_withdraw,
        not_allowed="Only the vendor can withdraw its application.",
        reason=reason,
    )


def application_appeal(*, application: Application, by, reason: str) -> Application:
    reason = _required(reason, "An appeal needs the reasons why the decision should change.")

    def check(locked: Application) -> None:
        if locked.appeal_already_decided():
            raise ActionRefused(
                "This decision was already appealed, and the appeal was decided on "
                f"{timezone.localtime(locked.appeal_decided_at):%Y-%m-%d}."
            )
        deadline = locked.appeal_deadline()
        if deadline is not None and timezone.now() > deadline:
            raise ActionRefused(
                f"The appeal window closed on {timezone.localtime(deadline):%Y-%m-%d %H:%M} "
                f"({settings.APPEAL_WINDOW_DAYS} days after the decision)."
            )

    return run_transition(
        application=application,
        action="appeal",
        by=by,
        allowed=permissions.can_appeal,
        not_allowed="Only the vendor can appeal the decision on its application.",
        reason=reason,
        check=check,
        kwargs={"at": timezone.now(), "reason": reason},
    )


def application_decide_appeal(
    *, application: Application, by, uphold: bool, reason: str
) -> Application:
    """Uphold the appeal (the case goes back to a decision) or dismiss it (refusal stands)."""
    reason = _required(reason, "An appeal decision needs its reasons.")
    return run_transition(
        application=application,
        action="reopen_on_appeal" if uphold else "dismiss_appeal",
        by=by,
        allowed=permissions.can_decide_appeal,
        not_allowed=(
            "The appeal must be handled by a scheme officer who neither took the decision "
            "appealed against nor took part in the assessment."
        ),
        reason=reason,
        kwargs={"by": by, "at": timezone.now()},
    )


def conflict_declare(
    *, by, organisation: Organisation, reason: str, valid_from, valid_until=None
) -> ConflictDeclaration:
    """A person declares a conflict of interest: from then on they cannot act on its cases."""
    reason = _required(reason, "Say what the conflict of interest is.")
    if valid_until is not None and valid_until < valid_from:
        raise ActionRefused("The declaration cannot end before it starts.")
    with transaction.atomic():
        declaration = ConflictDeclaration.objects.create(
            user=by,
            organisation=organisation,
            reason=reason,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        audit_record(
            obj=declaration,
            action="declare_conflict",
            by=by,
            reason=f"with {organisation.name}: {reason}",
        )
    return declaration


def api_token_rotate(*, by) -> str:
    """Replace the user's API token; the new key is shown once, the old one stops working."""
    from rest_framework.authtoken.models import Token

    with transaction.atomic():
        Token.objects.filter(user=by).delete()
        token = Token.objects.create(user=by)
        audit_record(obj=by, action="rotate_api_token", by=by, reason="API token replaced")
    return token.key
