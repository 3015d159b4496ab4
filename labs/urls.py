"""Lab pages (see labs/views.py)."""

from __future__ import annotations

urlpatterns: list = []
