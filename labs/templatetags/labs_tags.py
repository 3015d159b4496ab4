"""{% lab_case_panel application user %}: what the case page shows about the lab's work."""

from __future__ import annotations

from django import template

from cas import permissions
from labs.models import CaseFlag

register = template.Library()


@register.inclusion_tag("labs/_case_lab_panel.html")
def lab_case_panel(application, user) -> dict:
    lab_member = permissions.is_case_lab_member(user, application)
    state = application.state
    return {
        "application": application,
        "lab_member": lab_member,
        "can_record": lab_member and state == "in_assessment",
        "can_review": state == "in_review"
        and permissions.can_approve_report.test(user, application),
        "in_review": lab_member and state == "in_review",
        "reports": application.test_reports.select_related("amends", "authorised_by").order_by(
            "issued_at"
        ),
        "flags": CaseFlag.objects.filter(application=application).select_related("acknowledged_by")
        if lab_member or permissions.is_officer(user)
        else [],
    }
