"""Small helpers the tests share (importable; fixtures live in conftest.py)."""

from __future__ import annotations

import html
import threading

from django.db import connection
from django.test import Client

from cas.models import AIPO

PASSWORD = "correct horse battery staple"
HELIX_CLAIMS = [("XDS.b", "DOC_CONSUMER", "NONE"), ("PDQm", "PDC", "NONE")]


def aipo(profile: str, actor: str, option: str = "NONE") -> AIPO:
    return AIPO.objects.with_names().by_keywords(profile, actor, option).get()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def results_csv(rows: list[tuple[str, str, str, str, str, str]]) -> bytes:
    """A Gazelle results summary: (organisation, system, profile, actor, option, grade)."""
    lines = ["Organisation,System,Profile,Actor,Option,Type,Results,R/O,V,W,P,F"]
    lines += [f"{o},{s},{p},{a},{opt},Thorough,{g},2,2,0,0,0" for o, s, p, a, opt, g in rows]
    return ("\n".join(lines) + "\n").encode()


def page_text(response) -> str:
    """The response body as a person reads it (HTML entities decoded)."""
    return html.unescape(response.content.decode())


def log_in(page, base_url: str, username: str) -> None:
    """Log in through the login page of a Playwright page."""
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:has-text('Log in')")
    page.wait_for_selector("text=Log out")


def race(*actions, timeout: float = 120) -> list[object]:
    """Run the actions in threads (each with its own database connection) released together.

    Returns each action's result, or the exception it raised, in the order given.
    """
    barrier = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)

    def run(index: int, action) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = action()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the tests assert on
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return outcomes
