"""The REST API of cases: products, versions, applications, every case action, the history.

Thin views over the same services and lookups the pages use: reads go through
`visible_to` / `get_application_for` (a foreign id is a logged 404), writes through
cas/services.py, and refusals (cas.errors) come back as JSON {"detail": message} with their
status by `exception_handler`, registered in REST_FRAMEWORK.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from cas import permissions, services
from cas.actions import ACTIONS, ActionInput, allowed_actions
from cas.errors import ActionRefused, NotAllowed
from cas.models import (
    AIPO,
    Application,
    AuditEntry,
    CaseMessage,
    ClaimedAIPO,
    Organisation,
    Product,
    ProductVersion,
)
from certificates import ratelimit

# --- Errors ---


def _flatten(detail, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value, prefix)]
    return [f"{prefix}{detail}"]


def exception_handler(exc, context):
    """Business refusals keep their status and message; every error body has a `detail`."""
    if isinstance(exc, ActionRefused):
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # DRF answers 403 when the first authenticator is the session; a CI client holding
        # no token needs to hear "authenticate" (401), and 403 stays "you may not".
        exc.status_code = status.HTTP_401_UNAUTHORIZED
        exc.auth_header = 'Token realm="api"'
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": " ".join(_flatten(exc.detail)), "errors": exc.detail}
    return response


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    meaning = {
        400: "Refused: bad input or a rule of the scheme says no (the detail says which).",
        401: "No valid token or session.",
        403: "Not allowed for this user (e.g. separation of duties).",
        404: "No such object, or not yours (the same answer for both).",
        409: "The case changed meanwhile: the action is no longer possible from its state.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=meaning[code]) for code in codes}


# A page number past the last page (or not a number) is DRF's 404 "Invalid page.".
NO_SUCH_PAGE = {404: OpenApiResponse(ErrorSerializer, description="No such page of results.")}


def not_found(request, exception=None):
    """The site's 404 (handler404): JSON under /api/, where a client reads {"detail"}, for
    a URL no route matches too (e.g. a negative id); the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


class Page(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _paginated(request: Request, view: APIView, queryset, serializer_class, **context):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer_class(page, many=True, context={"request": request, **context}).data
    return paginator.get_paginated_response(data)


# --- Serializers ---

# The largest id a row can have (BigAutoField): a larger one is refused as input, never
# sent to the database, where an `in` lookup overflows (a 500 on SQLite).
MAX_ID = 2**63 - 1


def id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class AIPOSerializer(serializers.ModelSerializer):
    profile = serializers.CharField(source="profile.keyword")
    profile_name = serializers.CharField(source="profile.name")
    domain = serializers.CharField(source="profile.domain.keyword")
    tf_revision = serializers.CharField(source="profile.tf_revision")
    actor = serializers.CharField(source="actor.keyword")
    actor_name = serializers.CharField(source="actor.name")
    option = serializers.CharField(source="option.keyword")
    option_name = serializers.CharField(source="option.name")
    label = serializers.CharField()

    class Meta:
        model = AIPO
        fields = [
            "id",
            "profile",
            "profile_name",
            "domain",
            "tf_revision",
            "actor",
            "actor_name",
            "option",
            "option_name",
            "label",
        ]


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductVersion
        fields = ["id", "product", "version", "release_date", "created_at"]


class ProductSerializer(serializers.ModelSerializer):
    vendor_name = serializers.CharField(source="vendor.name")
    versions = VersionSerializer(many=True)

    class Meta:
        model = Product
        fields = ["id", "vendor", "vendor_name", "name", "description", "created_at", "versions"]


class ProductCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    vendor = id_field(
        required=False,
        help_text="Your vendor organisation's id; needed only if you belong to several.",
    )


class VersionCreateSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=60, allow_blank=True)


class ClaimInputSerializer(serializers.Serializer):
    """One claimed AIPO: its catalogue id, or its profile / actor / option keywords."""

    aipo = id_field(required=False, help_text="The AIPO's id in the catalogue.")
    profile = serializers.CharField(required=False, max_length=40, help_text="e.g. XDS.b")
    actor = serializers.CharField(required=False, max_length=60, help_text="e.g. DOC_CONSUMER")
    option = serializers.CharField(
        required=False, max_length=80, default="NONE", help_text="Option keyword; NONE: baseline"
    )

    def validate(self, data: dict) -> dict:
        if "aipo" not in data and not (data.get("profile") and data.get("actor")):
            raise serializers.ValidationError(
                "Give either the AIPO's id (aipo) or its profile and actor keywords."
            )
        return data


class ClaimsSerializer(serializers.Serializer):
    claims = ClaimInputSerializer(many=True, allow_empty=False)


class ApplicationCreateSerializer(ClaimsSerializer):
    product_version = id_field(help_text="The id of one of your product versions.")


class ClaimSerializer(serializers.ModelSerializer):
    aipo = AIPOSerializer()
    granted = serializers.BooleanField(
        allow_null=True, help_text="Set at the decision: false for an AIPO dropped from the scope."
    )

    class Meta:
        model = ClaimedAIPO
        fields = ["aipo", "granted"]


class ApplicationSummarySerializer(serializers.ModelSerializer):
    state_display = serializers.CharField(source="get_state_display")
    vendor_name = serializers.CharField(source="vendor.name")
    product = serializers.CharField(source="product_version.product.name")
    version = serializers.CharField(source="product_version.version")
    lab_name = serializers.CharField(source="lab.name", allow_null=True, default=None)

    class Meta:
        model = Application
        fields = [
            "id",
            "reference",
            "state",
            "state_display",
            "vendor",
            "vendor_name",
            "product_version",
            "product",
            "version",
            "lab",
            "lab_name",
            "created_at",
            "submitted_at",
            "state_changed_at",
        ]


class ApplicationSerializer(ApplicationSummarySerializer):
    claims = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    appeal_deadline = serializers.DateTimeField(allow_null=True)

    class Meta(ApplicationSummarySerializer.Meta):
        fields = [
            *ApplicationSummarySerializer.Meta.fields,
            "decided_at",
            "decision_reason",
            "appeal_deadline",
            "appeal_reason",
            "claims",
            "allowed_actions",
        ]

    @extend_schema_field(ClaimSerializer(many=True))
    def get_claims(self, application: Application) -> list:
        claims = application.claims.select_related(
            "aipo__profile__domain", "aipo__actor", "aipo__option"
        ).order_by("aipo__profile__keyword", "aipo__actor__keyword", "aipo__option__keyword")
        return ClaimSerializer(claims, many=True).data

    @extend_schema_field(
        serializers.ListField(
            child=serializers.ChoiceField(choices=list(ACTIONS)),
            help_text="The actions the requesting user may take now: POST to "
            "/api/applications/{id}/<action>/.",
        )
    )
    def get_allowed_actions(self, application: Application) -> list[str]:
        return allowed_actions(self.context["request"].user, application)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="Username, or 'system'.")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "from_state",
            "to_state",
            "reason",
            "request_id",
            "previous_hash",
            "entry_hash",
        ]


class CaseMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.get_username")

    class Meta:
        model = CaseMessage
        fields = ["id", "kind", "body", "author", "at"]


# --- Lookups ---


def _product_for(user, pk: int) -> Product:
    """Like get_application_for: missing and foreign are the same 404; foreign is logged."""
    product = Product.objects.visible_to(user).select_related("vendor").filter(pk=pk).first()
    if product is None:
        if Product.objects.filter(pk=pk).exists():
            permissions.log.warning("user %s was refused foreign product %s", user.pk, pk)
        raise Http404("No such product")
    return product


def _version_for(user, pk: int) -> ProductVersion:
    """A product version named in a request body: unknown and foreign both refused (400)."""
    version = (
        ProductVersion.objects.filter(pk=pk, product__in=Product.objects.visible_to(user))
        .select_related("product__vendor")
        .first()
    )
    if version is None:
        if ProductVersion.objects.filter(pk=pk).exists():
            permissions.log.warning("user %s was refused foreign product version %s", user.pk, pk)
        raise ActionRefused(f"Product version {pk} is not one of your product versions.")
    return version


def _aipos(claims: list[dict]) -> list[AIPO]:
    """The claimed AIPOs in the order given, each once; every unknown one is named."""
    found: dict[int, AIPO] = {}
    unknown = []
    by_id = AIPO.objects.with_names().in_bulk([c["aipo"] for c in claims if "aipo" in c])
    for claim in claims:
        if "aipo" in claim:
            aipo = by_id.get(claim["aipo"])
            name = f"aipo {claim['aipo']}"
        else:
            aipo = (
                AIPO.objects.with_names()
                .by_keywords(claim["profile"], claim["actor"], claim["option"])
                .first()
            )
            name = f"{claim['profile']} / {claim['actor']} / {claim['option'] or 'NONE'}"
        if aipo is None:
            unknown.append(name)
        else:
            found.setdefault(aipo.pk, aipo)
    if unknown:
        raise ActionRefused("Not in the catalogue: " + "; ".join(unknown) + ".")
    return list(found.values())


def _valid(serializer_class, request: Request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Views ---


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as the header `Authorization: Token <token>`.")


def _token_wait(request: Request) -> int | None:
    """Seconds to wait when this address, or this username from any address, has asked for
    a token too often (OPENCAS_TOKEN_RATE); None when within the limit. Every attempt counts,
    right or wrong: a client needs a token rarely, a guesser needs many."""
    rate = ratelimit.parse_rate(settings.TOKEN_RATE)
    if rate is None:
        return None
    data = request.data if hasattr(request.data, "get") else {}
    username = str(data.get("username") or "").strip().lower()[:150]
    waits = [
        ratelimit.retry_after(scope="token", client=ratelimit.client_address(request), rate=rate)
    ]
    if username:
        # Hashed: a username may hold characters a cache key should not.
        digest = hashlib.sha256(username.encode()).hexdigest()
        waits.append(ratelimit.retry_after(scope="token-user", client=digest, rate=rate))
    refused = [wait for wait in waits if wait is not None]
    return max(refused) if refused else None


ratelimit.check_rate_setting("TOKEN_RATE")


class TokenView(ObtainAuthToken):
    @extend_schema(
        summary="Get an API token",
        description="Exchange a username and password for the user's API token (created on "
        "first use). Send it as `Authorization: Token <key>`. Limited per client address and "
        "per username (OPENCAS_TOKEN_RATE, default 10 a minute), right or wrong password alike.",
        tags=["auth"],
        responses={
            200: TokenSerializer,
            **_errors(400),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many token requests from this address or for this username; "
                "the Retry-After header says when to try again.",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        wait = _token_wait(request)
        if wait is not None:
            return Response(
                {"detail": ratelimit.limit_message(wait, scope="token")},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        return super().post(request, *args, **kwargs)


class ProductListView(APIView):
    pagination_class = Page

    @extend_schema(
        summary="List your products",
        tags=["products"],
        responses={200: ProductSerializer(many=True), **_errors(401), **NO_SUCH_PAGE},
    )
    def get(self, request: Request) -> Response:
        products = (
            Product.objects.visible_to(request.user)
            .select_related("vendor")
            .prefetch_related("versions")
            .order_by("name", "pk")
        )
        return _paginated(request, self, products, ProductSerializer)

    @extend_schema(
        summary="Register a product",
        tags=["products"],
        request=ProductCreateSerializer,
        responses={201: ProductSerializer, **_errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(ProductCreateSerializer, request)
        vendors = Organisation.objects.filter(
            pk__in=permissions.organisation_ids(request.user, Organisation.Kind.VENDOR)
        )
        if "vendor" in data:
            vendor = vendors.filter(pk=data["vendor"]).first()
            if vendor is None:
                raise ActionRefused(f"Vendor {data['vendor']} is not one of your organisations.")
        elif len(vendors) == 1:
            vendor = vendors[0]
        elif not vendors:
            raise NotAllowed("Only members of a vendor can register products.")
        else:
            raise ActionRefused("You belong to several vendors: say which one (vendor).")
        product = services.product_create(
            vendor=vendor, name=data["name"], description=data["description"], by=request.user
        )
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailView(APIView):
    @extend_schema(
        summary="One of your products",
        tags=["products"],
        responses={200: ProductSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProductSerializer(_product_for(request.user, pk)).data)


class VersionListView(APIView):
    @extend_schema(
        summary="List a product's versions",
        tags=["products"],
        responses={200: VersionSerializer(many=True), **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        product = _product_for(request.user, pk)
        return Response(VersionSerializer(product.versions.order_by("pk"), many=True).data)

    @extend_schema(
        summary="Register a version of a product",
        tags=["products"],
        request=VersionCreateSerializer,
        responses={201: VersionSerializer, **_errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        product = _product_for(request.user, pk)
        data = _valid(VersionCreateSerializer, request)
        version = services.product_version_create(
            product=product, version=data["version"], by=request.user
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ApplicationListView(APIView):
    pagination_class = Page

    @extend_schema(
        summary="List the cases you may see",
        description="Vendors see their own cases, labs the cases assigned to them, officers all.",
        tags=["applications"],
        parameters=[
            OpenApiParameter(
                "state", OpenApiTypes.STR, enum=Application.State.values, description="Filter"
            )
        ],
        responses={
            200: ApplicationSummarySerializer(many=True),
            **_errors(400, 401),
            **NO_SUCH_PAGE,
        },
    )
    def get(self, request: Request) -> Response:
        cases = (
            Application.objects.visible_to(request.user)
            .select_related("vendor", "lab", "product_version__product")
            .order_by("-created_at", "-pk")
        )
        state = request.query_params.get("state", "")
        if state:
            if state not in Application.State.values:
                raise ActionRefused(
                    f"{state!r} is not a state; use one of {', '.join(Application.State.values)}."
                )
            cases = cases.filter(state=state)
        return _paginated(request, self, cases, ApplicationSummarySerializer)

    @extend_schema(
        summary="Create a draft application",
        description="Claims name AIPOs by catalogue id or by profile / actor / option keywords.",
        tags=["applications"],
        request=ApplicationCreateSerializer,
        responses={201: ApplicationSerializer, **_errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(ApplicationCreateSerializer, request)
        product_version = _version_for(request.user, data["product_version"])
        application = services.application_create(
            product_version=product_version, aipos=_aipos(data["claims"]), by=request.user
        )
        return Response(
            ApplicationSerializer(application, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


def _case(request: Request, application: Application) -> Response:
    application = (
        Application.objects.select_related("vendor", "lab", "product_version__product")
        .filter(pk=application.pk)
        .get()
    )
    return Response(ApplicationSerializer(application, context={"request": request}).data)


class ApplicationDetailView(APIView):
    @extend_schema(
        summary="One case, with the actions you may take now",
        tags=["applications"],
        responses={200: ApplicationSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return _case(request, permissions.get_application_for(request.user, pk))

    @extend_schema(
        summary="Replace the claimed AIPOs of a draft",
        tags=["applications"],
        request=ClaimsSerializer,
        responses={200: ApplicationSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        data = _valid(ClaimsSerializer, request)
        services.application_set_claims(
            application=application, aipos=_aipos(data["claims"]), by=request.user
        )
        return _case(request, application)


class ApplicationHistoryView(APIView):
    @extend_schema(
        summary="The case's audit history",
        description="Every change, oldest first, with the hash chain that makes it tamper-evident.",
        tags=["applications"],
        responses={200: AuditEntrySerializer(many=True), **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        entries = AuditEntry.objects.filter(
            object_type="cas.application", object_id=str(application.pk)
        ).order_by("id")
        return Response(AuditEntrySerializer(entries, many=True).data)


class ApplicationMessagesView(APIView):
    @extend_schema(
        summary="The case's messages",
        description="Officers' information requests and the vendor's answers, oldest first.",
        tags=["applications"],
        responses={200: CaseMessageSerializer(many=True), **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        application = permissions.get_application_for(request.user, pk)
        messages = application.messages.select_related("author")
        return Response(CaseMessageSerializer(messages, many=True).data)


class CatalogueView(APIView):
    pagination_class = Page

    @extend_schema(
        summary="Search the AIPO catalogue",
        description="Exact keyword filters (case-insensitive) and a free-text search `q` over "
        "profile and actor keywords and names.",
        tags=["catalogue"],
        parameters=[
            OpenApiParameter("profile", OpenApiTypes.STR, description="Profile keyword (XDS.b)"),
            OpenApiParameter("actor", OpenApiTypes.STR, description="Actor keyword"),
            OpenApiParameter("option", OpenApiTypes.STR, description="Option keyword, NONE"),
            OpenApiParameter("domain", OpenApiTypes.STR, description="Domain keyword, e.g. ITI"),
            OpenApiParameter("q", OpenApiTypes.STR, description="Free text"),
        ],
        responses={200: AIPOSerializer(many=True), **_errors(401), **NO_SUCH_PAGE},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        aipos = AIPO.objects.select_related("profile__domain", "actor", "option")
        for field, lookup in (
            ("profile", "profile__keyword__iexact"),
            ("actor", "actor__keyword__iexact"),
            ("option", "option__keyword__iexact"),
            ("domain", "profile__domain__keyword__iexact"),
        ):
            if params.get(field, "").strip():
                aipos = aipos.filter(**{lookup: params[field].strip()})
        query = params.get("q", "").strip()[:60]
        if query:
            aipos = aipos.filter(
                Q(profile__keyword__icontains=query)
                | Q(profile__name__icontains=query)
                | Q(actor__keyword__icontains=query)
                | Q(actor__name__icontains=query)
            )
        aipos = aipos.order_by("profile__keyword", "actor__keyword", "option__keyword", "pk")
        return _paginated(request, self, aipos, AIPOSerializer)


# --- Case actions: one endpoint per transition, each calling its service ---


class NoInputSerializer(serializers.Serializer):
    """The action takes nothing but the case."""


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required; refused when empty."
    )


class CommentsSerializer(serializers.Serializer):
    comments = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="What must be reworked. Required; refused when empty.",
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RequiredReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required; refused when empty."
    )


class AssignLabSerializer(NoteSerializer):
    lab = id_field(help_text="The id of the test laboratory to assign.")


class GrantSerializer(ReasonSerializer):
    reduce_scope = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Grant only the AIPOs whose result is Pass; the others are listed as dropped.",
    )


class AppealDecisionSerializer(RequiredReasonSerializer):
    outcome = serializers.ChoiceField(
        choices=["uphold", "dismiss"],
        required=False,
        help_text="uphold: the case goes back to a decision; dismiss: the refusal stands.",
    )


def _lab(lab_id: int) -> Organisation:
    lab = Organisation.objects.filter(pk=lab_id, kind=Organisation.Kind.LAB).first()
    if lab is None:
        raise ActionRefused(f"There is no test laboratory with id {lab_id}.")
    return lab


class CaseActionView(APIView):
    """POST runs one transition through its service and answers the case as it is now."""

    slug: str = ""
    input_serializer: type[serializers.Serializer] = NoteSerializer

    def post(self, request: Request, pk: int) -> Response:
        # Isolation before validation: a foreign id is a 404 whatever the body holds.
        application = permissions.get_application_for(request.user, pk)
        data = _valid(self.input_serializer, request)
        action = ACTIONS[self.slug]
        given = ActionInput(
            text=data.get(action.text_name, ""),
            lab=_lab(data["lab"]) if "lab" in data else None,
            reduce_scope=data.get("reduce_scope", False),
            uphold={"uphold": True, "dismiss": False}.get(data.get("outcome", "")),
        )
        updated = action.run(application, request.user, given)
        return _case(request, updated)


def _case_action_view(slug: str, input_serializer, summary: str, description: str):
    action = ACTIONS[slug]
    name = "".join(part.capitalize() for part in slug.split("-")) + "View"
    states = ", ".join(action.sources)

    # A function of its own per endpoint: extend_schema annotates the function it decorates.
    def post(self, request: Request, pk: int) -> Response:
        return CaseActionView.post(self, request, pk)

    post = extend_schema(
        summary=summary,
        description=f"{description}\n\nPossible from: {states}.",
        tags=["case actions"],
        operation_id=f"applications_{slug.replace('-', '_')}",
        request=input_serializer,
        responses={200: ApplicationSerializer, **_errors(400, 401, 403, 404, 409)},
    )(post)
    return type(
        name,
        (CaseActionView,),
        {"slug": slug, "input_serializer": input_serializer, "post": post},
    )


CASE_ACTION_VIEWS = {
    "submit": _case_action_view(
        "submit",
        NoteSerializer,
        "Submit the application",
        "Vendor. Needs at least one claimed AIPO, each with a passing Connectathon result "
        "within the evidence window.",
    ),
    "request-info": _case_action_view(
        "request-info",
        MessageSerializer,
        "Request information from the vendor",
        "Scheme officer, during screening; the message is sent to the vendor.",
    ),
    "resubmit": _case_action_view(
        "resubmit",
        MessageSerializer,
        "Answer an information request and resubmit",
        "Vendor; the answer is kept with the case's messages.",
    ),
    "assign-lab": _case_action_view(
        "assign-lab",
        AssignLabSerializer,
        "Assign a test laboratory",
        "Scheme officer. The lab's accreditation must be valid and cover the claimed profiles, "
        "and the lab must be independent of the vendor.",
    ),
    "complete-assessment": _case_action_view(
        "complete-assessment",
        NoInputSerializer,
        "Complete the assessment",
        "Assigned lab; every claimed AIPO needs a result. Sends the case to technical review.",
    ),
    "return-for-rework": _case_action_view(
        "return-for-rework",
        CommentsSerializer,
        "Return the assessment for rework",
        "Technical reviewer: a member of the assigned lab who recorded none of the results.",
    ),
    "approve-report": _case_action_view(
        "approve-report",
        NoteSerializer,
        "Approve the test report",
        "Technical reviewer: a member of the assigned lab who recorded none of the results.",
    ),
    "grant": _case_action_view(
        "grant",
        GrantSerializer,
        "Grant certification",
        "Impartial scheme officer. With reduce_scope, only the AIPOs that passed are granted. "
        "The certificate is issued once the decision is committed.",
    ),
    "refuse": _case_action_view(
        "refuse", RequiredReasonSerializer, "Refuse certification", "Impartial scheme officer."
    ),
    "appeal": _case_action_view(
        "appeal",
        RequiredReasonSerializer,
        "Appeal a refusal",
        "Vendor, within the appeal window after the decision.",
    ),
    "appeal-decision": _case_action_view(
        "appeal-decision",
        AppealDecisionSerializer,
        "Decide an appeal",
        "A scheme officer who did not take the decision appealed against.",
    ),
    "withdraw": _case_action_view(
        "withdraw", ReasonSerializer, "Withdraw the application", "Vendor, before a decision."
    ),
}
assert set(CASE_ACTION_VIEWS) == set(ACTIONS), "every case action needs its endpoint"
