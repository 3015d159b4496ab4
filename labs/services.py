from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cas import permissions
from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.models import AIPO, Application, Organisation
from labs.models import Accreditation, ConflictOfInterest, TestRecord


def lab_refusal_reasons(*, lab: Organisation, application: Application) -> list[str]:
    """Why this lab may not assess this case; empty when it may (ISO/IEC 17065 rules)."""
    if lab.kind != Organisation.Kind.LAB:
        return [f"{lab.name} is not a test laboratory."]
    today = timezone.localdate()
    reasons = []
    accreditations = list(
        Accreditation.objects.filter(lab=lab).prefetch_related("scope_domains", "scope_profiles")
    )
    valid = [
        a
        for a in accreditations
        if a.status == Accreditation.Status.ACTIVE and a.valid_from <= today <= a.valid_until
    ]
    if not accreditations:
        reasons.append("it holds no accreditation.")
    elif not valid:
        latest = accreditations[0]
        if latest.status != Accreditation.Status.ACTIVE:
            reasons.append(f"its accreditation {latest} is {latest.get_status_display().lower()}.")
        else:
            reasons.append(f"its accreditation {latest} expired on {latest.valid_until:%Y-%m-%d}.")
    else:
        profiles = {a.profile for a in application.claimed_aipos.with_names()}
        uncovered = sorted(p.keyword for p in profiles if not any(a.covers(p) for a in valid))
        if uncovered:
            reasons.append("its accreditation scope does not cover " + ", ".join(uncovered) + ".")
    vendor = application.vendor
    if lab.group_root().pk == vendor.group_root().pk:
        reasons.append(f"it belongs to the applicant's own organisation ({vendor.name}).")
    if ConflictOfInterest.objects.filter(lab=lab, organisation=vendor).exists():
        reasons.append(f"it declared a conflict of interest with {vendor.name}.")
    return reasons


def test_record_create(
    *,
    application: Application,
    aipo: AIPO,
    result: str,
    by,
    test_case: str = "",
    tool: str = "",
    comment: str = "",
    amendment_reason: str = "",
) -> TestRecord:
    """Record a result, or amend the current one: a new version, never an update."""
    if result not in TestRecord.Result.values:
        raise ActionRefused(f"{result!r} is not a result; use one of {TestRecord.Result.values}.")
    with transaction.atomic():
        locked = Application.objects.select_for_update().get(pk=application.pk)
        if not permissions.can_record_results.test(by, locked):
            raise NotAllowed("Only members of the assigned lab can record results.")
        if locked.state != Application.State.IN_ASSESSMENT:
            raise Conflict(
                f"{locked.reference} is {locked.get_state_display().lower()}: "
                "results can only be recorded during the assessment."
            )
        if not locked.claims.filter(aipo=aipo).exists():
            raise ActionRefused(f"{aipo} is not claimed in {locked.reference}.")
        previous = TestRecord.objects.filter(application=locked, aipo=aipo).current().first()
        if previous is not None and not amendment_reason.strip():
            raise ActionRefused(
                f"{aipo} already has a result ({previous.get_result_display()}): "
                "an amendment needs a reason."
            )
        record = TestRecord.objects.create(
            application=locked,
            aipo=aipo,
            result=result,
            test_case=test_case,
            tool=tool,
            comment=comment,
            recorded_by=by,
            version=previous.version + 1 if previous else 1,
            replaces=previous,
            amendment_reason=amendment_reason,
        )
        audit_record(
            obj=locked,
            action="amend_result" if previous else "record_result",
            by=by,
            from_state=locked.state,
            to_state=locked.state,
            reason=f"{aipo}: {record.get_result_display()} {amendment_reason}".strip(),
        )
    return record
