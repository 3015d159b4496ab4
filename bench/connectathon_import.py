"""Import 100,000 generated Connectathon rows and compare with a plain bulk_create.

Run against PostgreSQL (the database is migrated and the catalogue loaded if needed;
the bench's own events are deleted afterwards):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opencas \
        python bench/connectathon_import.py

Prints rows/s of `connectathon_import` (two streaming passes: check every row, then write
in batches in one transaction) as a ratio to a `bulk_create` of the same rows measured in
the same run (goal >= 0.5), the re-import of the same file (nothing changes), and the
tracemalloc peak of the import at 10k and 100k rows (flat memory: the two should be close).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cas.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from cas.models import AIPO  # noqa: E402
from evidence.importers import GRADE_LABELS  # noqa: E402
from evidence.models import ConnectathonEvent, ConnectathonResult  # noqa: E402
from evidence.services import connectathon_import  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
HEADER = "Organisation,System,Profile,Actor,Option,Type,Results,R/O,V,W,P,F\n"


def generate(rows: int, aipos: list[tuple[str, str, str, int]]) -> tuple[bytes, list[tuple]]:
    grades = list(GRADE_LABELS.values())
    lines = [HEADER]
    plain = []
    n = 0
    system = 0
    while n < rows:
        organisation = f"Vendor {system // 5:05d}"
        name = f"System {system:06d}"
        for profile, actor, option, aipo_id in aipos:
            if n >= rows:
                break
            grade = grades[n % len(grades)]
            lines.append(
                f"{organisation},{name},{profile},{actor},{option},Thorough,{grade},2,2,0,0,0\n"
            )
            plain.append((organisation, name, aipo_id, grade))
            n += 1
        system += 1
    return "".join(lines).encode(), plain


def new_event(name: str) -> ConnectathonEvent:
    ConnectathonEvent.objects.filter(name=name).delete()
    return ConnectathonEvent.objects.create(
        name=name, location="Bench", start_date=dt.date(2026, 3, 23), end_date=dt.date(2026, 3, 27)
    )


def time_bulk_create(plain: list[tuple]) -> float:
    """The floor: from the same rows to model objects to a bulk_create, nothing else."""
    event = new_event("Bench floor")
    started = time.perf_counter()
    objects = [
        ConnectathonResult(
            event=event,
            organisation_name=organisation,
            system_name=system,
            name_key=ConnectathonResult.name_key_for(organisation, system),
            aipo_id=aipo_id,
            test_type="Thorough",
            grade="passed",
            raw_grade=grade,
        )
        for organisation, system, aipo_id, grade in plain
    ]
    ConnectathonResult.objects.bulk_create(objects, batch_size=2000)
    seconds = time.perf_counter() - started
    event.delete()
    return seconds


def time_import(data: bytes):
    event = new_event("Bench import")
    started = time.perf_counter()
    summary = connectathon_import(event=event, stream=io.BytesIO(data), by=None)
    return time.perf_counter() - started, summary


def main() -> None:
    call_command("migrate", verbosity=0)
    if not AIPO.objects.exists():
        call_command("load_catalogue", stdout=io.StringIO())
    aipos = [
        (a.profile.keyword, a.actor.keyword, a.option.keyword, a.pk)
        for a in AIPO.objects.with_names().order_by("pk")[:40]
    ]
    data, plain = generate(ROWS, aipos)
    from django.db import connection

    print(f"database: {connection.vendor}; rows: {ROWS:,}; file: {len(data) / 1e6:.1f} MB")

    # Alternate the floor and the import a few times and keep each one's best run, so that
    # a noisy shared database penalises neither side.
    floor_seconds = import_seconds = float("inf")
    for _ in range(ROUNDS):
        floor_seconds = min(floor_seconds, time_bulk_create(plain))
        seconds, summary = time_import(data)
        import_seconds = min(import_seconds, seconds)
        assert summary.created == ROWS, summary
    floor_rate = ROWS / floor_seconds
    import_rate = ROWS / import_seconds

    event = ConnectathonEvent.objects.get(name="Bench import")
    started = time.perf_counter()
    again = connectathon_import(event=event, stream=io.BytesIO(data), by=None)
    again_seconds = time.perf_counter() - started
    assert again.unchanged == ROWS and not again.created and not again.updated, again

    print(f"best of {ROUNDS} runs each")
    print(f"plain bulk_create:      {floor_rate:10,.0f} rows/s ({floor_seconds:.2f} s)")
    print(f"connectathon_import:    {import_rate:10,.0f} rows/s ({import_seconds:.2f} s)")
    print(f"re-import (unchanged):  {ROWS / again_seconds:10,.0f} rows/s ({again_seconds:.2f} s)")
    ratio = import_rate / floor_rate
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"ratio import / bulk_create: {ratio:.2f} (goal >= 0.5: {verdict})")

    # Memory: the import's peak at a tenth of the rows and at all of them.
    peaks = {}
    for rows in (ROWS // 10, ROWS):
        sample, _ = generate(rows, aipos)
        stream = io.BytesIO(sample)
        del sample
        event = new_event(f"Bench memory {rows}")
        tracemalloc.start()
        connectathon_import(event=event, stream=stream, by=None)
        peaks[rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    small, large = ROWS // 10, ROWS
    print(
        f"tracemalloc peak (file bytes held by the caller excluded): {small:,} rows "
        f"{peaks[small] / 1e6:.1f} MB, {large:,} rows {peaks[large] / 1e6:.1f} MB "
        f"(x{peaks[large] / peaks[small]:.2f} for x10 rows)"
    )
    ConnectathonEvent.objects.filter(name__startswith="Bench ").delete()


if __name__ == "__main__":
    main()
