"""The FHIR R5 view of a certificate: GET /api/certificates/<number>/fhir/, public."""

from __future__ import annotations

import pytest
from django.test import Client
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.verificationresult import VerificationResult

from certificates import lifecycle

pytestmark = pytest.mark.django_db


def fhir_of(number: str, **headers):
    return Client().get(f"/api/certificates/{number}/fhir/", **headers)


def parsed(response) -> VerificationResult:
    return VerificationResult.model_validate_json(response.content)


def extension(resource: VerificationResult, name: str):
    url = f"https://opencas.example/fhir/StructureDefinition/{name}"
    return next(e for e in resource.extension if e.url == url)


def test_it_serves_a_certificate_as_a_verification_result_to_anyone(certificate):
    response = fhir_of(certificate.number)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    resource = parsed(response)
    assert resource.id == certificate.number
    assert resource.status == "validated"
    number = extension(resource, "certificate-number").valueIdentifier
    assert (number.system, number.value) == (
        "https://opencas.example/certificates",
        certificate.number,
    )


def test_it_answers_fhir_json_even_to_a_client_asking_for_plain_json(certificate):
    response = fhir_of(certificate.number, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"


def test_it_names_the_product_version_and_vendor_as_the_target_device(certificate):
    resource = parsed(fhir_of(certificate.number))
    assert resource.target[0].reference == "#device"
    device = next(r for r in resource.contained if r.id == "device")
    assert device.get_resource_type() == "Device"
    assert device.manufacturer == "Helix Health Systems"
    assert device.name[0].value == "HelixEHR"
    assert device.version[0].value == "5.1"


def test_it_codes_each_aipo_of_the_scope_as_a_validation_process(certificate):
    resource = parsed(fhir_of(certificate.number))
    codes = sorted(c.coding[0].code for c in resource.validationProcess)
    assert codes == ["PDQm/PDC/NONE", "XDS.b/DOC_CONSUMER/NONE"]
    assert {c.coding[0].system for c in resource.validationProcess} == {
        "https://opencas.example/fhir/CodeSystem/ihe-aipo"
    }


def test_it_states_the_validity_and_the_next_revalidation(certificate):
    resource = parsed(fhir_of(certificate.number))
    period = extension(resource, "certificate-validity").valuePeriod
    assert (str(period.start), str(period.end)) == (
        certificate.valid_from.isoformat(),
        certificate.valid_until.isoformat(),
    )
    assert resource.nextScheduled == certificate.valid_until
    assert str(resource.lastPerformed) == certificate.decision_date.isoformat()


def test_it_names_the_certification_body_as_validator_and_the_lab_as_primary_source(
    certificate,
):
    resource = parsed(fhir_of(certificate.number))
    contained = {r.id: r for r in resource.contained}
    assert resource.validator[0].organization.reference == "#certification-body"
    assert contained["certification-body"].name == certificate.content["scheme_name"]
    assert resource.primarySource[0].who.reference == "#lab"
    assert contained["lab"].name == "Brussels Interoperability Test Lab"
    assert contained["lab"].identifier[0].value == "BELAC 612-TEST"
    assert resource.attestation.who.reference == "#certification-body"


def test_it_carries_the_qr_codes_signed_token_as_the_attestation_signature(certificate):
    signature = parsed(fhir_of(certificate.number)).attestation.sourceSignature
    assert signature.sigFormat == "application/jose"
    assert signature.data.decode() == certificate.jws  # fhir.resources decodes base64Binary


def test_it_maps_a_suspension_to_revalidation_required_and_keeps_the_exact_status(
    certificate, officer_frank
):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_frank, reason="audit")
    resource = parsed(fhir_of(certificate.number))
    assert resource.status == "req-revalid"
    status = extension(resource, "certificate-status").valueCoding
    assert (status.code, status.display) == ("suspended", "Suspended")


def test_it_maps_a_revocation_to_validation_failed(certificate, officer_frank):
    lifecycle.certificate_revoke(certificate=certificate, by=officer_frank, reason="fraud")
    resource = parsed(fhir_of(certificate.number))
    assert resource.status == "val-fail"
    assert extension(resource, "certificate-status").valueCoding.code == "revoked"


def test_it_answers_an_unknown_number_with_a_404_operation_outcome(db):
    response = fhir_of("CAS-2026-999999")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/fhir+json"
    outcome = OperationOutcome.model_validate_json(response.content)
    assert outcome.issue[0].code == "not-found"
    assert "CAS-2026-999999" in outcome.issue[0].diagnostics


def test_it_hides_a_certificate_still_being_issued(granted):
    certificate = granted.certificates.first()
    number = certificate.number if certificate else "CAS-2026-000001"
    assert fhir_of(number).status_code == 404


def test_it_and_the_status_changes_take_a_number_holding_a_nul_as_unknown(officer_erin):
    # PostgreSQL refuses a NUL in a query: the lookup must not even be tried.
    assert fhir_of("CAS%00X").status_code == 404
    client = Client()
    client.force_login(officer_erin)
    response = client.post("/api/certificates/CAS%00X/suspend/", {"reason": "x"})
    assert response.status_code == 404
