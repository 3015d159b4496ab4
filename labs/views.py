"""Lab pages: my cases, the recording grid, the technical review, reports, accreditations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from cas import permissions, services
from cas.errors import ActionRefused
from cas.models import AIPO, Application, AuditEntry, Organisation
from labs import services as lab_services
from labs.models import Accreditation, AccreditationWarning, CaseFlag, TestRecord, TestReport

RECORD_FIELDS = (
    "test_case",
    "test_case_name",
    "tool",
    "tool_version",
    "comment",
    "evidence_links",
)
MAX_FIELD = {"test_case": 200, "test_case_name": 300, "tool": 200, "tool_version": 60}


def _text(data, name: str, limit: int = 5000) -> str:
    """A posted text field, stripped; refused (never cut short) when it is too long or
    PostgreSQL could not store it. Grid fields are named "<row key>-<field>"."""
    value = data.get(name, "").strip()
    label = name.rsplit("-", 1)[-1].replace("_", " ")
    if "\x00" in value:
        raise ActionRefused(f"The {label} contains a NUL character.")
    if len(value) > limit:
        raise ActionRefused(
            f"The {label} is {len(value)} characters long; the limit is {limit}: shorten it."
        )
    return value


def _lab_ids(user) -> list[int]:
    return permissions.organisation_ids(user, Organisation.Kind.LAB)


def _get_lab_case(request: HttpRequest, pk: int) -> Application:
    """The case, for members of its assigned lab: foreign answers 404, others who see it 403."""
    application = permissions.get_application_for(request.user, pk)
    if not permissions.is_case_lab_member(request.user, application):
        raise PermissionDenied("Only members of the assigned lab work on this page.")
    return application


def _age(moment) -> int:
    return (timezone.now() - moment).days if moment else 0


@login_required
def my_cases(request: HttpRequest) -> HttpResponse:
    lab_ids = _lab_ids(request.user)
    if not lab_ids:
        raise Http404("Not a lab member")
    cases = list(lab_services.assigned_cases(lab_ids=lab_ids))
    mine = set(
        TestRecord.objects.filter(application__in=cases, recorded_by=request.user).values_list(
            "application_id", flat=True
        )
    )
    for case in cases:
        case.age_days = _age(case.state_changed_at or case.created_at)
        case.recorded_by_me = case.pk in mine
        case.may_review = case.state == "in_review" and permissions.can_approve_report.test(
            request.user, case
        )
    accreditations = Accreditation.objects.filter(lab_id__in=lab_ids).select_related("lab")
    today = timezone.localdate()
    for a in accreditations:
        a.days_left = (a.valid_until - today).days
        a.valid_now = a.is_valid_on(today)
    return render(
        request,
        "labs/my_cases.html",
        {
            "to_assess": [c for c in cases if c.state == "in_assessment"],
            "to_review": [c for c in cases if c.state == "in_review"],
            "accreditations": accreditations,
            "released": TestReport.objects.filter(application__lab_id__in=lab_ids)
            .select_related("application", "amends")
            .order_by("-issued_at")[:20],
        },
    )


# --- The recording grid ---


@dataclass
class Row:
    key: str
    aipo: AIPO | None
    record: TestRecord | None = None
    values: dict = field(default_factory=dict)
    error: str = ""


def _grid_rows(application: Application) -> tuple[list[Row], list[AIPO]]:
    claims = [
        c.aipo
        for c in application.claims.select_related(
            "aipo__profile__domain", "aipo__actor", "aipo__option"
        ).order_by("aipo__profile__keyword", "aipo__actor__keyword", "aipo__option__keyword")
    ]
    current: dict[int, list[TestRecord]] = {}
    for record in (
        TestRecord.objects.filter(application=application)
        .current()
        .select_related("recorded_by")
        .order_by("test_case", "pk")
    ):
        current.setdefault(record.aipo_id, []).append(record)
    rows = []
    for aipo in claims:
        records = current.get(aipo.pk, [])
        for record in records:
            values = {name: getattr(record, name) for name in RECORD_FIELDS}
            values["evidence_links"] = ", ".join(record.evidence_list)
            values["result"] = record.result
            rows.append(Row(key=f"r{record.pk}", aipo=aipo, record=record, values=values))
        if not records:
            rows.append(Row(key=f"a{aipo.pk}", aipo=aipo))
    rows.append(Row(key="extra", aipo=None))
    return rows, claims


def _read_row(
    row: Row, data, claims: list[AIPO], recorded_test_cases: dict[int, set[str]]
) -> lab_services.GridRow | None:
    """The row as posted; None when the person left it as it was."""
    if not any(f"{row.key}-{name}" in data for name in (*RECORD_FIELDS, "result", "reason")):
        return None  # the row was not sent at all
    posted = {name: _text(data, f"{row.key}-{name}") for name in RECORD_FIELDS}
    posted["result"] = _text(data, f"{row.key}-result")
    reason = _text(data, f"{row.key}-reason")
    aipo = row.aipo
    if row.key == "extra":
        chosen = data.get("extra-aipo", "")
        aipo = next((a for a in claims if str(a.pk) == chosen), None)
        posted["aipo"] = chosen
    original = dict(row.values)
    row.values = {**row.values, **posted, "reason": reason}
    if row.record is not None:
        # An <input> shows text on one line: compare words, not whitespace (and evidence
        # as the list of references it stands for).
        def same(name: str) -> bool:
            if name == "evidence_links":
                return lab_services.split_evidence(posted[name]) == lab_services.split_evidence(
                    str(original.get(name) or "")
                )
            return posted[name].split() == str(original.get(name) or "").split()

        unchanged = all(same(name) for name in (*RECORD_FIELDS, "result"))
        if unchanged and not reason:
            return None
    elif not posted["result"] and not any(posted[name] for name in RECORD_FIELDS):
        return None
    for name, limit in MAX_FIELD.items():
        if len(posted[name]) > limit:
            raise ActionRefused(f"The {name.replace('_', ' ')} is longer than {limit} characters.")
    if not posted["result"]:
        raise ActionRefused("Choose a result (pass, fail, inconclusive, not applicable).")
    if aipo is None:
        raise ActionRefused("Choose which claimed AIPO this test case is for.")
    if row.key == "extra" and posted["test_case"] in recorded_test_cases.get(aipo.pk, set()):
        raise ActionRefused(
            f"test case {posted['test_case'] or '(without id)'} is already recorded for this "
            "AIPO: amend its row above."
        )
    return lab_services.GridRow(
        key=row.key,
        aipo=aipo,
        result=posted["result"],
        amendment_reason=reason,
        amends=row.record,
        **{name: posted[name] for name in RECORD_FIELDS},
    )


GRID_FIELD = re.compile(r"^([ar]\d+)-[a-z_]+$")


def _stale_keys(data, rows: list[Row]) -> set[str]:
    """Row keys the posted grid showed (hidden `shown` list, or its fields) that are no
    longer current: a record amended since, or an AIPO recorded since."""
    current = {row.key for row in rows}
    posted = set(data.getlist("shown"))
    posted |= {m.group(1) for name in data if (m := GRID_FIELD.match(name))}
    return posted - current - {"extra"}


@login_required
def grid(request: HttpRequest, pk: int) -> HttpResponse:
    application = _get_lab_case(request, pk)
    rows, claims = _grid_rows(application)
    error = ""
    status = 200
    if request.method == "POST" and _stale_keys(request.POST, rows):
        # Someone amended or recorded rows since this grid was opened: storing the rest
        # would drop the edits made to the rows that changed, so store nothing.
        error, status = "The results changed since you opened the grid: reload.", 409
    elif request.method == "POST":
        recorded_test_cases: dict[int, set[str]] = {}
        for row in rows:
            if row.record is not None:
                recorded_test_cases.setdefault(row.record.aipo_id, set()).add(row.record.test_case)
        entries = []
        for row in rows:
            try:
                entry = _read_row(row, request.POST, claims, recorded_test_cases)
            except ActionRefused as exc:
                row.error = exc.message
            else:
                if entry is not None:
                    entries.append(entry)
        if any(row.error for row in rows):
            error, status = "Some rows are incomplete, so nothing was stored: see below.", 400
        elif not entries:
            error, status = "Nothing to record: choose a result in at least one row.", 400
        else:
            try:
                records = lab_services.test_records_create_many(
                    application=application, rows=entries, by=request.user
                )
            except lab_services.GridRefused as exc:
                for row in rows:
                    row.error = exc.errors.get(row.key, "")
                error, status = exc.message, exc.status_code
            except ActionRefused as exc:
                error, status = exc.message, exc.status_code
            else:
                messages.success(
                    request,
                    f"{len(records)} result{'s' if len(records) != 1 else ''} recorded.",
                )
                return redirect("lab_grid", pk=application.pk)
    recorded = {r.aipo.pk for r in rows if r.record is not None and r.aipo}
    return render(
        request,
        "labs/grid.html",
        {
            "application": application,
            "rows": rows,
            "claims": claims,
            "missing": [a for a in claims if a.pk not in recorded],
            "error": error,
            "result_choices": TestRecord.Result.choices,
            "can_record": application.state == "in_assessment",
            "can_complete": application.state == "in_assessment"
            and permissions.can_complete_assessment.test(request.user, application),
        },
        status=status,
    )


@login_required
@require_POST
def complete(request: HttpRequest, pk: int) -> HttpResponse:
    application = _get_lab_case(request, pk)
    try:
        services.application_complete_assessment(application=application, by=request.user)
    except ActionRefused as exc:
        messages.error(request, exc.message)
        return redirect("lab_grid", pk=application.pk)
    messages.success(request, "Assessment completed: a second lab member reviews it now.")
    return redirect("lab_my_cases")


# --- The technical review ---


def _review_context(request: HttpRequest, application: Application) -> dict:
    records = list(
        TestRecord.objects.filter(application=application)
        .select_related("aipo__profile", "aipo__actor", "aipo__option", "recorded_by")
        .order_by("aipo__profile__keyword", "aipo__actor__keyword", "test_case", "version")
    )
    replaced = {r.replaces_id for r in records if r.replaces_id}
    chains: dict[int, list[TestRecord]] = {}
    for record in records:
        root = record
        while root.replaces_id:
            root = next(r for r in records if r.pk == root.replaces_id)
        chains.setdefault(root.pk, []).append(record)
    current = []
    for chain in chains.values():
        chain.sort(key=lambda r: r.version)
        latest = chain[-1]
        latest.history = list(reversed(chain[:-1]))
        current.append(latest)
    current.sort(key=lambda r: (str(r.aipo), r.test_case))
    user = request.user
    reviews = AuditEntry.objects.filter(
        object_type="cas.application",
        object_id=str(application.pk),
        action__in=["complete_assessment", "return_for_rework", "approve_report"],
    ).order_by("id")
    in_review = application.state == "in_review"
    return {
        "application": application,
        "current": current,
        "replaced_count": len(replaced),
        "reviews": reviews,
        "can_review": in_review and permissions.can_approve_report.test(user, application),
        "recorded_here": permissions.took_part_in_assessment.test(user, application),
        "in_review": in_review,
        "reports": application.test_reports.select_related("amends", "authorised_by").order_by(
            "issued_at"
        ),
        "can_amend": lab_services.can_amend_report(user, application),
    }


@login_required
def review(request: HttpRequest, pk: int) -> HttpResponse:
    application = _get_lab_case(request, pk)
    return render(request, "labs/review.html", _review_context(request, application))


def _review_act(request: HttpRequest, pk: int, act, done: str) -> HttpResponse:
    application = _get_lab_case(request, pk)
    try:
        act(application)
    except ActionRefused as exc:
        context = _review_context(request, application)
        context["error"] = exc.message
        return render(request, "labs/review.html", context, status=exc.status_code)
    messages.success(request, done)
    return redirect("lab_review", pk=application.pk)


@login_required
@require_POST
def review_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_act(
        request,
        pk,
        lambda a: services.application_approve_report(
            application=a, by=request.user, note=_text(request.POST, "note", 2000)
        ),
        "Technical review approved: the test report is released and the case awaits a decision.",
    )


@login_required
@require_POST
def review_return(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_act(
        request,
        pk,
        lambda a: services.application_return_for_rework(
            application=a, by=request.user, comments=_text(request.POST, "comments")
        ),
        "Returned to the assessors with your comments.",
    )


@login_required
@require_POST
def report_amend(request: HttpRequest, pk: int) -> HttpResponse:
    def amend(application: Application) -> None:
        latest = application.test_reports.filter(amended_by__isnull=True).order_by("-pk").first()
        if latest is None:
            raise ActionRefused("There is no released test report to amend yet.")
        report = lab_services.test_report_amend(
            report=latest, by=request.user, reason=_text(request.POST, "reason", 2000)
        )
        messages.info(request, f"Test report {report.number} issued.")

    return _review_act(request, pk, amend, "The amended report replaces the previous one.")


# --- Reports ---


@login_required
def report_pdf(request: HttpRequest, number: str) -> FileResponse:
    report = TestReport.objects.filter(number=number).first()
    if report is None:
        raise Http404("No such report")
    # Whoever may see the case may read its reports; anyone else gets the same 404.
    permissions.get_application_for(request.user, report.application_id)
    try:
        handle = report.pdf.open("rb")
    except OSError:
        raise Http404("The report's file is missing: tell the operator") from None
    return FileResponse(
        handle,
        content_type="application/pdf",
        as_attachment=True,
        filename=f"{report.number}.pdf",
    )


# --- Accreditations (officers manage; lab members read their own) ---


@login_required
def accreditations(request: HttpRequest) -> HttpResponse:
    is_manager = lab_services.can_manage_accreditations(request.user)
    lab_ids = _lab_ids(request.user)
    if not is_manager and not lab_ids:
        raise Http404("Not an officer or a lab member")
    shown = Accreditation.objects.select_related("lab").prefetch_related(
        "scope_domains", "scope_profiles", "changes__changed_by"
    )
    flags = CaseFlag.objects.select_related("application", "accreditation", "acknowledged_by")
    if not is_manager:
        shown = shown.filter(lab_id__in=lab_ids)
        flags = flags.filter(application__lab_id__in=lab_ids)
    today = timezone.localdate()
    shown = list(shown.order_by("lab__name", "-valid_until"))
    for a in shown:
        a.days_left = (a.valid_until - today).days
        a.valid_now = a.is_valid_on(today)
    return render(
        request,
        "labs/accreditations.html",
        {
            "accreditations": shown,
            "flags": flags,
            "warnings": AccreditationWarning.objects.filter(accreditation__in=shown)
            .select_related("accreditation__lab")
            .order_by("-sent_at")[:50],
            "is_manager": is_manager,
            "statuses": Accreditation.Status.choices,
        },
    )


@login_required
@require_POST
def accreditation_status(request: HttpRequest, pk: int) -> HttpResponse:
    if not lab_services.can_manage_accreditations(request.user):
        raise Http404("Not an officer")
    accreditation = Accreditation.objects.filter(pk=pk).first()
    if accreditation is None:
        raise Http404("No such accreditation")
    try:
        lab_services.accreditation_set_status(
            accreditation=accreditation,
            status=_text(request.POST, "status", 20),
            by=request.user,
            reason=_text(request.POST, "reason", 2000),
        )
    except ActionRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Accreditation {accreditation} updated.")
    return redirect("lab_accreditations")


@login_required
@require_POST
def flag_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    if not permissions.is_officer(request.user):
        raise Http404("Not an officer")
    flag = CaseFlag.objects.filter(pk=pk).first()
    if flag is None:
        raise Http404("No such flag")
    try:
        lab_services.flag_acknowledge(
            flag=flag, by=request.user, note=_text(request.POST, "note", 2000)
        )
    except ActionRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Flag on {flag.application} acknowledged.")
    return redirect("lab_accreditations")
