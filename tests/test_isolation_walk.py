"""The isolation walk: every case-related URL, found from the URL configuration, as every
member of the cast, against one case of Helix's.

A URL is case-related when one of its parameters names an application (case), a product or
a product version: `<int:pk>` after `applications/`, `cases/`, `products/` or `versions/`, or
a parameter named like `application_pk`, `case_id`, `product_pk`, `version_id`. Pages and API
endpoints that other apps add are walked as soon as they are in the URL configuration.

Foreign people (another vendor, a lab not assigned, and for products everyone outside the
vendor) get 404 on every one of them, the attempt is logged on "opencas.access", and nothing
changes; a 405 is allowed only where a missing id gets the same 405 (it says nothing about the
case). The anonymous buyer is asked to log in (302 to the login page, or 401 from the API).
The people of the case never get a 404. Lists never show a foreign case.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from support import client_for

from cas.models import (
    Application,
    AuditChainHead,
    AuditEntry,
    CaseMessage,
    ClaimedAIPO,
    Membership,
    Organisation,
)

pytestmark = pytest.mark.django_db

SKIP_PREFIXES = ("admin/", "static/", "media/", "accounts/logout/")
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
KIND_AFTER_SEGMENT = {
    "applications": "application",
    "cases": "application",
    "products": "product",
    "versions": "version",
}
KIND_OF_NAME = {
    f"{stem}_{suffix}": kind
    for stem, kind in (
        ("application", "application"),
        ("case", "application"),
        ("product", "product"),
        ("version", "version"),
        ("product_version", "version"),
    )
    for suffix in ("pk", "id")
}
MISSING_ID = "987654"
OTHER_VALUES = {"int": "1", "str": "x", "slug": "x", "path": "x", "uuid": "0" * 32}
GARBAGE = {
    "reason": "\x00 walk",
    "message": "walk",
    "comments": "walk",
    "note": "walk",
    "lab": "-1",
    "outcome": "uphold",
    "reduce_scope": "true",
    "version": "9.9",
    "aipo": "999999",
    "result": "pass",
    "name": "walk",
}


def walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and not route.startswith(SKIP_PREFIXES):
            yield route, pattern


def parameter_kinds(route: str) -> dict[str, str | None]:
    """Each parameter of the route and the kind of object it names (None: something else)."""
    kinds = {}
    for match in PARAMETER.finditer(route):
        name = match["name"]
        before = route[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        kind = KIND_OF_NAME.get(name)
        if kind is None and name in {"pk", "id"}:
            kind = KIND_AFTER_SEGMENT.get(before)
        kinds[name] = kind
    return kinds


def case_routes() -> list[tuple[str, dict[str, str | None]]]:
    found = []
    for route, pattern in walk(get_resolver().url_patterns):
        if isinstance(pattern.pattern, RegexPattern) and "(?P<" in route:
            # A regex route with parameters cannot be filled in generically: make it a path().
            names = re.findall(r"\(\?P<(\w+)>", route)
            assert not {n for n in names if n in KIND_OF_NAME or n in {"pk", "id"}}, route
            continue
        kinds = parameter_kinds(route)
        if any(kinds.values()):
            found.append((route, kinds))
    return sorted(found)


def list_routes() -> list[str]:
    return sorted(
        route for route, _ in walk(get_resolver().url_patterns) if not PARAMETER.search(route)
    )


def concrete(route: str, ids: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        kind = parameter_kinds(route)[match["name"]]
        if kind is not None:
            return ids[kind]
        return OTHER_VALUES.get(match["converter"] or "str", "x")

    return "/" + PARAMETER.sub(fill, route).lstrip("^").rstrip("$")


def snapshot(application: Application) -> tuple:
    head = AuditChainHead.objects.filter(pk=1).first()
    return (
        Application.objects.get(pk=application.pk).state,
        AuditEntry.objects.count(),
        head.length if head else 0,
        CaseMessage.objects.count(),
        list(ClaimedAIPO.objects.order_by("pk").values_list("aipo_id", "granted")),
        application.product_version.product.versions.count(),
    )


@pytest.fixture
def outsider_assessor(django_user_model, catalogue):
    """An assessor of a second, accredited lab that is NOT assigned to the case."""
    other_lab = Organisation.objects.create(kind="lab", name="Second Test Lab")
    user = django_user_model.objects.create_user("assessor_olga", password="x")
    Membership.objects.create(user=user, organisation=other_lab, role="assessor")
    return user


def access_refusals(caplog) -> int:
    return sum(r.name == "opencas.access" and r.levelno >= logging.WARNING for r in caplog.records)


def test_it_discovers_case_pages_and_api_endpoints_from_the_url_configuration():
    routes = {route: kinds for route, kinds in case_routes()}
    assert routes["applications/<int:pk>/"] == {"pk": "application"}
    assert routes["products/<int:pk>/"] == {"pk": "product"}
    assert routes["api/applications/<int:pk>/grant/"] == {"pk": "application"}
    assert routes["api/products/<int:pk>/versions/"] == {"pk": "product"}
    assert parameter_kinds("labs/<int:lab_pk>/cases/<int:case_pk>/<str:sha256>/") == {
        "lab_pk": None,
        "case_pk": "application",
        "sha256": None,
    }
    assert not parameter_kinds("certificates/<str:number>/")["number"]


def test_nobody_outside_the_case_sees_or_changes_it(
    pending_case,
    vendor_alice,
    vendor_bob,
    assessor_carol,
    reviewer_dave,
    officer_erin,
    officer_frank,
    outsider_assessor,
    caplog,
):
    caplog.set_level(logging.WARNING, logger="opencas.access")
    product_version = pending_case.product_version
    ids = {
        "application": str(pending_case.pk),
        "product": str(product_version.product_id),
        "version": str(product_version.pk),
    }
    missing = dict.fromkeys(ids, MISSING_ID)
    secrets = [pending_case.reference.encode(), b"HelixEHR"]
    insiders = {
        "application": {vendor_alice, assessor_carol, reviewer_dave, officer_erin, officer_frank},
        "product": {vendor_alice},
        "version": {vendor_alice},
    }
    cast = [
        vendor_alice,
        vendor_bob,
        assessor_carol,
        reviewer_dave,
        officer_erin,
        officer_frank,
        outsider_assessor,
    ]
    clients = {user: client_for(user) for user in cast}
    anonymous = Client()
    before = snapshot(pending_case)
    routes = case_routes()
    assert len(routes) >= 20, routes

    def send(client: Client, method: str, url: str):
        if method == "get":
            return client.get(url)
        if url.startswith("/api/"):
            return getattr(client, method)(url, GARBAGE, content_type="application/json")
        return getattr(client, method)(url, GARBAGE)

    checked = 0
    for route, kinds in routes:
        url = concrete(route, ids)
        missing_url = concrete(route, missing)
        methods = ["get", "post", "patch"] if route.startswith("api/") else ["get", "post"]
        # The kinds this route names; a person is foreign if outside any one of them.
        route_kinds = {k for k in kinds.values() if k}
        only_case_parameters = all(kinds.values())
        for user in cast:
            client = clients[user]
            insider = all(user in insiders[kind] for kind in route_kinds)
            if insider:
                # The people of the case only read: their POSTs would move the case on.
                response = client.get(url)
                where = (user.username, "get", url, response.status_code)
                assert response.status_code < 500, where
                if only_case_parameters:
                    assert response.status_code != 404, where
                continue
            statuses = []
            for method in methods:
                logged = access_refusals(caplog)
                response = send(client, method, url)
                where = (user.username, method, url, response.status_code)
                assert response.status_code in (404, 405), where
                for secret in secrets:
                    assert secret not in response.content, (where, secret)
                if response.status_code == 404:
                    assert access_refusals(caplog) > logged, ("not logged", where)
                else:
                    # 405 before any lookup: a missing id must get exactly the same answer.
                    same = send(client, method, missing_url)
                    assert same.status_code == 405, (where, "but missing id", same.status_code)
                statuses.append(response.status_code)
                checked += 1
            assert 404 in statuses, (user.username, url, "answers no method with 404")
        for method in methods:
            response = send(anonymous, method, url)
            where = ("anonymous", method, url, response.status_code)
            if url.startswith("/api/"):
                assert response.status_code in (401, 404, 405), where
            else:
                assert response.status_code in (302, 404, 405), where
                if response.status_code == 302:
                    assert response["Location"].startswith("/accounts/login/"), where
            for secret in secrets:
                assert secret not in response.content, (where, secret)
    assert checked > 100
    assert snapshot(pending_case) == before


def test_lists_never_show_a_foreign_case(
    pending_case, vendor_alice, vendor_bob, outsider_assessor, officer_erin
):
    secrets = [pending_case.reference, "HelixEHR"]
    routes = list_routes()
    assert {"", "products/", "api/applications/", "api/products/"} <= set(routes)
    visible = []
    for user in (vendor_bob, outsider_assessor, None):
        client = client_for(user) if user else Client()
        for route in routes:
            response = client.get("/" + route)
            if response.status_code == 503 and "opencas-status-list" in route:
                # By design before the first list is signed (a GET never signs one).
                assert b"No status list has been published yet" in response.content
                continue
            assert response.status_code < 500, (user, route)
            # The registry downloads are streamed: read them too.
            raw = b"".join(response.streaming_content) if response.streaming else response.content
            body = raw.decode(errors="replace")
            for secret in secrets:
                assert secret not in body, (user, route, secret)
    # The walk sees the case where it should be: the vendor's and the officer's lists.
    for user in (vendor_alice, officer_erin):
        client = client_for(user)
        for route in ("", "api/applications/"):
            if pending_case.reference in client.get("/" + route).content.decode():
                visible.append((user.username, route))
    assert len(visible) == 4, visible
