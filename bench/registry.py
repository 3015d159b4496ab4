"""Time the registry search page and API with random filter combinations.

Fill the database first (bench/registry_data.py), then:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opencas_registry \
        python bench/registry.py [--searches 300] [--seed 1]

Each search picks a random combination of the filters (free text, vendor, product, version,
domain, profile, actor, option, status, lab, decision and expiry date ranges), a page size of
10 to 200 and page 1 or 2, and requests it from /registry/ and /api/registry/certificates/
through Django's test Client in this process (the whole request: URL resolution, the form, the
queries, the template or the serializer; no network). The choices cache is warmed first, as it
is in a running server. Prints the most queries any page ran (goal <= 10), p50 and p95 in ms
and the ratio of p95 to the goal (50 ms; <= 1.0 meets it), for the page and the API apart.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cas.settings")

GOAL_MS = 50.0
GOAL_QUERIES = 10
PAGE_SIZES = (10, 25, 50, 100, 200)


def sample_values(rng: random.Random) -> dict[str, list[str]]:
    """Filter values taken from the data, so that most searches find something."""
    from cas.models import AIPO, Domain, Organisation, ProductVersion
    from certificates.registry import PUBLIC_STATUSES

    vendors = list(
        Organisation.objects.filter(kind="vendor", applications__certificates__isnull=False)
        .distinct()
        .order_by("?")
        .values_list("name", flat=True)[:200]
    )
    versions = list(
        ProductVersion.objects.filter(applications__certificates__isnull=False)
        .order_by("?")
        .values_list("product__name", "version")[:200]
    )
    aipos = list(
        AIPO.objects.filter(claims__granted=True)
        .order_by("?")
        .values_list("profile__keyword", "actor__keyword", "option__keyword")[:300]
    )
    return {
        "q": [v.split()[-2] for v in vendors]
        + [p for p, _ in versions]
        + ["BENCH-2026", "2024", "Health", "Imaging"],
        "vendor": vendors,
        "product": [p for p, _ in versions],
        "version": [v for _, v in versions],
        "domain": list(Domain.objects.values_list("keyword", flat=True)),
        "profile": [a[0] for a in aipos],
        "actor": [a[1] for a in aipos],
        "option": [a[2] for a in aipos],
        "status": list(PUBLIC_STATUSES),
        "lab": list(Organisation.objects.filter(kind="lab").values_list("name", flat=True)),
    }


def random_search(rng: random.Random, values: dict[str, list[str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    names = list(values) + ["issued", "expires"]
    for name in rng.sample(names, k=rng.choice((0, 1, 1, 2, 2, 3, 4, len(names)))):
        if name == "issued":
            year = rng.randint(2019, 2026)
            params["issued_from"] = f"{year}-01-01"
            params["issued_to"] = f"{year + rng.randint(0, 2)}-12-31"
        elif name == "expires":
            year = rng.randint(2024, 2029)
            params["expires_from"] = f"{year}-01-01"
            params["expires_to"] = f"{year + 1}-06-30"
        elif values[name]:
            params[name] = rng.choice(values[name])
    params["page_size"] = str(rng.choice(PAGE_SIZES))
    params["page"] = str(rng.choice((1, 1, 1, 1, 2)))
    return params


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from certificates.models import Certificate

    rng = random.Random(args.seed)
    public = Certificate.objects.public().count()
    print(f"database: {connection.vendor}; public certificates: {public:,}")
    values = sample_values(rng)
    client = Client()
    client.get("/registry/")  # warms the choices cache, as a running server has it
    client.get("/api/registry/certificates/")
    searches = [random_search(rng, values) for _ in range(args.searches)]
    for label, path in (("page", "/registry/"), ("API ", "/api/registry/certificates/")):
        times: list[float] = []
        sql_times: list[float] = []
        most_queries = 0
        refused = 0
        empty = 0
        worst: tuple[float, dict] = (0.0, {})
        by_filter: dict[str, list[float]] = {}
        for params in searches:
            spent = [0.0]

            def timed(execute, sql, params, many, context, spent=spent):
                started = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    spent[0] += time.perf_counter() - started

            with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(timed):
                started = time.perf_counter()
                response = client.get(path, params)
                body = response.content
                elapsed = (time.perf_counter() - started) * 1000
            sql_times.append(spent[0] * 1000)
            if response.status_code == 400:
                refused += 1  # e.g. page 3 of a search with one page: a clear message, no 500
            elif response.status_code != 200:
                raise SystemExit(f"{path} {params}: HTTP {response.status_code}")
            elif b"No certificates match" in body or b'"count":0' in body:
                empty += 1
            times.append(elapsed)
            for name in params:
                if name not in ("page", "page_size"):
                    by_filter.setdefault(name.removesuffix("_from").removesuffix("_to"), [])
            for name in {n.removesuffix("_from").removesuffix("_to") for n in params}:
                if name in by_filter:
                    by_filter[name].append(elapsed)
            most_queries = max(most_queries, len(queries))
            worst = max(worst, (elapsed, params), key=lambda w: w[0])
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(
            f"{label}: {len(times)} searches ({empty} empty, {refused} answered 400); "
            f"queries per page max {most_queries} (goal <= {GOAL_QUERIES}); "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms; "
            f"p95 / goal {GOAL_MS:.0f} ms = {p95 / GOAL_MS:.2f}"
        )
        print(
            f"      of which SQL: p50 {statistics.median(sql_times):.1f} ms, "
            f"p95 {percentile(sql_times, 95):.1f} ms; slowest search: {worst[1]}"
        )
        print(
            "      p95 of the searches using each filter: "
            + ", ".join(
                f"{name} {percentile(samples, 95):.0f}"
                for name, samples in sorted(by_filter.items(), key=lambda kv: kv[0])
            )
        )


if __name__ == "__main__":
    main()
