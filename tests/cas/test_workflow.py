"""The case's other paths through HTTP: information requests, rework, appeals, conflicts, mail."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from support import HELIX_CLAIMS, aipo, client_for, page_text

from cas import services
from cas.models import Application, AuditEntry, CaseMessage, ConflictDeclaration
from labs.services import test_record_create as record_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast(lab, assessor_carol, reviewer_dave, officer_erin):
    return {
        "lab_org": lab,
        "recorder": assessor_carol,
        "reviewer": reviewer_dave,
        "officer": officer_erin,
    }


@pytest.fixture
def refused_case(make_application, cast, officer_frank):
    """Assessed by Carol, reviewed by Dave, assigned by Erin, refused by Frank."""
    application = make_application("decision_pending", **cast)
    client_for(officer_frank).post(url(application, "refuse"), {"reason": "PDQm failed twice"})
    assert state_of(application) == "refused"
    return application


def url(application: Application, action: str = "") -> str:
    return f"/applications/{application.pk}/{action + '/' if action else ''}"


def state_of(application: Application) -> str:
    return Application.objects.get(pk=application.pk).state


def audit_length() -> int:
    return AuditEntry.objects.count()


def post(user, application, action, data, on_commit):
    """POST as `user` and run what the transaction queued (mail), as a real request does."""
    with on_commit(execute=True):
        return client_for(user).post(url(application, action), data)


def test_it_sends_an_information_request_to_the_vendor_with_the_message(
    make_application, vendor_alice, officer_erin, django_capture_on_commit_callbacks
):
    application = make_application("submitted")
    mail.outbox.clear()
    response = post(
        officer_erin,
        application,
        "request-info",
        {"message": "Which PDQm version does 5.1 implement?"},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    assert state_of(application) == "info_requested"
    assert [m.to for m in mail.outbox] == [["vendor_alice@example.org"]]
    assert "information requested" in mail.outbox[0].subject
    assert "Which PDQm version does 5.1 implement?" in mail.outbox[0].body
    assert f"/applications/{application.pk}/" in mail.outbox[0].body
    page = page_text(client_for(vendor_alice).get(url(application)))
    assert "Which PDQm version does 5.1 implement?" in page
    assert "Answer and resubmit" in page


def test_it_refuses_an_information_request_without_a_message(make_application, officer_erin):
    application = make_application("submitted")
    before = audit_length()
    response = client_for(officer_erin).post(url(application, "request-info"), {"message": " "})
    assert response.status_code == 400
    assert "Say what information the vendor must provide." in page_text(response)
    assert state_of(application) == "submitted"
    assert audit_length() == before
    assert not CaseMessage.objects.exists()


def test_it_lets_only_an_officer_request_information(make_application, vendor_alice):
    application = make_application("submitted")
    response = client_for(vendor_alice).post(url(application, "request-info"), {"message": "?"})
    assert response.status_code == 403
    assert state_of(application) == "submitted"


def test_it_resubmits_with_the_vendors_answer_and_tells_the_officers(
    make_application,
    vendor_alice,
    officer_erin,
    officer_frank,
    django_capture_on_commit_callbacks,
):
    application = make_application("submitted")
    client_for(officer_erin).post(url(application, "request-info"), {"message": "Version?"})
    mail.outbox.clear()
    response = post(
        vendor_alice,
        application,
        "resubmit",
        {"message": "PDQm 3.1.0, see the release notes."},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    assert state_of(application) == "submitted"
    kinds = list(CaseMessage.objects.values_list("kind", "author__username"))
    assert kinds == [("info_request", "officer_erin"), ("answer", "vendor_alice")]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "officer_erin@example.org",
        "officer_frank@example.org",
    ]
    assert "PDQm 3.1.0, see the release notes." in mail.outbox[0].body


def test_it_refuses_a_resubmission_without_an_answer(make_application, vendor_alice, officer_erin):
    application = make_application("submitted")
    client_for(officer_erin).post(url(application, "request-info"), {"message": "Version?"})
    response = client_for(vendor_alice).post(url(application, "resubmit"), {"message": ""})
    assert response.status_code == 400
    assert "Answer the information request before resubmitting." in page_text(response)
    assert state_of(application) == "info_requested"


def test_it_answers_404_to_another_vendor_answering_an_information_request(
    make_application, vendor_bob, officer_erin
):
    application = make_application("submitted")
    client_for(officer_erin).post(url(application, "request-info"), {"message": "Version?"})
    response = client_for(vendor_bob).post(url(application, "resubmit"), {"message": "mine"})
    assert response.status_code == 404
    assert state_of(application) == "info_requested"


def test_it_returns_a_report_for_rework_with_the_reviewers_comments(
    make_application, cast, django_capture_on_commit_callbacks
):
    application = make_application("in_review", **cast)
    mail.outbox.clear()
    response = post(
        cast["reviewer"],
        application,
        "return",
        {"comments": "XDS.b test log missing"},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    assert state_of(application) == "in_assessment"
    assert "XDS.b test log missing" in mail.outbox[0].body
    assert "assessor_carol@example.org" in {m.to[0] for m in mail.outbox}
    history = AuditEntry.objects.filter(action="return_for_rework").get()
    assert (history.from_state, history.to_state, history.reason) == (
        "in_review",
        "in_assessment",
        "XDS.b test log missing",
    )


def test_it_refuses_rework_requested_by_the_recorder(make_application, cast):
    application = make_application("in_review", **cast)
    response = client_for(cast["recorder"]).post(url(application, "return"), {"comments": "x"})
    assert response.status_code == 403
    assert "second member of the assigned lab" in page_text(response)
    assert state_of(application) == "in_review"


def test_it_refuses_rework_without_comments(make_application, cast):
    application = make_application("in_review", **cast)
    response = client_for(cast["reviewer"]).post(url(application, "return"), {"comments": ""})
    assert response.status_code == 400
    assert state_of(application) == "in_review"


def test_it_refuses_a_whole_scope_grant_when_an_aipo_failed_and_says_which(
    make_application, cast, officer_frank
):
    application = make_application("in_assessment", **cast)
    for profile, actor, result in (("XDS.b", "DOC_CONSUMER", "pass"), ("PDQm", "PDC", "fail")):
        record_result(
            application=application, aipo=aipo(profile, actor), result=result, by=cast["recorder"]
        )
    application = services.application_complete_assessment(
        application=application, by=cast["recorder"]
    )
    services.application_approve_report(application=application, by=cast["reviewer"])
    page = page_text(client_for(officer_frank).get(url(application)))
    assert "reduce the scope to the AIPOs that passed (drops PDQm / PDC / NONE)" in page
    response = client_for(officer_frank).post(url(application, "grant"), {"reason": "ok"})
    assert response.status_code == 400
    assert "These claimed AIPOs did not pass: PDQm / PDC / NONE." in page_text(response)
    assert state_of(application) == "decision_pending"


def test_it_tells_the_vendor_the_reasons_of_a_refusal(
    make_application, cast, vendor_alice, officer_frank, django_capture_on_commit_callbacks
):
    application = make_application("decision_pending", **cast)
    mail.outbox.clear()
    post(
        officer_frank,
        application,
        "refuse",
        {"reason": "PDQm failed twice"},
        django_capture_on_commit_callbacks,
    )
    assert [m.to for m in mail.outbox] == [["vendor_alice@example.org"]]
    assert "refused" in mail.outbox[0].subject
    assert "PDQm failed twice" in mail.outbox[0].body
    page = page_text(client_for(vendor_alice).get(url(application)))
    assert "An appeal is possible until" in page
    assert "Appeal the decision" in page


def test_it_takes_an_appeal_within_the_window_and_tells_the_officers(
    refused_case, vendor_alice, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    response = post(
        vendor_alice,
        refused_case,
        "appeal",
        {"reason": "The PDQm failure was the peer's fault: logs attached."},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    appealed = Application.objects.get(pk=refused_case.pk)
    assert appealed.state == "appealed"
    assert appealed.appeal_reason == "The PDQm failure was the peer's fault: logs attached."
    assert appealed.appealed_decision_by.username == "officer_frank"
    assert {m.to[0] for m in mail.outbox} == {
        "officer_erin@example.org",
        "officer_frank@example.org",
    }


def test_it_refuses_an_appeal_after_the_window(refused_case, vendor_alice, settings):
    later = timezone.now() + dt.timedelta(days=settings.APPEAL_WINDOW_DAYS, hours=1)
    with time_machine.travel(later, tick=False):
        page = page_text(client_for(vendor_alice).get(url(refused_case)))
        assert "Appeal the decision" not in page
        response = client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": "late"})
    assert response.status_code == 400
    assert "The appeal window closed on" in page_text(response)
    assert state_of(refused_case) == "refused"


def test_it_refuses_an_appeal_without_reasons(refused_case, vendor_alice):
    response = client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": ""})
    assert response.status_code == 400
    assert "An appeal needs the reasons" in page_text(response)
    assert state_of(refused_case) == "refused"


def test_it_refuses_the_appeal_to_the_officer_who_decided(
    refused_case, vendor_alice, officer_frank
):
    client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": "peer's fault"})
    assert "Decide the appeal" not in page_text(client_for(officer_frank).get(url(refused_case)))
    response = client_for(officer_frank).post(
        url(refused_case, "appeal-decision"), {"outcome": "uphold", "reason": "agreed"}
    )
    assert response.status_code == 403
    assert "neither took the decision appealed against" in page_text(response)
    assert state_of(refused_case) == "appealed"


def test_it_reopens_an_upheld_appeal_for_a_decision_the_first_decider_cannot_take(
    refused_case, vendor_alice, officer_erin, officer_frank, django_capture_on_commit_callbacks
):
    client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": "peer's fault"})
    mail.outbox.clear()
    response = post(
        officer_erin,
        refused_case,
        "appeal-decision",
        {"outcome": "uphold", "reason": "The peer's logs confirm it."},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    reopened = Application.objects.get(pk=refused_case.pk)
    assert reopened.state == "decision_pending"
    assert reopened.appeal_decided_by == officer_erin
    assert "vendor_alice@example.org" in {m.to[0] for m in mail.outbox}
    again = client_for(officer_frank).post(url(refused_case, "grant"), {"reason": "fine"})
    assert again.status_code == 403
    assert state_of(refused_case) == "decision_pending"


def test_it_lets_the_refusal_stand_when_the_appeal_is_dismissed(
    refused_case, vendor_alice, officer_erin, django_capture_on_commit_callbacks
):
    client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": "peer's fault"})
    mail.outbox.clear()
    post(
        officer_erin,
        refused_case,
        "appeal-decision",
        {"outcome": "dismiss", "reason": "The logs show our own failure."},
        django_capture_on_commit_callbacks,
    )
    assert state_of(refused_case) == "refused"
    assert [m.to for m in mail.outbox] == [["vendor_alice@example.org"]]
    assert "appeal dismissed" in mail.outbox[0].subject
    again = client_for(vendor_alice).post(url(refused_case, "appeal"), {"reason": "again"})
    assert again.status_code == 400
    assert "This decision was already appealed" in page_text(again)


def test_it_answers_409_to_a_withdrawal_after_the_decision(refused_case, vendor_alice):
    response = client_for(vendor_alice).post(url(refused_case, "withdraw"), {"reason": "late"})
    assert response.status_code == 409
    assert "is now refused" in page_text(response)
    assert state_of(refused_case) == "refused"


def test_it_refuses_any_action_by_someone_who_declared_a_conflict_with_the_vendor(
    make_application, cast, officer_frank, helix
):
    application = make_application("decision_pending", **cast)
    ConflictDeclaration.objects.create(
        user=officer_frank,
        organisation=helix,
        reason="Former employee of Helix until 2026",
        valid_from=timezone.localdate() - dt.timedelta(days=10),
    )
    before = audit_length()
    response = client_for(officer_frank).post(url(application, "grant"), {"reason": "ok"})
    assert response.status_code == 403
    assert "You declared a conflict of interest with Helix Health Systems" in page_text(response)
    assert state_of(application) == "decision_pending"
    assert audit_length() == before


def test_it_ignores_a_conflict_declaration_that_has_lapsed(
    make_application, cast, officer_frank, helix, django_capture_on_commit_callbacks
):
    application = make_application("decision_pending", **cast)
    ConflictDeclaration.objects.create(
        user=officer_frank,
        organisation=helix,
        reason="Consulting contract, ended",
        valid_from=timezone.localdate() - dt.timedelta(days=800),
        valid_until=timezone.localdate() - dt.timedelta(days=1),
    )
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(officer_frank).post(url(application, "refuse"), {"reason": "no"})
    assert response.status_code == 302
    assert state_of(application) == "refused"


@pytest.mark.parametrize(
    ("state", "action", "actor", "data", "told"),
    [
        ("draft", "submit", "vendor", {}, {"officer_erin", "officer_frank"}),
        ("submitted", "assign-lab", "officer", None, {"assessor_carol", "reviewer_dave"}),
        ("in_assessment", "complete", "recorder", {}, {"reviewer_dave"}),
        # The approval also releases the lab's test report, which the vendor is sent.
        ("in_review", "approve", "reviewer", {}, {"officer_erin", "officer_frank", "vendor_alice"}),
        ("decision_pending", "grant", "frank", {"reason": "ok"}, {"vendor_alice"}),
        ("submitted", "withdraw", "vendor", {"reason": "later"}, {"officer_erin", "officer_frank"}),
    ],
)
def test_it_mails_the_people_who_must_act_next(
    make_application,
    cast,
    vendor_alice,
    officer_frank,
    django_capture_on_commit_callbacks,
    state,
    action,
    actor,
    data,
    told,
):
    if state == "in_assessment":
        application = make_application("in_assessment", **cast)
        for claim in HELIX_CLAIMS:
            record_result(
                application=application, aipo=aipo(*claim), result="pass", by=cast["recorder"]
            )
    else:
        application = make_application(state, **cast)
    users = {
        "vendor": vendor_alice,
        "officer": cast["officer"],
        "recorder": cast["recorder"],
        "reviewer": cast["reviewer"],
        "frank": officer_frank,
    }
    if data is None:
        data = {"lab": cast["lab_org"].pk}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(users[actor]).post(url(application, action), data)
    assert response.status_code == 302, page_text(response)
    recipients = {m.to[0].split("@")[0] for m in mail.outbox}
    assert recipients == told
    assert all(application.reference in m.subject for m in mail.outbox)


def test_it_shows_each_role_its_work_with_counts_and_ages(
    make_application, cast, vendor_alice, officer_frank
):
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    with time_machine.travel(three_days_ago, tick=False):
        submitted = make_application("submitted", version="5.1")
    draft = make_application("draft", version="5.2")
    in_review = make_application("in_review", version="5.3", **cast)

    vendor_page = page_text(client_for(vendor_alice).get("/"))
    assert "Drafts to finish and submit: 1" in vendor_page
    assert draft.reference in vendor_page

    officer_page = page_text(client_for(officer_frank).get("/"))
    assert "Screening queue: 1" in officer_page
    assert "oldest waiting 3 days" in officer_page
    assert submitted.reference in officer_page
    assert draft.reference not in officer_page  # a draft is the vendor's own business

    lab_page = page_text(client_for(cast["reviewer"]).get("/"))
    assert "Technical reviews due: 1" in lab_page
    assert in_review.reference in lab_page
    assert submitted.reference not in lab_page


def test_it_shows_the_full_history_to_whoever_may_see_the_case(
    make_application, cast, vendor_alice, vendor_bob
):
    application = make_application("in_review", **cast)
    client_for(cast["reviewer"]).post(url(application, "return"), {"comments": "logs missing"})
    page = page_text(client_for(vendor_alice).get(url(application)))
    for action in ("submit", "assign_lab", "complete_assessment", "return_for_rework"):
        assert f"<td>{action}</td>" in page
    assert "logs missing" in page
    assert client_for(vendor_bob).get(url(application)).status_code == 404


def test_it_lets_an_officer_declare_a_conflict_that_then_blocks_the_decision(
    make_application, cast, officer_frank, helix
):
    application = make_application("decision_pending", **cast)
    response = client_for(officer_frank).post(
        "/account/",
        {
            "form": "conflict",
            "organisation": helix.pk,
            "reason": "My spouse works at Helix",
            "valid_from": timezone.localdate().isoformat(),
        },
        follow=True,
    )
    assert "Conflict of interest declared." in page_text(response)
    assert "My spouse works at Helix" in page_text(response)
    assert AuditEntry.objects.filter(action="declare_conflict").count() == 1
    refused = client_for(officer_frank).post(url(application, "refuse"), {"reason": "no"})
    assert refused.status_code == 403
    assert state_of(application) == "decision_pending"


def test_it_refuses_a_conflict_declaration_that_ends_before_it_starts(officer_frank, helix):
    response = client_for(officer_frank).post(
        "/account/",
        {
            "form": "conflict",
            "organisation": helix.pk,
            "reason": "Old contract",
            "valid_from": "2026-05-01",
            "valid_until": "2026-04-01",
        },
    )
    assert response.status_code == 400
    assert "The declaration cannot end before it starts." in page_text(response)
    assert not ConflictDeclaration.objects.exists()


def test_it_shows_a_new_api_token_once_and_the_token_works(vendor_alice):
    from rest_framework.authtoken.models import Token

    client = client_for(vendor_alice)
    first = page_text(client.post("/account/", {"form": "token"}))
    key = Token.objects.get(user=vendor_alice).key
    assert key in first
    assert key not in page_text(client.get("/account/"))
    client.post("/account/", {"form": "token"})
    assert not Token.objects.filter(key=key).exists()


def test_it_counts_an_aipo_as_passed_only_when_every_test_case_passed(
    make_application, cast, officer_frank
):
    application = make_application("in_assessment", **cast)
    for profile, actor, test_case, result in (
        ("XDS.b", "DOC_CONSUMER", "XDSb-11966", "pass"),
        ("XDS.b", "DOC_CONSUMER", "XDSb-12001", "fail"),
        ("PDQm", "PDC", "PDQm-01", "pass"),
        ("PDQm", "PDC", "PDQm-02", "not_applicable"),
    ):
        record_result(
            application=application,
            aipo=aipo(profile, actor),
            result=result,
            test_case=test_case,
            by=cast["recorder"],
        )
    application = services.application_complete_assessment(
        application=application, by=cast["recorder"]
    )
    services.application_approve_report(application=application, by=cast["reviewer"])
    page = page_text(client_for(officer_frank).get(url(application)))
    assert "XDSb-12001: Fail" in page
    response = client_for(officer_frank).post(url(application, "grant"), {"reason": "ok"})
    assert response.status_code == 400
    assert "These claimed AIPOs did not pass: XDS.b / DOC_CONSUMER / NONE." in page_text(response)
