"""One certification case from application to a buyer's verification, all through HTTP."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader
from support import client_for, results_csv

from cas.models import Organisation

pytestmark = pytest.mark.django_db


def aipo_id_on_page(html: str, profile: str, actor_name: str) -> str:
    """The checkbox value the catalogue picker shows for this profile, actor and baseline."""
    found = re.search(
        rf'value="(\d+)"\s*aria-label="{re.escape(profile)} {re.escape(actor_name)} None"', html
    )
    if found is None:
        raise AssertionError(f"{profile} / {actor_name} is not offered")
    return found.group(1)


def test_it_takes_one_case_from_application_to_a_verified_certificate(
    catalogue,
    vendor_alice,
    assessor_carol,
    reviewer_dave,
    officer_erin,
    officer_frank,
    lab,
    buyer,
    django_capture_on_commit_callbacks,
):
    alice, erin = client_for(vendor_alice), client_for(officer_erin)
    carol, dave, frank = (
        client_for(assessor_carol),
        client_for(reviewer_dave),
        client_for(officer_frank),
    )
    helix = Organisation.objects.get(name="Helix Health Systems")

    # 3. The vendor registers the product and its exact version.
    response = alice.post("/products/", {"vendor": helix.pk, "name": "HelixEHR"})
    assert response.status_code == 302
    product_url = response["Location"]
    response = alice.post(product_url, {"version": "5.1.2"}, follow=True)
    assert "5.1.2" in response.content.decode()
    version_id = re.search(r"\?version=(\d+)", response.content.decode()).group(1)

    # 4. The officer imports the Connectathon results summary.
    csv_file = io.BytesIO(
        results_csv(
            [
                ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
                ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "", "passed"),
                ("Northwind Medical", "NW-Repository", "XDS.b", "DOC_REGISTRY", "NONE", "Pass"),
            ]
        )
    )
    csv_file.name = "results.csv"
    # The import is a background job (inline here): the page follows it to its report.
    with django_capture_on_commit_callbacks(execute=True):
        response = erin.post(
            "/connectathon/",
            {
                "event": "IHE-Europe Connectathon 2026, Brussels",
                "location": "Brussels",
                "start_date": "2026-03-23",
                "end_date": "2026-03-27",
                "file": csv_file,
            },
        )
    response = erin.get(response.url)
    assert response.status_code == 200
    assert "3 rows, 3 new" in response.content.decode()

    # The vendor claims AIPOs picked from the searchable catalogue and applies.
    page = alice.get("/applications/new/", {"q": "XDS.b"}).content.decode()
    xds = aipo_id_on_page(page, "XDS.b", "Document Consumer")
    page = alice.get("/applications/new/", {"q": "PDQm"}).content.decode()
    pdqm = aipo_id_on_page(page, "PDQm", "Patient Demographics Consumer")
    response = alice.post(
        "/applications/new/", {"product_version": version_id, "aipos": [xds, pdqm]}
    )
    assert response.status_code == 302
    case_url = response["Location"]
    application_id = int(case_url.rstrip("/").rsplit("/", 1)[1])
    response = alice.post(case_url + "submit/", {"reason": "Please assess"}, follow=True)
    assert "Submitted" in response.content.decode()

    # 5. The officer assigns the accredited lab.
    page = erin.get(case_url).content.decode()
    assert "Brussels Interoperability Test Lab" in page
    response = erin.post(case_url + "assign-lab/", {"lab": lab.pk}, follow=True)
    assert "In assessment" in response.content.decode()

    # 6. One assessor records a result per AIPO, a second lab member approves.
    grid = {}
    for aipo_id, test_case in ((xds, "XDSb-11966"), (pdqm, "PDQm-Query-01")):
        grid |= {
            f"a{aipo_id}-result": "pass",
            f"a{aipo_id}-test_case": test_case,
            f"a{aipo_id}-tool": "Gazelle EVS",
            f"a{aipo_id}-tool_version": "7.2",
        }
    response = carol.post(f"/lab/cases/{application_id}/grid/", grid)
    assert response.status_code == 302
    response = carol.post(case_url + "complete/", follow=True)
    assert "In technical review" in response.content.decode()
    response = dave.post(case_url + "approve/", {"reason": "records complete"}, follow=True)
    assert "Decision pending" in response.content.decode()

    # 7. An officer who took no part grants; the certificate is issued on commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = frank.post(case_url + "grant/", {"reason": "all AIPOs passed"})
    assert response.status_code == 302
    page = alice.get(case_url).content.decode()
    number = re.search(r"CAS-\d{4}-\d{6}", page).group(0)
    assert "Certified" in page

    # 8. A buyer, with no login, opens the certificate and its PDF.
    page = buyer.get(f"/certificates/{number}/").content.decode()
    assert "Active" in page and "HelixEHR" in page and "5.1.2" in page
    response = buyer.get(f"/certificates/{number}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    pdf_bytes = b"".join(response.streaming_content)

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages)
    for expected in (number, "Helix Health Systems", "HelixEHR", "5.1.2", "XDS.b", "PDQm"):
        assert expected in text
    assert "BELAC 612-TEST" in text

    # The PAdES signature, checked with pyHanko against the published root.
    root_pem = buyer.get("/.well-known/opencas-pdf-roots.pem").content
    from asn1crypto import pem, x509

    _, _, der = pem.unarmor(root_pem)
    context = ValidationContext(
        trust_roots=[x509.Certificate.load(der)], allow_fetching=False, revocation_mode="soft-fail"
    )
    signature = PdfFileReader(io.BytesIO(pdf_bytes)).embedded_signatures[0]
    status = validate_pdf_signature(signature, context)
    assert status.bottom_line and status.intact and status.trusted

    # The QR's JWS, checked with joserfc against the published JWKS.
    certificate_page = buyer.get(f"/certificates/{number}/")
    assert certificate_page.status_code == 200
    jwks = json.loads(buyer.get("/.well-known/jwks.json").content)
    from certificates.models import Certificate

    token = Certificate.objects.get(number=number).jws
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "Ed25519" and header["kid"] == jwks["keys"][0]["kid"]
    verified = jws.deserialize_compact(token, KeySet.import_key_set(jwks), algorithms=["Ed25519"])
    payload = json.loads(verified.payload)
    assert payload["num"] == number and payload["ver"] == "5.1.2"

    # And the buyer verifies the PDF on the public verify page: two verdicts.
    upload = io.BytesIO(pdf_bytes)
    upload.name = f"{number}.pdf"
    page = buyer.post("/verify/", {"pdf": upload}).content.decode()
    signature_verdict = page[
        page.index('id="signature-verdict"') : page.index('id="status-verdict"')
    ]
    status_verdict = page[page.index('id="status-verdict"') :]
    assert "<strong>Valid</strong>" in signature_verdict
    assert "<strong>Active</strong>" in status_verdict and number in status_verdict
