"""User-facing errors.

Every problem caused by user input (a missing file, a corrupt checkpoint, a wrong YAML field,
a trace from another model, NaN, ...) is raised as :class:`SnnsimError` with a one-line message
that names the problem and the fix. The CLI turns it into that line on stderr and exit code 2.
"""

from __future__ import annotations


class SnnsimError(Exception):
    """A problem with the user's input; the message is one line: what is wrong, and the fix."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        super().__init__(" ".join(message.split()))


class CheckpointError(SnnsimError):
    """A model checkpoint is missing, truncated, not a checkpoint, or from a future version."""


class ConfigError(SnnsimError):
    """A hardware config is missing, malformed, or has unknown/invalid fields."""


class TraceError(SnnsimError):
    """A spike trace is missing, truncated, or was recorded from another model."""


class DataError(SnnsimError):
    """A data set is missing or malformed."""


def quote(exc: BaseException, limit: int = 120) -> str:
    """The first line of a library's exception text, for quoting inside a one-line error:
    shortened at a word boundary (never mid-word) with an ellipsis; the exception's type name
    when it has no text, or when its first word alone is longer than ``limit``."""
    text = (str(exc).strip().splitlines() or [""])[0].strip() or type(exc).__name__
    if len(text) <= limit:
        return text
    if " " not in text[:limit]:  # one giant word: name the type rather than quote half of it
        return type(exc).__name__
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"
