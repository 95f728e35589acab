"""``snnsim report`` (plots for a run directory); ``snnsim compare`` and ``snnsim demo`` follow.

``report`` looks for the CSV tables the other commands write anywhere under a run directory
(:data:`TABLE_FILES`), makes every plot of :mod:`snnsim.plots` it has the tables for, and writes
them to ``RUN_DIR/plots/`` (or ``--out``). Other commands call :func:`make_plots` for their
``--plots`` option.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from snnsim.commands.common import data_dir_option, device_option, engine_option, seed_option
from snnsim.errors import SnnsimError

# ============================================================================ report
#: Table file name -> what writes it. Searched recursively under the run directory.
TABLE_FILES: dict[str, str] = {
    "layers.csv": "snnsim estimate (per-layer cost rows)",
    "summary.csv": "snnsim estimate (one row per model x hardware config)",
    "compare.csv": "snnsim compare",
    "spatial.csv": "snnsim prune spatial",
    "pca_curves.csv": "snnsim prune spatial",
    "temporal.csv": "snnsim prune temporal",
    "quantize.csv": "snnsim quantize",
    "noise.csv": "snnsim evaluate",
}
#: Tables describing one experiment each: several of them give several plots (one per file).
_PER_EXPERIMENT = ("spatial.csv", "pca_curves.csv", "temporal.csv", "quantize.csv", "noise.csv")
#: Facets above which the energy breakdown is split into one figure per model.
MAX_FACETS = 9


def find_tables(run_dir: str | Path) -> dict[str, list[Path]]:
    """Every known table under ``run_dir`` (recursive), by file name; byte-identical copies once.

    (``snnsim prune temporal`` writes the same temporal.csv to two places, for example.)
    """
    root = Path(run_dir)
    found: dict[str, list[Path]] = {}
    for name in TABLE_FILES:
        seen: set[str] = set()
        for path in sorted(root.rglob(name)):
            if not path.is_file():
                continue
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
            if digest not in seen:
                seen.add(digest)
                found.setdefault(name, []).append(path)
    return found


def _source(path: Path, root: Path) -> str:
    """The table's directory relative to the run directory ('.' for the root itself)."""
    try:
        rel = path.parent.relative_to(root)
    except ValueError:
        rel = Path(path.parent.name)
    return rel.as_posix() or "."


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return slug or "run"


def _read(path: Path, warn: Callable[[str], None]) -> Any:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        warn(f"skipped table {path}: cannot read it as CSV ({type(exc).__name__})")
        return None
    if df.empty:
        warn(f"skipped table {path}: no rows")
        return None
    return df


def _combined(paths: list[Path], root: Path, warn: Callable[[str], None]) -> Any:
    """Concatenate tables of one kind, naming the model after its directory where unnamed."""
    import pandas as pd

    frames = []
    for path in paths:
        df = _read(path, warn)
        if df is None:
            continue
        src = _source(path, root)
        if "model" not in df.columns:
            df["model"] = path.parent.name if src != "." else root.resolve().name
        df["model"] = df["model"].fillna(path.parent.name).astype(str)
        df["source"] = src
        frames.append(df)
    return pd.concat(frames, ignore_index=True, sort=False) if frames else None


def make_plots(run_dir: str | Path, out_dir: str | Path | None = None,
               log: Callable[[str], None] | None = None,
               warn: Callable[[str], None] | None = None) -> list[Path]:
    """Make every plot the tables under ``run_dir`` allow; write them to ``out_dir``.

    ``out_dir`` defaults to ``run_dir/plots``. ``log`` gets one line per plot written, ``warn``
    one line per table or plot skipped (and why). Returns the paths written. Raises
    :class:`SnnsimError` if ``run_dir`` is missing, holds no known table, or no plot could be
    made from its tables.
    """
    from snnsim import plots

    root = Path(run_dir)
    say = log or (lambda _msg: None)
    note = warn or (lambda _msg: None)
    if not root.exists():
        raise SnnsimError(f"run directory {str(root)!r} does not exist",
                          "pass the directory the snnsim commands wrote their tables to")
    if not root.is_dir():
        raise SnnsimError(f"{str(root)!r} is not a directory", "pass the run directory, not a file")
    tables = find_tables(root)
    if not tables:
        raise SnnsimError(f"no snnsim tables ({', '.join(TABLE_FILES)}) under {str(root)!r}",
                          "run snnsim estimate/compare/prune/quantize/evaluate with their tables there first")
    out = Path(out_dir) if out_dir is not None else root / "plots"
    written: list[Path] = []
    reasons: list[str] = []

    def attempt(what: str, fn: Callable[..., Path], *args: Any, **kwargs: Any) -> None:
        try:
            path = fn(*args, **kwargs)
        except SnnsimError as exc:  # the plot functions name themselves in their messages
            reasons.append(str(exc))
            note(f"skipped {exc}")
            return
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            reasons.append(f"{what}: {type(exc).__name__}: {exc}")
            note(f"skipped {reasons[-1]}")
            return
        written.append(path)
        say(f"wrote {path}")

    # --------------------------------------------------------------- per-layer cost rows
    layers = _combined(tables.get("layers.csv", []), root, note)
    if layers is not None:
        combos = layers[["model", "hw"]].drop_duplicates() if "hw" in layers.columns else layers[["model"]].drop_duplicates()
        if len(combos) <= MAX_FACETS:
            attempt("energy breakdown", plots.plot_energy_breakdown, layers, out / "energy_breakdown.png")
        else:
            for model, g in layers.groupby("model", sort=False):
                attempt(f"energy breakdown of {model}", plots.plot_energy_breakdown, g,
                        out / f"energy_breakdown_{_slug(str(model))}.png")
        attempt("spike rates", plots.plot_spike_rates, layers, out / "spike_rates.png")

    # --------------------------------------------------------------- model x hardware rows
    parts = [df for df in (_combined(tables.get(n, []), root, note) for n in ("compare.csv", "summary.csv"))
             if df is not None]
    if parts:
        import pandas as pd

        rows = pd.concat(parts, ignore_index=True, sort=False)
        if "hw" in rows.columns:
            rows = rows.drop_duplicates(subset=["model", "hw"], keep="first").reset_index(drop=True)
        attempt("SNN vs ANN energy", plots.plot_snn_vs_ann, rows, out / "snn_vs_ann.png")
        attempt("accuracy vs energy", plots.plot_accuracy_vs_energy, rows, out / "accuracy_vs_energy.png")

    # --------------------------------------------------------------- compression experiments
    makers: dict[str, tuple[str, Callable[..., Path]]] = {
        "spatial.csv": ("spatial pruning", plots.plot_spatial),
        "pca_curves.csv": ("PCA curves", plots.plot_pca_curves),
        "temporal.csv": ("temporal pruning", plots.plot_temporal),
        "quantize.csv": ("quantization", plots.plot_quantization),
        "noise.csv": ("noise robustness", plots.plot_noise),
    }
    for name in _PER_EXPERIMENT:
        what, fn = makers[name]
        stem = Path(name).stem
        readable = [(p, df) for p in tables.get(name, []) if (df := _read(p, note)) is not None]
        for path, df in readable:
            src = _source(path, root)
            single = len(readable) == 1
            target = out / (f"{stem}.png" if single else f"{stem}_{_slug(src)}.png")
            attempt(what if single else f"{what} ({src})", fn, df, target)

    if not written:
        first = reasons[0] if reasons else ("every table was unreadable; re-run the commands that "
                                            "write them with this snnsim")
        raise SnnsimError(f"no plot could be made from the tables under {str(root)!r}: {first}")
    return written


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where the PNGs go [default: RUN_DIR/plots].")
def report(run_dir: str, out_dir: str | None) -> None:
    """Plot every table found under RUN_DIR (layers, summary, compare, spatial, temporal,
    quantize, noise, pca_curves CSVs, searched recursively) as PNGs.
    """
    notes: list[str] = []
    paths = make_plots(run_dir, out_dir, log=click.echo, warn=notes.append)  # on error: its one line only
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{len(paths)} plot(s) in {Path(out_dir) if out_dir else Path(run_dir) / 'plots'}")


# ============================================================================ compare
COMPARE_COLUMNS = (
    "model", "hw", "accuracy", "timesteps", "params", "spikes_per_inference",
    "energy_snn_pj", "energy_ann_pj", "energy_ratio", "energy_ratio_compute", "latency_cycles", "latency_s",
)


def compare_table(summary: Any) -> Any:
    """The tidy compare table: summary columns first, then energy by component, sorted by energy."""
    cols = [c for c in COMPARE_COLUMNS if c in summary.columns]
    comps = [c for c in summary.columns if c.startswith("snn_") and c.endswith("_pj")]
    rest = [c for c in summary.columns if c not in cols and c not in comps]
    table = summary[cols + comps + rest].rename(columns={c: "energy_" + c[len("snn_"):] for c in comps})
    return table.sort_values("energy_snn_pj", kind="stable").reset_index(drop=True)


@click.command("compare")
@click.option("--model", "models", multiple=True, type=click.Path(),
              help="SNN checkpoint (repeatable); default: the example model shipped with snnsim.")
@click.option("--hw", "hws", multiple=True, help="Hardware config YAML or shipped name (repeatable).")
@click.option("--all-hw", is_flag=True, help="Use every shipped hardware config.")
@click.option("--trace", "traces", multiple=True, type=click.Path(),
              help="Trace per model, in --model order (default: record once per model, then reuse).")
@click.option("--dataset", default=None, help="Data set to trace on (default: each model's own).")
@click.option("--samples", type=int, default=None, help="Test samples to trace (default: min(256, test set)).")
@click.option("--baseline", type=click.Path(), default=None, help="ANN checkpoint for the non-spiking baseline.")
@click.option("--first-layer", type=click.Choice(["mac_per_timestep", "mac_once"]), default="mac_per_timestep",
              show_default=True)
@click.option("--compute-only", is_flag=True, help="Charge compute only (the paper's #ops x energy/op).")
@click.option("--out", "out", type=click.Path(), default="reports/compare", show_default=True)
@click.option("--plots", is_flag=True, help="Also write PNG plots into <out>/plots.")
@engine_option
@data_dir_option
@device_option
@seed_option
def compare(models: tuple[str, ...], hws: tuple[str, ...], all_hw: bool, traces: tuple[str, ...],
            dataset: str | None, samples: int | None, baseline: str | None, first_layer: str,
            compute_only: bool, out: str, plots: bool, engine: str, data_dir: str, device: str, seed: int) -> None:
    """Every model on every hardware config: one compare.csv and a table sorted by energy.

    Each model is traced once (or its trace reused from traces/) and replayed once; only the
    costing runs per config.
    """
    from snnsim.commands.estimate import resolve_models
    from snnsim.device import seed_everything
    from snnsim.errors import SnnsimError
    from snnsim.estimation import estimate_many, format_summary
    from snnsim.hw import shipped_configs
    from snnsim.io import write_csv

    seed_everything(seed)
    model_list = resolve_models(models)
    if traces and len(traces) != len(model_list):
        raise SnnsimError(f"got {len(traces)} --trace for {len(model_list)} --model", "pass one trace per model, or none")
    hw_list = [str(p) for p in shipped_configs()] if all_hw else list(hws) or ["45nm"]
    log_lines: list[str] = []

    def log(msg: str) -> None:
        log_lines.append(msg)
        click.echo(f"snnsim: {msg}", err=True)

    result = estimate_many(model_list, hw_list, traces=list(traces) if traces else None, dataset=dataset,
                           samples=samples, baseline=baseline, first_layer=first_layer,
                           compute_only=compute_only, data_dir=data_dir, device=device, seed=seed, log=log,
                           engine=engine)
    dest = Path(out)
    written = result.write(dest)
    table = compare_table(result.summary)
    written.append(write_csv(table, dest / "compare.csv"))
    recorded = sum(1 for m in log_lines if m.startswith("recording trace"))
    reused = sum(1 for m in log_lines if m.startswith("reusing trace") or m.startswith("using trace"))
    click.echo(format_summary(result.summary))
    click.echo(f"{len(model_list)} model(s) x {len(hw_list)} config(s) = {len(table)} rows; "
               f"traces: {recorded} recorded, {reused} reused; each model replayed once")
    if plots:
        written += make_plots(dest, dest / "plots")
    click.echo(f"wrote {', '.join(str(p) for p in written)}")


# ============================================================================ demo
@click.command("demo")
@click.option("--out", "out", type=click.Path(file_okay=False), default="reports/demo", show_default=True,
              help="Where models, CSVs, plots and summary.md go.")
@click.option("--fast", is_flag=True, help="Smoke run: few epochs and samples (figures not representative).")
@click.option("--install-examples", is_flag=True,
              help="Copy the resulting models into the package as the default example models.")
@data_dir_option
@device_option
@seed_option
def demo(out: str, fast: bool, install_examples: bool, data_dir: str, device: str, seed: int) -> None:
    """The whole pipeline, offline, on the bundled digits data: train, PCA-prune, temporal-prune,
    quantize, noise robustness, traces, energy/latency on every shipped config, plots, summary.md.
    """
    from snnsim.demo import run_demo

    summary = run_demo(out, fast=fast, seed=seed, device=device, data_dir=data_dir,
                       say=lambda m: click.echo(f"snnsim demo: {m}"), install_examples=install_examples)
    click.echo(summary.read_text(encoding="utf-8"))
