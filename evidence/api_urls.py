"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

urlpatterns: list = []
