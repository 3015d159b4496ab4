from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from cas import permissions, services
from cas.actions import allowed_actions
from cas.errors import ActionRefused
from cas.forms import (
    AssignLabForm,
    ConflictDeclarationForm,
    ProductForm,
    ReasonForm,
    VersionForm,
)
from cas.models import AIPO, Application, AuditEntry, Organisation, Product, ProductVersion
from evidence.models import ConnectathonResult
from labs.models import TestRecord
from labs.services import aipo_outcome, lab_refusal_reasons

S = Application.State
# "My work": per role, the queues of cases waiting on that person, oldest first.
WORK_QUEUES = {
    "vendor": [
        ("Drafts to finish and submit", [S.DRAFT]),
        ("Information requested: your answer is needed", [S.INFO_REQUESTED]),
        (
            "With the certification body or the lab",
            [S.SUBMITTED, S.IN_ASSESSMENT, S.IN_REVIEW, S.DECISION_PENDING],
        ),
        ("Decisions", [S.CERTIFIED, S.REFUSED, S.APPEALED]),
    ],
    "officer": [
        ("Screening queue", [S.SUBMITTED]),
        ("Waiting for the vendor's answer", [S.INFO_REQUESTED]),
        ("Decisions due", [S.DECISION_PENDING]),
        ("Appeals", [S.APPEALED]),
    ],
    "lab": [
        ("Assigned cases to assess", [S.IN_ASSESSMENT]),
        ("Technical reviews due", [S.IN_REVIEW]),
    ],
}


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "home.html")
    user = request.user
    roles = [
        role
        for role, applies in (
            ("vendor", permissions.is_vendor_member(user)),
            ("officer", permissions.is_officer(user)),
            ("lab", permissions.is_lab_member(user)),
        )
        if applies
    ]
    visible = (
        Application.objects.visible_to(user)
        .select_related("vendor", "lab", "product_version__product")
        .waiting_longest_first()
    )
    now = timezone.now()
    queues = []
    for role in roles:
        for title, states in WORK_QUEUES[role]:
            cases = list(visible.filter(state__in=states)[:200])
            for case in cases:
                case.waiting_days = (now - case.waiting_since).days
            queues.append(
                {
                    "role": role,
                    "title": title,
                    "cases": cases,
                    "count": len(cases),
                    "oldest_days": cases[0].waiting_days if cases else None,
                }
            )
    return render(
        request,
        "cas/my_work.html",
        {"queues": queues, "is_vendor": "vendor" in roles, "roles": roles},
    )


def _vendors_of(user):
    return Organisation.objects.filter(
        pk__in=permissions.organisation_ids(user, Organisation.Kind.VENDOR)
    )


def _get_product_for(user, pk: int) -> Product:
    product = Product.objects.visible_to(user).filter(pk=pk).first()
    if product is None:
        if Product.objects.filter(pk=pk).exists():
            permissions.log.warning("user %s was refused foreign product %s", user.pk, pk)
        raise Http404("No such product")
    return product


@login_required
def product_list(request: HttpRequest) -> HttpResponse:
    vendors = _vendors_of(request.user)
    form = ProductForm(request.POST or None, vendors=vendors)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_create(
                vendor=form.cleaned_data["vendor"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                by=request.user,
            )
        except ActionRefused as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Product {product.name} registered.")
            return redirect("product_detail", pk=product.pk)
    elif request.method == "POST":
        status = 400
    products = Product.objects.visible_to(request.user).prefetch_related("versions")
    return render(request, "cas/products.html", {"products": products, "form": form}, status=status)


@login_required
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = _get_product_for(request.user, pk)
    form = VersionForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.product_version_create(
                product=product, version=form.cleaned_data["version"], by=request.user
            )
        except ActionRefused as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Version {form.cleaned_data['version']} added.")
            return redirect("product_detail", pk=product.pk)
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "cas/product_detail.html",
        {"product": product, "versions": product.versions.all(), "form": form},
        status=status,
    )


@login_required
def application_new(request: HttpRequest) -> HttpResponse:
    """Pick a product version and the AIPOs to claim from the searchable catalogue."""
    query = request.GET.get("q", "").strip()[:60]
    versions = (
        Product.objects.visible_to(request.user).prefetch_related("versions").order_by("name")
    )
    error = ""
    status = 200
    if request.method == "POST":
        version_id = request.POST.get("product_version", "")
        aipo_ids = [i for i in request.POST.getlist("aipos") if i.isdigit()]
        product_version = (
            ProductVersion.objects.filter(
                pk=version_id, product__in=Product.objects.visible_to(request.user)
            ).first()
            if version_id.isdigit()
            else None
        )
        aipos = list(AIPO.objects.with_names().filter(pk__in=aipo_ids))
        if product_version is None:
            error, status = "Choose one of your product versions.", 400
        elif not aipos:
            error, status = "Claim at least one actor / profile / option.", 400
        else:
            try:
                application = services.application_create(
                    product_version=product_version, aipos=aipos, by=request.user
                )
            except ActionRefused as exc:
                error, status = exc.message, exc.status_code
            else:
                messages.success(request, f"Draft {application.reference} created.")
                return redirect("application_detail", pk=application.pk)
    return render(
        request,
        "cas/application_new.html",
        {
            "products": versions,
            "tree": catalogue_tree(query),
            "selected": set(),
            "query": query,
            "error": error,
        },
        status=status,
    )


def catalogue_tree(query: str, *, also: Iterable[int] = ()) -> list[dict]:
    """The catalogue matching `query`, as profile -> actor -> options, for the picker.

    "XDS.b, PDQm" matches both, so one page can claim AIPOs of several profiles; `also`
    adds AIPOs already claimed so that they stay on the page.
    """
    matches = Q(pk__in=list(also))
    for term in filter(None, (t.strip() for t in query.split(","))):
        matches |= (
            Q(profile__keyword__icontains=term)
            | Q(profile__name__icontains=term)
            | Q(actor__keyword__icontains=term)
            | Q(actor__name__icontains=term)
            | Q(option__name__icontains=term)
        )
    if not query and not also:
        return []
    profiles: dict[int, dict] = {}
    for aipo in (
        AIPO.objects.with_names()
        .filter(matches)
        .order_by("profile__keyword", "actor__keyword", "option__keyword")[:600]
    ):
        profile = profiles.setdefault(aipo.profile_id, {"profile": aipo.profile, "actors": {}})
        actor = profile["actors"].setdefault(aipo.actor_id, {"actor": aipo.actor, "aipos": []})
        actor["aipos"].append(aipo)
    return [
        {"profile": p["profile"], "actors": list(p["actors"].values())} for p in profiles.values()
    ]


@login_required
def application_claims(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft's claims: the current ones stay ticked, a search adds more."""
    application = permissions.get_application_for(request.user, pk)
    query = request.GET.get("q", "").strip()[:60]
    claimed = set(application.claims.values_list("aipo_id", flat=True))
    error, status = "", 200
    if request.method == "POST":
        aipo_ids = [i for i in request.POST.getlist("aipos") if i.isdigit()]
        aipos = list(AIPO.objects.with_names().filter(pk__in=aipo_ids))
        try:
            if not aipos:
                raise ActionRefused("Claim at least one actor / profile / option.")
            services.application_set_claims(application=application, aipos=aipos, by=request.user)
        except ActionRefused as exc:
            error, status = exc.message, exc.status_code
        else:
            messages.success(request, f"Claims saved: {len(aipos)} AIPOs.")
            return redirect("application_detail", pk=application.pk)
    return render(
        request,
        "cas/application_claims.html",
        {
            "application": application,
            "tree": catalogue_tree(query, also=claimed),
            "selected": claimed,
            "query": query,
            "error": error,
            "can_edit": application.state == Application.State.DRAFT
            and permissions.can_edit_draft.test(request.user, application),
        },
        status=status,
    )


def _case_context(request: HttpRequest, application: Application) -> dict:
    user = request.user
    claims = list(application.claims.select_related("aipo__profile", "aipo__actor", "aipo__option"))
    grades = {}
    for result in ConnectathonResult.objects.filter(
        product_id=application.product_version.product_id,
        aipo_id__in=[c.aipo_id for c in claims],
    ).select_related("event"):
        current = grades.get(result.aipo_id)
        if current is None or result.grade == ConnectathonResult.Grade.PASSED:
            grades[result.aipo_id] = result
    records: dict[int, list[TestRecord]] = {}
    for record in (
        TestRecord.objects.filter(application=application)
        .current()
        .select_related("recorded_by")
        .order_by("test_case", "pk")
    ):
        records.setdefault(record.aipo_id, []).append(record)
    outcomes = {
        aipo_id: aipo_outcome([r.result for r in found]) for aipo_id, found in records.items()
    }
    labels = dict(TestRecord.Result.choices)
    rows = [
        {
            "claim": c,
            "connectathon": grades.get(c.aipo_id),
            "records": records.get(c.aipo_id, []),
            "outcome": outcomes.get(c.aipo_id),
            "outcome_label": labels.get(outcomes.get(c.aipo_id), ""),
        }
        for c in claims
    ]
    labs = []
    if permissions.can_assign_lab.test(user, application) and application.state == "submitted":
        for lab in Organisation.objects.filter(kind=Organisation.Kind.LAB):
            labs.append((lab, lab_refusal_reasons(lab=lab, application=application)))
    history = AuditEntry.objects.filter(
        object_type="cas.application", object_id=str(application.pk)
    ).select_related("actor")
    allowed = set(allowed_actions(user, application))
    return {
        "application": application,
        "rows": rows,
        "history": history,
        "labs": labs,
        # The same answer the API gives (cas/actions.py), keyed for the template.
        "can": {
            "submit": "submit" in allowed,
            "withdraw": "withdraw" in allowed,
            "assign_lab": "assign-lab" in allowed,
            "record": "complete-assessment" in allowed,
            "complete": "complete-assessment" in allowed,
            "approve": "approve-report" in allowed,
            "decide": "grant" in allowed,
            "request_info": "request-info" in allowed,
            "resubmit": "resubmit" in allowed,
            "return": "return-for-rework" in allowed,
            "appeal": "appeal" in allowed,
            "decide_appeal": "appeal-decision" in allowed,
        },
        "case_messages": application.messages.select_related("author"),
        "dropped": [c for c in claims if c.granted is False],
        "failing": [r["claim"] for r in rows if r["outcome"] != "pass"],
        "certificates": application.certificates.public(),
    }


@login_required
def application_detail(request: HttpRequest, pk: int) -> HttpResponse:
    application = permissions.get_application_for(request.user, pk)
    return render(request, "cas/application_detail.html", _case_context(request, application))


def _act(
    request: HttpRequest, pk: int, action: Callable[[Application], object], done: str
) -> HttpResponse:
    """Run one service for a case page's POST; a refusal re-renders the case with its reason."""
    application = permissions.get_application_for(request.user, pk)
    try:
        action(application)
    except ActionRefused as exc:
        context = _case_context(request, application)
        context["error"] = exc.message
        return render(request, "cas/application_detail.html", context, status=exc.status_code)
    messages.success(request, done)
    return redirect("application_detail", pk=application.pk)


def _reason(request: HttpRequest) -> str:
    form = ReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else ""


@login_required
@require_POST
def application_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_submit(
            application=a, by=request.user, note=_reason(request)
        ),
        "Application submitted.",
    )


@login_required
@require_POST
def application_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_withdraw(
            application=a, by=request.user, reason=_reason(request)
        ),
        "Application withdrawn.",
    )


@login_required
@require_POST
def application_assign_lab(request: HttpRequest, pk: int) -> HttpResponse:
    form = AssignLabForm(request.POST)

    def assign(application: Application) -> None:
        if not form.is_valid():
            raise ActionRefused("Choose one of the listed labs.")
        services.application_assign_lab(
            application=application,
            lab=form.cleaned_data["lab"],
            by=request.user,
            note=form.cleaned_data["reason"],
        )

    return _act(request, pk, assign, "Lab assigned.")


@login_required
@require_POST
def application_complete(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_complete_assessment(application=a, by=request.user),
        "Assessment completed and sent to technical review.",
    )


@login_required
@require_POST
def application_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_approve_report(
            application=a, by=request.user, note=_reason(request)
        ),
        "Report approved: the case awaits a decision.",
    )


@login_required
@require_POST
def application_grant(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_grant(
            application=a,
            by=request.user,
            reason=_reason(request),
            reduce_scope=request.POST.get("reduce_scope") in {"on", "true", "1"},
        ),
        "Certification granted: the certificate is being issued.",
    )


@login_required
@require_POST
def application_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_refuse(
            application=a, by=request.user, reason=_reason(request)
        ),
        "Certification refused.",
    )


@login_required
@require_POST
def application_request_info(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_request_info(
            application=a, by=request.user, message=request.POST.get("message", "")
        ),
        "Information requested: the vendor has been told.",
    )


@login_required
@require_POST
def application_resubmit(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_resubmit(
            application=a, by=request.user, message=request.POST.get("message", "")
        ),
        "Answer sent: the application is submitted again.",
    )


@login_required
@require_POST
def application_return_for_rework(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_return_for_rework(
            application=a, by=request.user, comments=request.POST.get("comments", "")
        ),
        "Returned to the assessors for rework.",
    )


@login_required
@require_POST
def application_appeal(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: services.application_appeal(
            application=a, by=request.user, reason=_reason(request)
        ),
        "Appeal lodged: an officer who did not take the decision will handle it.",
    )


@login_required
@require_POST
def application_decide_appeal(request: HttpRequest, pk: int) -> HttpResponse:
    outcome = request.POST.get("outcome")

    def decide(application: Application) -> None:
        if outcome not in {"uphold", "dismiss"}:
            raise ActionRefused("Choose whether to uphold or dismiss the appeal.")
        services.application_decide_appeal(
            application=application,
            by=request.user,
            uphold=outcome == "uphold",
            reason=_reason(request),
        )

    return _act(request, pk, decide, "Appeal decided.")


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The person's own settings: API token and declared conflicts of interest."""
    from rest_framework.authtoken.models import Token

    form = ConflictDeclarationForm(
        request.POST if request.POST.get("form") == "conflict" else None,
        initial={"valid_from": timezone.localdate()},
    )
    new_key, status = "", 200
    if request.method == "POST" and request.POST.get("form") == "token":
        new_key = services.api_token_rotate(by=request.user)
        messages.success(request, "New API token created: copy it now, it is shown only once.")
    elif request.method == "POST" and request.POST.get("form") == "conflict":
        if form.is_valid():
            try:
                services.conflict_declare(by=request.user, **form.cleaned_data)
            except ActionRefused as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, "Conflict of interest declared.")
                return redirect("account")
        else:
            status = 400
    return render(
        request,
        "cas/account.html",
        {
            "form": form,
            "new_key": new_key,
            "has_token": Token.objects.filter(user=request.user).exists(),
            "declarations": request.user.conflict_declarations.select_related("organisation"),
        },
        status=status,
    )


def roles_context(request: HttpRequest) -> dict:
    """Which menus to show; the pages themselves enforce the rules."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav": {
            "vendor": permissions.is_vendor_member(user),
            "officer": permissions.is_officer(user),
            "lab": permissions.is_lab_member(user),
        }
    }
