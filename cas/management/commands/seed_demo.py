"""A believable demo world, built through the same services the pages use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from cas import services
from cas.models import AIPO, Application, Domain, Membership, Organisation
from certificates.models import Certificate
from evidence.services import connectathon_event_get_or_create, connectathon_import
from labs.models import Accreditation
from labs.services import test_record_create

DEMO_PASSWORD = "opencas-demo"  # noqa: S105 - printed for the demo on purpose
SAMPLE = Path(__file__).resolve().parents[3] / "evidence" / "data" / "sample_connectathon_2026.csv"

PEOPLE = [
    # username, full name, organisation, role
    ("alice", "Alice Martens", "Helix Health Systems", "vendor_admin"),
    ("hugo", "Hugo Lenaerts", "Helix Health Systems", "vendor_member"),
    ("bob", "Bob Whitfield", "Northwind Medical", "vendor_admin"),
    ("carol", "Carol Dubois", "Brussels Interoperability Test Lab", "assessor"),
    ("dave", "Dave Janssens", "Brussels Interoperability Test Lab", "lab_manager"),
    ("erin", "Erin Okafor", "IHE CAS Certification Body", "scheme_officer"),
    ("frank", "Frank Moreau", "IHE CAS Certification Body", "scheme_officer"),
]

EHR_CLAIMS = [
    ("XDS.b", "DOC_CONSUMER", "NONE"),
    ("PDQm", "PDC", "NONE"),
    ("ATNA", "SN", "NONE"),
    ("CT", "TIME_CLIENT", "NONE"),
]
REPOSITORY_CLAIMS = [
    ("XDS.b", "DOC_REPOSITORY", "NONE"),
    ("XDS.b", "DOC_REGISTRY", "NONE"),
    ("MHD", "DOC_RESPONDER", "NONE"),
]
PACS_CLAIMS = [("XDS.b", "DOC_SOURCE", "NONE"), ("ATNA", "SN", "NONE")]


class Command(BaseCommand):
    help = "Seed demo vendors, a lab, officers, Connectathon results, cases and certificates."

    def handle(self, *args, **options) -> None:
        if Organisation.objects.filter(name="Helix Health Systems").exists():
            self.stdout.write("The demo world is there already.")
        else:
            if not AIPO.objects.exists():
                call_command("load_catalogue", stdout=self.stdout)
            self.seed()
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password: {DEMO_PASSWORD})"))
        for username, name, organisation, role in PEOPLE:
            self.stdout.write(f"  {username:<6} {name:<16} {role:<15} {organisation}")
        self.stdout.write("  admin  (Django admin at /admin/)")

    def seed(self) -> None:
        today = timezone.localdate()
        orgs = {
            "Helix Health Systems": ("vendor", "Rue de la Loi 42\n1040 Brussels\nBelgium", "BE"),
            "Northwind Medical": ("vendor", "1 Harbour Way\nLeeds LS1 4AP\nUnited Kingdom", "GB"),
            "Brussels Interoperability Test Lab": (
                "lab",
                "Boulevard Roi Albert II 16\n1000 Brussels",
                "BE",
            ),
            "IHE CAS Certification Body": ("scheme", "Avenue des Arts 56\n1000 Brussels", "BE"),
        }
        organisations = {
            name: Organisation.objects.create(kind=kind, name=name, address=address, country=cc)
            for name, (kind, address, cc) in orgs.items()
        }
        User = get_user_model()  # noqa: N806
        users = {}
        for username, name, organisation, role in PEOPLE:
            first, last = name.split(" ", 1)
            user = User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@demo.opencas.example",
            )
            Membership.objects.create(
                user=user, organisation=organisations[organisation], role=role
            )
            users[username] = user
        User.objects.create_superuser("admin", "admin@demo.opencas.example", DEMO_PASSWORD)

        lab = organisations["Brussels Interoperability Test Lab"]
        accreditation = Accreditation.objects.create(
            lab=lab,
            body="BELAC",
            number="612-TEST",
            authorisation_number="CAS-LAB-2025-007",
            valid_from=today - dt.timedelta(days=400),
            valid_until=today + dt.timedelta(days=1000),
        )
        accreditation.scope_domains.add(*Domain.objects.filter(keyword__in=["ITI", "RAD"]))
        # labs: the lab's people are authorised in its accredited domains (ISO/IEC 17025 6.2).
        from labs.models import AssessorCompetence

        for username in ("carol", "dave"):
            for domain in Domain.objects.filter(keyword__in=["ITI", "RAD"]):
                AssessorCompetence.objects.create(lab=lab, user=users[username], domain=domain)

        alice, bob = users["alice"], users["bob"]
        helix, northwind = organisations["Helix Health Systems"], organisations["Northwind Medical"]
        versions = {}
        for vendor, user, product_name, version_numbers in [
            (helix, alice, "HelixEHR", ["5.1.2", "5.2.0"]),
            (helix, alice, "HelixPACS", ["3.4"]),
            (northwind, bob, "NW-Repository", ["2.0", "2.1", "2.2"]),
        ]:
            product = services.product_create(vendor=vendor, name=product_name, by=user)
            for number in version_numbers:
                versions[f"{product_name} {number}"] = services.product_version_create(
                    product=product, version=number, by=user
                )

        event = connectathon_event_get_or_create(
            name="IHE-Europe Connectathon 2026, Brussels",
            location="Brussels, Belgium",
            start_date=dt.date(2026, 3, 23),
            end_date=dt.date(2026, 3, 27),
            by=users["erin"],
        )
        with SAMPLE.open("rb") as stream:
            summary = connectathon_import(event=event, stream=stream, by=users["erin"])
        self.stdout.write(f"Imported {summary}")

        steps = ["submit", "assign", "record", "complete", "approve", "grant"]

        def case(version: str, claims, user, until: str, *, results=None):
            application = services.application_create(
                product_version=versions[version],
                aipos=[AIPO.objects.by_keywords(*claim).get() for claim in claims],
                by=user,
            )
            for step in steps[: steps.index(until) + 1] if until != "draft" else []:
                if step == "submit":
                    application = services.application_submit(application=application, by=user)
                elif step == "assign":
                    application = services.application_assign_lab(
                        application=application, lab=lab, by=users["erin"]
                    )
                elif step == "record":
                    for claim, result in zip(
                        claims, results or ["pass"] * len(claims), strict=True
                    ):
                        test_record_create(
                            application=application,
                            aipo=AIPO.objects.by_keywords(*claim).get(),
                            result=result,
                            test_case=f"{claim[0]}-{claim[1]}-conformance",
                            tool="Gazelle EVS 7.2",
                            by=users["carol"],
                        )
                elif step == "complete":
                    application = services.application_complete_assessment(
                        application=application, by=users["carol"]
                    )
                elif step == "approve":
                    application = services.application_approve_report(
                        application=application, by=users["dave"], note="Records complete."
                    )
                elif step == "grant":
                    application = services.application_grant(
                        application=application, by=users["frank"], reason="All AIPOs passed."
                    )
            return application

        case("HelixEHR 5.1.2", EHR_CLAIMS, alice, "grant")
        case("NW-Repository 2.0", REPOSITORY_CLAIMS, bob, "grant")
        case("HelixEHR 5.2.0", EHR_CLAIMS[:2], alice, "draft")
        case("HelixPACS 3.4", PACS_CLAIMS, alice, "submit")
        case("NW-Repository 2.1", REPOSITORY_CLAIMS, bob, "assign")
        case("NW-Repository 2.2", REPOSITORY_CLAIMS[:2], bob, "approve")
        refused = case("HelixPACS 3.4", PACS_CLAIMS[:1], alice, "approve", results=["fail"])
        services.application_refuse(
            application=refused,
            by=users["erin"],
            reason="XDS.b Document Source failed test XDSb-11966 (metadata).",
        )
        appealed = case("HelixPACS 3.4", PACS_CLAIMS[:1], alice, "approve", results=["fail"])
        appealed = services.application_refuse(
            application=appealed,
            by=users["erin"],
            reason="XDS.b Document Source failed test XDSb-11966 again.",
        )
        services.application_appeal(
            application=appealed,
            by=alice,
            reason="The failure came from the peer's registry; its own log shows the error.",
        )
        asked = case("NW-Repository 2.1", REPOSITORY_CLAIMS[:1], bob, "submit")
        services.application_request_info(
            application=asked,
            by=users["erin"],
            message="Which Connectathon system name did NW-Repository 2.1 test under?",
        )
        case("NW-Repository 2.2", REPOSITORY_CLAIMS[:1], bob, "complete")
        withdrawn = case("HelixEHR 5.2.0", EHR_CLAIMS[2:], alice, "submit")
        services.application_withdraw(
            application=withdrawn, by=alice, reason="Re-applying with the 5.2.1 release."
        )
        self.seed_certificate_statuses(case, users, alice, bob)
        for application in Application.objects.select_related("product_version__product"):
            self.stdout.write(
                f"  {application.reference}: {application.product_version} is "
                f"{application.get_state_display().lower()}"
            )
        numbers = Certificate.objects.public().values_list("number", flat=True)
        self.stdout.write(f"Certificates issued: {', '.join(numbers)}")

    def seed_certificate_statuses(self, case, users, alice, bob) -> None:
        """The registry shows more than active certificates: a newer release supersedes the
        first HelixEHR certificate, one certificate is suspended, one withdrawn on the
        vendor's request and one revoked, each with its reason."""
        from certificates import lifecycle
        from certificates.services import certificate_issue

        def certificate_of(application) -> Certificate:
            # Issued on commit already, unless the caller holds a transaction open (the
            # tests): issuing is idempotent, so ask for it.
            return certificate_issue(application_id=application.pk)

        first_ehr = certificate_of(
            Application.objects.get(
                product_version__product__name="HelixEHR",
                product_version__version="5.1.2",
                state=Application.State.CERTIFIED,
            )
        )
        newer = certificate_of(case("HelixEHR 5.2.0", EHR_CLAIMS, alice, "grant"))
        lifecycle.certificate_supersede(
            certificate=first_ehr,
            replacement_number=newer.number,
            by=users["erin"],
            reason="HelixEHR 5.2.0 replaces 5.1.2 with the same scope.",
        )
        lifecycle.certificate_suspend(
            certificate=certificate_of(case("HelixPACS 3.4", PACS_CLAIMS, alice, "grant")),
            by=users["erin"],
            reason="Open nonconformity NC-2026-014: ATNA audit messages lack the user id.",
        )
        lifecycle.certificate_withdraw(
            certificate=certificate_of(case("NW-Repository 2.1", REPOSITORY_CLAIMS, bob, "grant")),
            by=bob,
            reason="Product discontinued: customers move to NW-Repository 2.2.",
        )
        lifecycle.certificate_revoke(
            certificate=certificate_of(case("NW-Repository 2.2", REPOSITORY_CLAIMS, bob, "grant")),
            by=users["frank"],
            reason="The tested build was not the build sold as 2.2 (surveillance finding S-07).",
        )
