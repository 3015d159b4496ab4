"""Builders for the lab tests (the cast lives in tests/conftest.py)."""

from __future__ import annotations

import pytest

from cas.models import AIPO


@pytest.fixture
def iti_claims(catalogue):
    """`count` real ITI AIPOs of the catalogue, as (profile, actor, option) keywords."""

    def pick(count: int) -> list[tuple[str, str, str]]:
        aipos = AIPO.objects.with_names().filter(profile__domain__keyword="ITI").order_by("pk")
        return [(a.profile.keyword, a.actor.keyword, a.option.keyword) for a in aipos[:count]]

    return pick


@pytest.fixture
def case_cast(lab, assessor_carol, reviewer_dave, officer_erin):
    return {
        "lab_org": lab,
        "recorder": assessor_carol,
        "reviewer": reviewer_dave,
        "officer": officer_erin,
    }
