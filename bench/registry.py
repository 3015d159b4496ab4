"""Time the registry search page and API with random filter combinations.

Fill the database first (bench/registry_data.py), then:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opencas_registry \
        python bench/registry.py [--searches 300] [--seed 1]

Each search picks a random combination of the filters (free text, vendor, product, version,
domain, profile, actor, option, status, lab, decision and expiry date ranges), a page size of
10 to 200 and page 1 or 2, and requests it from /registry/ and /api/registry/certificates/
through Django's test Client in this process (the whole request: URL resolution, the form, the
queries, the template or the serializer; no network). A warm-up of other random searches runs
first (untimed), as a running server has warm caches and buffers; then each search is asked of
the page and of the API in turn, so neither runs on colder buffers. Searches answered 400 (e.g.
page 2 of a one-page search) are counted apart, not timed. Prints the most queries any page ran
(goal <= 10), p50 and p95 in ms and the ratio of p95 to the goal (50 ms; <= 1.0 meets it), for
the page and the API apart, and the p95 of the searches using each filter.
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
    parser.add_argument("--warmup", type=int, default=50, help="untimed searches first")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from certificates.models import Certificate

    rng = random.Random(args.seed)
    public = Certificate.objects.public().count()
    print(f"database: {connection.vendor}; public certificates: {public:,}")
    values = sample_values(rng)
    client = Client()
    searches = [random_search(rng, values) for _ in range(args.searches)]
    paths = {"page": "/registry/", "API ": "/api/registry/certificates/"}
    # Warm up, as a running server is: the choices cache, the connection, the buffers the
    # searches read (a first pass over other random searches, not timed).
    warm_rng = random.Random(args.seed + 1)
    for _ in range(args.warmup):
        params = random_search(warm_rng, values)
        for path in paths.values():
            client.get(path, params)

    stats = {label: Stats() for label in paths}
    # Page and API alternate search by search, so that neither runs on colder buffers.
    for params in searches:
        for label, path in paths.items():
            stats[label].measure(client, path, params)
    for label, figures in stats.items():
        figures.report(label)
    print(
        "(searches answered 400, e.g. page 2 of a one-page search, are counted apart and left "
        "out of the percentiles)"
    )


class Stats:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.sql_times: list[float] = []
        self.most_queries = 0
        self.refused = 0
        self.empty = 0
        self.worst: tuple[float, dict] = (0.0, {})
        self.by_filter: dict[str, list[float]] = {}

    def measure(self, client, path: str, params: dict[str, str]) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        spent = [0.0]

        def timed(execute, sql, sql_params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, sql_params, many, context)
            finally:
                spent[0] += time.perf_counter() - started

        with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(timed):
            started = time.perf_counter()
            response = client.get(path, params)
            body = response.content
            elapsed = (time.perf_counter() - started) * 1000
        self.most_queries = max(self.most_queries, len(queries))
        if response.status_code == 400:
            self.refused += 1  # a clear message, no 500; not a search, so not timed
            return
        if response.status_code != 200:
            raise SystemExit(f"{path} {params}: HTTP {response.status_code}")
        if b"No certificates match" in body or b'"count":0' in body:
            self.empty += 1
        self.times.append(elapsed)
        self.sql_times.append(spent[0] * 1000)
        for name in {n.removesuffix("_from").removesuffix("_to") for n in params}:
            if name not in ("page", "page_size"):
                self.by_filter.setdefault(name, []).append(elapsed)
        self.worst = max(self.worst, (elapsed, params), key=lambda w: w[0])

    def report(self, label: str) -> None:
        times = self.times
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(
            f"{label}: {len(times)} searches timed ({self.empty} empty; {self.refused} answered "
            f"400, not timed); queries per page max {self.most_queries} (goal <= "
            f"{GOAL_QUERIES}); p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms; "
            f"p95 / goal {GOAL_MS:.0f} ms = {p95 / GOAL_MS:.2f}"
        )
        print(
            f"      of which SQL: p50 {statistics.median(self.sql_times):.1f} ms, "
            f"p95 {percentile(self.sql_times, 95):.1f} ms; slowest search: {self.worst[1]}"
        )
        print(
            "      p95 of the searches using each filter: "
            + ", ".join(
                f"{name} {percentile(samples, 95):.0f}"
                for name, samples in sorted(self.by_filter.items(), key=lambda kv: kv[0])
            )
        )


if __name__ == "__main__":
    main()
