"""``snnsim report`` (plots for a run directory, see :mod:`snnsim.reports`), ``snnsim compare``
and ``snnsim demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from snnsim.commands.common import (
    SAMPLES,
    claim_output_dir,
    data_dir_option,
    dataset_or_inputs,
    device_option,
    encoding_option,
    engine_option,
    first_layer_option,
    force_option,
    inputs_option,
    progress_options,
    seed_option,
)
from snnsim.cost import CONNECTIONS_CHOICES, DEFAULT_CONNECTIONS
from snnsim.demo import DEMO_ENCODINGS
from snnsim.errors import SnnsimError
from snnsim.reports import make_plots


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
    "energy_snn_pj", "energy_ann_pj", "energy_ann_over_snn", "energy_compute_ann_over_snn", "latency_cycles", "latency_s",
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
              help="SNN checkpoint (repeatable) [default: the example model shipped with snnsim].")
@click.option("--hw", "hws", multiple=True, help="Hardware config: a shipped name (see `snnsim hw list`) or a YAML path; repeatable [default: 45nm].")
@click.option("--all-hw", is_flag=True, help="Use every shipped hardware config.")
@click.option("--trace", "traces", multiple=True, type=click.Path(),
              help="Trace per model, in --model order [default: record once per model, then reuse from traces/].")
@click.option("--dataset", default=None, help="Data set to trace on [default: each model's own].")
@inputs_option
@click.option("--samples", type=SAMPLES, default=None, help="Test samples to trace [default: min(256, test set)].")
@click.option("--baseline", type=click.Path(), default=None,
              help="ANN checkpoint for the non-spiking baseline [default: an ANN of each SNN's own network].")
@first_layer_option
@click.option("--compute-only", is_flag=True, help="Charge compute only (the paper's #ops x energy/op).")
@click.option("--connections", type=click.Choice(CONNECTIONS_CHOICES), default=DEFAULT_CONNECTIONS, show_default=True,
              help="Connections the SNN and the ANN both count: in-bounds only (padding taps never count), or "
              "conventional (k*k*C_in*H_out*W_out*C_out with padding taps, on both sides; docs/counting.md).")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Report directory [default: a new reports/compare[-N] per run].")
@force_option
@click.option("--plots", is_flag=True, help="Also write PNG plots into <out>/plots.")
@engine_option
@encoding_option
@progress_options
@data_dir_option
@device_option
@seed_option
def compare(models: tuple[str, ...], hws: tuple[str, ...], all_hw: bool, traces: tuple[str, ...],
            dataset: str | None, inputs: str | None, samples: int | None, baseline: str | None, first_layer: str,
            compute_only: bool, connections: str, out: str | None, force: bool, plots: bool, engine: str,
            encoding: str | None, data_dir: str, device: str, seed: int) -> None:
    """Every model on every hardware config: one compare.csv and a table sorted by energy.

    Each model is traced once (or its trace reused from traces/) and replayed once; only the
    costing runs per config.
    """
    from snnsim.commands.estimate import resolve_models
    from snnsim.device import seed_everything
    from snnsim.estimation import estimate_many, format_summary
    from snnsim.hw import shipped_configs
    from snnsim.progress import progress_line

    seed_everything(seed)
    dataset = dataset_or_inputs(dataset, inputs)
    model_list = resolve_models(models)
    if traces and len(traces) != len(model_list):
        raise SnnsimError(f"got {len(traces)} --trace for {len(model_list)} --model", "pass one trace per model, or none")
    dest = claim_output_dir(out, "reports/compare", force)
    hw_list = [str(p) for p in shipped_configs()] if all_hw else list(hws) or ["45nm"]
    log_lines: list[str] = []

    def log(msg: str) -> None:
        log_lines.append(msg)
        progress_line(f"snnsim: {msg}")

    result = estimate_many(model_list, hw_list, traces=list(traces) if traces else None, dataset=dataset,
                           samples=samples, baseline=baseline, first_layer=first_layer,
                           compute_only=compute_only, data_dir=data_dir, device=device, seed=seed, log=log,
                           engine=engine, connections=connections, encoding=encoding)
    table = compare_table(result.summary)
    written = result.write(dest, extra={"compare.csv": table}, plots=plots)
    recorded = sum(1 for m in log_lines if m.startswith("recording trace"))
    reused = sum(1 for m in log_lines if m.startswith("reusing trace") or m.startswith("using trace"))
    click.echo(format_summary(result.summary))
    click.echo(f"{len(model_list)} model(s) x {len(hw_list)} config(s) = {len(table)} rows; "
               f"traces: {recorded} recorded, {reused} reused; each model replayed once")
    click.echo(f"wrote {dest}: {', '.join(p.relative_to(dest).as_posix() for p in written)}")


# ============================================================================ demo
@click.command("demo")
@click.option("--out", "out", type=click.Path(file_okay=False), default="reports/demo", show_default=True,
              help="Where models, CSVs, plots and summary.md go.")
@click.option("--fast", is_flag=True, help="Smoke run: few epochs and samples (figures not representative).")
@click.option("--install-examples", is_flag=True,
              help="Copy the resulting models into the package as the default example models.")
@click.option("--force", is_flag=True, help="Run again into an --out that holds an earlier demo, replacing it "
              "[default: refuse].")
@click.option("--encoding", type=click.Choice(DEMO_ENCODINGS), default="direct", show_default=True,
              help="Input encoding of the pipeline: direct (T=5 -> 2), poisson (T=10 -> 2), or both (Poisson in "
                   "<out>/poisson; summary.md compares them).")
@progress_options
@data_dir_option
@device_option
@seed_option
def demo(out: str, fast: bool, install_examples: bool, force: bool, encoding: str, data_dir: str, device: str,
         seed: int) -> None:
    """The whole pipeline, offline, on the bundled digits data: train, PCA-prune, temporal-prune,
    quantize, noise robustness, traces, energy/latency on every shipped config, plots, summary.md.
    """
    from snnsim.demo import run_demo

    summary = run_demo(out, fast=fast, seed=seed, device=device, data_dir=data_dir,
                       say=lambda m: click.echo(f"snnsim demo: {m}"), install_examples=install_examples, force=force,
                       encoding=encoding)
    click.echo(summary.read_text(encoding="utf-8"))
