"""Every page, found from the URL configuration, as every member of the cast: never a 500,
and never a foreign case (a vendor or lab outside the case gets 404)."""

from __future__ import annotations

import io

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from support import client_for

pytestmark = pytest.mark.django_db

# Logging out mid-walk would turn every later request into a redirect to the login page.
SKIP_PREFIXES = ("admin/", "static/", "media/", "accounts/logout/")


def walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and not route.startswith(SKIP_PREFIXES):
            yield route


def concrete(route: str, *, case_pk: int, number: str) -> str:
    return "/" + route.replace("<int:pk>", str(case_pk)).replace("<str:number>", number).lstrip("^")


GARBAGE = {
    "version": "",
    "name": "x" * 500,
    "aipos": ["nope", "999999"],
    "product_version": "abc",
    "lab": "-1",
    "aipo": "999999",
    "result": "maybe",
    "reason": "\x00",
    "number": "' OR 1=1 --",
    "qr": "not.a.jws",
    "event": "",
}


def test_it_never_answers_500_and_hides_foreign_cases(
    pending_case,
    vendor_alice,
    vendor_bob,
    assessor_carol,
    reviewer_dave,
    officer_frank,
    django_user_model,
):
    from cas.models import Organisation

    other_lab = Organisation.objects.create(kind="lab", name="Other Lab")
    from cas.models import Membership

    outsider_assessor = django_user_model.objects.create_user("assessor_olga", password="x")
    Membership.objects.create(user=outsider_assessor, organisation=other_lab, role="assessor")
    routes = sorted(set(walk(get_resolver().url_patterns)))
    assert any("applications/<int:pk>/" in r for r in routes)
    users = [
        None,
        vendor_alice,
        vendor_bob,
        assessor_carol,
        reviewer_dave,
        officer_frank,
        outsider_assessor,
    ]
    for user in users:
        client = client_for(user) if user else __import__("django.test").test.Client()
        for route in routes:
            url = concrete(route, case_pk=pending_case.pk, number="CAS-2026-000404")
            for method in ("get", "post"):
                data = dict(GARBAGE)
                if method == "post":
                    data["pdf"] = io.BytesIO(b"%PDF-1.7 broken")
                    data["file"] = io.BytesIO(b"\xff\xfe not csv")
                # GETs carry a hostile search too (the registry searches JSON on PostgreSQL).
                query = data if method == "post" else {"q": "Helix' %_\\", "number": "x"}
                response = getattr(client, method)(url, query)
                if response.status_code == 503 and "opencas-status-list" in url:
                    # By design before the first list is signed (a GET never signs one).
                    assert b"No status list has been published yet" in response.content
                    continue
                assert response.status_code < 500, (user, method, url, response.status_code)
                if user in (vendor_bob, outsider_assessor) and "applications/<int:pk>" in route:
                    # 405 (GET on a POST-only action) answers alike for every id: no leak.
                    assert response.status_code in (404, 405), (user, method, url)
                    assert pending_case.reference.encode() not in response.content


# Hostile JSON for the API: wrong types, nulls, nesting, numbers past any column's range.
API_GARBAGE = [
    b"{not json",
    b"[]",
    b'"a string"',
    b"null",
    b'{"claims": "x", "product_version": {"a": 1}, "lab": [1], "reduce_scope": "perhaps",'
    b' "outcome": 7, "reason": {"x": 1}, "message": [], "comments": null, "name": null}',
    b'{"claims": [{"aipo": 100000000000000000000000000000}, {"profile": null}, 5],'
    b' "product_version": -1, "lab": 100000000000000000000000000000, "vendor": "me",'
    b' "version": "' + b"9" * 500 + b'", "outcome": "both"}',
    b'{"claims": [{"profile": "XDS.b", "actor": "' + b"A" * 5000 + b'"}], "note": "\\u0000"}',
]


def test_the_api_never_answers_500_to_hostile_json(
    pending_case,
    vendor_alice,
    vendor_bob,
    assessor_carol,
    officer_erin,
):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    routes = sorted({r for r in walk(get_resolver().url_patterns) if r.startswith("api/")})
    assert "api/applications/<int:pk>/grant/" in routes
    ids = (pending_case.pk, 100000000000000000000000)
    # One of each kind of person keeps the walk short; the isolation walk covers everyone.
    for user in (None, vendor_alice, vendor_bob, assessor_carol, officer_erin):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        for route in routes:
            for case_pk in ids:
                url = concrete(route, case_pk=case_pk, number="CAS-2026-000404")
                response = client.get(url, {"page": "x", "page_size": "-5", "state": "\x00"})
                assert response.status_code < 500, (user, "get", url, response.status_code)
                for body in API_GARBAGE:
                    # Only an object's own URL takes PATCH; elsewhere it is a plain 405.
                    methods = ("post", "patch") if route.endswith("<int:pk>/") else ("post",)
                    for method in methods:
                        response = getattr(client, method)(
                            url, body, content_type="application/json"
                        )
                        assert response.status_code < 500, (user, method, url, body[:40])
                        if response.status_code >= 400 and response.status_code != 405:
                            assert "detail" in response.json(), (user, method, url)
