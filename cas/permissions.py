"""Who may do what. Predicates are plain functions reused by services, views and templates."""

from __future__ import annotations

import logging

import rules
from django.http import Http404

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


can_edit_draft = is_case_vendor
can_submit = is_case_vendor
can_withdraw = is_case_vendor
can_assign_lab = is_officer
can_record_results = is_case_lab_member
can_complete_assessment = is_case_lab_member
# The second lab person: a member of the assigned lab who recorded none of the results.
can_approve_report = is_case_lab_member & ~took_part_in_assessment
can_decide = is_officer & ~took_part_in_assessment & ~is_case_lab_member

rules.add_perm("cas.submit_application", can_submit)
rules.add_perm("cas.withdraw_application", can_withdraw)
rules.add_perm("cas.assign_lab", can_assign_lab)
rules.add_perm("cas.record_results", can_record_results)
rules.add_perm("cas.complete_assessment", can_complete_assessment)
rules.add_perm("cas.approve_report", can_approve_report)
rules.add_perm("cas.decide_application", can_decide)


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
