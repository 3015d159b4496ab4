"""The public Connectathon Results Matrix: who passed what at an event, as IHE publishes it.

Only `passed` results are published (IHE publishes passes only: no failed, partial, no-peer
or withdrawn attempts). Rows are an organisation's system, columns a profile's actor, a cell
the options that passed, and each cell names the certificates that rest on it: those of the
result's product whose granted scope holds the AIPO.

An event can hold a million results, so every read is bounded: a page of rows, at most
MAX_COLUMNS columns, and a fixed number of queries whatever the page size; the downloads
stream in keyset-paginated chunks, two queries a chunk.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Min, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from cas.models import AIPO
from certificates.models import Certificate
from certificates.registry import STATUS_LABELS, shown_status
from evidence.models import ConnectathonEvent, ConnectathonResult
from evidence.services import evidence_window_start

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# Wider than this, a table stops being readable (and its page stops being small): the rest
# of the columns are offered as profile filters instead.
MAX_COLUMNS = 40
EXPORT_CHUNK = 2000
NO_OPTION = "NONE"


@dataclass(frozen=True)
class MatrixFilters:
    organisation: str = ""
    profile: str = ""
    actor: str = ""
    domain: str = ""

    @classmethod
    def from_query(cls, query: QueryDict) -> MatrixFilters:
        def clean(name: str, limit: int) -> str:
            return (query.get(name) or "").replace("\x00", "").strip()[:limit]

        return cls(
            organisation=clean("organisation", 100),
            profile=clean("profile", 40),
            actor=clean("actor", 60),
            domain=clean("domain", 20),
        )

    def as_query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}

    @property
    def any(self) -> bool:
        return bool(self.as_query())


@dataclass(frozen=True)
class CertificateRef:
    number: str
    status: str
    status_display: str


@dataclass(frozen=True)
class Column:
    domain: str
    profile: str
    profile_name: str
    actor: str
    actor_name: str


@dataclass
class Cell:
    options: list[str] = field(default_factory=list)
    certificates: list[CertificateRef] = field(default_factory=list)

    @property
    def baseline(self) -> bool:
        return NO_OPTION in self.options

    @property
    def named_options(self) -> list[str]:
        return [o for o in self.options if o != NO_OPTION]


@dataclass
class Row:
    organisation: str
    system: str
    cells: list[Cell | None]


@dataclass(frozen=True)
class ColumnGroup:
    profile: str
    profile_name: str
    span: int


@dataclass
class Matrix:
    event: ConnectathonEvent
    filters: MatrixFilters
    page: Page
    columns: list[Column]
    groups: list[ColumnGroup]
    rows: list[Row]
    # Profiles present on this page but not shown because the table would be too wide.
    hidden_profiles: list[str]
    choices: dict[str, list[str]]


@dataclass(frozen=True)
class ExportRow:
    event: str
    organisation: str
    system: str
    domain: str
    profile: str
    actor: str
    option: str
    certificates: tuple[CertificateRef, ...]


def passed_results(*, event: ConnectathonEvent, filters: MatrixFilters) -> QuerySet:
    results = ConnectathonResult.objects.filter(event=event, grade=ConnectathonResult.Grade.PASSED)
    if filters.organisation:
        results = results.filter(
            Q(organisation_name__icontains=filters.organisation)
            | Q(system_name__icontains=filters.organisation)
        )
    if filters.profile:
        results = results.filter(aipo__profile__keyword__iexact=filters.profile)
    if filters.actor:
        results = results.filter(aipo__actor__keyword__iexact=filters.actor)
    if filters.domain:
        results = results.filter(aipo__profile__domain__keyword__iexact=filters.domain)
    return results


def certificates_resting_on(
    pairs: Iterable[tuple[int | None, int]],
    *,
    event: ConnectathonEvent,
    today: dt.date | None = None,
) -> dict[tuple[int, int], list[CertificateRef]]:
    """Public certificates per (product id, AIPO id) that this event's pass can back: one
    query for any number of pairs.

    A pass backs a certificate of the result's product whose granted scope holds the AIPO,
    only if the case rules could have counted it (evidence.services): the event ended on or
    before the decision, and inside the evidence window before it (EVIDENCE_MAX_AGE_YEARS).
    The status is the one the registry shows (an active certificate past its end is expired).
    """
    wanted = {(product, aipo) for product, aipo in pairs if product is not None}
    if not wanted:
        return {}
    today = today or timezone.localdate()
    found = (
        Certificate.objects.public()
        .filter(
            application__product_version__product_id__in={p for p, _ in wanted},
            application__claims__granted=True,
            application__claims__aipo_id__in={a for _, a in wanted},
            decision_date__gte=event.end_date,
        )
        .annotate(shown=shown_status(today))
        .order_by("number")
        .values_list(
            "application__product_version__product_id",
            "application__claims__aipo_id",
            "number",
            "shown",
            "decision_date",
        )
    )
    resting: dict[tuple[int, int], list[CertificateRef]] = defaultdict(list)
    for product, aipo, number, status, decided in found:
        if (product, aipo) not in wanted:
            continue
        if event.end_date < evidence_window_start(decided):
            continue  # too old to count when the certificate was decided
        resting[(product, aipo)].append(CertificateRef(number, status, STATUS_LABELS[status]))
    return resting


def _choices(event: ConnectathonEvent) -> dict[str, list[str]]:
    """The domains, profiles and actors with a pass at the event: one query."""
    # The distinct AIPOs first (a hash of one integer column), then their names: joining the
    # catalogue to every one of a million results before the DISTINCT costs four times more.
    passed = ConnectathonResult.objects.filter(
        event=event, grade=ConnectathonResult.Grade.PASSED
    ).values("aipo_id")
    present = (
        AIPO.objects.filter(pk__in=passed)
        .order_by()
        .values_list("profile__domain__keyword", "profile__keyword", "actor__keyword")
        .distinct()
    )
    domains, profiles, actors = set(), set(), set()
    for domain, profile, actor in present:
        domains.add(domain)
        profiles.add(profile)
        actors.add(actor)
    return {
        "domains": sorted(domains),
        "profiles": sorted(profiles, key=str.casefold),
        "actors": sorted(actors),
    }


def page_size_from(value: str | None) -> int:
    try:
        size = int(value or DEFAULT_PAGE_SIZE)
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


def results_matrix(
    *,
    event: ConnectathonEvent,
    filters: MatrixFilters,
    page_number: str | int | None = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Matrix:
    """One page of the matrix in five queries (count, rows, cells, certificates, choices);
    the page adds one for the event: six in all, whatever the page size."""
    results = passed_results(event=event, filters=filters)
    # A row is one system, named as the import first spelled it ("HELIX" and "Helix" are one).
    systems = (
        results.order_by("name_key")
        .values("name_key")
        .annotate(organisation=Min("organisation_name"), system=Min("system_name"))
    )
    page = Paginator(systems, page_size).get_page(page_number)
    names = {s["name_key"]: s for s in page.object_list}

    found = (
        results.filter(name_key__in=list(names))
        .order_by("aipo__profile__keyword", "aipo__actor__keyword", "aipo__option__keyword")
        .values_list(
            "name_key",
            "product_id",
            "aipo_id",
            "aipo__profile__domain__keyword",
            "aipo__profile__keyword",
            "aipo__profile__name",
            "aipo__actor__keyword",
            "aipo__actor__name",
            "aipo__option__keyword",
        )
        if names
        else []
    )
    found = list(found)
    resting = certificates_resting_on(((r[1], r[2]) for r in found), event=event)

    columns: dict[tuple[str, str], Column] = {}
    for _, _, _, domain, profile, profile_name, actor, actor_name, _ in found:
        columns.setdefault(
            (profile, actor), Column(domain, profile, profile_name, actor, actor_name)
        )
    shown, hidden_profiles = _bounded(list(columns.values()))
    position = {(c.profile, c.actor): i for i, c in enumerate(shown)}

    rows = {
        key: Row(s["organisation"], s["system"], [None] * len(shown)) for key, s in names.items()
    }
    for key, product, aipo, _, profile, _, actor, _, option in found:
        index = position.get((profile, actor))
        if index is None:
            continue
        cell = rows[key].cells[index]
        if cell is None:
            cell = rows[key].cells[index] = Cell()
        if option not in cell.options:
            cell.options.append(option)
        for certificate in resting.get((product, aipo), []):
            if certificate not in cell.certificates:
                cell.certificates.append(certificate)

    groups: list[ColumnGroup] = []
    for column in shown:
        if groups and groups[-1].profile == column.profile:
            last = groups[-1]
            groups[-1] = ColumnGroup(last.profile, last.profile_name, last.span + 1)
        else:
            groups.append(ColumnGroup(column.profile, column.profile_name, 1))
    return Matrix(
        event=event,
        filters=filters,
        page=page,
        columns=shown,
        groups=groups,
        rows=list(rows.values()),
        hidden_profiles=hidden_profiles,
        choices=_choices(event),
    )


def _bounded(columns: list[Column]) -> tuple[list[Column], list[str]]:
    """At most MAX_COLUMNS columns, cut between profiles where possible."""
    if len(columns) <= MAX_COLUMNS:
        return columns, []
    shown: list[Column] = []
    profiles: list[str] = []
    for column in columns:
        if column.profile not in profiles:
            profiles.append(column.profile)
    for profile in profiles:
        group = [c for c in columns if c.profile == profile]
        if shown and len(shown) + len(group) > MAX_COLUMNS:
            break
        shown.extend(group[: MAX_COLUMNS - len(shown)])
    kept = {c.profile for c in shown}
    return shown, [p for p in profiles if p not in kept]


def matrix_export_rows(*, event: ConnectathonEvent, filters: MatrixFilters) -> Iterator[ExportRow]:
    """Every passed result under the filters, one by one, in chunks of EXPORT_CHUNK.

    Keyset pagination on (name_key, aipo), unique within an event, keeps each chunk's query
    as cheap as the first however deep the download goes."""
    results = passed_results(event=event, filters=filters).order_by("name_key", "aipo_id")
    after: tuple[str, int] | None = None
    while True:
        chunk_query = results
        if after is not None:
            chunk_query = results.filter(
                Q(name_key__gt=after[0]) | Q(name_key=after[0], aipo_id__gt=after[1])
            )
        chunk = list(
            chunk_query.values_list(
                "name_key",
                "aipo_id",
                "product_id",
                "organisation_name",
                "system_name",
                "aipo__profile__domain__keyword",
                "aipo__profile__keyword",
                "aipo__actor__keyword",
                "aipo__option__keyword",
            )[:EXPORT_CHUNK]
        )
        if not chunk:
            return
        resting = certificates_resting_on(((r[2], r[1]) for r in chunk), event=event)
        for _, aipo, product, organisation, system, domain, profile, actor, option in chunk:
            yield ExportRow(
                event=event.name,
                organisation=organisation,
                system=system,
                domain=domain,
                profile=profile,
                actor=actor,
                option=option,
                certificates=tuple(resting.get((product, aipo), ())),
            )
        if len(chunk) < EXPORT_CHUNK:
            return
        after = (chunk[-1][0], chunk[-1][1])
