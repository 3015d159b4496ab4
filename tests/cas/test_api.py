"""The REST API as a vendor's CI and the other roles use it: tokens, products, applications,
every case action, and every refusal as JSON {"detail": ...} with its status."""

from __future__ import annotations

import logging

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from support import HELIX_CLAIMS, PASSWORD, aipo

from cas.models import Application, AuditEntry, CaseMessage, Product
from certificates.models import Certificate
from labs.services import test_record_create as record_result

pytestmark = pytest.mark.django_db


def api_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def act(user, application: Application, action: str, **data):
    return api_for(user).post(f"/api/applications/{application.pk}/{action}/", data, format="json")


def audit_count(application: Application) -> int:
    return AuditEntry.objects.filter(
        object_type="cas.application", object_id=str(application.pk)
    ).count()


def state_of(application: Application) -> str:
    return Application.objects.get(pk=application.pk).state


@pytest.fixture
def cast(lab, assessor_carol, reviewer_dave, officer_erin, officer_frank):
    return {
        "lab_org": lab,
        "recorder": assessor_carol,
        "reviewer": reviewer_dave,
        "officer": officer_erin,
    }


# --- Tokens ---


def test_it_gives_a_token_for_a_username_and_password(vendor_alice):
    response = APIClient().post(
        "/api/auth/token/", {"username": "vendor_alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=vendor_alice).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/applications/").status_code == 200


def test_it_refuses_a_token_for_a_wrong_password(vendor_alice):
    response = APIClient().post(
        "/api/auth/token/", {"username": "vendor_alice", "password": "guess"}, format="json"
    )
    assert response.status_code == 400
    assert "Unable to log in" in response.json()["detail"]
    assert not Token.objects.exists()


WRONG = "guess"


def guess(address: str, username: str, password: str = WRONG):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_it_refuses_the_fourth_token_request_from_one_address_in_a_minute(vendor_alice, settings):
    settings.TOKEN_RATE = "3/minute"
    assert [guess("203.0.113.30", f"user{n}").status_code for n in range(3)] == [400] * 3
    refused = guess("203.0.113.30", "vendor_alice", PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many token requests from your address")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert not Token.objects.exists()


def test_it_refuses_guesses_at_one_username_from_many_addresses(vendor_alice, settings):
    settings.TOKEN_RATE = "3/minute"
    for n in range(3):
        assert guess(f"198.51.100.{n}", "vendor_alice").status_code == 400
    assert guess("198.51.100.99", "Vendor_Alice", PASSWORD).status_code == 429
    assert guess("198.51.100.99", "vendor_bob", PASSWORD).status_code == 400


def test_it_documents_the_token_limit(officer_erin):
    paths = api_for(officer_erin).get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "429" in paths["/api/auth/token/"]["post"]["responses"]


def test_it_asks_for_credentials_with_401(pending_case):
    for url in ("/api/applications/", f"/api/applications/{pending_case.pk}/"):
        response = APIClient().get(url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
        assert pending_case.reference not in response.content.decode()
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get("/api/applications/").status_code == 401


# --- Products and versions ---


def test_it_registers_a_product_and_a_version(vendor_alice):
    client = api_for(vendor_alice)
    response = client.post("/api/products/", {"name": "HelixLab"}, format="json")
    assert response.status_code == 201, response.json()
    product = response.json()
    assert product["vendor_name"] == "Helix Health Systems"
    response = client.post(f"/api/products/{product['id']}/versions/", {"version": "2.0"})
    assert response.status_code == 201
    assert response.json()["version"] == "2.0"
    listed = client.get(f"/api/products/{product['id']}/versions/").json()
    assert [v["version"] for v in listed] == ["2.0"]
    assert AuditEntry.objects.filter(object_type="cas.productversion", action="create").exists()


def test_it_refuses_a_duplicate_product_and_stores_nothing(vendor_alice):
    client = api_for(vendor_alice)
    client.post("/api/products/", {"name": "HelixLab"}, format="json")
    response = client.post("/api/products/", {"name": "helixlab"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Helix Health Systems already has a product named 'helixlab'."
    }
    assert Product.objects.count() == 1


def test_it_names_the_missing_field_of_a_product(vendor_alice):
    response = api_for(vendor_alice).post("/api/products/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "name: This field is required."
    assert not Product.objects.exists()


def test_it_refuses_product_registration_to_an_officer(officer_erin):
    response = api_for(officer_erin).post("/api/products/", {"name": "X"}, format="json")
    assert response.status_code == 403
    assert "Only members of a vendor" in response.json()["detail"]
    assert not Product.objects.exists()


def test_it_lists_only_the_vendors_own_products(make_application, vendor_alice, vendor_bob):
    make_application("draft")
    names = [p["name"] for p in api_for(vendor_alice).get("/api/products/").json()["results"]]
    assert names == ["HelixEHR"]
    assert api_for(vendor_bob).get("/api/products/").json()["results"] == []


def test_it_answers_404_for_a_foreign_product_and_logs_it(make_application, vendor_bob, caplog):
    product = make_application("draft").product_version.product
    client = api_for(vendor_bob)
    with caplog.at_level(logging.WARNING, logger="opencas.access"):
        for response in (
            client.get(f"/api/products/{product.pk}/"),
            client.get(f"/api/products/{product.pk}/versions/"),
            client.post(f"/api/products/{product.pk}/versions/", {"version": "9"}),
        ):
            assert response.status_code == 404
            assert "HelixEHR" not in response.content.decode()
    assert len([r for r in caplog.records if "foreign product" in r.getMessage()]) == 3
    assert not product.versions.filter(version="9").exists()


# --- Applications ---


def test_it_creates_a_draft_from_aipo_ids_and_keywords(make_application, vendor_alice):
    version = make_application("draft").product_version
    xds = aipo("XDS.b", "DOC_CONSUMER")
    response = api_for(vendor_alice).post(
        "/api/applications/",
        {
            "product_version": version.pk,
            "claims": [{"aipo": xds.pk}, {"profile": "PDQm", "actor": "PDC"}, {"aipo": xds.pk}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    case = response.json()
    assert case["state"] == "draft"
    assert case["reference"].startswith("APP-")
    assert [c["aipo"]["profile"] for c in case["claims"]] == ["PDQm", "XDS.b"]
    assert case["allowed_actions"] == ["submit", "withdraw"]


def test_it_names_every_unknown_aipo_and_stores_nothing(make_application, vendor_alice):
    version = make_application("draft").product_version
    before = Application.objects.count()
    response = api_for(vendor_alice).post(
        "/api/applications/",
        {
            "product_version": version.pk,
            "claims": [{"aipo": 999999}, {"profile": "XDS.b", "actor": "NO_SUCH_ACTOR"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Not in the catalogue: aipo 999999; XDS.b / NO_SUCH_ACTOR / NONE."
    )
    assert Application.objects.count() == before


def test_it_refuses_an_application_for_a_foreign_version(make_application, vendor_bob, caplog):
    version = make_application("draft").product_version
    before = Application.objects.count()
    with caplog.at_level(logging.WARNING, logger="opencas.access"):
        response = api_for(vendor_bob).post(
            "/api/applications/",
            {"product_version": version.pk, "claims": [{"profile": "PDQm", "actor": "PDC"}]},
            format="json",
        )
    assert response.status_code == 400
    assert "not one of your product versions" in response.json()["detail"]
    assert Application.objects.count() == before
    assert any("foreign product version" in r.getMessage() for r in caplog.records)


def test_it_refuses_an_application_without_claims(make_application, vendor_alice):
    version = make_application("draft").product_version
    response = api_for(vendor_alice).post(
        "/api/applications/", {"product_version": version.pk, "claims": []}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("claims:")


def test_it_replaces_the_claims_of_a_draft(make_application, vendor_alice):
    application = make_application("draft")
    response = api_for(vendor_alice).patch(
        f"/api/applications/{application.pk}/",
        {"claims": [{"profile": "XDS.b", "actor": "DOC_CONSUMER", "option": "NONE"}]},
        format="json",
    )
    assert response.status_code == 200
    assert [c["aipo"]["profile"] for c in response.json()["claims"]] == ["XDS.b"]
    assert AuditEntry.objects.filter(object_id=str(application.pk), action="set_claims").exists()


def test_it_refuses_to_change_claims_after_submission_with_409(make_application, vendor_alice):
    application = make_application("submitted")
    response = api_for(vendor_alice).patch(
        f"/api/applications/{application.pk}/",
        {"claims": [{"profile": "XDS.b", "actor": "DOC_CONSUMER"}]},
        format="json",
    )
    assert response.status_code == 409
    assert "only change while the application is a draft" in response.json()["detail"]
    assert application.claims.count() == 2


def test_it_lists_cases_by_role_and_filters_by_state(
    make_application, vendor_alice, vendor_bob, officer_erin
):
    application = make_application("draft")
    refs = [
        c["reference"] for c in api_for(vendor_alice).get("/api/applications/").json()["results"]
    ]
    assert refs == [application.reference]
    assert api_for(vendor_bob).get("/api/applications/").json()["count"] == 0
    officer = api_for(officer_erin)
    assert officer.get("/api/applications/?state=draft").json()["count"] == 1
    assert officer.get("/api/applications/?state=certified").json()["count"] == 0
    response = officer.get("/api/applications/?state=bogus")
    assert response.status_code == 400
    assert "'bogus' is not a state" in response.json()["detail"]


# --- Every transition through its endpoint ---


def test_it_submits_then_exchanges_information_then_assigns_a_lab(
    make_application, vendor_alice, officer_erin, lab, assessor_carol
):
    # (assessor_carol: a lab with nobody competent in the claimed domain cannot be assigned)
    application = make_application("draft")
    response = act(vendor_alice, application, "submit")
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "submitted"
    response = act(officer_erin, application, "request-info", message="Which release notes?")
    assert response.json()["state"] == "info_requested"
    assert response.json()["allowed_actions"] == []
    assert (
        act(vendor_alice, application, "resubmit", message="See 5.1 notes").json()["state"]
        == "submitted"
    )
    messages = api_for(vendor_alice).get(f"/api/applications/{application.pk}/messages/").json()
    assert [(m["kind"], m["body"], m["author"]) for m in messages] == [
        ("info_request", "Which release notes?", "officer_erin"),
        ("answer", "See 5.1 notes", "vendor_alice"),
    ]
    response = act(officer_erin, application, "assign-lab", lab=lab.pk, note="in scope")
    assert response.json()["state"] == "in_assessment"
    assert response.json()["lab_name"] == lab.name


def test_it_completes_reworks_and_approves_the_assessment(
    make_application, cast, assessor_carol, reviewer_dave
):
    application = make_application("in_assessment", **cast)
    for claim in HELIX_CLAIMS:
        record_result(application=application, aipo=aipo(*claim), result="pass", by=assessor_carol)
    assert act(assessor_carol, application, "complete-assessment").json()["state"] == "in_review"
    response = act(reviewer_dave, application, "return-for-rework", comments="Attach logs")
    assert response.json()["state"] == "in_assessment"
    assert act(assessor_carol, application, "complete-assessment").json()["state"] == "in_review"
    response = act(reviewer_dave, application, "approve-report", note="Fine")
    assert response.json()["state"] == "decision_pending"


def test_it_grants_and_the_certificate_is_issued(
    pending_case, officer_frank, vendor_alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = act(officer_frank, pending_case, "grant", reason="All passed")
    assert response.status_code == 200
    assert response.json()["state"] == "certified"
    assert Certificate.objects.filter(application=pending_case).count() == 1
    history = api_for(vendor_alice).get(f"/api/applications/{pending_case.pk}/history/").json()
    assert history[-1]["action"] == "grant"
    assert history[-1]["actor"] == "officer_frank"
    assert history[-1]["request_id"] == response["X-Request-ID"]
    assert history[-1]["previous_hash"] == history[-2]["entry_hash"]


def test_it_grants_a_reduced_scope_listing_what_was_dropped(
    make_application, cast, officer_frank, assessor_carol, reviewer_dave
):
    application = make_application("in_assessment", **cast)
    for claim, result in zip(HELIX_CLAIMS, ["pass", "fail"], strict=True):
        record_result(application=application, aipo=aipo(*claim), result=result, by=assessor_carol)
    act(assessor_carol, application, "complete-assessment")
    assert act(reviewer_dave, application, "approve-report").json()["state"] == "decision_pending"
    refused = act(officer_frank, application, "grant")
    assert refused.status_code == 400
    assert "PDQm / PDC / NONE" in refused.json()["detail"]
    response = act(officer_frank, application, "grant", reduce_scope=True)
    assert response.status_code == 200
    granted = {c["aipo"]["profile"]: c["granted"] for c in response.json()["claims"]}
    assert granted == {"PDQm": False, "XDS.b": True}
    assert "not granted: PDQm / PDC / NONE" in response.json()["decision_reason"]


def test_it_refuses_then_the_vendor_appeals_and_another_officer_decides(
    pending_case, officer_frank, officer_erin, vendor_alice
):
    response = act(officer_frank, pending_case, "refuse", reason="Evidence too old")
    assert response.json()["state"] == "refused"
    assert response.json()["decision_reason"] == "Evidence too old"
    vendor_view = api_for(vendor_alice).get(f"/api/applications/{pending_case.pk}/").json()
    assert vendor_view["allowed_actions"] == ["appeal"]
    assert vendor_view["appeal_deadline"]
    response = act(vendor_alice, pending_case, "appeal", reason="The 2026 results count")
    assert response.json()["state"] == "appealed"
    assert (
        act(
            officer_frank, pending_case, "appeal-decision", outcome="uphold", reason="x"
        ).status_code
        == 403
    )
    response = act(officer_erin, pending_case, "appeal-decision", outcome="uphold", reason="Right")
    assert response.json()["state"] == "decision_pending"


def test_it_dismisses_an_appeal(pending_case, officer_frank, officer_erin, vendor_alice):
    act(officer_frank, pending_case, "refuse", reason="No")
    act(vendor_alice, pending_case, "appeal", reason="Please")
    response = act(
        officer_erin, pending_case, "appeal-decision", outcome="dismiss", reason="Stands"
    )
    assert response.json()["state"] == "refused"


def test_it_withdraws(pending_case, vendor_alice):
    response = act(vendor_alice, pending_case, "withdraw", reason="Replaced by 5.2")
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    assert response.json()["allowed_actions"] == []


def test_it_lists_the_actions_each_person_may_take_now(
    pending_case, officer_frank, officer_erin, vendor_alice, assessor_carol, reviewer_dave
):
    def allowed(user) -> list[str]:
        return api_for(user).get(f"/api/applications/{pending_case.pk}/").json()["allowed_actions"]

    assert allowed(officer_frank) == ["grant", "refuse"]
    assert allowed(officer_erin) == ["grant", "refuse"]
    assert allowed(vendor_alice) == ["withdraw"]
    # Dave approved the report: a reviewer never decides, and the lab has nothing left to do.
    assert allowed(assessor_carol) == []
    assert allowed(reviewer_dave) == []


# --- Every refusal status, with nothing changed ---


@pytest.mark.parametrize(
    ("who", "action", "data", "status", "says"),
    [
        ("officer_frank", "refuse", {}, 400, "A refusal needs the reasons"),
        (
            "officer_frank",
            "appeal-decision",
            {"reason": "x", "outcome": "uphold"},
            409,
            "is no longer possible",
        ),
        ("vendor_alice", "grant", {}, 403, "Only a scheme officer who took no part"),
        ("reviewer_dave", "grant", {}, 403, "Only a scheme officer who took no part"),
        ("assessor_carol", "approve-report", {}, 409, "is now decision pending"),
        ("officer_frank", "submit", {}, 409, "'submit' is no longer possible"),
        ("vendor_bob", "withdraw", {}, 404, "No such application"),
        ("vendor_bob", "grant", {"reason": "\x00" * 3}, 404, "No such application"),
    ],
)
def test_it_refuses_with_the_status_and_message_and_changes_nothing(
    request, pending_case, vendor_bob, who, action, data, status, says
):
    before = (state_of(pending_case), audit_count(pending_case))
    response = act(request.getfixturevalue(who), pending_case, action, **data)
    assert response.status_code == status
    assert says in response.json()["detail"]
    assert (state_of(pending_case), audit_count(pending_case)) == before
    assert not Certificate.objects.exists()


def test_it_refuses_an_unknown_lab_and_an_unqualified_lab(
    make_application, officer_erin, helix, vendor_alice
):
    from cas.models import Organisation

    application = make_application("submitted")
    response = act(officer_erin, application, "assign-lab", lab=999999)
    assert response.status_code == 400
    assert response.json()["detail"] == "There is no test laboratory with id 999999."
    response = act(officer_erin, application, "assign-lab", lab=helix.pk)
    assert response.status_code == 400
    unaccredited = Organisation.objects.create(kind="lab", name="Garage Lab")
    response = act(officer_erin, application, "assign-lab", lab=unaccredited.pk)
    assert response.status_code == 400
    assert "Garage Lab cannot be assigned: it holds no accreditation." in response.json()["detail"]
    response = act(officer_erin, application, "assign-lab", lab="abc")
    assert response.status_code == 400
    assert response.json()["detail"] == "lab: A valid integer is required."
    assert state_of(application) == "submitted"


def test_it_refuses_submission_without_evidence_naming_the_aipo(make_application, vendor_alice):
    application = make_application("draft", passed=[("XDS.b", "DOC_CONSUMER", "NONE")])
    response = act(vendor_alice, application, "submit")
    assert response.status_code == 400
    assert "PDQm / PDC / NONE" in response.json()["detail"]
    assert state_of(application) == "draft"


def test_it_refuses_a_second_grant_with_409(
    pending_case, officer_frank, officer_erin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert act(officer_frank, pending_case, "grant").status_code == 200
    count = audit_count(pending_case)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(officer_erin, pending_case, "grant")
    assert response.status_code == 409
    assert "is now certified" in response.json()["detail"]
    assert audit_count(pending_case) == count
    assert Certificate.objects.filter(application=pending_case).count() == 1


def test_it_refuses_the_recorder_as_reviewer_with_403(make_application, cast, assessor_carol):
    application = make_application("in_assessment", **cast)
    for claim in HELIX_CLAIMS:
        record_result(application=application, aipo=aipo(*claim), result="pass", by=assessor_carol)
    act(assessor_carol, application, "complete-assessment")
    response = act(assessor_carol, application, "approve-report")
    assert response.status_code == 403
    assert "second member of the assigned lab" in response.json()["detail"]
    assert state_of(application) == "in_review"


def test_it_refuses_anyone_acting_on_a_declared_conflict_with_403(
    pending_case, officer_frank, helix
):
    import datetime as dt

    from cas.models import ConflictDeclaration

    ConflictDeclaration.objects.create(
        user=officer_frank, organisation=helix, reason="ex-employee", valid_from=dt.date(2020, 1, 1)
    )
    assert (
        api_for(officer_frank)
        .get(f"/api/applications/{pending_case.pk}/")
        .json()["allowed_actions"]
        == []
    )
    response = act(officer_frank, pending_case, "grant")
    assert response.status_code == 403
    assert "declared a conflict of interest with Helix" in response.json()["detail"]


def test_it_answers_404_for_a_foreign_case_on_every_read_and_logs_it(
    pending_case, vendor_bob, caplog
):
    client = api_for(vendor_bob)
    with caplog.at_level(logging.WARNING, logger="opencas.access"):
        for suffix in ("", "history/", "messages/"):
            response = client.get(f"/api/applications/{pending_case.pk}/{suffix}")
            assert response.status_code == 404
            assert response.json() == {"detail": "No such application"}
    refusals = [r for r in caplog.records if r.name == "opencas.access"]
    assert len(refusals) == 3
    assert all(f"foreign application {pending_case.pk}" in r.getMessage() for r in refusals)


def test_it_answers_the_same_404_for_a_missing_case_without_logging(vendor_bob, caplog, db):
    with caplog.at_level(logging.WARNING, logger="opencas.access"):
        response = api_for(vendor_bob).get("/api/applications/424242/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such application"}
    assert [r for r in caplog.records if r.name == "opencas.access"] == []


# --- The catalogue and the schema ---


def test_it_searches_the_catalogue_by_keyword_with_pages(vendor_alice, catalogue):
    client = api_for(vendor_alice)
    page = client.get("/api/catalogue/aipos/", {"profile": "xds.b", "actor": "DOC_CONSUMER"}).json()
    assert page["count"] >= 1
    assert {a["profile"] for a in page["results"]} == {"XDS.b"}
    assert {a["actor"] for a in page["results"]} == {"DOC_CONSUMER"}
    everything = client.get("/api/catalogue/aipos/", {"page_size": 10}).json()
    assert len(everything["results"]) == 10 and everything["next"]
    second = client.get(everything["next"]).json()
    assert {a["id"] for a in second["results"]}.isdisjoint({a["id"] for a in everything["results"]})
    found = client.get("/api/catalogue/aipos/", {"q": "PDQm"}).json()["results"]
    assert found and all("PDQ" in a["profile"] or "PDQm" in a["actor_name"] for a in found)
    assert client.get("/api/catalogue/aipos/", {"page": 9999}).status_code == 404


def test_the_schema_documents_every_case_action(vendor_alice):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for slug in (
        "submit",
        "request-info",
        "resubmit",
        "assign-lab",
        "complete-assessment",
        "return-for-rework",
        "approve-report",
        "grant",
        "refuse",
        "appeal",
        "appeal-decision",
        "withdraw",
    ):
        operation = paths[f"/api/applications/{{id}}/{slug}/"]["post"]
        assert operation["summary"]
        assert set(operation["responses"]) >= {"200", "400", "403", "404", "409"}
    assert "/api/auth/token/" in paths


def test_it_keeps_messages_with_the_case(make_application, vendor_alice, officer_erin):
    application = make_application("submitted")
    act(officer_erin, application, "request-info", message="   ")
    assert not CaseMessage.objects.exists()
    assert state_of(application) == "submitted"


def test_the_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn turns any warning of drf-spectacular (an undocumented view, a guessed
    # type) into an error; --validate checks the result against the OpenAPI 3 schema.
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/applications/{id}/appeal-decision/" in target.read_text()


def test_an_api_action_mails_whoever_acts_next_like_the_page_does(
    make_application, officer_erin, vendor_alice, mailoutbox, django_capture_on_commit_callbacks
):
    application = make_application("submitted")
    with django_capture_on_commit_callbacks(execute=True):
        response = act(officer_erin, application, "request-info", message="Send the manual")
    assert response.status_code == 200
    assert [(m.subject, m.to) for m in mailoutbox] == [
        (f"{application.reference}: information requested", ["vendor_alice@example.org"])
    ]
    assert "Send the manual" in mailoutbox[0].body


def test_it_offers_no_second_appeal_of_the_same_decision(
    pending_case, officer_frank, officer_erin, vendor_alice
):
    act(officer_frank, pending_case, "refuse", reason="No")
    act(vendor_alice, pending_case, "appeal", reason="Please")
    act(officer_erin, pending_case, "appeal-decision", outcome="dismiss", reason="Stands")
    case = api_for(vendor_alice).get(f"/api/applications/{pending_case.pk}/").json()
    assert case["state"] == "refused"
    assert case["allowed_actions"] == []
    response = act(vendor_alice, pending_case, "appeal", reason="Again")
    assert response.status_code == 400
    assert "already appealed" in response.json()["detail"]


def test_it_refuses_an_aipo_id_past_any_rows_range_with_400(make_application, vendor_alice):
    draft = make_application("draft")
    response = api_for(vendor_alice).post(
        "/api/applications/",
        {"product_version": draft.product_version_id, "claims": [{"aipo": 10**30}]},
        format="json",
    )
    assert response.status_code == 400
    assert (
        "claims: 0: aipo: Ensure this value is less than or equal to" in response.json()["detail"]
    )
