"""The cast every test uses, and small builders.

vendor_alice works for Helix Health Systems; vendor_bob for its competitor Northwind
Medical; assessor_carol and reviewer_dave for the accredited Brussels lab; officer_erin and
officer_frank for the scheme; the buyer is anybody with no login.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from support import HELIX_CLAIMS, PASSWORD, aipo, results_csv

from cas import services
from cas.models import AIPO, Application, Domain, Membership, Organisation, Product
from evidence.models import ConnectathonEvent
from evidence.services import connectathon_import
from labs.models import Accreditation
from labs.services import test_record_create


def pytest_collection_modifyitems(config, items) -> None:
    """Tests needing a service skip with a reason when it is not there (CI provides all).

    With OPENCAS_REQUIRE_SERVICES=1 (as `make test-browser` / `make test-celery` and CI set
    it) a missing service is an error of those tests instead, so CI cannot pass by skipping.
    """
    require = os.environ.get("OPENCAS_REQUIRE_SERVICES", "").strip().lower() in {"1", "true"}
    database_url = os.environ.get("DATABASE_URL", "")
    no_postgres = (
        None if database_url.startswith("postgres") else "needs DATABASE_URL pointing at PostgreSQL"
    )
    problems: dict[str, str | None] = {}

    def redis_problem() -> str | None:
        if "redis" not in problems:
            url = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/15"
            try:
                import redis

                redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
            except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
                problems["redis"] = f"needs a Redis broker reachable at {url} ({exc})"
            else:
                problems["redis"] = None
        return problems["redis"]

    def browser_problem() -> str | None:
        if "browser" not in problems:
            path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
            problems["browser"] = None
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                problems["browser"] = (
                    f"needs Chromium at {path} (apt-get install chromium, or set CHROMIUM_PATH)"
                )
            else:
                try:
                    import playwright.sync_api  # noqa: F401
                except ImportError:
                    problems["browser"] = "needs the playwright package (pip install -e '.[dev]')"
        return problems["browser"]

    for item in items:
        reasons = []
        if "postgres" in item.keywords and no_postgres:
            reasons.append(no_postgres)
        if "redis" in item.keywords:
            # The worker is a separate process: it must see the test database, so PostgreSQL.
            reasons += [r for r in (redis_problem(), no_postgres) if r]
        if "browser" in item.keywords and browser_problem():
            reasons.append(browser_problem())
        if not reasons:
            continue
        reason = "; ".join(reasons)
        if require:
            # Fail in setup, before any fixture runs, with the reason as the whole message.
            def fail(reason: str = reason) -> None:
                pytest.fail(f"OPENCAS_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)

            item.setup = fail
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path: Path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.SITE_URL = "https://opencas.example"
    # Real password hashing costs ~200 ms a user; the cast has seven.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _verify_rate_lifted(settings):
    """Tests verify far more often than a person would: a high limit and fresh counts, so
    only the rate-limit tests (which lower VERIFY_RATE or TOKEN_RATE themselves) ever meet a
    429. VERIFY_RATE covers every look-up by number: verify page and API, certificate page,
    PDF, FHIR view and registry record."""
    from django.core.cache import cache

    settings.VERIFY_RATE = "100000/minute"
    settings.TOKEN_RATE = "100000/minute"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the catalogue once; transactional tests flush it and `catalogue` reloads it."""
    with django_db_blocker.unblock():
        call_command("load_catalogue", stdout=io.StringIO())


@pytest.fixture
def catalogue(db) -> None:
    if not AIPO.objects.exists():
        call_command("load_catalogue", stdout=io.StringIO())


def make_user(django_user_model, username: str, organisation: Organisation, role: str):
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.org"
    )
    user.first_name = username.split("_")[-1].capitalize()
    user.save()
    Membership.objects.create(user=user, organisation=organisation, role=role)
    if organisation.kind == "lab":
        # Lab people are competent in their lab's accredited domains; tests/labs breaks it.
        from labs.models import AssessorCompetence

        for domain in Domain.objects.filter(
            pk__in=organisation.accreditations.values("scope_domains")
        ):
            AssessorCompetence.objects.create(lab=organisation, user=user, domain=domain)
    return user


@pytest.fixture
def helix(db) -> Organisation:
    return Organisation.objects.create(
        kind="vendor", name="Helix Health Systems", address="Rue de la Loi 42\n1000 Brussels"
    )


@pytest.fixture
def northwind(db) -> Organisation:
    return Organisation.objects.create(
        kind="vendor", name="Northwind Medical", address="1 Harbour Way, Leeds"
    )


@pytest.fixture
def scheme(db) -> Organisation:
    return Organisation.objects.create(kind="scheme", name="IHE CAS Certification Body")


@pytest.fixture
def lab(db, catalogue) -> Organisation:
    organisation = Organisation.objects.create(
        kind="lab", name="Brussels Interoperability Test Lab", address="Brussels"
    )
    accreditation = Accreditation.objects.create(
        lab=organisation,
        body="BELAC",
        number="BELAC 612-TEST",
        authorisation_number="CAS-LAB-007",
        valid_from=timezone.localdate() - dt.timedelta(days=365),
        valid_until=timezone.localdate() + dt.timedelta(days=365),
    )
    accreditation.scope_domains.add(Domain.objects.get(keyword="ITI"))
    return organisation


@pytest.fixture
def vendor_alice(django_user_model, helix):
    return make_user(django_user_model, "vendor_alice", helix, "vendor_admin")


@pytest.fixture
def vendor_bob(django_user_model, northwind):
    return make_user(django_user_model, "vendor_bob", northwind, "vendor_admin")


@pytest.fixture
def assessor_carol(django_user_model, lab):
    return make_user(django_user_model, "assessor_carol", lab, "assessor")


@pytest.fixture
def reviewer_dave(django_user_model, lab):
    return make_user(django_user_model, "reviewer_dave", lab, "lab_manager")


@pytest.fixture
def officer_erin(django_user_model, scheme):
    return make_user(django_user_model, "officer_erin", scheme, "scheme_officer")


@pytest.fixture
def officer_frank(django_user_model, scheme):
    return make_user(django_user_model, "officer_frank", scheme, "scheme_officer")


@pytest.fixture
def buyer() -> Client:
    return Client()


@pytest.fixture
def connectathon_2026(db, catalogue) -> ConnectathonEvent:
    return ConnectathonEvent.objects.create(
        name="IHE-Europe Connectathon 2026, Brussels",
        location="Brussels",
        start_date=timezone.localdate() - dt.timedelta(days=200),
        end_date=timezone.localdate() - dt.timedelta(days=196),
    )


@pytest.fixture
def make_application(catalogue, connectathon_2026, vendor_alice):
    """A Helix case for HelixEHR 5.1 claiming HELIX_CLAIMS, walked to the state asked for."""

    def build(
        state: str = "draft",
        *,
        claims=HELIX_CLAIMS,
        passed=None,
        lab_org=None,
        recorder=None,
        reviewer=None,
        officer=None,
        version: str = "5.1",
    ) -> Application:
        vendor = vendor_alice.memberships.get().organisation
        product, _ = Product.objects.get_or_create(vendor=vendor, name="HelixEHR")
        product_version = services.product_version_create(
            product=product, version=version, by=vendor_alice
        )
        passed = claims if passed is None else passed
        connectathon_import(
            event=connectathon_2026,
            stream=io.BytesIO(
                results_csv([(vendor.name, "HelixEHR", *claim, "Pass") for claim in passed])
            ),
            by=None,
        )
        application = services.application_create(
            product_version=product_version, aipos=[aipo(*c) for c in claims], by=vendor_alice
        )
        if state == "draft":
            return application
        application = services.application_submit(application=application, by=vendor_alice)
        if state == "submitted":
            return application
        application = services.application_assign_lab(
            application=application, lab=lab_org, by=officer
        )
        if state == "in_assessment":
            return application
        for claim in claims:
            test_record_create(
                application=application, aipo=aipo(*claim), result="pass", by=recorder
            )
        application = services.application_complete_assessment(application=application, by=recorder)
        if state == "in_review":
            return application
        application = services.application_approve_report(application=application, by=reviewer)
        if state == "decision_pending":
            return application
        return services.application_grant(application=application, by=officer)

    return build


@pytest.fixture
def pending_case(make_application, lab, assessor_carol, reviewer_dave, officer_erin):
    """A Helix case assessed by Carol, reviewed by Dave, assigned by Erin: awaiting decision."""
    return make_application(
        "decision_pending",
        lab_org=lab,
        recorder=assessor_carol,
        reviewer=reviewer_dave,
        officer=officer_erin,
    )
