"""The lab's actions: accreditation and its history, expiry warnings and case flags,
recording results (one or a whole grid), and releasing the lab's test report."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from cas import permissions
from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.mail import member_emails, notify, officer_emails
from cas.models import AIPO, Application, AuditEntry, Domain, Membership, Organisation, Profile
from labs.models import (
    Accreditation,
    AccreditationChange,
    AccreditationWarning,
    AssessorCompetence,
    CaseFlag,
    ConflictOfInterest,
    TestRecord,
    TestReport,
)
from labs.reports import ReportContent, ResultLine, render_report_pdf

log = logging.getLogger("opencas.labs")

WARNING_DAYS = (60, 30, 7)
ASSIGNED_STATES = (Application.State.IN_ASSESSMENT, Application.State.IN_REVIEW)


def assigned_cases(*, lab_ids: Iterable[int]):
    """The cases assigned to these labs and still theirs to work on, each with how many AIPOs
    are claimed and how many have a current result: the lab's "my cases" page and API."""
    return (
        Application.objects.filter(lab_id__in=lab_ids, state__in=ASSIGNED_STATES)
        .select_related("vendor", "lab", "product_version__product")
        .annotate(
            claimed=Count("claims", distinct=True),
            recorded=Count(
                "test_records__aipo",
                filter=Q(test_records__replaced_by__isnull=True),
                distinct=True,
            ),
        )
        .order_by("state_changed_at", "pk")
    )


def _name(user) -> str:
    if user is None:
        return "system"
    return user.get_full_name() or user.get_username()


# --- Accreditation ---


@dataclass(frozen=True)
class AccreditationProblem:
    accreditation: Accreditation
    kind: str  # a CaseFlag.Kind
    text: str


def accreditation_problem(
    *, lab: Organisation, day: dt.date | None = None, profiles: Iterable[Profile] | None = None
):
    """Why the lab holds no valid accreditation on `day`; None when it holds one.

    With `profiles`, only the accreditations covering all of them count (a case's scope):
    another accreditation of the lab with another scope does not save the case.
    Returns an AccreditationProblem, or None (also when it never held one: see callers).
    """
    day = day or timezone.localdate()
    accreditations = list(
        Accreditation.objects.filter(lab=lab)
        .prefetch_related("scope_domains", "scope_profiles")
        .order_by("-valid_until", "-pk")
    )
    if not accreditations:
        return None
    relevant = accreditations
    if profiles is not None:
        profiles = list(profiles)
        relevant = [a for a in accreditations if all(a.covers(p) for p in profiles)]
        if not relevant:
            keywords = ", ".join(sorted(p.keyword for p in profiles))
            return AccreditationProblem(
                accreditations[0],
                CaseFlag.Kind.OUT_OF_SCOPE,
                f"none of its accreditations covers {keywords}.",
            )
    if any(a.is_valid_on(day) for a in relevant):
        return None
    latest = relevant[0]
    if latest.status != Accreditation.Status.ACTIVE:
        return AccreditationProblem(
            latest,
            latest.status,
            f"its accreditation {latest} is {latest.get_status_display().lower()}.",
        )
    if latest.valid_from > day:
        return AccreditationProblem(
            latest,
            CaseFlag.Kind.EXPIRED,
            f"its accreditation {latest} starts on {latest.valid_from:%Y-%m-%d}.",
        )
    return AccreditationProblem(
        latest,
        CaseFlag.Kind.EXPIRED,
        f"its accreditation {latest} expired on {latest.valid_until:%Y-%m-%d}.",
    )


def accreditation_in_force(
    *, lab: Organisation, day: dt.date, profiles: Iterable[Profile]
) -> Accreditation | None:
    """The lab's accreditation that is active, valid on `day` and covers every profile."""
    profiles = list(profiles)
    candidates = (
        Accreditation.objects.filter(
            lab=lab,
            status=Accreditation.Status.ACTIVE,
            valid_from__lte=day,
            valid_until__gte=day,
        )
        .prefetch_related("scope_domains", "scope_profiles")
        .order_by("-valid_until", "-pk")
    )
    for accreditation in candidates:
        if all(accreditation.covers(profile) for profile in profiles):
            return accreditation
    return None


def claimed_profiles(application: Application) -> list[Profile]:
    return sorted(
        {claim.aipo.profile for claim in application.claims.select_related("aipo__profile")},
        key=lambda p: p.keyword,
    )


def accreditation_refusal(*, application: Application, day: dt.date) -> str | None:
    """Why the case's lab cannot report on it on `day`; None when an accreditation covers it."""
    lab = application.lab
    profiles = claimed_profiles(application)
    if lab is None or accreditation_in_force(lab=lab, day=day, profiles=profiles) is not None:
        return None
    return (
        f"{lab.name} holds no accreditation in force on {day:%Y-%m-%d} (active, valid and "
        f"covering {', '.join(p.keyword for p in profiles)}): it cannot report on "
        f"{application.reference}."
    )


def lab_conflict(*, lab: Organisation, vendor: Organisation) -> ConflictOfInterest | None:
    """The lab's declared conflict with the vendor (or its group) that is in force today."""
    return (
        ConflictOfInterest.objects.active_on(timezone.localdate())
        .filter(lab=lab, organisation_id__in={vendor.pk, vendor.group_root().pk})
        .first()
    )


def lab_refusal_reasons(*, lab: Organisation, application: Application) -> list[str]:
    """Why this lab may not assess this case; empty when it may (ISO/IEC 17065 rules)."""
    if lab.kind != Organisation.Kind.LAB:
        return [f"{lab.name} is not a test laboratory."]
    today = timezone.localdate()
    reasons = []
    accreditations = list(
        Accreditation.objects.filter(lab=lab).prefetch_related("scope_domains", "scope_profiles")
    )
    valid = [a for a in accreditations if a.is_valid_on(today)]
    if not accreditations:
        reasons.append("it holds no accreditation.")
    elif not valid:
        problem = accreditation_problem(lab=lab, day=today)
        reasons.append(problem.text if problem else "it holds no valid accreditation.")
    else:
        profiles = {a.profile for a in application.claimed_aipos.with_names()}
        uncovered = sorted(p.keyword for p in profiles if not any(a.covers(p) for a in valid))
        if uncovered:
            reasons.append("its accreditation scope does not cover " + ", ".join(uncovered) + ".")
        elif accreditation_in_force(lab=lab, day=today, profiles=profiles) is None:
            # The report cites one accreditation (checked again at approval), so one must
            # cover the whole claim, not several between them.
            reasons.append(
                "no single accreditation of it covers all of "
                + ", ".join(sorted(p.keyword for p in profiles))
                + ": the report must cite one that does."
            )
    vendor = application.vendor
    if lab.group_root().pk == vendor.group_root().pk:
        reasons.append(f"it belongs to the applicant's own organisation ({vendor.name}).")
    if lab_conflict(lab=lab, vendor=vendor) is not None:
        reasons.append(f"it declared a conflict of interest with {vendor.name}.")
    nobody, conflicted = _domains_without_a_free_assessor(lab=lab, application=application)
    if nobody:
        reasons.append(
            f"nobody at {lab.name} is recorded as competent in {', '.join(nobody)}: "
            "no one could record its results."
        )
    if conflicted:
        reasons.append(
            f"every assessor competent in {', '.join(conflicted)} declared a conflict of "
            f"interest with {vendor.name}."
        )
    return reasons


def _domains_without_a_free_assessor(
    *, lab: Organisation, application: Application
) -> tuple[list[str], list[str]]:
    """Claimed domains nobody at the lab is competent in, and those whose competent assessors
    all declared a conflict with the vendor (keywords, sorted)."""
    from cas.models import ConflictDeclaration

    vendor = application.vendor
    today = timezone.localdate()
    conflicted_users = set(
        ConflictDeclaration.objects.filter(
            organisation_id__in={vendor.pk, vendor.group_root().pk}, valid_from__lte=today
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .values_list("user_id", flat=True)
    )
    domains = {a.profile.domain for a in application.claimed_aipos.with_names()}
    competent_by_domain: dict[int, set[int]] = {}
    for domain_id, user_id in AssessorCompetence.objects.filter(
        lab=lab, domain__in=domains
    ).values_list("domain_id", "user_id"):
        competent_by_domain.setdefault(domain_id, set()).add(user_id)
    nobody, blocked = [], []
    for domain in sorted(domains, key=lambda d: d.keyword):
        competent = competent_by_domain.get(domain.pk, set())
        if not competent:
            nobody.append(domain.keyword)
        elif competent <= conflicted_users:
            blocked.append(domain.keyword)
    return nobody, blocked


def _field_values(instance) -> dict[str, str]:
    return {
        f.name: str(getattr(instance, f.attname) or "")
        for f in instance._meta.concrete_fields
        if not f.primary_key and not getattr(f, "auto_now_add", False)
    }


def lab_declaration_save(
    *, declaration: ConflictOfInterest | AssessorCompetence, by
) -> ConflictOfInterest | AssessorCompetence:
    """Record or change a lab-level conflict of interest or an assessor's competence, with
    its audit entry. Neither is ever deleted: a conflict ends by setting valid_until."""
    model = type(declaration)
    with transaction.atomic():
        before: dict[str, str] = {}
        if declaration.pk:
            before = _field_values(model.objects.select_for_update().get(pk=declaration.pk))
        declaration.save()
        after = _field_values(declaration)
        changed = ", ".join(
            f"{k}: {before.get(k, '')} -> {v}" for k, v in after.items() if before.get(k) != v
        )
        if before and not changed:
            return declaration
        audit_record(
            obj=declaration,
            action="update" if before else "create",
            by=by,
            reason=f"{declaration} ({changed})",
        )
    return declaration


def can_manage_accreditations(user) -> bool:
    return user.is_authenticated and (user.is_superuser or permissions.is_officer(user))


def accreditation_save(
    *,
    accreditation: Accreditation,
    by,
    reason: str = "",
    scope_domains: Iterable[Domain] | None = None,
    scope_profiles: Iterable[Profile] | None = None,
) -> Accreditation:
    """Create or change an accreditation, keeping every field before and after.

    The admin and the officers' page both call this; nothing else writes accreditations.
    """
    if not can_manage_accreditations(by):
        raise NotAllowed("Only a scheme officer records accreditations.")
    if (
        accreditation.valid_until
        and accreditation.valid_from
        and (accreditation.valid_until < accreditation.valid_from)
    ):
        raise ActionRefused("An accreditation cannot end before it starts.")
    with transaction.atomic():
        before: dict = {}
        if accreditation.pk:
            stored = Accreditation.objects.select_for_update().get(pk=accreditation.pk)
            before = stored.snapshot()
        accreditation.save()
        if scope_domains is not None:
            accreditation.scope_domains.set(list(scope_domains))
        if scope_profiles is not None:
            accreditation.scope_profiles.set(list(scope_profiles))
        after = Accreditation.objects.get(pk=accreditation.pk).snapshot()
        if before == after:
            return accreditation
        AccreditationChange.objects.create(
            accreditation=accreditation,
            changed_by=by if by is not None and by.is_authenticated else None,
            reason=reason,
            before=before,
            after=after,
        )
        changed = ", ".join(
            f"{k}: {before.get(k, '')} -> {after[k]}" for k in after if before.get(k) != after[k]
        )
        audit_record(
            obj=accreditation,
            action="update" if before else "create",
            by=by,
            from_state=before.get("status", ""),
            to_state=after["status"],
            reason=f"{reason} ({changed})".strip() if reason else changed,
        )
        flag_cases_of_lab(lab=accreditation.lab)
    return accreditation


def accreditation_set_status(
    *, accreditation: Accreditation, status: str, by, reason: str
) -> Accreditation:
    if status not in Accreditation.Status.values:
        raise ActionRefused(
            f"{status!r} is not a status; use one of {Accreditation.Status.values}."
        )
    if not reason.strip():
        raise ActionRefused("Say why the accreditation's status changes.")
    accreditation = Accreditation.objects.get(pk=accreditation.pk)
    accreditation.status = status
    return accreditation_save(accreditation=accreditation, by=by, reason=reason.strip())


def flag_cases_of_lab(*, lab: Organisation, day: dt.date | None = None) -> list[CaseFlag]:
    """Flag each assigned case of the lab to the officers when no valid accreditation of the
    lab covers that case's claimed profiles.

    Idempotent: an unacknowledged flag for the same cause is reused; once acknowledged, a new
    occurrence (e.g. a second suspension) raises a new flag. Only new flags are mailed.
    """
    day = day or timezone.localdate()
    new = []
    with transaction.atomic():
        cases = Application.objects.filter(lab=lab, state__in=ASSIGNED_STATES).select_related(
            "vendor", "product_version__product"
        )
        for application in cases:
            problem = accreditation_problem(
                lab=lab, day=day, profiles=claimed_profiles(application)
            )
            if problem is None:
                continue
            open_flag = CaseFlag.objects.filter(
                application=application,
                accreditation=problem.accreditation,
                kind=problem.kind,
                acknowledged_at__isnull=True,
            ).first()
            if open_flag is not None:
                continue
            try:
                with transaction.atomic():
                    flag = CaseFlag.objects.create(
                        application=application,
                        accreditation=problem.accreditation,
                        kind=problem.kind,
                        reason=f"{lab.name}: {problem.text}",
                    )
            except IntegrityError:
                continue  # raised concurrently by another run: that one mails it
            new.append(flag)
            notify(
                template="accreditation_case_flagged",
                to=officer_emails(),
                context={
                    "reference": application.reference,
                    "product": str(application.product_version),
                    "vendor": application.vendor.name,
                    "lab": lab.name,
                    "state": application.get_state_display(),
                    "reason": flag.reason,
                    "path": reverse("application_detail", args=[application.pk]),
                },
            )
    return new


def flag_acknowledge(*, flag: CaseFlag, by, note: str) -> CaseFlag:
    if not permissions.is_officer(by):
        raise NotAllowed("Only a scheme officer can acknowledge a flagged case.")
    note = note.strip()
    if not note:
        raise ActionRefused("Say what was decided about the flagged case.")
    with transaction.atomic():
        flag = CaseFlag.objects.select_for_update().get(pk=flag.pk)
        if flag.acknowledged_at is not None:
            raise Conflict(f"The flag on {flag.application} was acknowledged already.")
        flag.acknowledged_by = by
        flag.acknowledged_at = timezone.now()
        flag.acknowledgement = note
        flag.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement"])
        audit_record(obj=flag.application, action="acknowledge_lab_flag", by=by, reason=note)
    return flag


def accreditations_check(*, today: dt.date | None = None) -> dict:
    """The daily job: warn 60, 30 and 7 days before expiry (once each), flag lapsed labs."""
    today = today or timezone.localdate()
    warned = []
    for accreditation in Accreditation.objects.filter(
        status=Accreditation.Status.ACTIVE, valid_until__gte=today
    ).select_related("lab"):
        days_left = (accreditation.valid_until - today).days
        crossed = [d for d in WARNING_DAYS if days_left <= d]
        if not crossed:
            continue
        # Only the nearest threshold: a lab first seen 5 days out gets one warning, not three.
        threshold = min(crossed)
        if AccreditationWarning.objects.filter(
            accreditation=accreditation,
            valid_until=accreditation.valid_until,
            days_before__lte=threshold,
        ).exists():
            continue
        if accreditation_warn(accreditation=accreditation, days_before=threshold, today=today):
            warned.append(accreditation)
    flagged = []
    for lab in Organisation.objects.filter(
        kind=Organisation.Kind.LAB, accreditations__isnull=False
    ).distinct():
        flagged += flag_cases_of_lab(lab=lab, day=today)
    return {"warned": len(warned), "flagged": len(flagged)}


def accreditation_warn(
    *, accreditation: Accreditation, days_before: int, today: dt.date
) -> AccreditationWarning | None:
    """Send one expiry warning; None if it was sent already (by a concurrent run too)."""
    recipients = sorted(
        set(
            member_emails(
                accreditation.lab, [Membership.Role.LAB_MANAGER, Membership.Role.ASSESSOR]
            )
        )
        | set(officer_emails())
    )
    try:
        with transaction.atomic():
            warning = AccreditationWarning.objects.create(
                accreditation=accreditation,
                days_before=days_before,
                valid_until=accreditation.valid_until,
                recipients=", ".join(recipients),
            )
            notify(
                template="accreditation_expiry_warning",
                to=recipients,
                context={
                    "lab": accreditation.lab.name,
                    "accreditation": str(accreditation),
                    "authorisation_number": accreditation.authorisation_number,
                    "valid_until": accreditation.valid_until.isoformat(),
                    "days_left": str((accreditation.valid_until - today).days),
                    "threshold": str(days_before),
                },
            )
    except IntegrityError:
        return None
    return warning


# --- Recording results ---


def competence_refusal(*, user, lab: Organisation, aipo: AIPO) -> str | None:
    domain = aipo.profile.domain
    if AssessorCompetence.objects.filter(lab=lab, user=user, domain=domain).exists():
        return None
    return (
        f"{_name(user)} has no recorded competence in the {domain.keyword} domain "
        f"({domain.name}) at {lab.name}: results for {aipo} must be recorded by an assessor "
        f"competent in {domain.keyword}."
    )


def conflict_refusal(*, user, application: Application) -> str | None:
    vendor = application.vendor
    if permissions.declared_conflict.test(user, application):
        return (
            f"{_name(user)} declared a conflict of interest with {vendor.name}: "
            "they cannot record results on its cases."
        )
    if application.lab_id and lab_conflict(lab=application.lab, vendor=vendor) is not None:
        return (
            f"{application.lab.name} declared a conflict of interest with {vendor.name}: "
            "no results can be recorded on its cases."
        )
    return None


def split_evidence(text: str) -> list[str]:
    """Evidence references, one a line or separated by commas (a reference may hold spaces)."""
    return [part.strip() for part in re.split(r"[\r\n,]+", text or "") if part.strip()]


def _clean(text: str) -> str:
    return (text or "").strip()


def test_record_create(
    *,
    application: Application,
    aipo: AIPO,
    result: str,
    by,
    test_case: str = "",
    test_case_name: str = "",
    tool: str = "",
    tool_version: str = "",
    comment: str = "",
    evidence_links: str = "",
    amendment_reason: str = "",
    amends: TestRecord | None = None,
) -> TestRecord:
    """Record a result, or amend a current one: a new version, never an update.

    Records are kept per AIPO and test case id. Recording the same test case again is an
    amendment of it; `amends` names the record replaced explicitly (e.g. to fix its id).
    """
    if result not in TestRecord.Result.values:
        raise ActionRefused(f"{result!r} is not a result; use one of {TestRecord.Result.values}.")
    test_case = _clean(test_case)
    with transaction.atomic():
        locked = (
            Application.objects.select_for_update(of=("self",))
            .select_related("vendor", "lab")
            .get(pk=application.pk)
        )
        if not permissions.can_record_results.test(by, locked):
            raise NotAllowed("Only members of the assigned lab can record results.")
        if locked.state != Application.State.IN_ASSESSMENT:
            raise Conflict(
                f"{locked.reference} is {locked.get_state_display().lower()}: "
                "results can only be recorded during the assessment."
            )
        if not locked.claims.filter(aipo=aipo).exists():
            raise ActionRefused(f"{aipo} is not claimed in {locked.reference}.")
        refusal = conflict_refusal(user=by, application=locked)
        if refusal:
            raise NotAllowed(refusal)
        refusal = competence_refusal(user=by, lab=locked.lab, aipo=aipo)
        if refusal:
            raise NotAllowed(refusal)
        current = TestRecord.objects.filter(application=locked, aipo=aipo).current()
        if amends is not None:
            previous = current.filter(pk=amends.pk).first()
            if previous is None:
                raise Conflict(
                    f"Version {amends.version} of that record of {aipo} was amended already: "
                    "reload to see the current version."
                )
        else:
            previous = current.filter(test_case=test_case).first()
        if previous is not None and not amendment_reason.strip():
            what = f" for test case {previous.test_case}" if previous.test_case else ""
            raise ActionRefused(
                f"{aipo} already has a result{what} ({previous.get_result_display()}): "
                "an amendment needs a reason."
            )
        record = TestRecord.objects.create(
            application=locked,
            aipo=aipo,
            result=result,
            test_case=test_case,
            test_case_name=_clean(test_case_name),
            tool=_clean(tool),
            tool_version=_clean(tool_version),
            comment=_clean(comment),
            evidence_links="\n".join(split_evidence(evidence_links)),
            recorded_by=by,
            version=previous.version + 1 if previous else 1,
            replaces=previous,
            amendment_reason=amendment_reason.strip() if previous else "",
        )
        audit_record(
            obj=locked,
            action="amend_result" if previous else "record_result",
            by=by,
            from_state=locked.state,
            to_state=locked.state,
            reason=f"{aipo} {test_case}: {record.get_result_display()} "
            f"{record.amendment_reason}".strip(),
        )
    return record


class GridRefused(ActionRefused):
    """Some rows of a grid were refused: nothing of the grid was stored."""

    def __init__(self, errors: dict[str, str]) -> None:
        count = len(errors)
        super().__init__(
            f"{count} row{'s' if count != 1 else ''} could not be recorded, so nothing was "
            "stored: correct the rows marked below and send the grid again."
        )
        self.errors = errors


@dataclass(frozen=True)
class GridRow:
    key: str
    aipo: AIPO
    result: str
    test_case: str = ""
    test_case_name: str = ""
    tool: str = ""
    tool_version: str = ""
    comment: str = ""
    evidence_links: str = ""
    amendment_reason: str = ""
    amends: TestRecord | None = None


def test_records_create_many(
    *, application: Application, rows: Iterable[GridRow], by
) -> list[TestRecord]:
    """Record every row of the grid in one transaction: all rows, or none with each row's error."""
    records = []
    errors: dict[str, str] = {}
    with transaction.atomic():
        for row in rows:
            try:
                with transaction.atomic():
                    records.append(
                        test_record_create(
                            application=application,
                            aipo=row.aipo,
                            result=row.result,
                            by=by,
                            test_case=row.test_case,
                            test_case_name=row.test_case_name,
                            tool=row.tool,
                            tool_version=row.tool_version,
                            comment=row.comment,
                            evidence_links=row.evidence_links,
                            amendment_reason=row.amendment_reason,
                            amends=row.amends,
                        )
                    )
            except ActionRefused as exc:
                errors[row.key] = exc.message
        if errors:
            raise GridRefused(errors)  # leaving the block rolls every row back
    return records


# --- The lab's test report ---


def _records_as_of(application: Application, moment) -> list[TestRecord]:
    """The records current at `moment`: the latest version of each chain recorded by then."""
    records = list(
        TestRecord.objects.filter(application=application, recorded_at__lte=moment).select_related(
            "aipo__profile", "aipo__actor", "aipo__option", "recorded_by"
        )
    )
    replaced = {r.replaces_id for r in records if r.replaces_id}
    return [r for r in records if r.pk not in replaced]


def aipo_outcome(results: list[str]) -> str:
    """One AIPO's outcome from its current records: the worst of them wins.

    Several test cases may be recorded for one AIPO; it passes only when none failed or was
    inconclusive and at least one passed (not applicable ones do not count either way).
    """
    for worst in ("fail", "inconclusive", "pass"):
        if worst in results:
            return worst
    return "not_applicable"


def aipo_outcomes(application: Application) -> dict[int, str]:
    """The outcome of each AIPO that has current records, by AIPO id."""
    results: dict[int, list[str]] = {}
    for aipo_id, result in (
        TestRecord.objects.filter(application=application)
        .current()
        .values_list("aipo_id", "result")
    ):
        results.setdefault(aipo_id, []).append(result)
    return {aipo_id: aipo_outcome(found) for aipo_id, found in results.items()}


def _verdict(results: list[str]) -> str:
    return dict(TestRecord.Result.choices)[aipo_outcome(results)]


def report_content(
    *,
    application: Application,
    number: str,
    amends: TestReport | None,
    amendment_reason: str,
    reviewed_by,
    reviewed_at,
    authorised_by,
    authorised_at,
    issued_at,
) -> ReportContent:
    lab = application.lab
    # The report cites the accreditation under which the review was done; a report is never
    # issued under a suspended, withdrawn or out-of-scope one.
    reviewed_on = timezone.localtime(reviewed_at).date()
    refusal = accreditation_refusal(application=application, day=reviewed_on)
    if refusal:
        raise ActionRefused(refusal)
    accreditation = accreditation_in_force(
        lab=lab, day=reviewed_on, profiles=claimed_profiles(application)
    )
    records = _records_as_of(application, reviewed_at)
    claims = list(application.claims.select_related("aipo__profile", "aipo__actor", "aipo__option"))
    by_aipo: dict[int, list[TestRecord]] = {}
    for record in records:
        by_aipo.setdefault(record.aipo_id, []).append(record)
    results = []
    verdicts = []
    labels = dict(TestRecord.Result.choices)
    for claim in claims:
        chain = sorted(by_aipo.get(claim.aipo_id, []), key=lambda r: (r.test_case, r.pk))
        verdicts.append(
            (
                f"{claim.aipo} - {claim.aipo.label}",
                _verdict([r.result for r in chain]) if chain else "not tested",
            )
        )
        for r in chain:
            results.append(
                ResultLine(
                    aipo=str(claim.aipo),
                    aipo_label=claim.aipo.label,
                    test_case=r.test_case,
                    test_case_name=r.test_case_name,
                    tool=r.tool_label,
                    result=labels[r.result],
                    comment=r.comment,
                    version=r.version,
                    recorded_by=_name(r.recorded_by),
                    recorded_at=r.recorded_at,
                    evidence=r.evidence_list,
                )
            )
    assigned = (
        AuditEntry.objects.filter(
            object_type="cas.application",
            object_id=str(application.pk),
            action="assign_lab",
            at__lte=reviewed_at,
        )
        .order_by("-id")
        .first()
    )
    moments = [r.recorded_at for r in records]
    version = application.product_version
    title = "Test report"
    if amends is not None:
        title = f"Test report - amendment to {amends.number}"
    return ReportContent(
        number=number,
        title=title,
        amends_number=amends.number if amends else "",
        amendment_reason=amendment_reason,
        lab_name=lab.name,
        lab_address=lab.address,
        accreditation_body=accreditation.body if accreditation else "",
        accreditation_number=accreditation.number if accreditation else "",
        accreditation_standard=accreditation.standard if accreditation else "",
        authorisation_number=accreditation.authorisation_number if accreditation else "",
        customer_name=application.vendor.name,
        customer_address=application.vendor.address,
        product_name=version.product.name,
        product_version=version.version,
        case_reference=application.reference,
        received_on=application.submitted_at.date() if application.submitted_at else None,
        assigned_on=assigned.at.date() if assigned else None,
        tested_from=min(moments).date() if moments else None,
        tested_until=max(moments).date() if moments else None,
        scheme_name=settings.SCHEME_NAME,
        scheme_version=settings.SCHEME_VERSION,
        tools=sorted({r.tool_label for r in records if r.tool_label}),
        results=results,
        verdicts=verdicts,
        reviewed_by=_name(reviewed_by),
        reviewed_at=reviewed_at,
        authorised_by=_name(authorised_by),
        authorised_at=authorised_at,
        issued_at=issued_at,
    )


def _issue(
    *,
    application: Application,
    approval: AuditEntry | None,
    reviewed_by,
    reviewed_at,
    authorised_by,
    amendment_reason: str,
    audit_by,
) -> TestReport:
    """Number, render and store a report (inside the caller's transaction, case locked)."""
    previous = (
        TestReport.objects.filter(application=application, amended_by__isnull=True)
        .order_by("-issued_at", "-pk")
        .first()
    )
    count = TestReport.objects.filter(application=application).count()
    number = f"{application.reference.replace('APP', 'TR', 1)}-{count + 1}"
    issued_at = timezone.now()
    content = report_content(
        application=application,
        number=number,
        amends=previous,
        amendment_reason=amendment_reason if previous else "",
        reviewed_by=reviewed_by,
        reviewed_at=reviewed_at,
        authorised_by=authorised_by,
        authorised_at=issued_at if approval is None else reviewed_at,
        issued_at=issued_at,
    )
    pdf = render_report_pdf(content=content)
    digest = hashlib.sha256(pdf).hexdigest()
    report = TestReport(
        application=application,
        number=number,
        amends=previous,
        amendment_reason=content.amendment_reason,
        approval=approval,
        reviewed_by=reviewed_by,
        reviewed_at=reviewed_at,
        authorised_by=authorised_by,
        issued_at=issued_at,
        sha256=digest,
    )
    report.pdf.save(f"{number}-{digest[:12]}.pdf", ContentFile(pdf), save=False)
    report.save()
    audit_record(
        obj=application,
        action="release_test_report" if previous is None else "amend_test_report",
        by=audit_by,
        from_state=application.state,
        to_state=application.state,
        reason=f"test report {number}"
        + (f" amends {previous.number}: {content.amendment_reason}" if previous else ""),
    )
    notify(
        template="lab_test_report",
        to=set(officer_emails()) | set(member_emails(application.vendor)),
        context={
            "reference": application.reference,
            "product": str(application.product_version),
            "vendor": application.vendor.name,
            "lab": application.lab.name,
            "number": number,
            "amends": previous.number if previous else "",
            "reason": content.amendment_reason,
            "path": reverse("application_detail", args=[application.pk]),
        },
    )
    return report


def test_report_release(*, application_id: int) -> TestReport | None:
    """Release the report of the case's latest technical-review approval. Idempotent.

    A case approved again after rework gets a new report that amends the previous one.
    """
    with transaction.atomic():
        application = (
            Application.objects.select_for_update(of=("self",))
            .select_related("vendor", "lab", "product_version__product")
            .get(pk=application_id)
        )
        approval = (
            AuditEntry.objects.filter(
                object_type="cas.application",
                object_id=str(application.pk),
                action="approve_report",
            )
            .select_related("actor")
            .order_by("-id")
            .first()
        )
        if approval is None or approval.actor is None:
            return None
        existing = TestReport.objects.filter(approval=approval).first()
        if existing is not None:
            return existing
        rework = (
            AuditEntry.objects.filter(
                object_type="cas.application",
                object_id=str(application.pk),
                action="return_for_rework",
                id__lt=approval.id,
            )
            .order_by("-id")
            .first()
        )
        reason = "Approved again after rework"
        if rework is not None and rework.reason:
            reason += f" (returned on {rework.at:%Y-%m-%d}: {rework.reason})"
        return _issue(
            application=application,
            approval=approval,
            reviewed_by=approval.actor,
            reviewed_at=approval.at,
            authorised_by=approval.actor,
            amendment_reason=reason + ".",
            audit_by=approval.actor,
        )


def queue_test_report_release(application: Application) -> None:
    """on_commit of an approval: render the report in the background (never fails the approval)."""
    from labs.tasks import release_test_report

    try:
        release_test_report.delay(application.pk)
    except Exception:
        # The approval is committed whatever happens; `manage.py release_test_reports`
        # (and the daily check) finishes a report that failed here.
        log.exception("releasing the test report of %s failed", application.reference)


def amend_report_refusal(user, application: Application) -> str | None:
    """Why `user` may not authorise an amended report of the case; None when they may."""
    if not (
        user.is_authenticated
        and application.lab_id is not None
        and Membership.objects.filter(
            user=user, organisation_id=application.lab_id, role=Membership.Role.LAB_MANAGER
        ).exists()
    ):
        return "Only a lab manager of the assigned lab can amend its test report."
    if permissions.declared_conflict.test(user, application):
        return (
            f"You declared a conflict of interest with {application.vendor.name}: "
            "you cannot amend its test report."
        )
    if permissions.lab_declared_conflict.test(user, application):
        return (
            f"{application.lab.name} declared a conflict of interest with "
            f"{application.vendor.name}: it cannot amend the test report."
        )
    # Authorising is the second person's job: whoever recorded a result in force may not.
    if TestRecord.objects.filter(application=application, recorded_by=user).current().exists():
        return (
            f"{_name(user)} recorded results of {application.reference}: an amended report "
            "must be authorised by a lab manager who recorded none of them."
        )
    return None


def can_amend_report(user, application: Application) -> bool:
    return amend_report_refusal(user, application) is None


def test_report_amend(*, report: TestReport, by, reason: str) -> TestReport:
    """A lab manager issues an amended report (new id, titled as an amendment); both stay."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("An amended report states why it amends the previous one.")
    with transaction.atomic():
        application = (
            Application.objects.select_for_update(of=("self",))
            .select_related("vendor", "lab", "product_version__product")
            .get(pk=report.application_id)
        )
        refusal = amend_report_refusal(by, application)
        if refusal:
            raise NotAllowed(refusal)
        latest = (
            TestReport.objects.filter(application=application, amended_by__isnull=True)
            .order_by("-issued_at", "-pk")
            .first()
        )
        if latest is None or latest.pk != report.pk:
            raise Conflict(
                f"Test report {report.number} was amended already by "
                f"{latest.number if latest else 'another report'}: amend the latest one."
            )
        return _issue(
            application=application,
            approval=None,
            reviewed_by=report.reviewed_by,
            reviewed_at=report.reviewed_at,
            authorised_by=by,
            amendment_reason=reason,
            audit_by=by,
        )


def test_reports_release_pending() -> list[str]:
    """Release the reports whose on-commit task failed: every approval gets its report."""
    numbers = []
    approved = AuditEntry.objects.filter(object_type="cas.application", action="approve_report")
    released = set(TestReport.objects.values_list("approval_id", flat=True))
    for application_id in sorted({int(e.object_id) for e in approved if e.pk not in released}):
        try:
            report = test_report_release(application_id=application_id)
        except ActionRefused as exc:
            # One case that cannot be released (e.g. its lab's accreditation was suspended
            # since the approval) must not hold back the others: it stays pending and logged.
            log.warning("test report of application %s not released: %s", application_id, exc)
            continue
        if report is not None:
            numbers.append(report.number)
    return numbers
