from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from cas import permissions
from cas.csvsafe import csv_safe_row
from cas.errors import ActionRefused
from cas.models import AIPO, Application, Organisation, Product
from evidence import matrix, services
from evidence.files import allowed_extensions
from evidence.forms import (
    AliasForm,
    CapabilityStatementForm,
    ConnectathonImportForm,
    EvidenceUploadForm,
    TestReportUploadForm,
)
from evidence.models import ConnectathonEvent, EvidenceFile, FhirTestReport, ImportJob


def _officer_only(request: HttpRequest) -> None:
    if not permissions.is_officer(request.user):
        raise Http404("No such page")


# --- Connectathon imports (officers) ---


@login_required
def connectathon_import_page(request: HttpRequest) -> HttpResponse:
    _officer_only(request)
    form = ConnectathonImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = services.connectathon_job_create(
                    upload=data["file"],
                    event_name=data["event"],
                    organiser=data["organiser"],
                    location=data["location"],
                    start_date=data["start_date"],
                    end_date=data["end_date"],
                    by=request.user,
                )
            except ActionRefused as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                return redirect("connectathon_job", pk=job.pk)
        else:
            status = 400
    return render(
        request,
        "evidence/connectathon_import.html",
        {
            "form": form,
            "events": ConnectathonEvent.objects.all(),
            "jobs": ImportJob.objects.select_related("created_by")[:20],
        },
        status=status,
    )


def _job_for(request: HttpRequest, pk: int) -> ImportJob:
    _officer_only(request)
    job = ImportJob.objects.filter(pk=pk).select_related("event").first()
    if job is None:
        raise Http404("No such import")
    return job


def _job_state(job: ImportJob) -> dict:
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.status in ImportJob.FINISHED,
        "percent": job.percent,
        "rows_total": job.rows_total,
        "rows_checked": job.rows_checked,
        "rows_written": job.rows_written,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "removed": job.removed,
        "errors": len(job.errors),
        "message": job.message,
    }


@login_required
def connectathon_job_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    return render(
        request,
        "evidence/connectathon_job.html",
        {"job": job, "state": _job_state(job)},
        status=400 if job.status == ImportJob.Status.REFUSED else 200,
    )


@login_required
@require_GET
def connectathon_job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_job_state(_job_for(request, pk)))


@login_required
def connectathon_aliases(request: HttpRequest) -> HttpResponse:
    """Names the last imports could not match, and the form that maps one."""
    _officer_only(request)
    form = AliasForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.connectathon_alias_create(
                    kind=data["kind"],
                    name=data["name"],
                    organisation=data["organisation"],
                    product=data["product"],
                    by=request.user,
                )
            except ActionRefused as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"{data['name']} mapped; later imports remember it.")
                return redirect("connectathon_aliases")
        else:
            status = 400
    organisations, systems = services.unmatched_connectathon_names()
    from evidence.models import ConnectathonAlias

    return render(
        request,
        "evidence/connectathon_aliases.html",
        {
            "form": form,
            "unmatched_organisations": organisations,
            "unmatched_systems": systems,
            "vendors": Organisation.objects.filter(kind=Organisation.Kind.VENDOR),
            "products": Product.objects.select_related("vendor").order_by("vendor__name", "name"),
            "aliases": ConnectathonAlias.objects.select_related("organisation", "product"),
        },
        status=status,
    )


# --- Evidence of a case ---


@login_required
def evidence_upload(request: HttpRequest, pk: int) -> HttpResponse:
    application = permissions.get_application_for(request.user, pk)
    form = EvidenceUploadForm(request.POST or None, request.FILES or None, application=application)
    status = 200
    error = ""
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                evidence = services.evidence_file_upload(
                    application=application,
                    upload=data["file"],
                    aipos=data["aipos"],
                    description=data["description"],
                    by=request.user,
                )
            except ActionRefused as exc:
                error, status = exc.message, exc.status_code
            else:
                messages.success(request, f"{evidence.original_name} added to the case.")
                return redirect("application_detail", pk=application.pk)
        else:
            status = 400
    return render(
        request,
        "evidence/upload.html",
        {
            "application": application,
            "form": form,
            "error": error,
            "allowed": allowed_extensions(),
            "limit": services.human_size(settings.EVIDENCE_MAX_UPLOAD_BYTES),
            "can_add": services.can_add_evidence(request.user, application),
            "title": "Add evidence",
        },
        status=status,
    )


@login_required
def evidence_download(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = EvidenceFile.objects.select_related("blob").filter(pk=pk).first()
    if evidence is None:
        raise Http404("No such file")
    # The case decides who sees its files: a foreign case's file is missing, as the case is.
    permissions.get_application_for(request.user, evidence.application_id)
    return services.evidence_file_response(evidence)


@login_required
def testreport_upload(request: HttpRequest, pk: int) -> HttpResponse:
    application = permissions.get_application_for(request.user, pk)
    form = TestReportUploadForm(
        request.POST or None, request.FILES or None, application=application
    )
    status = 200
    error = ""
    problems: list = []
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                data = services.read_upload(upload)
                report = services.testreport_ingest(
                    application=application,
                    data=data,
                    name=upload.name,
                    aipos=form.cleaned_data["aipos"],
                    by=request.user,
                )
            except services.TestReportRefused as exc:
                error, status, problems = "The TestReport was refused.", 400, exc.problems
            except ActionRefused as exc:
                error, status = exc.message, exc.status_code
            else:
                messages.success(request, f"TestReport received: {report.result}.")
                return redirect("testreport_detail", pk=report.pk)
        else:
            status = 400
    return render(
        request,
        "evidence/upload.html",
        {
            "application": application,
            "form": form,
            "error": error,
            "problems": problems,
            "allowed": ".json, .xml",
            "limit": services.human_size(settings.EVIDENCE_MAX_UPLOAD_BYTES),
            "can_add": services.can_add_evidence(request.user, application),
            "title": "Add a FHIR TestReport",
        },
        status=status,
    )


@login_required
def testreport_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = FhirTestReport.objects.filter(pk=pk).first()
    if report is None:
        raise Http404("No such TestReport")
    application = permissions.get_application_for(request.user, report.application_id)
    return render(
        request,
        "evidence/testreport_detail.html",
        {
            "application": application,
            "report": report,
            "tests": report.tests.prefetch_related("actions"),
            "aipos": report.aipos.with_names(),
        },
    )


@login_required
def capability_statement(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a CapabilityStatement, see the AIPOs it declares, add the chosen ones."""
    application = permissions.get_application_for(request.user, pk)
    form = CapabilityStatementForm(request.POST or None, request.FILES or None)
    suggestions = None
    error = ""
    status = 200
    if request.method == "POST" and "add" in request.POST:
        ids = [i for i in request.POST.getlist("aipos") if i.isdigit()]
        try:
            if not permissions.is_case_vendor(request.user, application):
                raise ActionRefused("Only the vendor of the case can change its claims.")
            services.application_add_claims(
                application=application,
                aipos=AIPO.objects.with_names().filter(pk__in=ids),
                by=request.user,
            )
        except ActionRefused as exc:
            error, status = exc.message, exc.status_code
        else:
            messages.success(request, "Claims added from the CapabilityStatement.")
            return redirect("application_detail", pk=application.pk)
    elif request.method == "POST":
        if form.is_valid():
            try:
                upload = form.cleaned_data["file"]
                suggestions = services.capability_suggestions(
                    application=application, data=services.read_upload(upload)
                )
            except ActionRefused as exc:
                error, status = exc.message, exc.status_code
        else:
            status = 400
    return render(
        request,
        "evidence/capability_statement.html",
        {
            "application": application,
            "form": form,
            "suggestions": suggestions,
            "error": error,
            "can_claim": application.state == Application.State.DRAFT
            and permissions.is_case_vendor(request.user, application),
        },
        status=status,
    )


@login_required
def coverage(request: HttpRequest, pk: int) -> HttpResponse:
    application = permissions.get_application_for(request.user, pk)
    return render(
        request,
        "evidence/coverage.html",
        {"application": application, "rows": services.coverage_rows(application=application)},
    )


@login_required
def coverage_csv(request: HttpRequest, pk: int) -> HttpResponse:
    application = permissions.get_application_for(request.user, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{application.reference}-coverage.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "Profile",
            "Actor",
            "Option",
            "Connectathon",
            "Connectathon event",
            "TestReport",
            "Files",
            "Lab result",
        ]
    )
    for row in services.coverage_rows(application=application):
        writer.writerow(
            csv_safe_row(
                [
                    row.aipo.profile.keyword,
                    row.aipo.actor.keyword,
                    row.aipo.option.keyword,
                    row.connectathon.text,
                    row.connectathon.detail,
                    row.testreport.text,
                    row.files.detail or row.files.text,
                    row.lab.text,
                ]
            )
        )
    return response


# --- The public Connectathon Results Matrix (no login) ---


def connectathon_results(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "evidence/matrix_index.html",
        {"events": ConnectathonEvent.objects.order_by("-end_date", "name")},
    )


def _event_or_404(event_id: int) -> ConnectathonEvent:
    event = ConnectathonEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404("No such Connectathon")
    return event


@require_GET
def connectathon_matrix(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_or_404(event_id)
    filters = matrix.MatrixFilters.from_query(request.GET)
    page_size = matrix.page_size_from(request.GET.get("per_page"))
    table = matrix.results_matrix(
        event=event,
        filters=filters,
        page_number=request.GET.get("page", "1")[:10],
        page_size=page_size,
    )
    query = {**filters.as_query(), "per_page": page_size}
    return render(
        request,
        "evidence/matrix.html",
        {
            "matrix": table,
            "event": event,
            "filters": filters,
            "page_size": page_size,
            "page_sizes": matrix.PAGE_SIZES,
            "query": urlencode(query),
            "download_query": urlencode(filters.as_query()),
            "max_columns": matrix.MAX_COLUMNS,
        },
    )


class _Echo:
    """csv.writer writes into this and gets the line back, for a streamed response."""

    def write(self, value: str) -> str:
        return value


MATRIX_COLUMNS = [
    "event",
    "organisation",
    "system",
    "domain",
    "profile",
    "actor",
    "option",
    "certificates",
]


def _matrix_filename(event: ConnectathonEvent, extension: str) -> str:
    return f"connectathon-{event.pk}-results.{extension}"


@require_GET
def connectathon_matrix_csv(request: HttpRequest, event_id: int) -> StreamingHttpResponse:
    """One row per passed result, UTF-8 with a BOM (spreadsheets then read the accents)."""
    event = _event_or_404(event_id)
    filters = matrix.MatrixFilters.from_query(request.GET)
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(MATRIX_COLUMNS)
        for row in matrix.matrix_export_rows(event=event, filters=filters):
            # Every string cell: vendor-typed names go to spreadsheets (cas.csvsafe).
            yield writer.writerow(
                csv_safe_row(
                    [
                        row.event,
                        row.organisation,
                        row.system,
                        row.domain,
                        row.profile,
                        row.actor,
                        row.option,
                        " ".join(c.number for c in row.certificates),
                    ]
                )
            )

    response = StreamingHttpResponse(
        (line.encode() for line in lines()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_matrix_filename(event, "csv")}"'
    return response


@require_GET
def connectathon_matrix_json(request: HttpRequest, event_id: int) -> StreamingHttpResponse:
    event = _event_or_404(event_id)
    filters = matrix.MatrixFilters.from_query(request.GET)
    head = {
        "event": {
            "id": event.pk,
            "name": event.name,
            "organiser": event.organiser,
            "location": event.location,
            "start_date": event.start_date.isoformat(),
            "end_date": event.end_date.isoformat(),
        },
        "filters": filters.as_query(),
        "published_grades": ["passed"],
    }

    def chunks():
        yield json.dumps(head)[:-1] + ', "results": ['
        separator = "\n"
        for row in matrix.matrix_export_rows(event=event, filters=filters):
            yield separator + json.dumps(
                {
                    "organisation": row.organisation,
                    "system": row.system,
                    "domain": row.domain,
                    "profile": row.profile,
                    "actor": row.actor,
                    "option": row.option,
                    "certificates": [
                        {
                            "number": c.number,
                            "status": c.status,
                            "url": f"{settings.SITE_URL}/certificates/{c.number}/",
                        }
                        for c in row.certificates
                    ],
                }
            )
            separator = ",\n"
        yield "\n]}\n"

    response = StreamingHttpResponse(
        (chunk.encode() for chunk in chunks()), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{_matrix_filename(event, "json")}"'
    return response
