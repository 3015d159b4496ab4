from __future__ import annotations


class ActionRefused(Exception):
    """A business rule said no. The message is shown to the user as it is."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(ActionRefused):
    status_code = 403


class Conflict(ActionRefused):
    """The case changed under the request (a concurrent action won)."""

    status_code = 409
