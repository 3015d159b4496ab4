"""The public registry: search, downloads and charts over public certificates, read only.

One search service serves the registry page, the vendor and lab pages and the public API, so
they filter alike and run the same bounded queries whatever the filters and the page size:
the AIPOs the scope filters name, the vendors / labs / products the text filters name and
the certificate numbers the free text matches (each only when used, each one small query), a
count that stops at COUNT_CAP, and one page of certificates with their application; nothing
per row. Resolving names to ids first keeps 100,000 certificates fast: the database then
knows how many rows an id has, where a name pattern inside the search leaves it guessing.
Scope filters must hold for one AIPO of the granted scope.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import ExtractYear
from django.utils import timezone

from cas.csvsafe import csv_safe_row
from cas.errors import ActionRefused
from cas.models import AIPO, ClaimedAIPO, Organisation, Product, Profile
from certificates.models import PRINTED_VERSION, Certificate

Status = Certificate.Status
DEFAULT_PAGE_SIZE = 25
MIN_PAGE_SIZE = 10
MAX_PAGE_SIZE = 200
MAX_PAGE = 100_000

# What each public status means for a buyer: the legend of the certificate page, the
# registry page and the download's column dictionary.
STATUS_LEGEND: tuple[tuple[str, str, str], ...] = (
    (
        Status.ACTIVE,
        "Active",
        "Certified: the product version conforms to the listed scope, and the certificate is "
        "within its validity period. You can rely on it.",
    ),
    (
        Status.SUSPENDED,
        "Suspended",
        "Temporarily not valid while the certification body looks into a problem. Do not rely "
        "on it until it is reinstated; if unresolved it is withdrawn.",
    ),
    (
        Status.WITHDRAWN,
        "Withdrawn",
        "Ended at the vendor's request or by the certification body (e.g. an unresolved "
        "suspension, a discontinued product). No longer valid.",
    ),
    (
        Status.REVOKED,
        "Revoked",
        "Cancelled by the certification body because the product or the vendor no longer met "
        "the scheme's requirements. No longer valid.",
    ),
    (
        Status.EXPIRED,
        "Expired",
        "Its validity period has ended. It said nothing wrong, but it no longer vouches for the "
        "product; look for a newer certificate.",
    ),
    (
        Status.SUPERSEDED,
        "Superseded",
        "Replaced by a newer certificate (linked on its page), for example after a scope change. "
        "Rely on the replacement.",
    ),
)
STATUS_LABELS = {code: label for code, label, _ in STATUS_LEGEND}
PUBLIC_STATUSES = [code for code, _, _ in STATUS_LEGEND]


# What a certificate number can look like (capitals, digits, dashes), for the paging cursors.
NUMBER_PATTERN = r"^[A-Za-z0-9-]{1,30}$"


class InvalidRegistryQuery(ActionRefused):
    """A search parameter the registry cannot use; the message names it (400 in the API)."""


# --- The filters ---


class RegistryFilterForm(forms.Form):
    """Parses and checks the GET parameters; every field is optional."""

    q = forms.CharField(label="Search", max_length=100, required=False)
    vendor = forms.CharField(max_length=100, required=False)
    product = forms.CharField(max_length=100, required=False)
    version = forms.CharField(max_length=60, required=False)
    domain = forms.CharField(max_length=20, required=False)
    profile = forms.CharField(max_length=80, required=False)
    actor = forms.CharField(max_length=200, required=False)
    option = forms.CharField(max_length=300, required=False)
    status = forms.ChoiceField(
        choices=[("", "Any")] + [(c, label) for c, label, _ in STATUS_LEGEND], required=False
    )
    lab = forms.CharField(max_length=100, required=False)
    issued_from = forms.DateField(label="Decided from", required=False)
    issued_to = forms.DateField(label="Decided until", required=False)
    expires_from = forms.DateField(label="Expires from", required=False)
    expires_to = forms.DateField(label="Expires until", required=False)
    page = forms.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)
    page_size = forms.IntegerField(
        label="Page size", min_value=MIN_PAGE_SIZE, max_value=MAX_PAGE_SIZE, required=False
    )
    after = forms.RegexField(
        label="After", regex=NUMBER_PATTERN, max_length=30, required=False, strip=True
    )
    before = forms.RegexField(
        label="Before", regex=NUMBER_PATTERN, max_length=30, required=False, strip=True
    )

    def clean_after(self):
        return self.cleaned_data["after"].upper()

    def clean_before(self):
        return self.cleaned_data["before"].upper()

    def clean(self):
        data = super().clean()
        if data.get("after") and data.get("before"):
            raise forms.ValidationError("Give after or before, not both.")
        if (data.get("after") or data.get("before")) and (data.get("page") or 1) > 1:
            raise forms.ValidationError(
                "Give a page number or after/before (a certificate number), not both."
            )
        for start, end in (("issued_from", "issued_to"), ("expires_from", "expires_to")):
            if data.get(start) and data.get(end) and data[start] > data[end]:
                raise forms.ValidationError(
                    f"{self.fields[start].label} ({data[start]}) is after "
                    f"{self.fields[end].label.lower()} ({data[end]})."
                )
        return data


@dataclass(frozen=True)
class RegistryFilters:
    q: str = ""
    vendor: str = ""
    product: str = ""
    version: str = ""
    domain: str = ""
    profile: str = ""
    actor: str = ""
    option: str = ""
    status: str = ""
    lab: str = ""
    issued_from: dt.date | None = None
    issued_to: dt.date | None = None
    expires_from: dt.date | None = None
    expires_to: dt.date | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    # Paging by certificate number (keyset): the page of numbers just below `after`, or
    # just above `before`. The links past the counted certificates use them.
    after: str = ""
    before: str = ""
    # Set by the vendor and lab pages, never from the query string.
    vendor_id: int | None = field(default=None, compare=False)
    lab_id: int | None = field(default=None, compare=False)

    def params(self, **changes) -> dict[str, str]:
        """The non-empty GET parameters of these filters (page 1 and the default size left out)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name in PARAMETERS}
        values.update(changes)
        return {
            name: str(value)
            for name, value in values.items()
            if value not in ("", None)
            and not (name == "page" and value == 1)
            and not (name == "page_size" and value == DEFAULT_PAGE_SIZE)
        }

    def query_string(self, **changes) -> str:
        """These filters' query string with `changes`; a page number or a cursor given in
        `changes` replaces the other ways of paging."""
        if {"page", "after", "before"} & set(changes):
            changes = {"page": 1, "after": "", "before": ""} | changes
        return urlencode(self.params(**changes))

    @property
    def any_set(self) -> bool:
        return bool(set(self.params()) - {"page", "page_size", "after", "before"})

    @property
    def cursor(self) -> bool:
        return bool(self.after or self.before)


PARAMETERS = tuple(RegistryFilterForm.base_fields)
# What the vendor and lab pages take (their certificates, unfiltered).
PAGING = ("page", "page_size", "after", "before")
PARAMETER_HELP = {
    "q": "Free text: part of a certificate number, vendor name or product name (names as "
    "they are today: after a rename, the new name finds the certificates printed with the old).",
    "vendor": "Part of the vendor's name as it is today.",
    "product": "Part of the product's name as it is today.",
    "version": "The exact product version printed on the certificate, e.g. 5.1 (case matters).",
    "domain": "IHE domain keyword, e.g. ITI, RAD.",
    "profile": "Integration profile keyword, e.g. XDS.b, PIX (or its full name).",
    "actor": "Actor keyword or name, e.g. DOC_CONSUMER.",
    "option": "Option keyword or name; NONE is a profile's baseline.",
    "status": "One of " + ", ".join(PUBLIC_STATUSES) + " (active = not past its validity end).",
    "lab": "Part of the test laboratory's name as it is today.",
    "issued_from": "Decision date on or after (YYYY-MM-DD).",
    "issued_to": "Decision date on or before (YYYY-MM-DD).",
    "expires_from": "Valid until on or after (YYYY-MM-DD).",
    "expires_to": "Valid until on or before (YYYY-MM-DD).",
    "page": "Page number, from 1. Past the counted certificates (see count_capped), follow "
    "the next and previous links, which page by certificate number.",
    "after": "A certificate number: the page of certificates numbered just below it (the "
    "search's order is newest number first). Used by the next links past the counted "
    "certificates; not with page.",
    "before": "A certificate number: the page of certificates numbered just above it. Used by "
    "the previous links; not with page or after.",
    "page_size": f"Certificates per page, {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE} "
    f"(default {DEFAULT_PAGE_SIZE}).",
}


def registry_filters_from(params: Mapping[str, str], **fixed) -> RegistryFilters:
    """The filters of a query string; InvalidRegistryQuery names every bad parameter."""
    form = RegistryFilterForm({name: params.get(name, "") for name in PARAMETERS})
    if not form.is_valid():
        problems = []
        for name, errors in form.errors.items():
            label = "" if name == "__all__" else f"{form.fields[name].label or name.title()}: "
            problems.extend(f"{label}{message}" for message in errors)
        raise InvalidRegistryQuery("Check the search: " + " ".join(problems))
    data = {k: (v.strip() if isinstance(v, str) else v) for k, v in form.cleaned_data.items()}
    data["page"] = data.get("page") or 1
    data["page_size"] = data.get("page_size") or DEFAULT_PAGE_SIZE
    return RegistryFilters(**data, **fixed)


# --- The search ---


def shown_status(today: dt.date) -> Case:
    """The status a buyer should see: an active certificate past its end date is expired."""
    return Case(
        When(status=Status.ACTIVE, valid_until__lt=today, then=Value(Status.EXPIRED)),
        default=F("status"),
        output_field=CharField(),
    )


def active_q(today: dt.date) -> Q:
    return Q(status=Status.ACTIVE, valid_until__gte=today)


def _scope_aipo_ids(filters: RegistryFilters) -> list[int] | None:
    """The AIPOs that have every scope filter given (one small query), or None if none is set.

    Resolving them first lets the database pick the claims by AIPO id, whose statistics it
    knows, rather than guess how many certificates a keyword matches."""
    aipos = AIPO.objects.all()
    used = False
    if filters.domain:
        aipos = aipos.filter(profile__domain__keyword__iexact=filters.domain)
        used = True
    for name in ("profile", "actor", "option"):
        value = getattr(filters, name)
        if value:
            aipos = aipos.filter(
                Q(**{f"{name}__keyword__iexact": value}) | Q(**{f"{name}__name__iexact": value})
            )
            used = True
    return list(aipos.values_list("pk", flat=True)) if used else None


def _name_matches(filters: RegistryFilters) -> dict[str, list[int]]:
    """Ids of the vendors, labs and products whose names the text filters match: one query
    (organisations and products united), or none when no text filter is set.

    With ids in hand the database knows how many applications each has; a name pattern
    inside the search would leave it guessing (and often guessing one). Keys: q_vendors,
    q_products, vendor, lab, product."""
    wanted = {
        "q_vendors": (filters.q, "vendor"),
        "vendor": (filters.vendor, "vendor"),
        "lab": (filters.lab, "lab"),
        "q_products": (filters.q, "product"),
        "product": (filters.product, "product"),
    }
    wanted = {key: (text, kind) for key, (text, kind) in wanted.items() if text}
    found: dict[str, list[int]] = {key: [] for key in ("q_vendors", "q_products", "vendor")}
    found |= {"lab": [], "product": []}
    if not wanted:
        return found
    organisations, products = Q(), Q()
    for text, kind in wanted.values():
        if kind == "product":
            products |= Q(name__icontains=text)
        else:
            organisations |= Q(kind=kind, name__icontains=text)
    rows = Organisation.objects.none().values_list("pk", "kind", "name")
    if organisations:
        rows = Organisation.objects.filter(organisations).order_by()
        rows = rows.values_list("pk", "kind", "name")
    if products:
        product_rows = Product.objects.filter(products).order_by()
        product_rows = product_rows.values_list("pk", Value("product"), "name")
        rows = product_rows if not organisations else rows.union(product_rows, all=True)
    for pk, kind, name in rows:
        for key, (text, wanted_kind) in wanted.items():
            if kind == wanted_kind and text.casefold() in name.casefold():
                found[key].append(pk)
    return found


# Certificate numbers matching the free text are looked up from the number index alone (fast)
# when there are at most this many; beyond, the search matches them itself (a full read).
NUMBER_MATCHES_MAX = 10_000


def _number_matches(q: str) -> list[str] | None:
    if not any(ch.isdigit() for ch in q):  # numbers are capitals and digits
        return []
    numbers = list(
        Certificate.objects.filter(number__contains=q.upper())
        .order_by()
        .values_list("number", flat=True)[: NUMBER_MATCHES_MAX + 1]
    )
    return None if len(numbers) > NUMBER_MATCHES_MAX else numbers


def registry_search(*, filters: RegistryFilters, today: dt.date | None = None) -> QuerySet:
    """Public certificates matching the filters, newest number first, with `shown_status`."""
    today = today or timezone.localdate()
    # The public statuses listed (not "everything but issuing"), so that the status index
    # answers counts without reading the table.
    certificates = Certificate.objects.filter(status__in=PUBLIC_STATUSES)
    names = _name_matches(filters)
    if filters.q:
        # Each way of matching is one id set; an OR across joined tables would make the
        # database read every certificate, so several sets are united instead.
        q = filters.q
        parts = []
        if names["q_vendors"]:
            parts.append(Q(application__vendor_id__in=names["q_vendors"]))
        if names["q_products"]:
            parts.append(Q(application__product_version__product_id__in=names["q_products"]))
        numbers = _number_matches(q)
        if numbers is None:
            parts.append(Q(number__contains=q.upper()))
        elif numbers:
            parts.append(Q(number__in=numbers))
        if not parts:
            certificates = certificates.none()
        elif len(parts) == 1:
            certificates = certificates.filter(parts[0])
        else:
            first, *others = [Certificate.objects.filter(p).order_by().values("pk") for p in parts]
            certificates = certificates.filter(pk__in=first.union(*others, all=True))
    if filters.vendor:
        certificates = certificates.filter(application__vendor_id__in=names["vendor"])
    if filters.product:
        certificates = certificates.filter(
            application__product_version__product_id__in=names["product"]
        )
    if filters.version:
        # The version printed on the certificate (what the results show), from its own index.
        certificates = certificates.alias(printed_version=PRINTED_VERSION).filter(
            printed_version=filters.version
        )
    if filters.lab:
        certificates = certificates.filter(application__lab_id__in=names["lab"])
    if filters.vendor_id is not None:
        certificates = certificates.filter(application__vendor_id=filters.vendor_id)
    if filters.lab_id is not None:
        certificates = certificates.filter(application__lab_id=filters.lab_id)
    if filters.status == Status.ACTIVE:
        certificates = certificates.filter(active_q(today))
    elif filters.status == Status.EXPIRED:
        certificates = certificates.filter(
            Q(status=Status.EXPIRED) | Q(status=Status.ACTIVE, valid_until__lt=today)
        )
    elif filters.status:
        certificates = certificates.filter(status=filters.status)
    for name, lookup in (
        ("issued_from", "decision_date__gte"),
        ("issued_to", "decision_date__lte"),
        ("expires_from", "valid_until__gte"),
        ("expires_to", "valid_until__lte"),
    ):
        if getattr(filters, name):
            certificates = certificates.filter(**{lookup: getattr(filters, name)})
    aipo_ids = _scope_aipo_ids(filters)
    if aipo_ids is not None:
        certificates = certificates.filter(
            Exists(
                ClaimedAIPO.objects.filter(
                    application=OuterRef("application_id"), granted=True, aipo_id__in=aipo_ids
                )
            )
        )
    return (
        certificates.select_related("application")
        .annotate(shown_status=shown_status(today))
        .order_by("-number")
    )


@dataclass
class RegistryPage:
    """One page of a search, paged by number (page=N) or by certificate number (after /
    before, past the counted certificates: every match stays reachable)."""

    filters: RegistryFilters
    certificates: list[Certificate]
    count: int
    # True when more certificates match than the count cap: `count` is then the cap.
    count_capped: bool
    # None when paged by certificate number (the position is then not known).
    page: int | None
    # The pages of the counted certificates; when count_capped, more follow.
    num_pages: int
    has_previous: bool = False
    has_next: bool = False

    def _query(self, **changes) -> str:
        return self.filters.query_string(**changes)

    @property
    def first_query(self) -> str:
        return self._query(page=1)

    @property
    def previous_query(self) -> str:
        if self.page is not None:
            return self._query(page=self.page - 1)
        if not self.certificates:
            return self.first_query
        return self._query(before=self.certificates[0].number)

    @property
    def next_query(self) -> str:
        # Page numbers while the next page starts among the counted certificates (cheap
        # offsets); past them, the certificate number keeps every page as cheap as the first.
        if self.page is not None and self.page * self.filters.page_size < self.count:
            return self._query(page=self.page + 1)
        if not self.certificates:
            return self.first_query
        return self._query(after=self.certificates[-1].number)

    @property
    def last_query(self) -> str:
        """Only when the count is exact; '' otherwise (the last page is not known)."""
        return "" if self.count_capped else self._query(page=self.num_pages)

    @property
    def first_index(self) -> int:
        if self.page is None or not self.certificates:
            return 0
        return (self.page - 1) * self.filters.page_size + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.certificates) - 1 if self.first_index else 0

    @property
    def first_number(self) -> str:
        return self.certificates[0].number if self.certificates else ""

    @property
    def last_number(self) -> str:
        return self.certificates[-1].number if self.certificates else ""

    @property
    def paged(self) -> bool:
        return self.has_previous or self.has_next


# Counting every match of a broad search costs a pass over the whole registry (at 100,000
# certificates, 0.4 to 1.7 s on PostgreSQL): past this many the page says "more than", and
# the next links page on by certificate number. REGISTRY_COUNT_CAP overrides it.
COUNT_CAP = 1_000


def count_cap_setting() -> int:
    return int(getattr(settings, "REGISTRY_COUNT_CAP", COUNT_CAP))


def _no_page(page: int, pages: int, *, at_least: bool = False) -> InvalidRegistryQuery:
    if at_least:
        return InvalidRegistryQuery(
            f"Check the search: there is no page {page}; the search has fewer than {page} pages."
        )
    return InvalidRegistryQuery(
        f"Check the search: there is no page {page}; the search has "
        f"{pages} page{'s' if pages != 1 else ''}."
    )


# What a result row shows (the page and the API): the signatures, keys and PDF are left out.
RESULT_FIELDS = (
    "number",
    "status",
    "content",
    "decision_date",
    "valid_from",
    "valid_until",
    "application__vendor_id",
    "application__lab_id",
)


@contextmanager
def _serial_plans() -> Iterator[None]:
    """On PostgreSQL, no parallel workers for the search's queries (one SET LOCAL, undone at
    the end of the transaction). They are short and index-bound: starting workers cost more
    than it saved (bench/registry.py at 100,000 certificates on two loaded cores: p95 of the
    page 72 -> 51 ms, of the API 65 -> 45 ms)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def registry_page(*, filters: RegistryFilters, count_cap: int | None = None) -> RegistryPage:
    """One page of the search: the names and AIPO ids the filters need, a count that stops at
    `count_cap`, the page of certificates (one more than the page size, to know whether more
    follow) and, paging by certificate number, whether any lie on the other side; never more
    queries, whatever the filters, the page size or the depth."""
    with _serial_plans():
        return _registry_page(filters=filters, count_cap=count_cap)


def _registry_page(*, filters: RegistryFilters, count_cap: int | None) -> RegistryPage:
    count_cap = count_cap_setting() if count_cap is None else count_cap
    today = timezone.localdate()
    found = registry_search(filters=filters, today=today)
    # The count reads the matches' numbers, newest first, up to the cap (one more to know it
    # was passed): the pages among them are chosen from this list, not matched a second time.
    matches = list(found.order_by("-number").values_list("number", "pk")[: count_cap + 1])
    capped = len(matches) > count_cap
    count = min(len(matches), count_cap)
    size = filters.page_size
    num_pages = max(1, -(-count // size))
    page: int | None = filters.page
    has_previous = has_next = False
    if filters.after:
        window = found.filter(number__lt=filters.after).order_by("-number")
        other_side = found.filter(number__gte=filters.after)
        page = None
    elif filters.before:
        window = found.filter(number__gt=filters.before).order_by("number")
        other_side = found.filter(number__lte=filters.before)
        page = None
    else:
        if not capped and filters.page > num_pages:
            raise _no_page(filters.page, num_pages)
        window = found.order_by("-number")
        other_side = None
        has_previous = filters.page > 1
    start = 0 if page is None else (page - 1) * size
    if not capped or (page is not None and start + size < len(matches)):
        # The page (and the one beyond it) is among the matches in hand: choose it here.
        if filters.after:
            chosen = [m for m in matches if m[0] < filters.after][: size + 1]
            other = any(m[0] >= filters.after for m in matches)
        elif filters.before:
            chosen = [m for m in reversed(matches) if m[0] > filters.before][: size + 1]
            other = any(m[0] <= filters.before for m in matches)
        else:
            chosen, other = matches[start : start + size + 1], False
        more = len(chosen) > size
        page_ids: object = [pk for _, pk in chosen[:size]]
    else:
        # Past the matches in hand: walk the number index (newest first, or up from `before`)
        # and stop after the page; a cursor keeps the walk as short at any depth.
        page_ids = window.values("pk")[start : start + size + 1]
        other = more = None
    certificates = list(
        Certificate.objects.filter(pk__in=page_ids)
        .select_related("application")
        .only(*RESULT_FIELDS)
        .annotate(shown_status=shown_status(today))
        .order_by("-number")
    )
    if more is None:
        more = len(certificates) > size
        if more:
            # The one beyond the page: the oldest going down, the newest going up.
            certificates = certificates[1:] if filters.before else certificates[:size]
    if filters.before:
        has_previous = more
        has_next = other if other is not None else other_side.exists()
    elif filters.after:
        has_previous = other if other is not None else other_side.exists()
        has_next = more
    else:
        has_next = more
        if capped and page > 1 and not certificates:
            raise _no_page(page, num_pages, at_least=True)
    for certificate in certificates:
        certificate.shown_status_label = STATUS_LABELS.get(certificate.shown_status, "")
        certificate.scope_profiles = scope_summary(certificate)
    return RegistryPage(
        filters=filters,
        certificates=certificates,
        count=count,
        count_capped=capped,
        page=page,
        num_pages=num_pages,
        has_previous=has_previous,
        has_next=has_next,
    )


def scope_summary(certificate: Certificate) -> str:
    """The profiles of the scope, as the search results show them (from the frozen content)."""
    keywords = dict.fromkeys(s["profile_keyword"] for s in certificate.content.get("scope", []))
    return ", ".join(keywords)


CHOICES_CACHE_KEY = "registry:choices:v1"


def registry_choices() -> dict:
    """Domains for the select and keywords for the datalists: one query (the catalogue's
    profiles, actors and options and the labs, united), cached five minutes."""
    choices = cache.get(CHOICES_CACHE_KEY)
    if choices is None:
        from cas.models import Actor, ProfileOption

        def text(value: str) -> Value:
            return Value(value, output_field=CharField())

        rows = (
            Profile.objects.order_by()
            .values_list(text("profile"), "keyword", "name", "domain__keyword", "domain__name")
            .union(
                Actor.objects.order_by().values_list(
                    text("actor"), "keyword", "name", text(""), text("")
                ),
                ProfileOption.objects.order_by().values_list(
                    text("option"), "keyword", "name", text(""), text("")
                ),
                Organisation.objects.filter(kind=Organisation.Kind.LAB)
                .order_by()
                .values_list(text("lab"), "name", "name", text(""), text("")),
                all=True,
            )
        )
        by_kind: dict[str, list[tuple]] = {"profile": [], "actor": [], "option": [], "lab": []}
        for kind, *values in rows:
            by_kind[kind].append(tuple(values))
        for values in by_kind.values():
            values.sort()
        choices = {
            "domains": sorted({(p[2], p[3]) for p in by_kind["profile"]}),
            "profiles": [(p[0], p[1]) for p in by_kind["profile"]],
            "actors": [(a[0], a[1]) for a in by_kind["actor"]],
            "options": [(o[0], o[1]) for o in by_kind["option"]],
            "labs": [lab[0] for lab in by_kind["lab"]],
        }
        cache.set(CHOICES_CACHE_KEY, choices, 300)
    return choices


# Audit reasons that name internal records: the public history says this instead (the audit
# trail keeps the original). "issued for APP-2026-00001" names the vendor's case.
PUBLIC_REASONS = {"issue": "issued"}


def certificate_history(certificate: Certificate) -> list[dict]:
    """Each public status change: date, from, to, reason (who acted is not published)."""
    from cas.models import AuditEntry

    entries = (
        AuditEntry.objects.filter(
            object_type="certificates.certificate", object_id=str(certificate.pk)
        )
        .exclude(action="allocate")
        .order_by("at", "id")
        .values("at", "action", "from_state", "to_state", "reason")
    )
    return [
        {
            "at": entry["at"],
            "action": entry["action"],
            "from_status": entry["from_state"],
            "to_status": entry["to_state"],
            "reason": PUBLIC_REASONS.get(entry["action"], entry["reason"]),
        }
        for entry in entries
    ]


# --- Downloads ---


@dataclass(frozen=True)
class Column:
    name: str
    key: str
    required: str
    allowed: str
    description: str
    value: Callable[[dict, dict], object]


def _date(value) -> str:
    return value.isoformat() if value else ""


def _scope_text(scope: list[dict]) -> str:
    return "; ".join(
        f"{s['profile_keyword']}|{s['actor_keyword']}|{s['option_keyword']}" for s in scope
    )


def _unique(values) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v))


COLUMNS: tuple[Column, ...] = (
    Column(
        "Certificate Number",
        "number",
        "Yes",
        "<PREFIX>-<YYYY>-<NNNNNN>",
        "The unique number of the certificate: the scheme's prefix, the year of issue and a "
        "sequence number. It is printed on the certificate and never reused.",
        lambda r, x: r["number"],
    ),
    Column(
        "Certificate Status",
        "status",
        "Yes",
        "; ".join(PUBLIC_STATUSES),
        "The status today. "
        + " ".join(f"{label}: {meaning}" for _, label, meaning in STATUS_LEGEND),
        lambda r, x: r["shown_status"],
    ),
    Column(
        "Status Date",
        "status_date",
        "If applicable",
        "<YYYY-MM-DD>",
        "The date the certificate entered its current status (for an active certificate, the "
        "date of issue or reinstatement; for one expired by date, empty).",
        lambda r, x: (
            ""
            if r["shown_status"] != r["status"] or not r["status_changed_at"]
            else timezone.localtime(r["status_changed_at"]).date().isoformat()
        ),
    ),
    Column(
        "Status Reason",
        "status_reason",
        "If applicable",
        "<string>",
        "Why the certificate was suspended, reinstated, withdrawn, revoked, expired or "
        "superseded, as published by the certification body.",
        lambda r, x: r["status_reason"],
    ),
    Column(
        "Superseded By",
        "superseded_by",
        "If applicable",
        "<Certificate Number>",
        "For a superseded certificate, the number of the certificate that replaces it.",
        lambda r, x: r["superseded_by__number"] or "",
    ),
    Column(
        "Vendor Name",
        "vendor_name",
        "Yes",
        "<string>",
        "The vendor (developer) of the certified product, as stated on the certificate.",
        lambda r, x: r["content"].get("vendor_name", ""),
    ),
    Column(
        "Vendor Database ID",
        "vendor_id",
        "Yes",
        "<int>",
        "The vendor's unique database ID; its registry page is /registry/vendors/<id>/.",
        lambda r, x: r["application__vendor_id"],
    ),
    Column(
        "Vendor Address",
        "vendor_address",
        "No",
        "<string>",
        "The vendor's address as stated on the certificate (may span several lines).",
        lambda r, x: r["content"].get("vendor_address", ""),
    ),
    Column(
        "Product Name",
        "product_name",
        "Yes",
        "<string>",
        "The name of the certified product.",
        lambda r, x: r["content"].get("product_name", ""),
    ),
    Column(
        "Product Database ID",
        "product_id",
        "Yes",
        "<int>",
        "The product's unique database ID (the same for all its versions).",
        lambda r, x: r["application__product_version__product_id"],
    ),
    Column(
        "Version",
        "product_version",
        "Yes",
        "<string>",
        "The exact product version that was certified. Other versions are not covered.",
        lambda r, x: r["content"].get("product_version", ""),
    ),
    Column(
        "Version Database ID",
        "version_id",
        "Yes",
        "<int>",
        "The unique database ID of the certified version.",
        lambda r, x: r["application__product_version_id"],
    ),
    Column(
        "Scope",
        "scope",
        "Yes",
        "<PROFILE>|<ACTOR>|<OPTION>; ...",
        "Every certified AIPO (IHE integration profile, actor and option keywords, separated "
        "by '|'), separated by '; '. Option NONE means the profile's baseline.",
        lambda r, x: _scope_text(r["content"].get("scope", [])),
    ),
    Column(
        "Profiles",
        "profiles",
        "Yes",
        "<PROFILE>; ...",
        "The integration profile keywords of the scope, each once.",
        lambda r, x: _unique(s["profile_keyword"] for s in r["content"].get("scope", [])),
    ),
    Column(
        "Domains",
        "domains",
        "Yes",
        "<DOMAIN>; ...",
        "The IHE domains (e.g. ITI, RAD) of the scope's profiles, each once.",
        lambda r, x: _unique(
            x["domains"].get(s["profile_keyword"], "") for s in r["content"].get("scope", [])
        ),
    ),
    Column(
        "TF Revisions",
        "tf_revisions",
        "No",
        "<PROFILE>=<revision>; ...",
        "The Technical Framework or Implementation Guide revision each profile was assessed "
        "against, where recorded.",
        lambda r, x: _unique(
            f"{s['profile_keyword']}={s['tf_revision']}"
            for s in r["content"].get("scope", [])
            if s.get("tf_revision")
        ),
    ),
    Column(
        "Test Laboratory",
        "lab_name",
        "Yes",
        "<string>",
        "The ISO/IEC 17025-accredited test laboratory that assessed the product.",
        lambda r, x: r["content"].get("lab_name", ""),
    ),
    Column(
        "Lab Database ID",
        "lab_id",
        "Yes",
        "<int>",
        "The laboratory's unique database ID; its registry page is /registry/labs/<id>/.",
        lambda r, x: r["application__lab_id"] or "",
    ),
    Column(
        "Accreditation Body",
        "accreditation_body",
        "No",
        "<string>",
        "The body that accredited the laboratory (e.g. BELAC, COFRAC, DAkkS, UKAS, A2LA).",
        lambda r, x: r["content"].get("accreditation_body", ""),
    ),
    Column(
        "Lab Accreditation Number",
        "lab_accreditation_number",
        "No",
        "<string>",
        "The laboratory's accreditation number in force on the decision date.",
        lambda r, x: r["content"].get("lab_accreditation_number", ""),
    ),
    Column(
        "Scheme",
        "scheme",
        "Yes",
        "<string> <version>",
        "The certification scheme and its version the certificate was issued under.",
        lambda r, x: " ".join(
            v for v in (r["content"].get("scheme_name"), r["content"].get("scheme_version")) if v
        ),
    ),
    Column(
        "Decision Date",
        "decision_date",
        "Yes",
        "<YYYY-MM-DD>",
        "The date the certification officer decided to certify.",
        lambda r, x: _date(r["decision_date"]),
    ),
    Column(
        "Valid From",
        "valid_from",
        "Yes",
        "<YYYY-MM-DD>",
        "The first day the certificate is valid.",
        lambda r, x: _date(r["valid_from"]),
    ),
    Column(
        "Valid Until",
        "valid_until",
        "Yes",
        "<YYYY-MM-DD>",
        "The last day the certificate is valid, unless it ends earlier (see status).",
        lambda r, x: _date(r["valid_until"]),
    ),
    Column(
        "Certificate URL",
        "url",
        "Yes",
        "<url>",
        "The certificate's public page, with its live status, history and signed PDF.",
        lambda r, x: f"{x['site']}/certificates/{r['number']}/",
    ),
)
COLUMN_DICTIONARY_HEADER = ("Column Name", "Key", "Required?", "Allowed Values", "Description")

_DOWNLOAD_FIELDS = (
    "number",
    "status",
    "status_changed_at",
    "status_reason",
    "superseded_by__number",
    "content",
    "application__vendor_id",
    "application__product_version_id",
    "application__product_version__product_id",
    "application__lab_id",
    "decision_date",
    "valid_from",
    "valid_until",
    "shown_status",
)


def download_queryset(*, active: bool, today: dt.date | None = None) -> QuerySet:
    """Active: status active and not past its end date. Inactive: every other public one."""
    today = today or timezone.localdate()
    certificates = Certificate.objects.public()
    certificates = (
        certificates.filter(active_q(today)) if active else certificates.exclude(active_q(today))
    )
    return (
        certificates.annotate(shown_status=shown_status(today))
        .order_by("number")
        .values(*_DOWNLOAD_FIELDS)
    )


def _download_records(*, active: bool, chunk_size: int = 2000) -> Iterator[dict]:
    extra = {
        "domains": dict(Profile.objects.values_list("keyword", "domain__keyword")),
        "site": settings.SITE_URL,
    }
    for row in download_queryset(active=active).iterator(chunk_size=chunk_size):
        yield {column.key: column.value(row, extra) for column in COLUMNS} | {
            "_scope": row["content"].get("scope", [])
        }


def _csv_lines(rows: Iterator[list], *, batch: int = 500) -> Iterator[str]:
    """Every string cell made safe for spreadsheets (cas.csvsafe): names, versions, addresses
    and reasons are typed by vendors and officers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for n, row in enumerate(rows, 1):
        writer.writerow(csv_safe_row(row))
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def download_csv(*, active: bool) -> Iterator[str]:
    """UTF-8 with a BOM (so spreadsheets read accents), one row per certificate, streamed."""
    yield "\ufeff"
    header = [[c.name for c in COLUMNS]]
    yield from _csv_lines(iter(header))
    yield from _csv_lines(
        [record[c.key] for c in COLUMNS] for record in _download_records(active=active)
    )


def download_json(*, active: bool) -> Iterator[str]:
    """{"generated_at", "selection", "count" is left out (streamed), "certificates": [...]}."""
    head = {
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        "selection": "active" if active else "inactive",
        "columns": f"{settings.SITE_URL}/registry/download/columns.csv",
    }
    yield json.dumps(head)[:-1] + ', "certificates": [\n'
    first = True
    for record in _download_records(active=active):
        scope = record.pop("_scope")
        record["scope"] = [
            {
                "profile": s["profile_keyword"],
                "actor": s["actor_keyword"],
                "option": s["option_keyword"],
                "tf_revision": s.get("tf_revision", ""),
            }
            for s in scope
        ]
        yield ("" if first else ",\n") + json.dumps(record, ensure_ascii=False)
        first = False
    yield "\n]}\n"


CSV_SAFE_NOTE = (
    " In the CSV, a text starting with =, +, -, @, a tab or a carriage return gets a leading ' "
    "(a spreadsheet then shows it as text instead of running it as a formula)."
)


def column_dictionary_csv() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMN_DICTIONARY_HEADER)
    for column in COLUMNS:
        writer.writerow(
            csv_safe_row(
                [
                    column.name,
                    column.key,
                    column.required,
                    column.allowed,
                    column.description + (CSV_SAFE_NOTE if column.allowed == "<string>" else ""),
                ]
            )
        )
    return "\ufeff" + buffer.getvalue()


# --- Charts ---


CHARTS_CACHE_KEY = "registry:charts:v1"


def _bars(rows: list[tuple[str, int]], *, width: int = 560, label_width: int = 150) -> dict:
    """Geometry of a horizontal bar chart, drawn as inline SVG by the template."""
    top = max((n for _, n in rows), default=0) or 1
    bar_height, gap = 20, 6
    span = width - label_width - 60
    bars = [
        {
            "label": label,
            "n": n,
            "y": i * (bar_height + gap),
            "text_y": i * (bar_height + gap) + bar_height - 5,
            "width": max(1, round(span * n / top)) if n else 0,
            "value_x": label_width + (round(span * n / top) if n else 0) + 6,
        }
        for i, (label, n) in enumerate(rows)
    ]
    return {
        "bars": bars,
        "width": width,
        "label_width": label_width,
        "bar_height": bar_height,
        "height": max(1, len(rows)) * (bar_height + gap),
        "total": sum(n for _, n in rows),
    }


def registry_charts(*, top: int = 15) -> dict:
    """Active certificates per profile (top N), public certificates per decision year and per
    status. Three grouped queries, cached for five minutes."""
    charts = cache.get(CHARTS_CACHE_KEY)
    if charts is not None:
        return charts
    today = timezone.localdate()
    active_applications = Certificate.objects.filter(active_q(today)).values("application_id")
    per_profile = list(
        ClaimedAIPO.objects.filter(granted=True, application_id__in=active_applications)
        .values(keyword=F("aipo__profile__keyword"))
        .annotate(n=Count("application_id", distinct=True))
        .order_by("-n", "keyword")
        .values_list("keyword", "n")[:top]
    )
    per_year = list(
        Certificate.objects.public()
        .annotate(year=ExtractYear("decision_date"))
        .values("year")
        .annotate(n=Count("pk"))
        .order_by("year")
        .values_list("year", "n")
    )
    by_status = dict(
        Certificate.objects.public()
        .annotate(shown=shown_status(today))
        .values("shown")
        .annotate(n=Count("pk"))
        .values_list("shown", "n")
    )
    charts = {
        "per_profile": _bars([(k, n) for k, n in per_profile]),
        "per_year": _bars([(str(y), n) for y, n in per_year], label_width=60),
        "by_status": _bars(
            [(STATUS_LABELS[s], by_status.get(s, 0)) for s in PUBLIC_STATUSES], label_width=100
        ),
        "top": top,
    }
    charts["per_profile"]["title"] = f"Active certificates per integration profile (top {top})"
    cache.set(CHARTS_CACHE_KEY, charts, 300)
    return charts
