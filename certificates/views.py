from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

from cas.models import AuditEntry
from certificates import keys, services
from certificates.models import Certificate

MAX_VERIFY_UPLOAD = 10 * 1024 * 1024


def registry(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    certificates = Certificate.objects.public().order_by("-number")
    if query:
        certificates = certificates.filter(
            Q(number__icontains=query)
            | Q(content__vendor_name__icontains=query)
            | Q(content__product_name__icontains=query)
        )
    return render(
        request,
        "certificates/registry.html",
        {"certificates": certificates[:200], "query": query},
    )


def certificate_detail(request: HttpRequest, number: str) -> HttpResponse:
    certificate = services.find_certificate(number)
    if certificate is None:
        raise Http404("No such certificate")
    history = AuditEntry.objects.filter(
        object_type="certificates.certificate", object_id=str(certificate.pk)
    ).exclude(action="allocate")
    return render(
        request,
        "certificates/detail.html",
        {
            "certificate": certificate,
            "verdict": services.status_verdict(certificate),
            "history": history,
        },
    )


def certificate_pdf(request: HttpRequest, number: str) -> FileResponse:
    certificate = services.find_certificate(number)
    if certificate is None or not certificate.pdf:
        raise Http404("No such certificate")
    return FileResponse(
        certificate.pdf.open("rb"),
        as_attachment=True,
        filename=f"{certificate.number}.pdf",
        content_type="application/pdf",
    )


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, number: str = "") -> HttpResponse:
    verification = None
    error = ""
    status = 200
    number = (request.POST.get("number") or request.GET.get("number") or number).strip()[:40]
    qr_text = request.POST.get("qr", "").strip()[:4000]
    upload = request.FILES.get("pdf")
    if upload is not None:
        if upload.size > MAX_VERIFY_UPLOAD:
            error = f"The file is larger than {MAX_VERIFY_UPLOAD // (1024 * 1024)} MB."
            status = 413
        else:
            verification = services.verify_pdf(pdf_bytes=upload.read())
    elif qr_text:
        verification = services.verify_qr(text=qr_text)
    elif number:
        verification = services.verify_number(number=number)
    elif request.method == "POST":
        error = "Give a certificate number, a QR code's text or a PDF to verify."
        status = 400
    return render(
        request,
        "certificates/verify.html",
        {"verification": verification, "error": error, "number": number},
        status=status,
    )


def verify_qr_page(request: HttpRequest) -> HttpResponse:
    return render(request, "certificates/verify_qr.html")


@cache_control(public=True, max_age=300)
def jwks(request: HttpRequest) -> JsonResponse:
    return JsonResponse(keys.published_jwks())


@cache_control(public=True, max_age=3600)
def pdf_trust_roots(request: HttpRequest) -> HttpResponse:
    roots = b"".join(keys.trusted_pdf_roots())
    return HttpResponse(roots, content_type="application/x-pem-file")


def site_context(request: HttpRequest) -> dict:
    return {"SCHEME_NAME": settings.SCHEME_NAME}
