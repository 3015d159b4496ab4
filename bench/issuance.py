"""Certificate issuance throughput against its floor, measured in the same run.

The floor is what issuing cannot avoid: a bare reportlab render of the certificate plus a
bare pyHanko PAdES signature of it. Issuance adds the number allocation, the JWS, the key
store, the atomic file write, the database rows and the audit entries. Goal: issuance takes
at most 1.5x the floor's time.

    python bench/issuance.py [--count 20] [--rounds 3]

Runs on a throwaway SQLite database and temporary folders; nothing outside them is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.5
ROOT = Path(__file__).resolve().parent.parent


def configure(workdir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "cas.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ["SIGNING_KEY_DIR"] = str(workdir / "keys")
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CERTIFICATE_TSA_URL", None)
    import django

    django.setup()


def make_world(count: int) -> list[int]:
    """Granted cases to issue, made directly: this measures issuance, not the case."""
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from cas.models import AIPO, Application, ClaimedAIPO, Organisation, Product, ProductVersion

    call_command("migrate", verbosity=0)
    call_command("load_catalogue", stdout=io.StringIO())
    vendor = Organisation.objects.create(
        kind="vendor", name="Bench Health", address="1 Bench Street\nBrussels"
    )
    lab = Organisation.objects.create(kind="lab", name="Bench Lab")
    user = get_user_model().objects.create_user("bench")
    product = Product.objects.create(vendor=vendor, name="BenchEHR")
    aipos = list(AIPO.objects.order_by("pk")[:6])
    ids = []
    for i in range(count):
        version = ProductVersion.objects.create(product=product, version=f"1.{i}")
        application = Application.objects.create(
            reference=f"BENCH-{i:05d}",
            vendor=vendor,
            product_version=version,
            lab=lab,
            created_by=user,
            state=Application.State.CERTIFIED,
            decided_at=timezone.now(),
        )
        ClaimedAIPO.objects.bulk_create(
            ClaimedAIPO(application=application, aipo=aipo, granted=True) for aipo in aipos
        )
        ids.append(application.pk)
    return ids


def floor_once(content, signer) -> None:
    from certificates.pdf import render_certificate_pdf
    from certificates.signing import sign_pdf

    pdf = render_certificate_pdf(content=content)
    sign_pdf(
        pdf_bytes=pdf,
        key_pem=signer.key_pem,
        cert_pem=signer.cert_pem,
        chain_pems=signer.chain_pems,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="certificates per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="opencas-bench-"))
    try:
        configure(workdir)
        from certificates import keys, services
        from certificates.models import Certificate
        from certificates.pdf import qr_text_for

        ids = make_world(args.count * args.rounds + 1)
        # Warm up: the first issuance makes the keys and imports everything.
        first = services.certificate_issue(application_id=ids.pop())
        signer = keys.active_pdf_signer()
        jws_key, _ = keys.active_jws_key()
        content = services.render_content(
            first,
            qr_text=qr_text_for(base_url="https://bench.example", token=first.jws),
            key_id=jws_key.kid,
            status="Active when issued: check the current status online",
        )
        floor_once(content, signer)

        # Floor and issuance alternate one by one, so a busy machine slows both alike.
        floors, issues, ratios = [], [], []
        for round_number in range(args.rounds):
            batch = ids[round_number * args.count : (round_number + 1) * args.count]
            floor_time = issue_time = 0.0
            for application_id in batch:
                started = time.perf_counter()
                floor_once(content, signer)
                floor_time += time.perf_counter() - started
                started = time.perf_counter()
                services.certificate_issue(application_id=application_id)
                issue_time += time.perf_counter() - started
            floors.append(floor_time / len(batch))
            issues.append(issue_time / len(batch))
            ratios.append(issue_time / floor_time)
        assert Certificate.objects.filter(status="active").count() == len(ids) + 1

        floor = statistics.median(floors)
        issue = statistics.median(issues)
        ratio = statistics.median(ratios)
        print(f"certificates per round: {args.count}, rounds: {args.rounds}")
        for label, seconds in (
            ("floor (reportlab render + pyHanko sign)", floor),
            ("issuance (certificate_issue)", issue),
        ):
            print(f"{label:40} {1 / seconds:6.1f}/s {seconds * 1000:7.1f} ms each")
        verdict = "met" if ratio <= GOAL else "NOT met"
        spread = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"ratio issuance/floor: {ratio:.2f}x (median of rounds: {spread})")
        print(f"goal: <= {GOAL}x ({verdict})")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
