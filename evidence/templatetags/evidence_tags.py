from __future__ import annotations

from django import template

from evidence.services import can_add_evidence as _can_add_evidence

register = template.Library()


@register.simple_tag
def can_add_evidence(application, user) -> bool:
    return _can_add_evidence(user, application)
