from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count, Max
from django.db.models.functions import Lower
from django.http import FileResponse
from django.utils import timezone

from cas import permissions
from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict, NotAllowed
from cas.models import AIPO, Application, Organisation, Product
from cas.services import application_set_claims
from evidence.capabilities import (
    CapabilityStatementInvalid,
    canonical_table,
    capability_canonicals,
)
from evidence.files import (
    CONTENT_TYPES,
    ZIP,
    FileRefused,
    ZipLimits,
    check_zip,
    content_disposition,
    display_name,
    extension_of,
    file_kind,
)
from evidence.importers import ImportRefused, ResultRow, RowError, is_xlsx, iter_results
from evidence.models import (
    ConnectathonAlias,
    ConnectathonEvent,
    ConnectathonResult,
    EvidenceBlob,
    EvidenceFile,
    FhirTestReport,
    FhirTestReportAction,
    FhirTestReportTest,
    ImportJob,
    evidence_storage_name,
)
from evidence.testreports import (
    ReportProblem,
    TestReportInvalid,
    TestReportSummary,
    parse_testreport,
)

log = logging.getLogger("opencas.evidence")


def evidence_window_start(today: dt.date | None = None) -> dt.date:
    today = today or timezone.localdate()
    try:
        return today.replace(year=today.year - settings.EVIDENCE_MAX_AGE_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - settings.EVIDENCE_MAX_AGE_YEARS, day=28)


def missing_connectathon_evidence(*, application: Application) -> list[AIPO]:
    """Claimed AIPOs without a Pass for this product at a recent enough Connectathon."""
    product_id = application.product_version.product_id
    passed = set(
        ConnectathonResult.objects.filter(
            product_id=product_id,
            grade=ConnectathonResult.Grade.PASSED,
            event__end_date__gte=evidence_window_start(),
        ).values_list("aipo_id", flat=True)
    )
    return [aipo for aipo in application.claimed_aipos.with_names() if aipo.pk not in passed]


@dataclass(frozen=True)
class ImportSummary:
    event: str
    rows: int
    created: int
    updated: int
    unchanged: int
    removed: int
    unmatched_organisations: tuple[str, ...]
    unmatched_systems: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.event}: {self.rows} rows, {self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed; unmatched organisations: "
            f"{', '.join(self.unmatched_organisations) or 'none'}; unmatched systems: "
            f"{', '.join(self.unmatched_systems) or 'none'}"
        )


class _Resolver:
    """Maps Connectathon organisation and system names to our vendors and products."""

    def __init__(self) -> None:
        self.vendors = {
            name: pk
            for name, pk in Organisation.objects.filter(kind=Organisation.Kind.VENDOR)
            .annotate(lname=Lower("name"))
            .values_list("lname", "pk")
        }
        self.products = {
            (vendor, name): pk
            for vendor, name, pk in Product.objects.annotate(lname=Lower("name")).values_list(
                "vendor_id", "lname", "pk"
            )
        }
        for alias in ConnectathonAlias.objects.all():
            if alias.kind == ConnectathonAlias.Kind.ORGANISATION:
                self.vendors[alias.name.lower()] = alias.organisation_id
            elif alias.product_id:
                self.products[(alias.organisation_id, alias.name.lower())] = alias.product_id

    def vendor(self, name: str) -> int | None:
        return self.vendors.get(name.lower())

    def product(self, vendor_id: int | None, name: str) -> int | None:
        return self.products.get((vendor_id, name.lower())) if vendor_id else None


_BATCH = 2000
ProgressCallback = Callable[[str, int], None]


def _aipo_index() -> dict[tuple[str, str, str], int]:
    return {
        (a.profile.keyword.lower(), a.actor.keyword.lower(), a.option.keyword.lower()): a.pk
        for a in AIPO.objects.with_names()
    }


def _aipo_key(row: ResultRow) -> tuple[str, str, str]:
    return (row.profile.lower(), row.actor.lower(), (row.option or "NONE").lower())


def connectathon_check(
    *,
    stream: IO[bytes],
    name: str = "results.csv",
    aipos: dict[tuple[str, str, str], int] | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """First pass: read every row, keep only the problems; return the number of good rows.

    Raises ImportRefused naming every bad row, column and problem, in line order.
    """
    aipos = _aipo_index() if aipos is None else aipos
    errors: list[RowError] = []
    rows = 0
    for item in iter_results(stream=stream, name=name):
        if isinstance(item, RowError):
            errors.append(item)
        elif _aipo_key(item) not in aipos:
            errors.append(
                RowError(
                    line=item.line,
                    column="Profile/Actor/Option",
                    value=f"{item.profile} / {item.actor} / {item.option}",
                    message=(
                        f"{item.profile} / {item.actor} / {item.option or 'NONE'} is not a "
                        "profile / actor / option triple of the catalogue"
                    ),
                )
            )
        else:
            rows += 1
            if progress is not None and rows % _BATCH == 0:
                progress("checking", rows)
    if errors:
        raise ImportRefused(sorted(errors, key=lambda error: error.line))
    return rows


def _write_results(
    *,
    event: ConnectathonEvent,
    stream: IO[bytes],
    name: str,
    aipos: dict[tuple[str, str, str], int],
    by,
    progress: ProgressCallback | None,
) -> ImportSummary:
    """Second pass, inside the caller's transaction: batch by batch, create or update; then
    remove the event's results the file no longer has (a corrected file is the whole truth).

    Rows match the stored ones by event, AIPO and case-folded names (name_key), so a file
    that writes "HELIX" where the last one wrote "Helix" updates the name, not adds a row.
    """
    resolver = _Resolver()
    # A first import into an empty event needs no lookups: every (checked, unique) row is new.
    before = ConnectathonResult.objects.filter(event=event).aggregate(last=Max("id"))["last"]
    event_had_results = before is not None
    # The stored rows the file still has; the others are removed at the end.
    kept: set[int] = set()
    by_id = by.pk if by is not None and by.is_authenticated else None
    counts = {"rows": 0, "created": 0, "updated": 0, "unchanged": 0}
    unmatched_orgs: set[str] = set()
    unmatched_systems: set[str] = set()
    fields = (
        "organisation_name",
        "system_name",
        "grade",
        "raw_grade",
        "test_type",
        "vendor_id",
        "product_id",
    )

    def flush(batch: list[ConnectathonResult]) -> None:
        existing: dict[tuple[str, int], ConnectathonResult] = {}
        if event_had_results:
            for result in ConnectathonResult.objects.filter(
                event=event,
                name_key__in={r.name_key for r in batch},
                aipo_id__in={r.aipo_id for r in batch},
            ).only("id", "name_key", "aipo_id", *fields):
                existing[(result.name_key, result.aipo_id)] = result
        new, changed = [], []
        now = timezone.now()
        for row in batch:
            current = existing.get((row.name_key, row.aipo_id))
            if current is None:
                row.imported_at = now
                new.append(row)
                continue
            kept.add(current.pk)
            if any(getattr(current, f) != getattr(row, f) for f in fields):
                for f in fields:
                    setattr(current, f, getattr(row, f))
                current.imported_by_id = by_id
                current.imported_at = now
                changed.append(current)
        ConnectathonResult.objects.bulk_create(new, batch_size=_BATCH)
        if changed:
            ConnectathonResult.objects.bulk_update(
                changed, [*fields, "imported_by_id", "imported_at"], batch_size=_BATCH
            )
        counts["created"] += len(new)
        counts["updated"] += len(changed)
        counts["unchanged"] += len(batch) - len(new) - len(changed)
        counts["rows"] += len(batch)
        if progress is not None:
            progress("writing", counts["rows"])

    batch: list[ConnectathonResult] = []
    for row in iter_results(stream=stream, name=name):
        if isinstance(row, RowError):
            # The first pass saw the same bytes; a difference means the file changed under us.
            raise ImportRefused([row])
        vendor_id = resolver.vendor(row.organisation)
        product_id = resolver.product(vendor_id, row.system)
        if vendor_id is None:
            unmatched_orgs.add(row.organisation)
        elif product_id is None:
            unmatched_systems.add(f"{row.organisation} / {row.system}")
        batch.append(
            ConnectathonResult(
                event=event,
                organisation_name=row.organisation,
                system_name=row.system,
                name_key=ConnectathonResult.name_key_for(row.organisation, row.system),
                aipo_id=aipos[_aipo_key(row)],
                test_type=row.type,
                grade=row.grade,
                raw_grade=row.raw_grade,
                vendor_id=vendor_id,
                product_id=product_id,
                imported_by_id=by_id,
            )
        )
        if len(batch) >= _BATCH:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    removed = 0
    if event_had_results:
        # Only rows stored before this import can be missing from it (ids only grow).
        gone: list[int] = []
        stored = ConnectathonResult.objects.filter(event=event, id__lte=before).order_by("id")
        for pk in stored.values_list("id", flat=True).iterator(chunk_size=_BATCH):
            if pk not in kept:
                gone.append(pk)
            if len(gone) >= _BATCH:
                removed += ConnectathonResult.objects.filter(id__in=gone).delete()[0]
                gone = []
        if gone:
            removed += ConnectathonResult.objects.filter(id__in=gone).delete()[0]
    summary = ImportSummary(
        event=event.name,
        rows=counts["rows"],
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        removed=removed,
        unmatched_organisations=tuple(sorted(unmatched_orgs)),
        unmatched_systems=tuple(sorted(unmatched_systems)),
    )
    if summary.created or summary.updated or summary.removed:
        audit_record(obj=event, action="import_results", by=by, reason=str(summary))
    return summary


def connectathon_import(
    *,
    event: ConnectathonEvent,
    stream: IO[bytes],
    by,
    name: str = "results.csv",
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import a Gazelle results summary (CSV or XLSX): whole file or nothing.

    Two streaming passes over a seekable file: the first checks every row and refuses the
    file naming all bad rows; the second writes in batches inside one transaction. Memory
    stays flat whatever the size. Re-importing the same file changes nothing; a corrected
    file updates only the rows that differ.
    """
    aipos = _aipo_index()
    connectathon_check(stream=stream, name=name, aipos=aipos, progress=progress)
    stream.seek(0)
    with transaction.atomic():
        return _write_results(
            event=event, stream=stream, name=name, aipos=aipos, by=by, progress=progress
        )


# --- Import jobs: the page's upload runs as a Celery task and reports its progress ---


def _estimate_rows(stream: IO[bytes], name: str) -> int:
    """A quick upper bound for the progress bar before the first pass has counted."""
    if is_xlsx(name):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(stream, read_only=True)
            rows = workbook.worksheets[0].max_row or 0
            workbook.close()
        except Exception:  # noqa: BLE001 - the first pass reports an unreadable workbook
            rows = 0
        stream.seek(0)
        return max(rows - 1, 0)
    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    stream.seek(0)
    return lines


def connectathon_job_create(
    *,
    upload,
    event_name: str,
    organiser: str = "",
    location: str = "",
    start_date=None,
    end_date=None,
    by,
) -> ImportJob:
    """Keep the uploaded file under a generated name and queue its import."""
    from evidence.tasks import run_import_job

    if not permissions.is_officer(by):
        raise NotAllowed("Only a scheme officer can import Connectathon results.")
    extension = ".xlsx" if is_xlsx(upload.name) else ".csv"
    file_name = default_storage.save(f"connectathon-imports/{uuid.uuid4().hex}{extension}", upload)
    with transaction.atomic():
        job = ImportJob.objects.create(
            event_name=event_name,
            organiser=organiser,
            location=location,
            start_date=start_date,
            end_date=end_date,
            file_name=file_name,
            original_name=display_name(upload.name),
            created_by=by,
        )
        audit_record(obj=job, action="queue_import", by=by, reason=f"{job.original_name}")
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


class _ProgressWriter:
    """Writes a job's counters through a second database connection.

    The results are written in one transaction, whose changes (the job row's included)
    nobody sees before the commit; a worker thread has its own connection, so its updates
    commit at once and the page's bar moves while the transaction runs. SQLite serialises
    writers, so there the counters are kept in memory and saved at the end.
    """

    def __init__(self, job: ImportJob) -> None:
        self.job_id = job.pk
        self.threaded = connection.vendor != "sqlite"
        self.executor = ThreadPoolExecutor(max_workers=1) if self.threaded else None

    def __call__(self, **values) -> None:
        if self.executor is None:
            return
        self.executor.submit(self._update, values)

    def _update(self, values: dict) -> None:
        try:
            ImportJob.objects.filter(pk=self.job_id).update(**values)
        except Exception:  # noqa: BLE001 - progress is a courtesy, never a reason to fail
            log.exception("could not report the progress of import job %s", self.job_id)
        finally:
            connection.close()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)


def connectathon_job_run(*, job_id: int) -> ImportJob:
    """Run a queued import; running it again, during or after the first run, does nothing.

    A worker killed mid-import leaves the job checking or writing with nothing written (the
    results are one transaction): an operator re-queues it by setting it back to queued.
    """
    # Claim the job: a duplicate delivery of the task (acks_late) finds it taken and leaves.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.CHECKING
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        if job.status not in ImportJob.FINISHED:
            log.warning(
                "import job %s is already running (%s); not starting it again", job_id, job.status
            )
        return job
    writer = _ProgressWriter(job)

    def progress(phase: str, done: int) -> None:
        if phase == "checking":
            # Outside any transaction: this connection's update is seen at once.
            job.rows_checked = done
            ImportJob.objects.filter(pk=job.pk).update(rows_checked=done)
        else:
            job.rows_written = done
            writer(rows_written=done)

    try:
        with default_storage.open(job.file_name, "rb") as stream:
            job.rows_total = _estimate_rows(stream, job.file_name)
            job.save(update_fields=["rows_total"])
            aipos = _aipo_index()
            try:
                job.rows_total = connectathon_check(
                    stream=stream, name=job.file_name, aipos=aipos, progress=progress
                )
            except ImportRefused as refusal:
                writer.close()
                return _job_finish(
                    job,
                    status=ImportJob.Status.REFUSED,
                    message=str(refusal),
                    errors=[asdict(error) for error in refusal.errors],
                )
            job.rows_checked = job.rows_total
            job.status = ImportJob.Status.WRITING
            job.save(update_fields=["rows_total", "rows_checked", "status"])
            stream.seek(0)
            with transaction.atomic():
                event = ConnectathonEvent.objects.filter(name=job.event_name).first()
                if event is None:
                    event = connectathon_event_create(
                        name=job.event_name,
                        organiser=job.organiser,
                        location=job.location,
                        start_date=job.start_date,
                        end_date=job.end_date,
                        by=job.created_by,
                    )
                summary = _write_results(
                    event=event,
                    stream=stream,
                    name=job.file_name,
                    aipos=aipos,
                    by=job.created_by,
                    progress=progress,
                )
    except Exception as exc:
        writer.close()
        log.exception("import job %s failed", job.pk)
        _job_finish(job, status=ImportJob.Status.FAILED, message=f"The import failed: {exc}")
        raise
    writer.close()
    job.event = event
    job.rows_written = summary.rows
    job.created, job.updated, job.unchanged = summary.created, summary.updated, summary.unchanged
    job.removed = summary.removed
    job.unmatched = {
        "organisations": list(summary.unmatched_organisations),
        "systems": list(summary.unmatched_systems),
    }
    return _job_finish(job, status=ImportJob.Status.DONE, message=str(summary))


def _job_finish(job: ImportJob, *, status: str, message: str, errors=None) -> ImportJob:
    job.status = status
    job.message = message
    if errors is not None:
        job.errors = errors
    job.finished_at = timezone.now()
    job.save()
    # The upload has been read: only the results (or the refusal report) are kept.
    default_storage.delete(job.file_name)
    return job


def connectathon_event_create(
    *, name: str, organiser: str = "", location: str = "", start_date, end_date, by
) -> ConnectathonEvent:
    name = name.strip()
    if not name:
        raise ActionRefused("The event needs a name, e.g. IHE-Europe Connectathon 2026.")
    if not start_date or not end_date:
        raise ActionRefused(f"{name!r} is a new event: give its start and end dates.")
    if end_date < start_date:
        raise ActionRefused("The event cannot end before it starts.")
    with transaction.atomic():
        event = ConnectathonEvent.objects.create(
            name=name,
            organiser=organiser or "IHE",
            location=location,
            start_date=start_date,
            end_date=end_date,
        )
        audit_record(obj=event, action="create", by=by, reason=f"event {name}")
    return event


def connectathon_event_get_or_create(
    *, name: str, organiser: str = "", location: str = "", start_date=None, end_date=None, by
) -> ConnectathonEvent:
    event = ConnectathonEvent.objects.filter(name=name).first()
    if event is not None:
        return event
    return connectathon_event_create(
        name=name,
        organiser=organiser,
        location=location,
        start_date=start_date,
        end_date=end_date,
        by=by,
    )


# --- Aliases: Connectathon names mapped to our vendors and products ---


@dataclass(frozen=True)
class UnmatchedSystem:
    organisation_name: str
    system_name: str
    vendor_id: int
    vendor_name: str
    results: int


def unmatched_connectathon_names() -> tuple[list[tuple[str, int]], list[UnmatchedSystem]]:
    """Organisation names with no vendor, and systems of a known vendor with no product."""
    organisations = list(
        ConnectathonResult.objects.filter(vendor__isnull=True)
        .values_list("organisation_name")
        .annotate(n=Count("id"))
        .order_by("organisation_name")
    )
    systems = [
        UnmatchedSystem(org, system, vendor_id, vendor_name, n)
        for org, system, vendor_id, vendor_name, n in ConnectathonResult.objects.filter(
            vendor__isnull=False, product__isnull=True
        )
        .values_list("organisation_name", "system_name", "vendor_id", "vendor__name")
        .annotate(n=Count("id"))
        .order_by("organisation_name", "system_name")
    ]
    return organisations, systems


def connectathon_alias_create(
    *,
    kind: str,
    name: str,
    organisation: Organisation,
    product: Product | None = None,
    by,
) -> ConnectathonAlias:
    """Remember what a Connectathon name means and apply it to the results already there.

    Later imports resolve the name through the alias (see _Resolver).
    """
    if not permissions.is_officer(by):
        raise NotAllowed("Only a scheme officer can map Connectathon names.")
    if organisation.kind != Organisation.Kind.VENDOR:
        raise ActionRefused(f"{organisation.name} is not a vendor.")
    if kind == ConnectathonAlias.Kind.SYSTEM:
        if product is None or product.vendor_id != organisation.pk:
            raise ActionRefused(f"Choose one of {organisation.name}'s products for {name!r}.")
    elif kind != ConnectathonAlias.Kind.ORGANISATION:
        raise ActionRefused("An alias names an organisation or a system.")
    with transaction.atomic():
        # An organisation alias is one per name; a system alias one per name and vendor.
        scope = (
            {} if kind == ConnectathonAlias.Kind.ORGANISATION else {"organisation": organisation}
        )
        alias, _ = ConnectathonAlias.objects.update_or_create(
            kind=kind,
            name__iexact=name,
            **scope,
            defaults={"name": name, "organisation": organisation, "product": product},
            create_defaults={"name": name, "organisation": organisation, "product": product},
        )
        if kind == ConnectathonAlias.Kind.ORGANISATION:
            rows = ConnectathonResult.objects.filter(organisation_name__iexact=name)
            # A re-mapped organisation's systems were resolved among the old vendor's
            # products: forget them, then resolve among the new vendor's.
            rows.update(vendor=organisation, product=None)
            resolver = _Resolver()
            for system in rows.order_by().values_list("system_name", flat=True).distinct():
                product_id = resolver.product(organisation.pk, system)
                if product_id:
                    rows.filter(system_name=system).update(product_id=product_id)
        else:
            ConnectathonResult.objects.filter(vendor=organisation, system_name__iexact=name).update(
                product=product
            )
        target = organisation.name if product is None else f"{organisation.name} / {product}"
        audit_record(obj=alias, action="map_name", by=by, reason=f"{kind} {name!r} -> {target}")
    return alias


# --- Uploaded evidence files ---

UPLOAD_STATES = (
    Application.State.DRAFT,
    Application.State.SUBMITTED,
    Application.State.INFO_REQUESTED,
)


class TooLarge(ActionRefused):
    status_code = 413


def max_upload_bytes() -> int:
    return settings.EVIDENCE_MAX_UPLOAD_BYTES


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size} bytes"


def can_add_evidence(user, application: Application) -> bool:
    return application.state in UPLOAD_STATES and permissions.is_case_vendor(user, application)


# A CI pipeline pushes reports while the vendor prepares the case or answers a request for
# information; once submitted, the case is the officer's to read, not the pipeline's to change.
PUSH_STATES = (Application.State.DRAFT, Application.State.INFO_REQUESTED)


def check_can_push(application: Application) -> None:
    """The push endpoint's rule, stricter than the upload page's (see PUSH_STATES)."""
    if application.state not in PUSH_STATES:
        raise Conflict(
            f"{application.reference} is {application.get_state_display().lower()}: a CI "
            "pipeline can only push TestReports while the case is a draft or answering a "
            "request for information."
        )


def _check_can_add_evidence(application: Application, by, *, push: bool = False) -> None:
    if not permissions.is_case_vendor(by, application):
        raise NotAllowed("Only the vendor of the case can add evidence to it.")
    if push:
        check_can_push(application)
    if application.state not in UPLOAD_STATES:
        raise Conflict(
            f"{application.reference} is {application.get_state_display().lower()}: evidence "
            "can only be added while the case is a draft, submitted or answering a request "
            "for information."
        )


def check_upload_size(size: int) -> None:
    limit = max_upload_bytes()
    if size > limit:
        raise TooLarge(
            f"The file is {human_size(size)}; the limit is {human_size(limit)} ({limit:,} bytes)."
        )


def read_upload(upload) -> bytes:
    """The upload's bytes, stopping as soon as the limit is passed (a size can lie)."""
    check_upload_size(upload.size or 0)
    limit = max_upload_bytes()
    parts, read = [], 0
    for chunk in upload.chunks():
        read += len(chunk)
        if read > limit:
            check_upload_size(read)
        parts.append(chunk)
    return b"".join(parts)


def _claimed_subset(application: Application, aipos: Iterable[AIPO]) -> list[AIPO]:
    aipos = list(aipos)
    claimed = set(application.claims.values_list("aipo_id", flat=True))
    foreign = [str(a) for a in aipos if a.pk not in claimed]
    if foreign:
        raise ActionRefused(
            "Evidence can only support AIPOs the case claims; not claimed: "
            + "; ".join(foreign)
            + "."
        )
    return aipos


def _zip_limits() -> ZipLimits:
    return ZipLimits(
        max_entries=settings.EVIDENCE_ZIP_MAX_ENTRIES,
        max_total_bytes=settings.EVIDENCE_ZIP_MAX_TOTAL_BYTES,
        max_ratio=settings.EVIDENCE_ZIP_MAX_RATIO,
    )


def _stored_intact(name: str, digest: str, size: int) -> bool:
    """Whether the file at the hash name really holds those bytes (size, then SHA-256)."""
    try:
        if default_storage.size(name) != size:
            return False
        hasher = hashlib.sha256()
        with default_storage.open(name, "rb") as stored:
            for chunk in iter(lambda: stored.read(1024 * 1024), b""):
                hasher.update(chunk)
    except OSError:  # missing, or vanished while being checked
        return False
    return hasher.hexdigest() == digest


def _write_blob_file(name: str, data: bytes) -> None:
    """Write the bytes under their hash name so no reader ever sees a partial file.

    On the file system: a temporary file in the same directory, then an atomic rename over
    whatever is there (two identical uploads racing both write the same bytes). Other
    storages have no rename: save, and accept a file someone else saved meanwhile.
    """
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:
        if default_storage.exists(name):
            default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # a concurrent upload saved it first; ours got another name
            default_storage.delete(saved)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, settings.FILE_UPLOAD_PERMISSIONS or 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _store_blob(data: bytes, kind: str) -> EvidenceBlob:
    """Same bytes, same blob: the content's SHA-256 names the stored file.

    A file already at that name is only trusted once its size and hash are checked (a
    truncated or altered file is written again); "already there with the right content" is
    success, so identical uploads racing each other both succeed.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = evidence_storage_name(digest)
    if not _stored_intact(name, digest, len(data)):
        _write_blob_file(name, data)
        if not _stored_intact(name, digest, len(data)):
            raise RuntimeError(f"storage did not keep {name} intact")
    blob, _ = EvidenceBlob.objects.get_or_create(
        sha256=digest, defaults={"size": len(data), "kind": kind, "storage_name": name}
    )
    return blob


def _attach(
    *,
    application: Application,
    data: bytes,
    name: str,
    aipos: list[AIPO],
    by,
    description: str = "",
) -> EvidenceFile:
    """Check the bytes and link them to the case; the caller holds the transaction."""
    try:
        kind = file_kind(name=name, data=data)
        if kind == ZIP:
            check_zip(data, _zip_limits())
    except FileRefused as exc:
        raise ActionRefused(str(exc)) from None
    blob = _store_blob(data, kind)
    existing = EvidenceFile.objects.filter(application=application, blob=blob).first()
    if existing is not None:
        raise ActionRefused(
            f"This file is already attached to {application.reference} "
            f"as {existing.original_name!r}."
        )
    evidence = EvidenceFile.objects.create(
        application=application,
        blob=blob,
        original_name=display_name(name),
        description=description[:300],
        uploaded_by=by,
    )
    evidence.aipos.set(aipos)
    audit_record(
        obj=application,
        action="add_evidence",
        by=by,
        reason=f"{evidence.original_name} (sha256 {blob.sha256[:16]}…, {blob.size} bytes)",
    )
    return evidence


def evidence_file_upload(
    *,
    application: Application,
    upload,
    aipos: Iterable[AIPO] = (),
    by,
    description: str = "",
) -> EvidenceFile:
    """Attach an uploaded file to a case: size, type, ZIP safety checked before storing."""
    _check_can_add_evidence(application, by)
    aipos = _claimed_subset(application, aipos)
    data = read_upload(upload)
    with transaction.atomic():
        locked = Application.objects.select_for_update().get(pk=application.pk)
        _check_can_add_evidence(locked, by)
        return _attach(
            application=locked,
            data=data,
            name=upload.name or "file",
            aipos=aipos,
            by=by,
            description=description,
        )


def evidence_file_open(evidence: EvidenceFile):
    return default_storage.open(evidence.blob.storage_name, "rb")


def evidence_file_response(evidence: EvidenceFile) -> FileResponse:
    """The file's bytes as an attachment that no browser renders or runs in our origin;
    the download page and the API both answer with it."""
    response = FileResponse(
        evidence_file_open(evidence),
        content_type=CONTENT_TYPES.get(evidence.blob.kind, "application/octet-stream"),
    )
    response["Content-Disposition"] = content_disposition(
        evidence.original_name, fallback=f"evidence-{evidence.pk}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- FHIR TestReports ---


class TestReportRefused(ActionRefused):
    __test__ = False

    def __init__(self, problems: list[ReportProblem]) -> None:
        self.problems = problems
        listed = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"The TestReport was refused: {listed}{more}.")


def issued_instant(text: str | None) -> dt.datetime | None:
    """TestReport.issued (a FHIR dateTime) as an aware instant: a full date-time as sent, a
    date or a partial date ("2026", "2026-03") as its first instant, in UTC. The text itself
    is kept too (issued_text): "2026-03" is not the first of March."""
    if not text:
        return None
    try:
        if "T" in text:
            instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            parts = [int(part) for part in text.split("-")]
            instant = dt.datetime(*parts, *[1] * (3 - len(parts)), tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return None
    if timezone.is_naive(instant):
        instant = instant.replace(tzinfo=dt.UTC)
    return instant


def testreport_check(data: bytes) -> TestReportSummary:
    try:
        return parse_testreport(data)
    except TestReportInvalid as exc:
        raise TestReportRefused(exc.problems) from None


def testreport_ingest(
    *,
    application: Application,
    data: bytes,
    name: str = "testreport.json",
    aipos: Iterable[AIPO] = (),
    by,
    push: bool = False,
) -> FhirTestReport:
    """Store a TestReport's file and its summary, test by test and action by action.

    push: sent by a CI pipeline through the API, which only draft and information-requested
    cases accept.
    """
    _check_can_add_evidence(application, by, push=push)
    aipos = _claimed_subset(application, aipos)
    check_upload_size(len(data))
    summary = testreport_check(data)
    if extension_of(name) not in (".json", ".xml"):
        name = f"{name}.{'xml' if data.lstrip().startswith(b'<') else 'json'}"
    with transaction.atomic():
        locked = Application.objects.select_for_update().get(pk=application.pk)
        _check_can_add_evidence(locked, by, push=push)
        evidence = _attach(
            application=locked,
            data=data,
            name=name,
            aipos=aipos,
            by=by,
            description=f"FHIR TestReport {summary.name}".strip(),
        )
        report = FhirTestReport.objects.create(
            application=locked,
            evidence_file=evidence,
            fhir_version=summary.fhir_version,
            name=summary.name[:300],
            status=summary.status,
            result=summary.result,
            score=summary.score,
            tester=summary.tester[:300],
            issued=issued_instant(summary.issued),
            issued_text=(summary.issued or "")[:40],
            participants=list(summary.participants),
            warnings=list(summary.warnings),
            uploaded_by=by,
        )
        report.aipos.set(aipos)
        for position, test in enumerate(summary.tests):
            row = FhirTestReportTest.objects.create(
                report=report,
                position=position,
                section=test.section,
                name=test.name[:300],
                outcome=test.outcome,
            )
            FhirTestReportAction.objects.bulk_create(
                FhirTestReportAction(
                    test=row, position=index, kind=a.kind, result=a.result, message=a.message
                )
                for index, a in enumerate(test.actions)
            )
        audit_record(
            obj=locked,
            action="add_testreport",
            by=by,
            reason=f"FHIR TestReport {summary.name or evidence.original_name}: {summary.result}",
        )
    return report


# --- CapabilityStatement: which AIPOs to claim ---


@dataclass(frozen=True)
class ClaimSuggestions:
    suggested: list[AIPO]
    already_claimed: list[AIPO]
    unknown: list[str]
    not_in_catalogue: list[str]


def capability_suggestions(*, application: Application, data: bytes) -> ClaimSuggestions:
    try:
        declared = capability_canonicals(data)
    except CapabilityStatementInvalid as exc:
        raise ActionRefused(str(exc)) from None
    claimed = set(application.claims.values_list("aipo_id", flat=True))
    suggested: list[AIPO] = []
    already: list[AIPO] = []
    unknown: list[str] = []
    missing: list[str] = []
    table = canonical_table()
    for canonical in declared:
        triple = table.get(canonical)
        if triple is None:
            unknown.append(canonical)
            continue
        aipo = AIPO.objects.with_names().by_keywords(*triple).first()
        if aipo is None:
            missing.append(" / ".join(triple))
        elif aipo.pk in claimed:
            already.append(aipo)
        elif aipo not in suggested:
            suggested.append(aipo)
    return ClaimSuggestions(suggested, already, unknown, missing)


def application_add_claims(*, application: Application, aipos: Iterable[AIPO], by) -> None:
    """Add to the claims (the CapabilityStatement page), through the one claims service."""
    current = list(application.claimed_aipos.all())
    new = [a for a in aipos if a not in current]
    if not new:
        raise ActionRefused("Choose at least one AIPO that the case does not claim yet.")
    application_set_claims(application=application, aipos=current + new, by=by)


# --- The coverage matrix ---


@dataclass(frozen=True)
class CoverageCell:
    text: str
    status: str  # good | warn | bad | none: the cell's colour
    detail: str = ""


@dataclass(frozen=True)
class CoverageRow:
    aipo: AIPO
    connectathon: CoverageCell
    testreport: CoverageCell
    files: CoverageCell
    lab: CoverageCell


_GRADE_STATUS = {
    ConnectathonResult.Grade.PASSED: "good",
    ConnectathonResult.Grade.NO_PEER: "warn",
    ConnectathonResult.Grade.NOT_GRADED: "warn",
    ConnectathonResult.Grade.AT_RISK: "warn",
}
_REPORT_STATUS = {"pass": "good", "pending": "warn", "fail": "bad"}
_LAB_STATUS = {"pass": "good", "inconclusive": "warn", "not_applicable": "warn", "fail": "bad"}


def _grade_rank(result: ConnectathonResult) -> tuple:
    return (result.grade == ConnectathonResult.Grade.PASSED, result.event.end_date)


def coverage_rows(*, application: Application) -> list[CoverageRow]:
    from labs.models import TestRecord

    claims = list(application.claimed_aipos.with_names())
    ids = [a.pk for a in claims]
    best: dict[int, ConnectathonResult] = {}
    for result in ConnectathonResult.objects.filter(
        product_id=application.product_version.product_id, aipo_id__in=ids
    ).select_related("event"):
        current = best.get(result.aipo_id)
        if current is None or _grade_rank(result) > _grade_rank(current):
            best[result.aipo_id] = result
    reports: dict[int, list[FhirTestReport]] = {}
    for report in FhirTestReport.objects.filter(application=application).prefetch_related("aipos"):
        for aipo in report.aipos.all():
            reports.setdefault(aipo.pk, []).append(report)
    files: dict[int, list[str]] = {}
    for evidence in EvidenceFile.objects.filter(application=application).prefetch_related("aipos"):
        for aipo in evidence.aipos.all():
            files.setdefault(aipo.pk, []).append(evidence.original_name)
    records = {
        r.aipo_id: r
        for r in TestRecord.objects.filter(application=application, aipo_id__in=ids).current()
    }
    window_start = evidence_window_start()
    rows = []
    for aipo in claims:
        result = best.get(aipo.pk)
        if result is None:
            connectathon = CoverageCell("no result", "bad")
        elif result.event.end_date < window_start:
            # Too old to count (missing_connectathon_evidence ignores it too): shown, not green.
            connectathon = CoverageCell(
                f"{result.get_grade_display()} ({result.event.start_date:%Y}, too old)",
                "warn" if result.grade == ConnectathonResult.Grade.PASSED else "bad",
                f"{result.event.name}: before {window_start:%d %B %Y}, the start of the "
                f"{settings.EVIDENCE_MAX_AGE_YEARS}-year evidence window",
            )
        else:
            connectathon = CoverageCell(
                f"{result.get_grade_display()} ({result.event.start_date:%Y})",
                _GRADE_STATUS.get(result.grade, "bad"),
                result.event.name,
            )
        aipo_reports = reports.get(aipo.pk, [])
        if aipo_reports:
            latest = aipo_reports[0]  # newest first (Meta.ordering)
            testreport = CoverageCell(
                latest.result + (f" ({latest.score:g}%)" if latest.score is not None else ""),
                _REPORT_STATUS.get(latest.result, "bad"),
                f"{len(aipo_reports)} report(s); latest {latest.name or latest.pk}",
            )
        else:
            testreport = CoverageCell("none", "none")
        names = files.get(aipo.pk, [])
        file_cell = (
            CoverageCell(f"{len(names)} file(s)", "good", ", ".join(names))
            if names
            else CoverageCell("none", "none")
        )
        record = records.get(aipo.pk)
        lab = (
            CoverageCell(
                record.get_result_display(),
                _LAB_STATUS.get(record.result, "bad"),
                f"v{record.version}",
            )
            if record is not None
            else CoverageCell("not tested", "none")
        )
        rows.append(CoverageRow(aipo, connectathon, testreport, file_cell, lab))
    return rows
