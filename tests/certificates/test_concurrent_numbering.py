"""Several workers issuing at once on PostgreSQL: unique, gap-free numbers, never reused."""

from __future__ import annotations

import pytest
from support import race

from cas import services
from certificates.models import Certificate, NumberSequence, SigningKey
from certificates.services import certificate_issue, certificate_number_allocate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_it_allocates_gap_free_unique_numbers_to_eight_concurrent_workers(db):
    def worker() -> list[str]:
        return [certificate_number_allocate(year=2031) for _ in range(25)]

    outcomes = race(*[worker] * 8)
    numbers = [n for outcome in outcomes for n in outcome]  # an exception would fail here
    assert len(numbers) == len(set(numbers)) == 200
    assert sorted(numbers) == [f"CAS-2031-{i:06d}" for i in range(1, 201)]
    # Each worker saw its own numbers increase: nobody went back to an earlier one.
    assert all(outcome == sorted(outcome) for outcome in outcomes)
    # Another year has its own sequence, and the next number continues, never reuses.
    assert certificate_number_allocate(year=2032) == "CAS-2032-000001"
    assert certificate_number_allocate(year=2031) == "CAS-2031-000201"
    assert NumberSequence.objects.get(year=2031).last == 201


def test_it_issues_concurrently_granted_cases_with_distinct_numbers_and_pdfs(
    make_application, lab, assessor_carol, reviewer_dave, officer_erin, officer_frank, monkeypatch
):
    from certificates import tasks

    # The grants commit here; their issuance is left to the racing workers below.
    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda application_id: None)
    granted = []
    for version in ("6.0", "6.1", "6.2", "6.3"):
        application = make_application(
            "decision_pending",
            lab_org=lab,
            recorder=assessor_carol,
            reviewer=reviewer_dave,
            officer=officer_erin,
            version=version,
        )
        granted.append(services.application_grant(application=application, by=officer_frank))
    assert Certificate.objects.count() == 0

    # Every case issued by two workers at the same moment: eight workers, four numbers.
    outcomes = race(*[lambda pk=a.pk: certificate_issue(application_id=pk) for a in granted * 2])
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    certificates = Certificate.objects.order_by("number")
    assert certificates.count() == 4
    year = certificates.first().decision_date.year
    assert [c.number for c in certificates] == [f"CAS-{year}-{i:06d}" for i in range(1, 5)]
    assert {c.status for c in certificates} == {"active"}
    assert len({c.pdf_sha256 for c in certificates}) == 4
    assert {o.number for o in outcomes} == {c.number for c in certificates}
    # One key of each purpose, though eight workers needed one at the same moment.
    # (and one scheme root CA under which the PDF key was issued).
    active = SigningKey.objects.filter(status="active").order_by("purpose")
    assert [k.purpose for k in active] == ["jws", "pdf", "root"]
    assert SigningKey.objects.count() == 3
