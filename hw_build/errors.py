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


class LayerError(BuildError, ValueError):
    """A hardware layer that cannot be built as configured, naming the node and its op.

    It is also a ValueError, so callers that probe a layer's options (folding search, tests)
    and catch ValueError keep working; build.py reports it like any BuildError.
    """

    def __init__(self, node: str, op_type: str, problem: str, fix: str = "") -> None:
        text = f"hardware layer '{node}' ({op_type}): {problem}."
        if fix:
            text += f" {fix}"
        super().__init__(text)
        self.node = node


class UsageError(BuildError):
    """A command-line option with a value that cannot mean anything (build.py exits 2)."""
