"""Schemathesis against our own OpenAPI schema: every operation that /api/schema/ lists,
called in-process through the WSGI application with generated input (valid and invalid),
as a vendor holding a token, as a lab assessor holding one, and anonymously. None may
answer a server error, and each answer must be one the schema documents for the operation:
its status code, its content type and, for JSON, its body's schema.

The schema is loaded from the running application and no endpoint is named here, so an
endpoint added later is fuzzed as soon as it is in the URL configuration. Generated ids are
mostly unknown ones; half of the valid examples aim at real objects of the cast instead
(cases, products, versions, a certificate's number, an evidence file), so the operations
also run past their lookups.

The requests run inside the test's database transaction: Django closes "old" database
connections when a request starts and ends, which would end that transaction, so the hook
is unplugged for the run, as Django's own test client does.
"""

from __future__ import annotations

import re
import traceback

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cas import services
from certificates.services import certificate_issue
from evidence.services import evidence_file_upload

pytestmark = pytest.mark.django_db

# Examples per operation, person and mode: the whole run stays well under a minute.
EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def app():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def server_errors():
    """The traceback of every exception a request raised, to explain a 500."""
    found: list[str] = []

    def keep(sender, request=None, **kwargs) -> None:
        where = f"{request.method} {request.get_full_path()}" if request is not None else ""
        found.append(f"{where}\n{traceback.format_exc()}")

    got_request_exception.connect(keep, weak=False)
    yield found
    got_request_exception.disconnect(keep)


class Upload:
    name = "log.txt"
    size = 12

    def chunks(self):
        yield b"fuzzing log\n"


@pytest.fixture
def world(
    make_application, lab, vendor_alice, assessor_carol, reviewer_dave, officer_erin, officer_frank
):
    """A certified case, one in assessment and a draft with a file, all Helix's."""
    cast = {"lab_org": lab, "recorder": assessor_carol, "reviewer": reviewer_dave}
    granted = make_application("decision_pending", officer=officer_erin, **cast, version="4.0")
    granted = services.application_grant(application=granted, by=officer_frank)
    certificate = certificate_issue(application_id=granted.pk)
    assessing = make_application("in_assessment", officer=officer_erin, **cast, version="5.0")
    draft = make_application("draft", version="6.0")
    evidence = evidence_file_upload(application=draft, upload=Upload(), by=vendor_alice)
    ids = set()
    for application in (granted, assessing, draft):
        ids |= {application.pk, application.product_version_id}
        ids.add(application.product_version.product_id)
    ids.add(evidence.pk)
    return {
        "ids": sorted(ids),
        "numbers": [certificate.number],
        "tokens": {
            "vendor": Token.objects.get_or_create(user=vendor_alice)[0].key,
            "assessor": Token.objects.get_or_create(user=assessor_carol)[0].key,
            "anonymous": None,
        },
    }


def fuzz(operation, *, who: str, token: str | None, mode: GenerationMode, world: dict) -> list:
    """Run one operation with generated input; each failure with the server's traceback."""
    failures: list[str] = []
    errors = world["server_errors"]
    headers = {"Authorization": f"Token {token}"} if token else {}
    real = {}
    for parameter in operation.path_parameters:
        if re.search(r"(^|_)(pk|id)$", parameter.name):
            real[parameter.name] = world["ids"]
        elif parameter.name == "number":
            real[parameter.name] = world["numbers"]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case, data):
        if real and mode is GenerationMode.POSITIVE and data.draw(st.booleans()):
            for name, values in real.items():
                case.path_parameters[name] = data.draw(st.sampled_from(values))
        seen = len(errors)
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
            failures.append(
                f"{operation.label} as {who} ({mode.value}): {str(exc)[:600]}\n"
                + "".join(errors[seen:])
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing invalid to send: e.g. a string path parameter and no body.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_every_operation_answers_without_a_server_error_and_as_documented(
    app, world, server_errors
):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    world["server_errors"] = server_errors
    failures: list[str] = []
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for who, token in world["tokens"].items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += fuzz(operation, who=who, token=token, mode=mode, world=world)
    assert len(labels) >= 30, labels
    assert "GET /api/certificates/{number}/fhir/" in labels
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:30])
