"""Two people acting on one case at the same moment: one outcome, one set of side effects."""

from __future__ import annotations

import pytest
from django.core import mail
from support import client_for, page_text, race

from cas import services
from cas.errors import Conflict
from cas.models import Application, AuditEntry
from certificates.models import Certificate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pending(pending_case):
    return pending_case


def test_it_grants_once_when_two_officers_grant_at_the_same_moment(pending, officer_frank):
    # Each request loaded the case before either locked it, as two open pages would.
    first, second = (Application.objects.get(pk=pending.pk) for _ in range(2))
    outcomes = race(
        lambda: services.application_grant(application=first, by=officer_frank),
        lambda: services.application_grant(application=second, by=officer_frank),
    )
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == 1, outcomes
    assert "is now certified" in conflicts[0].message
    assert Certificate.objects.filter(application=pending).count() == 1
    assert AuditEntry.objects.filter(object_id=str(pending.pk), action="grant").count() == 1


def test_it_lets_either_grant_or_withdraw_win_but_not_both(pending, officer_frank, vendor_alice):
    first, second = (Application.objects.get(pk=pending.pk) for _ in range(2))
    outcomes = race(
        lambda: services.application_grant(application=first, by=officer_frank),
        lambda: services.application_withdraw(application=second, by=vendor_alice),
    )
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
    final = Application.objects.get(pk=pending.pk).state
    certificates = Certificate.objects.filter(application=pending).count()
    assert (final, certificates) in {("certified", 1), ("withdrawn", 0)}


def test_it_answers_409_over_http_to_the_loser_of_two_grants_and_mails_once(
    pending, officer_frank, vendor_alice
):
    pages = [client_for(officer_frank), client_for(officer_frank)]
    mail.outbox.clear()
    url = f"/applications/{pending.pk}/grant/"
    outcomes = race(*(lambda c=c: c.post(url, {"reason": "all passed"}) for c in pages))
    statuses = sorted(r.status_code for r in outcomes)
    assert statuses == [302, 409], outcomes
    loser = next(r for r in outcomes if r.status_code == 409)
    assert "is now certified" in page_text(loser)
    assert Certificate.objects.filter(application=pending).count() == 1
    assert AuditEntry.objects.filter(object_id=str(pending.pk), action="grant").count() == 1
    assert [m.to for m in mail.outbox if "granted" in m.subject] == [["vendor_alice@example.org"]]


def test_it_answers_409_over_http_to_a_withdrawal_that_lost_to_a_grant_or_the_reverse(
    pending, officer_frank, vendor_alice
):
    officer, vendor = client_for(officer_frank), client_for(vendor_alice)
    outcomes = race(
        lambda: officer.post(f"/applications/{pending.pk}/grant/", {"reason": "ok"}),
        lambda: vendor.post(f"/applications/{pending.pk}/withdraw/", {"reason": "later"}),
    )
    assert sorted(r.status_code for r in outcomes) == [302, 409], outcomes
    final = Application.objects.get(pk=pending.pk).state
    certificates = Certificate.objects.filter(application=pending).count()
    assert (final, certificates) in {("certified", 1), ("withdrawn", 0)}
