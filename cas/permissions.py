"""Who may do what. Predicates are plain functions reused by services, views and templates."""

from __future__ import annotations

import logging

import rules
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from cas.models import Application, Membership, Organisation

log = logging.getLogger("opencas.access")


def organisation_ids(user, kind: str | None = None) -> list[int]:
    if not user.is_authenticated:
        return []
    cache = user.__dict__.setdefault("_opencas_orgs", {})
    if kind not in cache:
        memberships = Membership.objects.filter(user=user)
        if kind:
            memberships = memberships.filter(organisation__kind=kind)
        cache[kind] = list(memberships.values_list("organisation_id", flat=True))
    return cache[kind]


@rules.predicate
def is_officer(user) -> bool:
    return bool(organisation_ids(user, Organisation.Kind.SCHEME))


@rules.predicate
def is_vendor_member(user) -> bool:
    return bool(organisation_ids(user, Organisation.Kind.VENDOR))


@rules.predicate
def is_lab_member(user) -> bool:
    return bool(organisation_ids(user, Organisation.Kind.LAB))


@rules.predicate
def is_case_vendor(user, application: Application) -> bool:
    return application.vendor_id in organisation_ids(user, Organisation.Kind.VENDOR)


@rules.predicate
def is_case_lab_member(user, application: Application) -> bool:
    return application.lab_id is not None and application.lab_id in organisation_ids(
        user, Organisation.Kind.LAB
    )


@rules.predicate
def took_part_in_assessment(user, application: Application) -> bool:
    from labs.models import TestRecord

    if application.approved_by_id == user.pk:
        return True
    return TestRecord.objects.filter(application=application, recorded_by=user).exists()


@rules.predicate
def declared_conflict(user, application: Application) -> bool:
    """The user declared a conflict of interest with the applicant (or its group), now."""
    from cas.models import ConflictDeclaration

    if not user.is_authenticated:
        return False
    today = timezone.localdate()
    vendor = application.vendor
    return (
        ConflictDeclaration.objects.filter(
            user=user,
            organisation_id__in={vendor.pk, vendor.group_root().pk},
            valid_from__lte=today,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .exists()
    )


@rules.predicate
def lab_declared_conflict(user, application: Application) -> bool:
    """The case's lab declared a conflict of interest with the applicant (or its group), now."""
    from labs.models import ConflictOfInterest

    if application.lab_id is None:
        return False
    vendor = application.vendor
    return (
        ConflictOfInterest.objects.active_on(timezone.localdate())
        .filter(lab_id=application.lab_id, organisation_id__in={vendor.pk, vendor.group_root().pk})
        .exists()
    )


@rules.predicate
def decided_the_case(user, application: Application) -> bool:
    return application.decided_by_id == user.pk


@rules.predicate
def decided_the_appealed_decision(user, application: Application) -> bool:
    return application.appealed_decision_by_id == user.pk


can_edit_draft = is_case_vendor
can_submit = is_case_vendor
can_withdraw = is_case_vendor
can_assign_lab = is_officer
can_record_results = is_case_lab_member
# A lab-level conflict declared after assignment stops the lab's work on the case.
can_complete_assessment = is_case_lab_member & ~lab_declared_conflict
# The second lab person: a member of the assigned lab who recorded none of the results.
can_approve_report = is_case_lab_member & ~took_part_in_assessment & ~lab_declared_conflict
can_return_for_rework = can_approve_report
can_request_info = is_officer
can_resubmit = is_case_vendor
can_appeal = is_case_vendor
# Impartiality: nobody who assessed or reviewed decides; whoever took the decision under
# appeal neither handles the appeal nor decides the reopened case.
impartial_officer = is_officer & ~took_part_in_assessment & ~is_case_lab_member
can_decide = impartial_officer & ~decided_the_appealed_decision
can_decide_appeal = impartial_officer & ~decided_the_case

rules.add_perm("cas.submit_application", can_submit)
rules.add_perm("cas.withdraw_application", can_withdraw)
rules.add_perm("cas.assign_lab", can_assign_lab)
rules.add_perm("cas.record_results", can_record_results)
rules.add_perm("cas.complete_assessment", can_complete_assessment)
rules.add_perm("cas.approve_report", can_approve_report)
rules.add_perm("cas.decide_application", can_decide)
rules.add_perm("cas.return_for_rework", can_return_for_rework)
rules.add_perm("cas.request_info", can_request_info)
rules.add_perm("cas.resubmit", can_resubmit)
rules.add_perm("cas.appeal", can_appeal)
rules.add_perm("cas.decide_appeal", can_decide_appeal)


def get_application_for(user, pk: int) -> Application:
    """The one lookup for a case: missing and foreign both answer 404, and foreign is logged."""
    try:
        return (
            Application.objects.visible_to(user)
            .select_related("vendor", "lab", "product_version__product")
            .get(pk=pk)
        )
    except Application.DoesNotExist:
        if Application.objects.filter(pk=pk).exists():
            log.warning("user %s was refused foreign application %s", user.pk, pk)
        raise Http404("No such application") from None
