"""The ``snnsim`` command line.

Subcommands live in :mod:`snnsim.commands` and are imported only when used (torch and numba
are slow to import). Every :class:`~snnsim.errors.SnnsimError` becomes one line on stderr and
exit code 2; no traceback is shown for user errors.
"""

from __future__ import annotations

import errno
import importlib
import sys

import click

from snnsim import __version__, progress
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
    "hw": ("snnsim.commands.hw", "hw", "List the shipped hardware configs, or show one resolved."),
    "import": ("snnsim.commands.interop", "import_cmd", "Build an snnsim checkpoint from a NIR graph file or a PyTorch module (--torch)."),
    "export": ("snnsim.commands.interop", "export_cmd", "Write a checkpoint's network as a NIR graph file."),
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


_NoArgsIsHelp: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {}))

_OS_FIXES = {
    errno.ENOSPC: "free disk space or choose another output location",
    errno.EDQUOT: "free disk space or choose another output location",
    errno.EROFS: "choose a writable output location",
    errno.EACCES: "choose a location you may write to",
    errno.EPERM: "choose a location you may write to",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file; check the path",
    errno.EISDIR: "a directory is in the way; choose another path",
}


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system failure: which file, what the system said, the fix."""
    what = exc.strerror or type(exc).__name__
    where = f" {exc.filename!s}" if exc.filename else ""
    fix = _OS_FIXES.get(exc.errno or 0, "check the file and the disk")
    return f"cannot access{where}: {what}; {fix}"


def usage_message(exc: click.ClickException) -> str:
    """click's usage error as one line naming the command and where its help is."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        return f"{text}; see '{ctx.command_path} --help'"
    return text


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
    progress.set_policy("auto")  # each invocation starts from the default (in-process callers too)
    try:
        cli.main(args=argv, prog_name="snnsim", standalone_mode=False)
    except SnnsimError as exc:
        click.echo(f"snnsim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("snnsim: aborted", err=True)
        sys.exit(130)
    except _NoArgsIsHelp as exc:  # `snnsim` or `snnsim prune` alone: the help, not an error
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(0)
    except click.ClickException as exc:  # usage errors: the same one-line form as SnnsimError
        click.echo(f"snnsim: error: {usage_message(exc)}", err=True)
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except OSError as exc:  # the disk, not the code: full, read-only, not permitted, ...
        click.echo(f"snnsim: error: {os_error_message(exc)}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("snnsim: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
