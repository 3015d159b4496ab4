from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, transition


class Organisation(models.Model):
    class Kind(models.TextChoices):
        VENDOR = "vendor", "Vendor"
        LAB = "lab", "Test laboratory"
        SCHEME = "scheme", "Scheme owner / certification body"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=200, unique=True)
    address = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    # A lab owned by a vendor group points at the group: the independence rule follows it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="subsidiaries"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def group_root(self) -> Organisation:
        node = self
        while node.parent_id is not None:
            node = node.parent
        return node


class Membership(models.Model):
    class Role(models.TextChoices):
        VENDOR_ADMIN = "vendor_admin", "Vendor admin"
        VENDOR_MEMBER = "vendor_member", "Vendor member"
        SCHEME_OFFICER = "scheme_officer", "Scheme officer"
        LAB_MANAGER = "lab_manager", "Lab manager"
        ASSESSOR = "assessor", "Assessor"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_role_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} at {self.organisation}"


# --- The IHE catalogue ---


class Domain(models.Model):
    keyword = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["keyword"]

    def __str__(self) -> str:
        return self.keyword


class Profile(models.Model):
    keyword = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, blank=True, help_text="FT, TI, PROPOSED, ...")
    tf_revision = models.CharField("Technical Framework / IG revision", max_length=40, blank=True)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="profiles")

    class Meta:
        ordering = ["keyword"]

    def __str__(self) -> str:
        return self.keyword


class Actor(models.Model):
    keyword = models.CharField(max_length=60, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["keyword"]

    def __str__(self) -> str:
        return self.keyword


class ProfileOption(models.Model):
    keyword = models.CharField(max_length=80, unique=True)
    name = models.CharField(max_length=300)
    reference = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["keyword"]

    def __str__(self) -> str:
        return self.keyword


class AIPOQuerySet(models.QuerySet):
    def with_names(self) -> AIPOQuerySet:
        return self.select_related("profile", "profile__domain", "actor", "option")

    def by_keywords(self, profile: str, actor: str, option: str) -> AIPOQuerySet:
        return self.filter(
            profile__keyword=profile, actor__keyword=actor, option__keyword=option or "NONE"
        )


class AIPO(models.Model):
    """One actor / integration profile / option triple: what vendors claim and labs assess."""

    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="aipos")
    actor = models.ForeignKey(Actor, on_delete=models.PROTECT, related_name="aipos")
    option = models.ForeignKey(ProfileOption, on_delete=models.PROTECT, related_name="aipos")

    objects = AIPOQuerySet.as_manager()

    class Meta:
        ordering = ["profile__keyword", "actor__keyword", "option__keyword"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "actor", "option"], name="unique_aipo")
        ]

    def __str__(self) -> str:
        return f"{self.profile.keyword} / {self.actor.keyword} / {self.option.keyword}"

    @property
    def label(self) -> str:
        option = "" if self.option.keyword == "NONE" else f" ({self.option.name})"
        return f"{self.profile.keyword} {self.actor.name}{option}"


# --- Products ---


class ProductQuerySet(models.QuerySet):
    def visible_to(self, user) -> ProductQuerySet:
        from cas.permissions import organisation_ids

        if not user.is_authenticated:
            return self.none()
        return self.filter(vendor_id__in=organisation_ids(user, Organisation.Kind.VENDOR))


class Product(models.Model):
    vendor = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="products",
        limit_choices_to={"kind": Organisation.Kind.VENDOR},
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "name"], name="unique_product_per_vendor")
        ]

    def __str__(self) -> str:
        return self.name


class ProductVersion(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=60)
    release_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.version}"


# --- The case ---


class ApplicationQuerySet(models.QuerySet):
    def visible_to(self, user) -> ApplicationQuerySet:
        """Vendors see their own cases, labs the cases assigned to them, officers all."""
        from cas.permissions import organisation_ids

        if not user.is_authenticated:
            return self.none()
        if user.is_superuser or organisation_ids(user, Organisation.Kind.SCHEME):
            return self
        return self.filter(
            Q(vendor_id__in=organisation_ids(user, Organisation.Kind.VENDOR))
            | Q(lab_id__in=organisation_ids(user, Organisation.Kind.LAB))
        )

    def waiting_longest_first(self) -> ApplicationQuerySet:
        """Oldest first by the time the case entered its current state."""
        from django.db.models.functions import Coalesce

        return self.annotate(
            waiting_since=Coalesce("state_changed_at", "submitted_at", "created_at")
        ).order_by("waiting_since", "pk")


class Application(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        INFO_REQUESTED = "info_requested", "Information requested"
        IN_ASSESSMENT = "in_assessment", "In assessment"
        IN_REVIEW = "in_review", "In technical review"
        DECISION_PENDING = "decision_pending", "Decision pending"
        CERTIFIED = "certified", "Certified"
        REFUSED = "refused", "Refused"
        APPEALED = "appealed", "Appealed"
        WITHDRAWN = "withdrawn", "Withdrawn"

    BEFORE_DECISION = [
        State.DRAFT,
        State.SUBMITTED,
        State.INFO_REQUESTED,
        State.IN_ASSESSMENT,
        State.IN_REVIEW,
        State.DECISION_PENDING,
    ]

    reference = models.CharField(max_length=20, unique=True)
    # Denormalised from the product so that isolation filters are one indexed column.
    vendor = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="applications")
    product_version = models.ForeignKey(
        ProductVersion, on_delete=models.PROTECT, related_name="applications"
    )
    claimed_aipos = models.ManyToManyField(AIPO, through="ClaimedAIPO", related_name="+")
    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True)
    lab = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_applications",
        limit_choices_to={"kind": Organisation.Kind.LAB},
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # An appeal is handled by an officer who did not take the decision appealed against;
    # if the appeal reopens the case, that officer may not decide it again either.
    appealed_at = models.DateTimeField(null=True, blank=True)
    appeal_reason = models.TextField(blank=True)
    appealed_decision_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appeal_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appeal_decided_at = models.DateTimeField(null=True, blank=True)
    # When the case last changed state: "my work" ages are counted from here.
    state_changed_at = models.DateTimeField(null=True, blank=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference

    # Transitions only set fields; the services in cas/services.py lock, save and audit.

    @transition(field=state, source=State.DRAFT, target=State.SUBMITTED)
    def submit(self, *, at) -> None:
        self.submitted_at = at

    @transition(field=state, source=State.SUBMITTED, target=State.INFO_REQUESTED)
    def request_info(self) -> None:
        pass

    @transition(field=state, source=State.INFO_REQUESTED, target=State.SUBMITTED)
    def resubmit(self) -> None:
        pass

    @transition(field=state, source=State.SUBMITTED, target=State.IN_ASSESSMENT)
    def assign_lab(self, *, lab: Organisation) -> None:
        self.lab = lab

    @transition(field=state, source=State.IN_ASSESSMENT, target=State.IN_REVIEW)
    def complete_assessment(self) -> None:
        pass

    @transition(field=state, source=State.IN_REVIEW, target=State.IN_ASSESSMENT)
    def return_for_rework(self) -> None:
        pass

    @transition(field=state, source=State.IN_REVIEW, target=State.DECISION_PENDING)
    def approve_report(self, *, by) -> None:
        self.approved_by = by

    @transition(field=state, source=State.DECISION_PENDING, target=State.CERTIFIED)
    def grant(self, *, by, at, reason: str) -> None:
        self.decided_by = by
        self.decided_at = at
        self.decision_reason = reason

    @transition(field=state, source=State.DECISION_PENDING, target=State.REFUSED)
    def refuse(self, *, by, at, reason: str) -> None:
        self.decided_by = by
        self.decided_at = at
        self.decision_reason = reason

    @transition(field=state, source=State.REFUSED, target=State.APPEALED)
    def appeal(self, *, at, reason: str) -> None:
        self.appealed_at = at
        self.appeal_reason = reason
        self.appealed_decision_by = self.decided_by

    @transition(field=state, source=State.APPEALED, target=State.DECISION_PENDING)
    def reopen_on_appeal(self, *, by, at) -> None:
        self.appeal_decided_by = by
        self.appeal_decided_at = at
        self.decided_by = None
        self.decided_at = None
        self.decision_reason = ""

    @transition(field=state, source=State.APPEALED, target=State.REFUSED)
    def dismiss_appeal(self, *, by, at) -> None:
        self.appeal_decided_by = by
        self.appeal_decided_at = at

    def appeal_already_decided(self) -> bool:
        """A decision is appealed once; a reopened case's new decision may be appealed again."""
        return bool(
            self.appeal_decided_at and self.decided_at and self.appeal_decided_at >= self.decided_at
        )

    def appeal_deadline(self):
        """The last moment a refusal can be appealed (settings.APPEAL_WINDOW_DAYS)."""
        from datetime import timedelta

        if self.decided_at is None:
            return None
        return self.decided_at + timedelta(days=settings.APPEAL_WINDOW_DAYS)

    @transition(field=state, source=BEFORE_DECISION, target=State.WITHDRAWN)
    def withdraw(self) -> None:
        pass


class ClaimedAIPO(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="claims")
    aipo = models.ForeignKey(AIPO, on_delete=models.PROTECT, related_name="claims")
    # Set at grant: the decision may reduce the scope to the AIPOs that passed.
    granted = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["application", "aipo"], name="unique_claim")]
        # The registry's scope filters: granted claims of given AIPOs, answered from the index.
        indexes = [
            models.Index(
                fields=["aipo", "application"],
                condition=Q(granted=True),
                name="claim_granted_aipo_application",
            )
        ]

    def __str__(self) -> str:
        return f"{self.application} claims {self.aipo}"


class CaseMessage(models.Model):
    """A message on a case: an officer's information request and the vendor's answer."""

    class Kind(models.TextChoices):
        INFO_REQUEST = "info_request", "Information request"
        ANSWER = "answer", "Answer"

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    body = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.application} {self.get_kind_display().lower()} by {self.author}"


class ConflictDeclaration(models.Model):
    """A person's declared conflict of interest with an organisation, for a period."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conflict_declarations"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Empty: until revoked")
    declared_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-declared_at"]

    def __str__(self) -> str:
        return f"{self.user} declared a conflict with {self.organisation}"


class AuditEntry(models.Model):
    """Append-only, hash-chained record of every state change (see cas/audit.py)."""

    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=40)
    action = models.CharField(max_length=40)
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.from_state} -> {self.to_state}"


class AuditChainHead(models.Model):
    """A single row locked by every audit write, so that the chain never forks."""

    last_hash = models.CharField(max_length=64)
    length = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain head after {self.length} entries"
