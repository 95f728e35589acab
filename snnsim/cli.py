"""The ``snnsim`` command line.

Subcommands live in :mod:`snnsim.commands` and are imported only when used (torch and numba
are slow to import). Every :class:`~snnsim.errors.SnnsimError` becomes one line on stderr and
exit code 2; no traceback is shown for user errors.
"""

from __future__ import annotations

import importlib
import sys

import click

from snnsim import __version__
from snnsim.errors import SnnsimError

# name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("snnsim.commands.train", "train", "Train an ANN, convert it, and train the SNN (hybrid)."),
    "info": ("snnsim.commands.train", "info", "Print everything a checkpoint holds."),
    "prune": ("snnsim.commands.compress", "prune", "Spatial (PCA) and temporal pruning."),
    "quantize": ("snnsim.commands.compress", "quantize", "Post-training k-bit weight quantization."),
    "evaluate": ("snnsim.commands.compress", "evaluate", "Accuracy under Gaussian input noise, SNN vs ANN."),
    "trace": ("snnsim.commands.estimate", "trace", "Record a model's spike trace to disk."),
    "estimate": ("snnsim.commands.estimate", "estimate", "Energy and latency of a model on hardware configs."),
    "compare": ("snnsim.commands.report", "compare", "Every model on every hardware config, one table."),
    "report": ("snnsim.commands.report", "report", "Plots for a run directory."),
    "demo": ("snnsim.commands.report", "demo", "The whole pipeline offline on the bundled digits data."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnsim")
def cli() -> None:
    """snnsim: what does this spiking network really cost on hardware?"""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    # Idle OpenMP threads (torch and numba both use libgomp) spin only briefly before sleeping
    # (must be set before torch loads; the subcommands import torch lazily). libgomp's default
    # spin (300,000 iterations) made `snnsim train` 5-6x slower on an oversubscribed 2-core CPU
    # (one digits SNN epoch 81 s -> 17 s with OMP_WAIT_POLICY=PASSIVE, no spin). But never
    # spinning costs a wake-up at every short parallel region: with PASSIVE, numba's float
    # replay scaled only 1.47-1.55x from 1 to 2 threads. A 10,000-iteration spin measured best
    # on both counts: replay 1.74x, a short digits training 20.5 s quiet / 39.9 s next to two
    # CPU hogs, vs 22.2 s / 46.5 s with PASSIVE (benchmarks/perf_results.md). Set either
    # variable yourself to override.
    import os

    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    try:
        cli.main(args=argv, prog_name="snnsim", standalone_mode=False)
    except SnnsimError as exc:
        click.echo(f"snnsim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("snnsim: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("snnsim: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
