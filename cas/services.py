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
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from cas import permissions
from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.models import AIPO, Application, ClaimedAIPO, Organisation, Product, ProductVersion

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
    check: Callable[[Application], None] | None = None,
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
        if not allowed.test(by, locked):
            raise NotAllowed(not_allowed)
        if check is not None:
            check(locked)
        from_state = locked.state
        method(**(kwargs or {}))
        locked.save()
        audit_record(
            obj=locked,
            action=action,
            by=by,
            from_state=from_state,
            to_state=locked.state,
            reason=reason,
        )
        if on_commit is not None:
            transaction.on_commit(lambda: on_commit(locked))
    # The caller's instance is stale now (and its state field is protected): use the result.
    return locked


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
        kwargs={"by": by},
    )


def application_grant(*, application: Application, by, reason: str = "") -> Application:
    from labs.models import TestRecord

    def check(locked: Application) -> None:
        passed = set(
            TestRecord.objects.filter(application=locked, result=TestRecord.Result.PASS)
            .current()
            .values_list("aipo_id", flat=True)
        )
        if not passed:
            raise ActionRefused("No claimed AIPO passed the assessment: refuse instead.")
        for claim in locked.claims.all():
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

    return run_transition(
        application=application,
        action="grant",
        by=by,
        allowed=permissions.can_decide,
        not_allowed=(
            "Only a scheme officer who took no part in the assessment or review can decide."
        ),
        reason=reason,
        check=check,
        kwargs={"by": by, "at": timezone.now(), "reason": reason},
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
        not_allowed=(
            "Only a scheme officer who took no part in the assessment or review can decide."
        ),
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
