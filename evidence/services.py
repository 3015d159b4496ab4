from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from cas.audit import audit_record
from cas.models import AIPO, Application, Organisation, Product
from evidence.importers import ImportRefused, ResultRow, RowError, iter_results_csv
from evidence.models import ConnectathonAlias, ConnectathonEvent, ConnectathonResult


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
    unmatched_organisations: tuple[str, ...]
    unmatched_systems: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.event}: {self.rows} rows, {self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged; unmatched organisations: "
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


def _aipo_key(row: ResultRow) -> tuple[str, str, str]:
    return (row.profile.lower(), row.actor.lower(), (row.option or "NONE").lower())


def connectathon_import(*, event: ConnectathonEvent, stream: IO, by) -> ImportSummary:
    """Import a Gazelle results summary: whole file or nothing; re-import changes nothing."""
    aipos = {
        (a.profile.keyword.lower(), a.actor.keyword.lower(), a.option.keyword.lower()): a.pk
        for a in AIPO.objects.with_names()
    }
    rows: list[ResultRow] = []
    errors: list[RowError] = []
    # One pass that collects every problem, so a refused file names all its bad rows at once.
    for item in iter_results_csv(stream=stream):
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
            rows.append(item)
    if errors:
        raise ImportRefused(sorted(errors, key=lambda error: error.line))

    resolver = _Resolver()
    existing = {
        (r.organisation_name, r.system_name, r.aipo_id): r
        for r in ConnectathonResult.objects.filter(event=event)
    }
    created = updated = unchanged = 0
    unmatched_orgs: set[str] = set()
    unmatched_systems: set[str] = set()
    with transaction.atomic():
        for row in rows:
            aipo_id = aipos[
                (row.profile.lower(), row.actor.lower(), (row.option or "NONE").lower())
            ]
            vendor_id = resolver.vendor(row.organisation)
            product_id = resolver.product(vendor_id, row.system)
            if vendor_id is None:
                unmatched_orgs.add(row.organisation)
            elif product_id is None:
                unmatched_systems.add(f"{row.organisation} / {row.system}")
            values = {
                "grade": row.grade,
                "raw_grade": row.raw_grade,
                "test_type": row.type,
                "vendor_id": vendor_id,
                "product_id": product_id,
            }
            current = existing.get((row.organisation, row.system, aipo_id))
            if current is None:
                ConnectathonResult.objects.create(
                    event=event,
                    organisation_name=row.organisation,
                    system_name=row.system,
                    aipo_id=aipo_id,
                    imported_by=by,
                    **values,
                )
                created += 1
            elif any(getattr(current, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(current, key, value)
                current.imported_by = by
                current.save()
                updated += 1
            else:
                unchanged += 1
        summary = ImportSummary(
            event=event.name,
            rows=len(rows),
            created=created,
            updated=updated,
            unchanged=unchanged,
            unmatched_organisations=tuple(sorted(unmatched_orgs)),
            unmatched_systems=tuple(sorted(unmatched_systems)),
        )
        if created or updated:
            audit_record(obj=event, action="import_results", by=by, reason=str(summary))
    return summary


def connectathon_event_get_or_create(
    *, name: str, location: str = "", start_date=None, end_date=None, by
) -> ConnectathonEvent:
    event = ConnectathonEvent.objects.filter(name=name).first()
    if event is not None:
        return event
    with transaction.atomic():
        event = ConnectathonEvent.objects.create(
            name=name, location=location, start_date=start_date, end_date=end_date
        )
        audit_record(obj=event, action="create", by=by, reason=f"event {name}")
    return event
