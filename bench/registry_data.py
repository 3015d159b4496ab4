"""Fill a database with a registry at scale: 100,000 certificates, 1,000,000 Connectathon results.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opencas_registry \
        python bench/registry_data.py --certificates 100000 --results 1000000

Migrates and loads the IHE catalogue if needed, then writes with bulk_create in batches:
vendors (one per 50 certificates), test labs with an accreditation, products (five versions
each), one certified application per certificate with 1 to 6 granted claims (popular profiles
claimed more often), the certificates (about 76% active of which some are past their end
date, the rest suspended, expired, superseded, withdrawn, revoked, plus a few still being
issued, which the registry hides; numbered <prefix>-<year>-<n>), and Connectathon events
holding `--results` results of the generated vendors' systems. No audit entries are written
(the hash chain would need one write per row); their certificate pages show no history.

Ends with VACUUM ANALYZE on PostgreSQL. Refuses to run when the database already holds
certificates or applications, unless --force (the generated rows are then added next to the
real ones: use a scratch database; a second run needs another --prefix).
`build_registry()` is importable: the query-count tests use it at small scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cas.settings")

BATCH = 5000
STATUS_MIX = (
    ("active", 76),
    ("suspended", 3),
    ("expired", 8),
    ("superseded", 6),
    ("withdrawn", 4),
    ("revoked", 2),
    ("issuing", 1),
)
GRADES = (
    ("passed", 70),
    ("failed", 8),
    ("no_peer", 8),
    ("not_graded", 6),
    ("withdrawn", 4),
    ("did_not_complete", 4),
)
REASONS = {
    "suspended": "Open nonconformity found in surveillance",
    "expired": "Validity period ended",
    "superseded": "Replaced after a scope extension",
    "withdrawn": "Product discontinued by the vendor",
    "revoked": "Misuse of the certification mark",
}
KINDS = ("Health", "Medical", "Imaging", "Systems")
COUNTRIES = ("BE", "FR", "DE", "NL", "US", "GB", "IT", "ES", "JP", "CA")


def _say(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message + "\n")
        stdout.flush()


def _weighted(rng: random.Random, mix) -> str:
    values, weights = zip(*mix, strict=True)
    return rng.choices(values, weights=weights)[0]


def build_registry(
    *,
    certificates: int,
    results: int = 0,
    seed: int = 7,
    prefix: str = "BENCH",
    today: dt.date | None = None,
    stdout=None,
) -> dict:
    """Write the registry; returns counts. The catalogue must be loaded."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from cas.models import AIPO, Application, ClaimedAIPO, Organisation, Product, ProductVersion
    from certificates.models import Certificate
    from evidence.models import ConnectathonEvent, ConnectathonResult
    from labs.models import Accreditation

    rng = random.Random(seed)
    today = today or timezone.localdate()
    aipos = list(AIPO.objects.with_names().order_by("pk"))
    if not aipos:
        raise SystemExit("Load the IHE catalogue first: manage.py load_catalogue")
    # Popular profiles are claimed far more often (a Zipf-like weight by rank).
    profiles = sorted({a.profile.keyword for a in aipos})
    rng.shuffle(profiles)
    profile_weight = {p: 1 / (rank + 1) for rank, p in enumerate(profiles)}
    aipo_weights = [profile_weight[a.profile.keyword] for a in aipos]

    n_vendors = max(2, certificates // 50)
    n_products = max(2, certificates // 5)
    n_labs = max(2, min(12, certificates // 1000 + 2))
    started = time.perf_counter()
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username=f"{prefix.lower()}-generator")
        vendors = Organisation.objects.bulk_create(
            [
                Organisation(
                    kind="vendor",
                    name=f"{prefix} Vendor {i:05d} {rng.choice(KINDS)}",
                    address=f"{i} Interop Street\n{1000 + i % 9000} City",
                    country=rng.choice(COUNTRIES),
                )
                for i in range(n_vendors)
            ],
            batch_size=BATCH,
        )
        labs = Organisation.objects.bulk_create(
            [
                Organisation(
                    kind="lab",
                    name=f"{prefix} Test Lab {i:02d}",
                    address=f"Lab lane {i}",
                    country=rng.choice(COUNTRIES),
                )
                for i in range(n_labs)
            ]
        )
        Accreditation.objects.bulk_create(
            [
                Accreditation(
                    lab=lab,
                    body=rng.choice(("BELAC", "COFRAC", "DAkkS", "UKAS", "A2LA")),
                    number=f"{prefix}-ACC-{i:03d}",
                    valid_from=dt.date(2018, 1, 1),
                    valid_until=dt.date(2030, 12, 31),
                )
                for i, lab in enumerate(labs)
            ]
        )
        products = Product.objects.bulk_create(
            [
                Product(vendor=vendors[i % n_vendors], name=f"{prefix} Product {i:06d}")
                for i in range(n_products)
            ],
            batch_size=BATCH,
        )
        versions = ProductVersion.objects.bulk_create(
            [
                ProductVersion(product=products[i % n_products], version=f"{i // n_products + 1}.0")
                for i in range(certificates)
            ],
            batch_size=BATCH,
        )
        _say(stdout, f"organisations, products, versions: {time.perf_counter() - started:.1f} s")

        applications = []
        decided = []
        for i, version in enumerate(versions):
            day = dt.date(2019, 1, 1) + dt.timedelta(
                days=rng.randrange((today - dt.date(2019, 1, 1)).days + 1)
            )
            decided.append(day)
            applications.append(
                Application(
                    reference=f"{prefix}-{i:07d}",
                    vendor_id=version.product.vendor_id,
                    product_version=version,
                    state="certified",
                    lab=labs[i % n_labs],
                    created_by=user,
                    decided_at=timezone.make_aware(dt.datetime.combine(day, dt.time(12))),
                )
            )
        applications = Application.objects.bulk_create(applications, batch_size=BATCH)
        claims = []
        scopes = []
        for application in applications:
            chosen = {
                id(a): a for a in rng.choices(aipos, weights=aipo_weights, k=rng.randint(1, 6))
            }
            scope = sorted(chosen.values(), key=lambda a: (a.profile.keyword, a.actor.keyword))
            scopes.append(scope)
            claims.extend(ClaimedAIPO(application=application, aipo=a, granted=True) for a in scope)
        ClaimedAIPO.objects.bulk_create(claims, batch_size=BATCH)
        _say(
            stdout, f"applications and {len(claims)} claims: {time.perf_counter() - started:.1f} s"
        )

        rows = []
        sequence: dict[int, int] = {}
        for i, application in enumerate(applications):
            day = decided[i]
            status = _weighted(rng, STATUS_MIX)
            valid_until = day + dt.timedelta(days=3 * 365)
            if status == "expired":
                valid_until = min(valid_until, today - dt.timedelta(days=rng.randint(1, 400)))
            sequence[day.year] = sequence.get(day.year, 0) + 1
            version = versions[i]
            changed = timezone.make_aware(
                dt.datetime.combine(day + dt.timedelta(days=rng.randint(0, 300)), dt.time(9))
            )
            rows.append(
                Certificate(
                    number=f"{prefix}-{day.year}-{sequence[day.year]:06d}",
                    application=application,
                    status=status,
                    content={
                        "vendor_name": version.product.vendor.name,
                        "vendor_address": version.product.vendor.address,
                        "product_name": version.product.name,
                        "product_version": version.version,
                        "scope": [
                            {
                                "profile_keyword": a.profile.keyword,
                                "profile_name": a.profile.name,
                                "actor_keyword": a.actor.keyword,
                                "actor_name": a.actor.name,
                                "option_keyword": a.option.keyword,
                                "option_name": a.option.name,
                                "tf_revision": a.profile.tf_revision,
                            }
                            for a in scopes[i]
                        ],
                        "lab_name": application.lab.name,
                        "lab_accreditation_number": f"{prefix}-ACC-{i % n_labs:03d}",
                        "accreditation_body": "BELAC",
                        "scheme_name": settings.SCHEME_NAME,
                        "scheme_version": settings.SCHEME_VERSION,
                    },
                    decision_date=day,
                    valid_from=day,
                    valid_until=valid_until,
                    issued_at=None
                    if status == "issuing"
                    else timezone.make_aware(dt.datetime.combine(day, dt.time(12))),
                    status_changed_at=None if status == "issuing" else changed,
                    status_reason=REASONS.get(status, ""),
                )
            )
        Certificate.objects.bulk_create(rows, batch_size=BATCH)
        _say(stdout, f"{len(rows)} certificates: {time.perf_counter() - started:.1f} s")

    written = 0
    event_no = 0
    while written < results:
        event_no += 1
        year = 2026 - event_no + 1
        with transaction.atomic():
            event = ConnectathonEvent.objects.create(
                name=f"{prefix} Connectathon {year} #{event_no}",
                location="Bench",
                start_date=dt.date(year, 3, 23),
                end_date=dt.date(year, 3, 27),
            )
            batch = []
            for product in products:
                if written >= results:
                    break
                for a in rng.sample(aipos, k=min(len(aipos), 10)):
                    if written >= results:
                        break
                    batch.append(
                        ConnectathonResult(
                            event=event,
                            organisation_name=product.vendor.name,
                            system_name=product.name,
                            aipo=a,
                            test_type="Thorough",
                            grade=_weighted(rng, GRADES),
                            vendor_id=product.vendor_id,
                            product=product,
                            name_key=ConnectathonResult.name_key_for(
                                product.vendor.name, product.name
                            ),
                        )
                    )
                    written += 1
                    if len(batch) >= BATCH:
                        ConnectathonResult.objects.bulk_create(batch)
                        batch = []
            if batch:
                ConnectathonResult.objects.bulk_create(batch)
        _say(stdout, f"{written} Connectathon results: {time.perf_counter() - started:.1f} s")
    return {
        "vendors": n_vendors,
        "labs": n_labs,
        "products": n_products,
        "certificates": certificates,
        "claims": len(claims),
        "results": written,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--prefix",
        default="BENCH",
        help="certificate number prefix and name prefix of every generated row (2-10 capitals)",
    )
    parser.add_argument(
        "--force", action="store_true", help="write even if the database holds real data"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from cas.models import AIPO, Application
    from certificates.models import Certificate

    call_command("migrate", verbosity=0)
    if not AIPO.objects.exists():
        call_command("load_catalogue", verbosity=0)
    if (Certificate.objects.exists() or Application.objects.exists()) and not args.force:
        raise SystemExit(
            "This database already holds applications or certificates: refusing to add "
            "generated ones next to them. Use a scratch database, or --force."
        )
    counts = build_registry(
        certificates=args.certificates,
        results=args.results,
        seed=args.seed,
        prefix=args.prefix,
        stdout=sys.stdout,
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        # Fresh statistics and visibility map, as autovacuum would leave them: the planner's
        # estimates and index-only scans depend on them.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    print(counts)


if __name__ == "__main__":
    main()
