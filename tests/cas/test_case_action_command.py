"""`manage.py case_action`: the same services from the command line, the same refusals."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command
from support import HELIX_CLAIMS, aipo

from cas.management.commands.case_action import Command
from cas.models import Application, AuditEntry, CaseMessage
from labs.services import test_record_create as record_result

pytestmark = pytest.mark.django_db


def run(reference: str, action: str, *args: str) -> str:
    out = io.StringIO()
    call_command("case_action", reference, action, *args, stdout=out)
    return out.getvalue().strip()


def state_of(application: Application) -> str:
    return Application.objects.get(pk=application.pk).state


def test_it_walks_a_case_from_draft_to_a_reduced_grant(
    make_application, lab, vendor_alice, officer_erin, assessor_carol, reviewer_dave, officer_frank
):
    application = make_application("draft")
    ref = application.reference
    assert run(ref, "submit", "--as", "vendor_alice") == f"{ref}: submitted (submitted)"
    run(ref, "request_info", "--as", "officer_erin", "--message", "Release notes?")
    assert state_of(application) == "info_requested"
    run(ref, "resubmit", "--as", "vendor_alice", "--message", "Attached")
    assert list(CaseMessage.objects.values_list("body", flat=True)) == [
        "Release notes?",
        "Attached",
    ]
    out = run(ref, "assign-lab", "--as", "officer_erin", "--lab", lab.name.upper())
    assert out == f"{ref}: in assessment (in_assessment)"
    for claim, result in zip(HELIX_CLAIMS, ["pass", "fail"], strict=True):
        record_result(application=application, aipo=aipo(*claim), result=result, by=assessor_carol)
    run(ref, "complete-assessment", "--as", "assessor_carol")
    run(ref, "return-for-rework", "--as", "reviewer_dave", "--comments", "Logs missing")
    run(ref, "complete-assessment", "--as", "assessor_carol")
    run(ref, "approve-report", "--as", "reviewer_dave")
    assert state_of(application) == "decision_pending"
    out = run(ref, "grant", "--as", "officer_frank", "--reason", "Passed", "--reduce-scope")
    assert out == f"{ref}: certified (certified)"
    assert list(
        application.claims.order_by("aipo__profile__keyword").values_list("granted", flat=True)
    ) == [False, True]
    entry = AuditEntry.objects.filter(object_id=str(application.pk), action="grant").get()
    assert entry.actor_name == "officer_frank"
    assert entry.request_id.startswith("cli-")


def test_it_refuses_then_upholds_an_appeal_then_withdraws(
    pending_case, vendor_alice, officer_erin, officer_frank
):
    ref = pending_case.reference
    assert run(ref, "refuse", "--as", "officer_frank", "--reason", "Too old") == (
        f"{ref}: refused (refused)"
    )
    run(ref, "appeal", "--as", "vendor_alice", "--reason", "They are recent")
    out = run(ref, "appeal-decision", "--as", "officer_erin", "--uphold", "--reason", "Agreed")
    assert out == f"{ref}: decision pending (decision_pending)"
    assert run(ref, "withdraw", "--as", "vendor_alice") == f"{ref}: withdrawn (withdrawn)"


def test_it_dismisses_an_appeal(pending_case, vendor_alice, officer_erin, officer_frank):
    ref = pending_case.reference
    run(ref, "refuse", "--as", "officer_frank", "--reason", "Too old")
    run(ref, "appeal", "--as", "vendor_alice", "--reason", "Please")
    out = run(ref, "appeal-decision", "--as", "officer_erin", "--dismiss", "--reason", "Stands")
    assert out == f"{ref}: refused (refused)"


def test_it_exits_non_zero_with_the_refusal_and_changes_nothing(
    pending_case, vendor_alice, capsys, monkeypatch
):
    from django.db import connections

    # run_from_argv closes every connection when it ends, the test's own included.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    entries = AuditEntry.objects.count()
    with pytest.raises(SystemExit) as exit_info:
        Command().run_from_argv(
            ["manage.py", "case_action", pending_case.reference, "grant", "--as", "vendor_alice"]
        )
    assert exit_info.value.code == 1
    assert "Only a scheme officer who took no part" in capsys.readouterr().err
    assert state_of(pending_case) == "decision_pending"
    assert AuditEntry.objects.count() == entries


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["refuse", "--as", "officer_frank"], "A refusal needs the reasons"),
        (["approve-report", "--as", "reviewer_dave"], "is now decision pending"),
        (["appeal-decision", "--as", "officer_frank", "--reason", "x"], "uphold or dismiss"),
        (["fly", "--as", "officer_frank"], "'fly' is not a case action"),
        (["grant", "--as", "nobody"], "There is no user 'nobody'"),
        (["grant", "--as", "officer_frank", "--lab", "X"], "--lab does not apply to grant"),
        (["withdraw", "--as", "vendor_alice", "--reduce-scope"], "--reduce-scope does not apply"),
        (["assign-lab", "--as", "officer_frank", "--lab", "Nowhere"], "no test laboratory named"),
    ],
)
def test_it_names_what_is_wrong(pending_case, vendor_alice, officer_frank, args, message):
    before = (state_of(pending_case), AuditEntry.objects.count())
    with pytest.raises(CommandError, match=message):
        run(pending_case.reference, *args)
    assert (state_of(pending_case), AuditEntry.objects.count()) == before


def test_it_refuses_a_second_grant_as_a_conflict(pending_case, officer_erin, officer_frank):
    run(pending_case.reference, "grant", "--as", "officer_frank")
    grants = AuditEntry.objects.filter(action="grant").count()
    with pytest.raises(CommandError, match="is now certified: 'grant' is no longer possible"):
        run(pending_case.reference, "grant", "--as", "officer_erin")
    assert AuditEntry.objects.filter(action="grant").count() == grants == 1


def test_it_does_not_reveal_a_foreign_case_and_logs_the_attempt(pending_case, vendor_bob, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="opencas.access"),
        pytest.raises(
            CommandError, match=f"No application {pending_case.reference} that vendor_bob"
        ),
    ):
        run(pending_case.reference, "withdraw", "--as", "vendor_bob")
    assert any(
        r.name == "opencas.access" and f"foreign application {pending_case.pk}" in r.getMessage()
        for r in caplog.records
    )
    assert state_of(pending_case) == "decision_pending"
    with pytest.raises(CommandError, match="No application APP-0000-99999 that vendor_bob"):
        run("APP-0000-99999", "withdraw", "--as", "vendor_bob")
