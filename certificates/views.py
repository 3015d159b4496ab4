from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from cas.errors import ActionRefused
from cas.models import Organisation
from cas.permissions import is_officer
from certificates import keys, lifecycle, permissions, ratelimit, services, subscriptions
from certificates import registry as public_registry
from certificates.models import Certificate, SigningKey
from certificates.ratelimit import rate_limited
from certificates.status_list import status_list_current

MAX_VERIFY_UPLOAD = 10 * 1024 * 1024


def _with_links(page: public_registry.RegistryPage | None) -> None:
    """Each result row's HTML, made once here: at 200 rows, the template's per-cell lookups,
    `{% url %}` and the `date` filter were most of the page's time. format_html escapes every
    value (names are vendor-typed)."""
    if page is None:
        return
    detail = reverse("certificate_detail", args=["0"])[:-2]
    vendor = reverse("registry_vendor", args=[0])[:-2]
    lab = reverse("registry_lab", args=[0])[:-2]
    for c in page.certificates:
        content = c.content
        lab_name = content.get("lab_name", "")
        c.row_html = format_html(
            '<tr><td><a href="{}{}/">{}</a></td><td><a href="{}{}/">{}</a></td><td>{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td>"
            '<td><span class="badge {}">{}</span></td><td>{}</td><td>{}</td></tr>\n',
            detail,
            c.number,
            c.number,
            vendor,
            c.application.vendor_id,
            content.get("vendor_name", ""),
            content.get("product_name", ""),
            content.get("product_version", ""),
            c.scope_profiles,
            format_html('<a href="{}{}/">{}</a>', lab, c.application.lab_id, lab_name)
            if c.application.lab_id
            else lab_name,
            c.shown_status,
            c.shown_status_label,
            c.decision_date.isoformat(),
            c.valid_until.isoformat(),
        )


def registry(request: HttpRequest) -> HttpResponse:
    """The public search: filters, one page of results, pagination links that keep them."""
    error = ""
    try:
        filters = public_registry.registry_filters_from(request.GET)
        page = public_registry.registry_page(filters=filters)
        _with_links(page)
    except public_registry.InvalidRegistryQuery as exc:
        error = exc.message
        filters = public_registry.RegistryFilters()
        page = None
    return render(
        request,
        "certificates/registry.html",
        {
            "form": request.GET,
            "filters": filters,
            "page": page,
            "error": error,
            "choices": public_registry.registry_choices(),
            "statuses": public_registry.STATUS_LEGEND,
            "page_sizes": (10, 25, 50, 100, 200),
        },
        status=400 if error else 200,
    )


def _organisation_page(
    request: HttpRequest, *, organisation: Organisation, template: str, extra: dict
) -> HttpResponse:
    """A vendor's or lab's page: its public certificates, paged like the search."""
    error = ""
    key = "vendor_id" if organisation.kind == Organisation.Kind.VENDOR else "lab_id"
    try:
        paging = {name: request.GET.get(name, "") for name in public_registry.PAGING}
        filters = public_registry.registry_filters_from(paging, **{key: organisation.pk})
        page = public_registry.registry_page(filters=filters)
        _with_links(page)
    except public_registry.InvalidRegistryQuery as exc:
        error, page = exc.message, None
    if key == "vendor_id" and page is not None and page.count == 0:
        # A vendor with no public certificate is not in the registry.
        raise Http404("No such vendor in the registry")
    return render(
        request,
        template,
        {"organisation": organisation, "page": page, "error": error, **extra},
        status=400 if error else 200,
    )


def registry_vendor(request: HttpRequest, pk: int) -> HttpResponse:
    vendor = Organisation.objects.filter(kind=Organisation.Kind.VENDOR, pk=pk).first()
    if vendor is None:
        raise Http404("No such vendor in the registry")
    return _organisation_page(
        request, organisation=vendor, template="certificates/registry/vendor.html", extra={}
    )


def registry_lab(request: HttpRequest, pk: int) -> HttpResponse:
    """A test lab's accreditations and the public certificates of the cases it assessed."""
    lab = Organisation.objects.filter(kind=Organisation.Kind.LAB, pk=pk).first()
    if lab is None:
        raise Http404("No such laboratory")
    accreditations = lab.accreditations.prefetch_related("scope_domains", "scope_profiles")
    return _organisation_page(
        request,
        organisation=lab,
        template="certificates/registry/lab.html",
        extra={"accreditations": accreditations},
    )


DOWNLOADS = {
    "csv": (public_registry.download_csv, "text/csv; charset=utf-8"),
    "json": (public_registry.download_json, "application/json; charset=utf-8"),
}


def registry_download(request: HttpRequest, selection: str, fmt: str) -> StreamingHttpResponse:
    """The whole registry, active or inactive certificates, streamed row by row."""
    produce, content_type = DOWNLOADS[fmt]
    response = StreamingHttpResponse(
        produce(active=selection == "active"), content_type=content_type
    )
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="opencas-registry-{selection}-{day}.{fmt}"'
    )
    return response


def registry_columns(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(
        public_registry.column_dictionary_csv(), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="opencas-registry-columns.csv"'
    return response


def registry_charts(request: HttpRequest) -> HttpResponse:
    return render(
        request, "certificates/registry/charts.html", {"charts": public_registry.registry_charts()}
    )


def _detail_context(request: HttpRequest, certificate: Certificate) -> dict:
    user = request.user
    return {
        "certificate": certificate,
        "history": public_registry.certificate_history(certificate),
        "legend": public_registry.STATUS_LEGEND,
        "verdict": services.status_verdict(certificate),
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


@rate_limited("lookup")
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


@rate_limited("lookup")
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
@rate_limited("lookup")
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
    # Shown as looked up (upper-cased), so a cached page never repeats another visitor's
    # spelling, and never with control characters in it.
    typed = (request.POST.get("number") or request.GET.get("number") or number).strip()[:40]
    number = services.shown_number(typed)
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
    elif typed:
        verification = services.verify_number(number=typed)
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
@rate_limited("lookup")
def certificate_follow(request: HttpRequest, number: str) -> HttpResponse:
    """The 'Follow this certificate' form: the same answer whether or not the address follows."""
    certificate = services.find_certificate(number)
    if certificate is None:
        raise Http404("No such certificate")
    email = request.POST.get("email", "")[:300]
    try:
        subscriptions.follow_rate_check(
            certificate=certificate, client=ratelimit.client_address(request)
        )
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
