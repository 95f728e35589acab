"""``snnsim trace`` and ``snnsim estimate``."""

from __future__ import annotations

from pathlib import Path

import click

from snnsim.commands.common import (
    BATCH_SIZE,
    SAMPLES,
    apply_encoding,
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
from snnsim.sim.replay import COUNTINGS, FUNCTIONAL_MODES


def default_model_paths() -> list[Path]:
    """The example models shipped in the package (used when no --model is given)."""
    import snnsim

    ex = Path(snnsim.__file__).resolve().parent / "examples"
    for name in ("digits_pruned_T2.pt", "digits_snn.pt"):
        if (ex / name).is_file():
            return [ex / name]
    return []


def resolve_models(models: tuple[str, ...]) -> list[str]:
    """The --model values, or the shipped example model; a one-line error if there is none."""
    from snnsim.errors import SnnsimError

    if models:
        return list(models)
    paths = default_model_paths()
    if not paths:
        raise SnnsimError("no --model given and no example model is shipped with this install",
                          "pass --model path/to/snn.pt (train one with `snnsim train` or `snnsim demo`)")
    return [str(p) for p in paths]


@click.command("trace")
@click.option("--model", "model_path", required=True, type=click.Path(), help="SNN checkpoint (.pt).")
@click.option("--dataset", default=None, help="Data set to record on [default: the model's own].")
@inputs_option
@click.option("--samples", type=SAMPLES, default=None, help="Test samples to record [default: min(256, test set)].")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Trace directory [default: the trace cache, traces/<model>-<data>-T<t>-<fp>[-event]].")
@click.option("--batch-size", type=BATCH_SIZE, default=64, show_default=True,
              help="Samples per forward pass while recording.")
@click.option("--nirdata", type=click.Path(dir_okay=False), default=None,
              help="Also write the recorded spikes as NIRData (HDF5, nir.write_data) to this file [default: none].")
@engine_option
@encoding_option
@progress_options
@data_dir_option
@device_option
@seed_option
def trace(model_path: str, dataset: str | None, inputs: str | None, samples: int | None, out: str | None,
          batch_size: int, nirdata: str | None, engine: str, encoding: str | None, data_dir: str, device: str,
          seed: int) -> None:
    """Record a model's spike trace (bit-packed input events of every layer) to disk.

    ``--engine event`` computes the spikes with the simulator's event-driven kernels instead of
    PyTorch (faster for large models on a CPU; see ``snnsim.sim.engine`` for how the two agree).
    """
    from snnsim.checkpoint import load_model
    from snnsim.data import load_dataset
    from snnsim.device import resolve_device, seed_everything
    from snnsim.errors import SnnsimError
    from snnsim.estimation import say_compiling
    from snnsim.progress import progress_line
    from snnsim.recording import record_trace
    from snnsim.trace_cache import DEFAULT_SAMPLES, trace_cache_dir

    seed_everything(seed)
    source = dataset_or_inputs(dataset, inputs)
    model = apply_encoding(load_model(model_path), encoding)
    name = source or model.dataset_info.get("name")
    if not name:
        raise SnnsimError("the model does not record which data set it was trained on", "pass --dataset")
    bundle = load_dataset(name, data_dir=data_dir, seed=seed, augment=False)
    n = min(DEFAULT_SAMPLES, len(bundle.test)) if samples is None else samples
    if n < 1 or n > len(bundle.test):
        raise SnnsimError(f"--samples must be in 1..{len(bundle.test)} for the {bundle.name} test set, got {n}")
    dest = Path(out) if out else trace_cache_dir(model, bundle.name, engine=engine, seed=seed)
    dev = resolve_device(device)
    model.to(dev)
    if engine == "event":
        say_compiling(lambda m: progress_line(f"snnsim: {m}"), functional=True)
    tr = record_trace(model, bundle, dest, samples=n, batch_size=batch_size, split="test", device=dev, engine=engine,
                      seed=seed)
    click.echo(tr.describe())
    if nirdata:
        from snnsim.interop.nir_io import write_nirdata

        write_nirdata(tr, nirdata)
        count = sum(p.spiking for p in tr.populations)
        click.echo(f"wrote {nirdata}: spikes of {count} population{'s' if count != 1 else ''} as NIRData")


@click.command("estimate")
@click.option("--model", "models", multiple=True, type=click.Path(),
              help="SNN checkpoint(s) (.pt) [default: the example model shipped with snnsim].")
@click.option("--hw", "hws", multiple=True, help="Hardware config: a shipped name (45nm, loihi, ...; see `snnsim hw list`) or a YAML path; repeatable [default: 45nm].")
@click.option("--all-hw", is_flag=True, help="Use every shipped hardware config.")
@click.option("--trace", "trace_dir", type=click.Path(), default=None, help="Replay this trace directory [default: record one, or reuse the cached one in traces/].")
@click.option("--dataset", default=None, help="Data set to trace on [default: the model's own].")
@inputs_option
@click.option("--samples", type=SAMPLES, default=None, help="Test samples to trace [default: min(256, test set)].")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Report directory [default: a new reports/estimate-<model>[-N] per run].")
@force_option
@click.option("--counting", type=click.Choice(COUNTINGS), default="snnsim", show_default=True,
              help="snnsim's event-driven counts, or NeuroBench 2.3's SynapticOperations rules.")
@click.option("--baseline", type=click.Path(), default=None,
              help="ANN checkpoint for the non-spiking baseline [default: an ANN of the SNN's own network].")
@first_layer_option
@click.option("--skip-zero-weights", is_flag=True, help="Do not count synaptic ops on zero (pruned) weights.")
@click.option("--compute-only", is_flag=True, help="Charge compute only (the paper's #ops x energy/op).")
@click.option("--connections", type=click.Choice(CONNECTIONS_CHOICES), default=DEFAULT_CONNECTIONS, show_default=True,
              help="Connections the SNN and the ANN both count: in-bounds only (padding taps never count), or "
              "conventional (k*k*C_in*H_out*W_out*C_out with padding taps, on both sides; docs/counting.md).")
@click.option("--functional", type=click.Choice(["off", *FUNCTIONAL_MODES]), default="off", show_default=True,
              help="Also run the network event by event and report the accuracy the hardware gives.")
@click.option("--plots", is_flag=True, help="Also write PNG plots into <out>/plots.")
@engine_option
@progress_options
@encoding_option
@data_dir_option
@device_option
@seed_option
def estimate(models: tuple[str, ...], hws: tuple[str, ...], all_hw: bool, trace_dir: str | None, dataset: str | None,
             inputs: str | None, samples: int | None, out: str | None, force: bool, counting: str, baseline: str | None, first_layer: str,
             skip_zero_weights: bool, compute_only: bool, connections: str, functional: str, plots: bool, engine: str,
             encoding: str | None, data_dir: str, device: str, seed: int) -> None:
    """Energy and latency of SNN model(s) on hardware config(s), vs the non-spiking network."""
    from snnsim.device import seed_everything
    from snnsim.estimation import estimate_many, model_label
    from snnsim.hw import shipped_configs
    from snnsim.progress import progress_line

    seed_everything(seed)
    dataset = dataset_or_inputs(dataset, inputs)
    model_list = resolve_models(models)
    dest = claim_output_dir(out, f"reports/estimate-{model_label(Path(model_list[0])).replace('/', '-')}", force)
    hw_list: list[str] = [str(p) for p in shipped_configs()] if all_hw else list(hws) or ["45nm"]
    result = estimate_many(
        model_list, hw_list, traces=[trace_dir] * len(model_list) if trace_dir else None, dataset=dataset,
        samples=samples, counting=counting, baseline=baseline, first_layer=first_layer,
        skip_zero_weights=skip_zero_weights, compute_only=compute_only,
        functional=False if functional == "off" else functional, data_dir=data_dir, device=device, seed=seed,
        log=lambda m: progress_line(f"snnsim: {m}"), engine=engine, connections=connections, encoding=encoding,
    )
    written = result.write(dest, plots=plots)
    click.echo(result.table())
    if functional != "off":
        for label, counts in result.counts.items():
            if counts.functional is not None:
                click.echo(f"{label}: functional ({functional}) {counts.functional.summary()}")
    click.echo(f"wrote {dest}: {', '.join(p.relative_to(dest).as_posix() for p in written)}")
