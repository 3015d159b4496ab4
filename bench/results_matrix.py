"""The public Results Matrix of one Connectathon holding a million results.

Run against PostgreSQL (migrated and the catalogue loaded if needed; the bench's event is
deleted afterwards unless BENCH_KEEP=1):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opencas \
        python bench/results_matrix.py

Prints, for page 1, a deep page and a filtered page at two page sizes, the queries and the
time of `results_matrix` as a ratio to a floor measured in the same run (a plain COUNT of
the event's passed results: any page must at least find out how many there are), and the
rows/s of the CSV export (`matrix_export_rows`, keyset chunks).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cas.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from cas.models import AIPO  # noqa: E402
from evidence import matrix  # noqa: E402
from evidence.models import ConnectathonEvent, ConnectathonResult  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
EXPORT_ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "100000"))
# BENCH_KEEP=1 keeps the generated event for the next run (filling it takes minutes).
KEEP = os.environ.get("BENCH_KEEP") == "1"
GRADES = ["passed", "passed", "failed", "no_peer", "at_risk", "not_graded"]


def fill(event: ConnectathonEvent) -> None:
    # 400 AIPOs from every domain, so that a domain filter narrows the columns.
    every = list(AIPO.objects.order_by("pk").values_list("pk", flat=True))
    aipo_ids = every[:: max(1, len(every) // 400)][:400]
    batch, n, system = [], 0, 0
    while n < ROWS:
        organisation, name = f"Vendor {system // 4:05d}", f"System {system:06d}"
        key = ConnectathonResult.name_key_for(organisation, name)
        # Each system tries 25 AIPOs out of 400, spread so the columns vary page to page.
        for i in range(25):
            if n >= ROWS:
                break
            batch.append(
                ConnectathonResult(
                    event=event,
                    organisation_name=organisation,
                    system_name=name,
                    aipo_id=aipo_ids[(system * 7 + i * 16) % len(aipo_ids)],
                    grade=GRADES[(system + i) % len(GRADES)],
                    name_key=key,
                )
            )
            n += 1
        system += 1
        if len(batch) >= 20000:
            ConnectathonResult.objects.bulk_create(batch)
            batch = []
    ConnectathonResult.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE evidence_connectathonresult")


def timed(action, rounds: int = 3) -> tuple[float, int]:
    best, queries = float("inf"), 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            action()
            best = min(best, time.perf_counter() - start)
        queries = len(captured.captured_queries)
    return best, queries


def main() -> None:
    call_command("migrate", verbosity=0)
    if not AIPO.objects.exists():
        call_command("load_catalogue", verbosity=0)
    event = ConnectathonEvent.objects.filter(name="bench results matrix").first()
    if event is None or ConnectathonResult.objects.filter(event=event).count() != ROWS:
        ConnectathonResult.objects.filter(event=event).delete()
        ConnectathonEvent.objects.filter(name="bench results matrix").delete()
        event = ConnectathonEvent.objects.create(
            name="bench results matrix",
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 1, 5),
        )
        start = time.perf_counter()
        fill(event)
        print(f"{ROWS:,} results written in {time.perf_counter() - start:.0f} s")
    try:
        passed = ConnectathonResult.objects.filter(event=event, grade="passed")
        floor, _ = timed(lambda: passed.count())
        print(f"floor (COUNT of passed results): {floor * 1000:.0f} ms")
        systems = matrix.results_matrix(event=event, filters=matrix.MatrixFilters()).page
        last = systems.paginator.num_pages
        cases = [
            ("page 1", matrix.MatrixFilters(), 1),
            ("middle page", matrix.MatrixFilters(), last // 2),
            ("organisation filter", matrix.MatrixFilters(organisation="Vendor 0042"), 1),
            ("domain filter", matrix.MatrixFilters(domain="RAD"), 1),
        ]
        for size in (25, 200):
            for label, filters, page in cases:

                def build(filters=filters, page=page, size=size):
                    table = matrix.results_matrix(
                        event=event, filters=filters, page_number=page, page_size=size
                    )
                    return len(table.rows)

                seconds, queries = timed(build)
                print(
                    f"{label:20} {size:3} rows/page: {queries} queries, "
                    f"{seconds * 1000:6.0f} ms = {seconds / floor:5.1f} x floor"
                )
        start = time.perf_counter()
        exported = 0
        for _ in matrix.matrix_export_rows(event=event, filters=matrix.MatrixFilters()):
            exported += 1
            if exported >= EXPORT_ROWS:
                break
        seconds = time.perf_counter() - start
        print(f"export: {exported:,} rows in {seconds:.1f} s = {exported / seconds:,.0f} rows/s")
    finally:
        if not KEEP:
            ConnectathonResult.objects.filter(event=event).delete()
            event.delete()


if __name__ == "__main__":
    main()
