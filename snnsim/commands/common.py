"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def device_option(f: F) -> F:
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help="Where to run torch work.")(f)


def seed_option(f: F) -> F:
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Random seed (data split, init, noise draws).")(f)


def data_dir_option(f: F) -> F:
    return click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
                        help="Where CIFAR data sets live (torchvision layout).")(f)


def engine_option(f: F) -> F:
    return click.option("--engine", type=click.Choice(["torch", "event"]), default="torch", show_default=True,
                        help="Record traces with PyTorch's forward pass, or event by event with the simulator's "
                             "kernels (CPU; faster on large models; equal up to float32 rounding flips).")(f)


def parse_int_list(text: str, what: str) -> list[int]:
    """Parse '5,4,3' into [5, 4, 3], with a one-line error naming ``what``."""
    from snnsim.errors import SnnsimError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SnnsimError(f"{what} must be a comma-separated list of integers, got {text!r}") from None
    if not values:
        raise SnnsimError(f"{what} is empty")
    return values


def parse_float_list(text: str, what: str) -> list[float]:
    """Parse '0,0.05,0.1' into floats, with a one-line error naming ``what``."""
    import math

    from snnsim.errors import SnnsimError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SnnsimError(f"{what} must be a comma-separated list of numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise SnnsimError(f"{what} must be finite numbers, got {text!r}")
    return values
