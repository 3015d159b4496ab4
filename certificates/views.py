from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from cas.errors import ActionRefused
from cas.models import AuditEntry
from cas.permissions import is_officer
from certificates import keys, lifecycle, permissions, services, subscriptions
from certificates.models import Certificate, SigningKey
from certificates.ratelimit import rate_limited
from certificates.status_list import status_list_current

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


def _detail_context(request: HttpRequest, certificate: Certificate) -> dict:
    history = AuditEntry.objects.filter(
        object_type="certificates.certificate", object_id=str(certificate.pk)
    ).exclude(action="allocate")
    user = request.user
    return {
        "certificate": certificate,
        "verdict": services.status_verdict(certificate),
        "history": history,
        "replaces": certificate.supersedes.order_by("number"),
        "suspension_deadline": lifecycle.suspension_deadline(certificate),
        "can": {
            "suspend": permissions.can_suspend.test(user, certificate),
            "reinstate": permissions.can_reinstate.test(user, certificate),
            "withdraw": permissions.can_withdraw.test(user, certificate),
            "revoke": permissions.can_revoke.test(user, certificate),
            "supersede": permissions.can_supersede.test(user, certificate),
        },
        "is_officer": is_officer(user),
    }


def certificate_detail(request: HttpRequest, number: str) -> HttpResponse:
    certificate = services.find_certificate(number)
    if certificate is None:
        raise Http404("No such certificate")
    return render(request, "certificates/detail.html", _detail_context(request, certificate))


CHANGES = {
    "suspend": (lifecycle.certificate_suspend, "suspended"),
    "reinstate": (lifecycle.certificate_reinstate, "reinstated"),
    "withdraw": (lifecycle.certificate_withdraw, "withdrawn"),
    "revoke": (lifecycle.certificate_revoke, "revoked"),
}


@login_required
@require_POST
def certificate_change(request: HttpRequest, number: str, action: str) -> HttpResponse:
    """One status change from the certificate page; a refusal re-renders it with the reason."""
    certificate = services.find_certificate(number)
    if certificate is None:
        raise Http404("No such certificate")
    reason = request.POST.get("reason", "")[:5000]
    try:
        if action == "supersede":
            changed = lifecycle.certificate_supersede(
                certificate=certificate,
                replacement_number=request.POST.get("replacement", "")[:40],
                by=request.user,
                reason=reason,
            )
            done = f"{changed.number} is now superseded by {changed.superseded_by.number}."
        else:
            service, past = CHANGES[action]
            changed = service(certificate=certificate, by=request.user, reason=reason)
            done = f"{changed.number} {past}."
    except ActionRefused as exc:
        context = _detail_context(request, certificate)
        context["error"] = exc.message
        context["action"] = action
        return render(request, "certificates/detail.html", context, status=exc.status_code)
    messages.success(request, done)
    return redirect("certificate_detail", number=changed.number)


@login_required
def certificates_manage(request: HttpRequest) -> HttpResponse:
    """Officers: every certificate that needs attention (suspended, awaiting re-issue)."""
    if not is_officer(request.user):
        raise PermissionDenied("Only scheme officers manage certificates.")
    suspended = (
        Certificate.objects.filter(status=Certificate.Status.SUSPENDED)
        .select_related("application__vendor")
        .order_by("status_changed_at")
    )
    return render(
        request,
        "certificates/manage.html",
        {
            "suspended": [(c, lifecycle.suspension_deadline(c)) for c in suspended],
            "reissue_pending": Certificate.objects.key_revoked().order_by("number"),
            "keys": SigningKey.objects.order_by("purpose", "-created_at"),
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


def _is_stranger(request: HttpRequest) -> bool:
    """No session and no pending messages: the page is the same for every such visitor."""
    return settings.SESSION_COOKIE_NAME not in request.COOKIES and "messages" not in (
        request.COOKIES
    )


# Verifying changes nothing, so the form needs no CSRF token; without one, the page a
# stranger gets for a number depends only on the certificate's state, and is cached by it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@rate_limited("verify")
def verify(request: HttpRequest, number: str = "") -> HttpResponse:
    """One form, three ways in (a number, a QR code's text, a PDF); the verdicts come from
    the same services as the API's (certificates.api)."""
    if request.method == "GET" and number and not request.GET and _is_stranger(request):
        state = services.verification_state(number=number[:40])
        if state is not None:
            key = f"verify:page:{state}"
            body = cache.get(key)
            if body is None:
                response = _verify_page(request, number)
                if response.status_code == 200:
                    cache.set(key, response.content, services.VERDICT_CACHE_SECONDS)
                return response
            return HttpResponse(body)
    return _verify_page(request, number)


def _verify_page(request: HttpRequest, number: str) -> HttpResponse:
    verification = None
    error = ""
    status = 200
    number = (request.POST.get("number") or request.GET.get("number") or number).strip()[:40]
    qr_text = request.POST.get("qr", "").strip()[:4000]
    upload = request.FILES.get("pdf")
    if upload is not None:
        if upload.size > MAX_VERIFY_UPLOAD:
            error = (
                f"The file is larger than {MAX_VERIFY_UPLOAD // (1024 * 1024)} MB: a "
                "certificate PDF is far smaller, so this is not one."
            )
            status = 413
        elif upload.size == 0:
            error = "The file is empty: choose the certificate PDF."
            status = 400
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
    """The page a QR code opens. The signed token is in the fragment, which the browser
    never sends: static/certificates/verify_qr.js checks it against the published keys in
    the browser and then asks /api/verify/<number>/ for the live status."""
    return render(request, "certificates/verify_qr.html")


@cache_control(public=True, max_age=300)
def jwks(request: HttpRequest) -> JsonResponse:
    return JsonResponse(keys.published_jwks())


@cache_control(public=True, max_age=60)
def status_list_jws(request: HttpRequest) -> HttpResponse:
    """The signed status list, as stored after the last change (compact JWS)."""
    current = status_list_current()
    if current is None:
        return _no_status_list()
    return HttpResponse(current.jws, content_type="application/jose")


@cache_control(public=True, max_age=60)
def status_list_json(request: HttpRequest) -> HttpResponse:
    """The same document unsigned, for people; verifiers should use the .jws."""
    current = status_list_current()
    if current is None:
        return _no_status_list()
    return HttpResponse(current.document, content_type="application/json")


def _no_status_list() -> HttpResponse:
    response = HttpResponse(
        "No status list has been published yet: it is signed after the first certificate is "
        "issued or changes status. Try again in a few minutes.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "300"
    return response


@cache_control(public=True, max_age=3600)
def pdf_trust_roots(request: HttpRequest) -> HttpResponse:
    roots = b"".join(keys.trusted_pdf_roots())
    return HttpResponse(roots, content_type="application/x-pem-file")


def site_context(request: HttpRequest) -> dict:
    return {"SCHEME_NAME": settings.SCHEME_NAME}


# --- Following a certificate by e-mail (buyers, no login) ---


@require_POST
def certificate_follow(request: HttpRequest, number: str) -> HttpResponse:
    """The 'Follow this certificate' form: the same answer whether or not the address follows."""
    certificate = services.find_certificate(number)
    if certificate is None:
        raise Http404("No such certificate")
    email = request.POST.get("email", "")[:300]
    try:
        answer = subscriptions.subscription_request(certificate=certificate, email=email)
    except ActionRefused as exc:
        context = _detail_context(request, certificate)
        context["subscribe_error"] = exc.message
        context["subscribe_email"] = email.strip()[:254]
        return render(request, "certificates/detail.html", context, status=exc.status_code)
    messages.success(request, answer)
    return redirect("certificate_detail", number=certificate.number)


def _link_refused(request: HttpRequest, exc: ActionRefused, *, title: str) -> HttpResponse:
    return render(
        request,
        "certificates/subscription_link.html",
        {"title": title, "error": exc.message},
        status=exc.status_code,
    )


@require_http_methods(["GET", "POST"])
def subscription_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST confirms: mail scanners fetch links but do not press buttons."""
    title = "Confirm following a certificate"
    try:
        if request.method == "POST":
            subscription = subscriptions.subscription_confirm(token=token)
            return render(
                request,
                "certificates/subscription_link.html",
                {"title": title, "subscription": subscription, "done": "confirmed"},
            )
        state = subscriptions.subscription_for_confirmation(token=token)
    except ActionRefused as exc:
        return _link_refused(request, exc, title=title)
    return render(
        request,
        "certificates/subscription_link.html",
        {
            "title": title,
            "subscription": state.subscription,
            "expires_at": state.expires_at,
            "ask": "confirm",
        },
    )


@csrf_exempt  # the unguessable token is the credential; mail clients post one-click (RFC 8058)
@require_http_methods(["GET", "POST"])
def subscription_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    title = "Stop following a certificate"
    try:
        if request.method == "POST":
            subscription = subscriptions.subscription_unsubscribe(token=token)
            done = "unsubscribed"
        else:
            subscription = subscriptions.subscription_for_unsubscribe(token=token)
            done = "unsubscribed" if subscription.unsubscribed_at else ""
    except ActionRefused as exc:
        return _link_refused(request, exc, title=title)
    return render(
        request,
        "certificates/subscription_link.html",
        {
            "title": title,
            "subscription": subscription,
            "done": done,
            "ask": "" if done else "unsubscribe",
        },
    )
