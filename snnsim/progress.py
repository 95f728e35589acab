"""Progress bars and progress lines, under one process-wide policy.

Every long loop in snnsim draws its bar through :func:`progress_bar`. Whether bars are drawn is
decided here, once: ``auto`` (the default) draws them only when stderr is a terminal, so logs,
pipes and CI get no carriage-return noise; ``always`` draws them anyway (``--progress``);
``never`` draws none and also silences the per-step lines commands print (``--quiet``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, Literal

from tqdm.auto import tqdm

Policy = Literal["auto", "always", "never"]
POLICIES: tuple[Policy, ...] = ("auto", "always", "never")

_policy: Policy = "auto"


def set_policy(policy: Policy) -> None:
    """Set the process-wide progress policy (the CLI does this from --quiet / --progress)."""
    global _policy
    if policy not in POLICIES:
        raise ValueError(f"unknown progress policy {policy!r}")
    _policy = policy


def policy() -> Policy:
    """The progress policy in force."""
    return _policy


def quiet() -> bool:
    """True under ``--quiet``: no bars and no per-step progress lines."""
    return _policy == "never"


def bars_enabled() -> bool:
    """Whether a progress bar would be drawn now."""
    if _policy == "never":
        return False
    if _policy == "always":
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar that is drawn only if the caller wants it and the policy allows it."""
    return tqdm(iterable, disable=not (enabled and bars_enabled()), **kwargs)


def progress_line(message: str, *, enabled: bool = True) -> None:
    """Print one progress line to stderr (above any live bar), unless ``--quiet``."""
    if enabled and not quiet():
        tqdm.write(message, file=sys.stderr)
