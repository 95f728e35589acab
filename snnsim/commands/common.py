"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from snnsim.device import DEVICES
from snnsim.graph.nodes import ENCODINGS
from snnsim.limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_SAMPLES, MAX_SEED, MAX_TIMESTEPS
from snnsim.sim.engine import ENGINES

F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.ParamType):
    """A finite number within optional bounds (click's FloatRange lets NaN and inf through)."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = self.low is not None and (v <= self.low if self.low_open else v < self.low)
        if too_low or (self.high is not None and v > self.high):
            self.fail(f"{value!r} is not in {self._range()}", param, ctx)
        return v

    def _range(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{lo}, {hi}]"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"FLOAT {self._range()}"


#: Bounded parameter types shared by every command (bounds from :mod:`snnsim.limits`).
TIMESTEPS = click.IntRange(1, MAX_TIMESTEPS)
SAMPLES = click.IntRange(1, MAX_SAMPLES)
EPOCHS = click.IntRange(0, MAX_EPOCHS)
BATCH_SIZE = click.IntRange(1, MAX_BATCH_SIZE)
LEARNING_RATE = FiniteFloat(0.0, 100.0, low_open=True)
WEIGHT_DECAY = FiniteFloat(0.0, 1.0)
FACTOR = FiniteFloat(0.0, 1.0, low_open=True)


def progress_options(f: F) -> F:
    """``--quiet`` / ``--progress``: set the process-wide progress policy (snnsim.progress)."""
    from snnsim import progress

    def set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            progress.set_policy("never")
        return value

    def set_progress(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value and not progress.quiet():
            progress.set_policy("always")
        return value

    f = click.option("--progress", "force_progress", is_flag=True, expose_value=False, callback=set_progress,
                     help="Draw progress bars even when stderr is not a terminal [default: only on a terminal].")(f)
    return click.option("--quiet", is_flag=True, expose_value=False, callback=set_quiet, is_eager=True,
                        help="No progress bars and no per-step progress lines.")(f)


def device_option(f: F) -> F:
    return click.option("--device", type=click.Choice(DEVICES), default="auto",
                        show_default=True, help="Where to run torch work.")(f)


def seed_option(f: F) -> F:
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                        help="Random seed (data split, init, noise draws).")(f)


def data_dir_option(f: F) -> F:
    return click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
                        help="Where CIFAR data sets live (torchvision layout).")(f)


def inputs_option(f: F) -> F:
    return click.option("--inputs", "inputs", type=click.Path(dir_okay=False), default=None,
                        help="Your own inputs instead of a data set: a .npy [N, C, H, W], or a .npz with 'inputs' "
                             "(and optional integer 'labels' [N], for accuracy), fed as they are at every timestep "
                             "[default: none; the data set is used].")(f)


def dataset_or_inputs(dataset: str | None, inputs: str | None) -> str | None:
    """The data set name to load: ``--dataset``, or ``file:<path>`` for ``--inputs``; both is an error."""
    from snnsim.data import INPUTS_PREFIX
    from snnsim.errors import SnnsimError

    if dataset and inputs:
        raise SnnsimError("--dataset and --inputs both given", "pass one of them")
    return INPUTS_PREFIX + inputs if inputs else dataset


def engine_option(f: F) -> F:
    return click.option("--engine", type=click.Choice(ENGINES), default="torch", show_default=True,
                        help="Record traces with PyTorch's forward pass, or event by event with the simulator's "
                             "kernels (CPU; faster on large models; equal up to float32 rounding flips).")(f)


def encoding_option(f: F) -> F:
    """``--encoding``: the Input node's encoding (default: the checkpoint's own)."""
    return click.option("--encoding", type=click.Choice(ENCODINGS), default=None,
                        help="Input encoding: direct (the image at every timestep) or poisson (signed Poisson spikes, "
                             "seeded by --seed) [default: the checkpoint's own].")(f)


def first_layer_option(f: F) -> F:
    """``--first-layer``: how the first layer is charged (:data:`snnsim.cost.FIRST_LAYER_CHOICES`)."""
    from snnsim.cost import FIRST_LAYER_CHOICES

    return click.option("--first-layer", type=click.Choice(FIRST_LAYER_CHOICES), default="auto", show_default=True,
                        help="How the first layer is charged: MACs at every timestep, MACs once (input constant over "
                             "T), or the input spikes x fan-out as ACs (a Poisson model); auto: ac_with_input_rate "
                             "for spike input, else mac_per_timestep.")(f)


def apply_encoding(model: Any, encoding: str | None) -> Any:
    """Give ``model`` the ``--encoding`` asked for (None: keep the checkpoint's); returns it."""
    if encoding is not None:
        model.set_encoding(encoding)
    return model


def parse_int_list(text: str, what: str, low: int | None = None, high: int | None = None) -> list[int]:
    """Parse '5,4,3' into [5, 4, 3], with a one-line error naming ``what``."""
    from snnsim.errors import SnnsimError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SnnsimError(f"{what} must be a comma-separated list of integers, got {text!r}") from None
    if not values:
        raise SnnsimError(f"{what} is empty")
    if (low is not None and min(values) < low) or (high is not None and max(values) > high):
        raise SnnsimError(f"{what} must lie in {low}..{high}, got {text!r}", "fix the values")
    return values


def parse_float_list(text: str, what: str, low: float | None = None, high: float | None = None) -> list[float]:
    """Parse '0,0.05,0.1' into floats, with a one-line error naming ``what``."""
    import math

    from snnsim.errors import SnnsimError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SnnsimError(f"{what} must be a comma-separated list of numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise SnnsimError(f"{what} must be finite numbers, got {text!r}")
    if (low is not None and min(values) < low) or (high is not None and max(values) > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise SnnsimError(f"{what} must lie in [{lo}, {hi}], got {text!r}", "fix the values")
    return values


def force_option(f: F) -> F:
    return click.option("--force", is_flag=True,
                        help="Replace the results already in --out [default: refuse to overwrite].")(f)


def claim_output_dir(out: str | None, default: str, force: bool, option: str = "--out") -> Path:
    """The directory this run's result set goes to, checked before any work starts.

    Without ``out`` every run gets its own: ``default``, else ``default-2``, ``default-3``, ...
    (the first that does not exist). A given ``out`` must be new or empty; one holding results
    is replaced only with ``--force``, and only if it holds nothing but snnsim's result files
    (:data:`snnsim.estimation.RESULT_FILES`), so that ``--force`` can never delete anything else.
    """
    from snnsim.errors import SnnsimError
    from snnsim.estimation import RESULT_FILES
    from snnsim.io import output_dir

    if out is None:
        base = Path(default)
        dest, k = base, 2
        while dest.exists():
            dest, k = base.with_name(f"{base.name}-{k}"), k + 1
        return output_dir(dest, option)
    dest = output_dir(out, option)
    held = sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) if dest.is_dir() else []
    if not held:
        return dest
    foreign = [n for n in held if n not in RESULT_FILES]
    if foreign:
        raise SnnsimError(f"{option} {str(dest)!r} holds other files ({', '.join(foreign[:3])}"
                          f"{', ...' if len(foreign) > 3 else ''})", f"choose a new or empty directory for {option}")
    if not force:
        raise SnnsimError(f"{option} {str(dest)!r} already holds results ({', '.join(held)})",
                          f"pass --force to replace them, or choose another {option}")
    return dest
