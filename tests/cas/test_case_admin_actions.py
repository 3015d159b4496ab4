"""Admin actions on cases: the operator acts as themself through the services; a refusal is
a message on the list page, never a 500 and never a change."""

from __future__ import annotations

import pytest
from django.test import Client
from support import page_text

from cas.models import Application, AuditEntry, Membership

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/cas/application/"


@pytest.fixture
def operator_officer(django_user_model, scheme):
    """A staff officer: the scheme's operator, who may decide cases."""
    user = django_user_model.objects.create_superuser("operator_olive", "o@example.org", "pw")
    Membership.objects.create(user=user, organisation=scheme, role="scheme_officer")
    return user


@pytest.fixture
def root(django_user_model):
    """A superuser with no role in any organisation."""
    return django_user_model.objects.create_superuser("root", "r@example.org", "pw")


def run_action(user, action: str, *cases: Application, **extra) -> str:
    client = Client()
    client.force_login(user)
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [c.pk for c in cases], "index": 0, **extra},
        follow=True,
    )
    assert response.status_code == 200
    return page_text(response)


def state_of(application: Application) -> str:
    return Application.objects.get(pk=application.pk).state


def test_it_offers_every_case_action_and_the_reason_and_lab_fields(pending_case, operator_officer):
    client = Client()
    client.force_login(operator_officer)
    page = page_text(client.get(CHANGELIST))
    for label in ("Grant", "Refuse", "Assign a lab", "Withdraw", "Uphold the appeal"):
        assert f">{label}<" in page
    assert 'name="text"' in page and 'name="lab"' in page
    assert "Delete selected" not in page


def test_it_grants_as_the_operator_through_the_service(pending_case, operator_officer):
    page = run_action(operator_officer, "grant", pending_case, text="Checked by operator")
    assert f"Grant: {pending_case.reference} (certified)." in page
    entry = AuditEntry.objects.filter(object_id=str(pending_case.pk), action="grant").get()
    assert entry.actor_name == "operator_olive"
    assert entry.reason == "Checked by operator"


def test_it_assigns_the_lab_chosen_in_the_action_bar(
    make_application, operator_officer, lab, assessor_carol
):
    # (assessor_carol: a lab with nobody competent in the claimed domain cannot be assigned)
    application = make_application("submitted")
    page = run_action(operator_officer, "assign_lab", application, lab=lab.pk)
    assert "(in assessment)" in page
    assert Application.objects.get(pk=application.pk).lab == lab


def test_it_reports_each_refusal_as_a_message_and_changes_nothing(
    pending_case, make_application, operator_officer, root
):
    entries = AuditEntry.objects.count()
    page = run_action(operator_officer, "refuse", pending_case)
    assert f"{pending_case.reference}: A refusal needs the reasons" in page
    page = run_action(root, "grant", pending_case)
    assert f"{pending_case.reference}: Only a scheme officer who took no part" in page
    page = run_action(operator_officer, "assign_lab", pending_case)
    assert "Say which lab to assign." in page
    page = run_action(operator_officer, "uphold_appeal", pending_case, text="x")
    assert "'reopen on appeal' is no longer possible" in page
    assert state_of(pending_case) == "decision_pending"
    assert AuditEntry.objects.count() == entries


def test_it_runs_on_several_cases_and_reports_each(
    pending_case, make_application, operator_officer, lab
):
    submitted = make_application("submitted", version="6.0")
    page = run_action(operator_officer, "withdraw", pending_case, submitted)
    # Withdrawal is the vendor's: the operator is refused on both, by name.
    assert page.count("Only the vendor can withdraw its application.") == 2
    page = run_action(operator_officer, "refuse", pending_case, submitted, text="Incomplete")
    assert f"Refuse: {pending_case.reference} (refused)." in page
    assert f"{submitted.reference}: " in page and "'refuse' is no longer possible" in page
    assert (state_of(pending_case), state_of(submitted)) == ("refused", "submitted")
