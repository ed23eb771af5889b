"""User-facing errors: one paragraph that names the problem and what to do, no traceback."""

from __future__ import annotations


class BuildError(Exception):
    """A problem with the user's input or model that the user can fix.

    build.py prints the message alone (no traceback) and exits with status 1.
    """

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step

    def __str__(self) -> str:
        text = super().__str__()
        return f"[{self.step}] {text}" if self.step else text
