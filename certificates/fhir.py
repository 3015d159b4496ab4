"""A certificate as a FHIR R5 VerificationResult, for health IT integrations: pure, no database.

Why VerificationResult (and not Basic): it already says "this target was validated by
this validator against this primary source, with this status", which is what a
product-labelling certificate is; Basic would carry all of it in extensions.

The mapping (the README's "API" section repeats it):

- `id`: the certificate number.
- `contained`: the Device (the product: `name` registered-name, `version` the exact
  certified version, `manufacturer` the vendor's name), the certification body
  (Organization `#certification-body`, the scheme's name and version) and the lab
  (Organization `#lab`, its ISO/IEC 17025 accreditation number as identifier).
- `target`: the Device. `targetLocation`: the certificate's public page.
- `status` from the certificate's status as the verification page states it (an active
  certificate past its end date is expired there too): active -> validated; suspended,
  expired, superseded and signature-key-revoked -> req-revalid; withdrawn and revoked ->
  val-fail. The exact OpenCAS status is kept in the `certificate-status` extension.
- `statusDate`: when the status last changed (issuance for a certificate never changed).
- `need`: periodic (certificates expire); `validationType`: primary (the lab's report).
- `validationProcess`: one CodeableConcept per AIPO of the certified scope, coded
  PROFILE/ACTOR/OPTION in the CodeSystem `<SITE_URL>/fhir/CodeSystem/ihe-aipo`, with the
  profile's Technical Framework revision in the text.
- `lastPerformed`: the decision date; `nextScheduled`: the last day of validity.
- `primarySource`: the lab (type auth-source, validation status successful, validated on
  the decision date).
- `attestation`: the certification body, on the decision date; with the compact JWS of the
  QR code as `sourceSignature` (sigFormat application/jose) when the certificate has one.
- `validator`: the certification body.
- Extensions under `<SITE_URL>/fhir/StructureDefinition/`: `certificate-number`
  (valueIdentifier, system `<SITE_URL>/certificates`: VerificationResult has no
  identifier element), `certificate-validity` (valuePeriod, valid from / until) and
  `certificate-status` (valueCoding, CodeSystem `<SITE_URL>/fhir/CodeSystem/certificate-status`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.verificationresult import VerificationResult

FHIR_JSON = "application/fhir+json"

STATUS_MAP = {
    "active": "validated",
    "suspended": "req-revalid",
    "expired": "req-revalid",
    "superseded": "req-revalid",
    "key_revoked": "req-revalid",
    "withdrawn": "val-fail",
    "revoked": "val-fail",
}
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/"


@dataclass(frozen=True)
class CertificateFacts:
    """What the resource states, read from a Certificate and its status verdict."""

    number: str
    status: str  # the verdict's code: active, suspended, expired, key_revoked, ...
    status_title: str
    status_changed_at: dt.datetime | None
    issued_at: dt.datetime | None
    decision_date: dt.date
    valid_from: dt.date
    valid_until: dt.date
    content: dict
    jws: str = ""


def _coding(value_set: str, code: str, display: str) -> dict:
    return {
        "coding": [{"system": VERIFICATION_SYSTEM + value_set, "code": code, "display": display}]
    }


def _instant(moment: dt.datetime | None, fallback: dt.date) -> str:
    if moment is None:
        return fallback.isoformat()
    return moment.isoformat()


def _aipo(site_url: str, aipo: dict) -> dict:
    code = f"{aipo['profile_keyword']}/{aipo['actor_keyword']}/{aipo['option_keyword']}"
    display = f"{aipo['profile_name']} / {aipo['actor_name']} / {aipo['option_name']}"
    revision = (
        f", Technical Framework revision {aipo['tf_revision']}" if aipo["tf_revision"] else ""
    )
    return {
        "coding": [
            {"system": f"{site_url}/fhir/CodeSystem/ihe-aipo", "code": code, "display": display}
        ],
        "text": f"IHE {aipo['profile_keyword']} {aipo['actor_keyword']} "
        f"({aipo['option_keyword']}){revision}",
    }


def verification_result(facts: CertificateFacts, *, site_url: str) -> dict:
    """The certificate as a VerificationResult, validated by fhir.resources, as FHIR JSON."""
    content = facts.content
    definitions = f"{site_url}/fhir/StructureDefinition"
    decided = facts.decision_date.isoformat()
    lab: dict = {
        "resourceType": "Organization",
        "id": "lab",
        "name": content.get("lab_name") or "?",
    }
    if content.get("lab_accreditation_number"):
        lab["identifier"] = [
            {
                "type": {"text": "ISO/IEC 17025 accreditation"},
                "value": content["lab_accreditation_number"],
                "assigner": {"display": content.get("accreditation_body", "")},
            }
        ]
    scheme = f"{content['scheme_name']}, version {content['scheme_version']}"
    attestation: dict = {"who": {"reference": "#certification-body"}, "date": decided}
    if facts.jws:
        attestation["sourceSignature"] = {
            "type": [
                {
                    "system": "urn:iso-astm:E1762-95:2013",
                    "code": "1.2.840.10065.1.12.1.5",
                    "display": "Verification Signature",
                }
            ],
            "when": _instant(facts.issued_at, facts.decision_date),
            "who": {"reference": "#certification-body"},
            "sigFormat": "application/jose",
            "data": base64.b64encode(facts.jws.encode()).decode(),
        }
    resource = {
        "resourceType": "VerificationResult",
        "id": facts.number,
        "contained": [
            {
                "resourceType": "Device",
                "id": "device",
                "manufacturer": content["vendor_name"],
                "name": [{"value": content["product_name"], "type": "registered-name"}],
                "version": [{"value": content["product_version"]}],
            },
            {
                "resourceType": "Organization",
                "id": "certification-body",
                "name": content["scheme_name"],
                "alias": [scheme],
            },
            lab,
        ],
        "extension": [
            {
                "url": f"{definitions}/certificate-number",
                "valueIdentifier": {"system": f"{site_url}/certificates", "value": facts.number},
            },
            {
                "url": f"{definitions}/certificate-validity",
                "valuePeriod": {
                    "start": facts.valid_from.isoformat(),
                    "end": facts.valid_until.isoformat(),
                },
            },
            {
                "url": f"{definitions}/certificate-status",
                "valueCoding": {
                    "system": f"{site_url}/fhir/CodeSystem/certificate-status",
                    "code": facts.status,
                    "display": facts.status_title,
                },
            },
        ],
        "target": [{"reference": "#device"}],
        "targetLocation": [f"{site_url}/certificates/{facts.number}/"],
        "need": _coding("need", "periodic", "Periodic"),
        "status": STATUS_MAP.get(facts.status, "req-revalid"),
        "statusDate": _instant(facts.status_changed_at or facts.issued_at, facts.decision_date),
        "validationType": _coding("validation-type", "primary", "Primary Source"),
        "validationProcess": [_aipo(site_url, aipo) for aipo in content["scope"]],
        "lastPerformed": decided,
        "nextScheduled": facts.valid_until.isoformat(),
        "primarySource": [
            {
                "who": {"reference": "#lab"},
                "type": [_coding("primary-source-type", "auth-source", "Authoritative source")],
                "validationStatus": _coding("validation-status", "successful", "Successful"),
                "validationDate": decided,
            }
        ],
        "attestation": attestation,
        "validator": [{"organization": {"reference": "#certification-body"}}],
    }
    return _checked(VerificationResult, resource)


def operation_outcome(*, code: str, text: str) -> dict:
    """An error as FHIR says it: one issue of severity error."""
    return _checked(
        OperationOutcome,
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        },
    )


def _checked(model, resource: dict) -> dict:
    """Validate with fhir.resources (raises on a structural error) and give back FHIR JSON."""
    return json.loads(model.model_validate(resource).model_dump_json())
