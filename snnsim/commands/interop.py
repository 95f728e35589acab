"""``snnsim import`` (a NIR graph or a PyTorch module -> an snnsim checkpoint) and ``snnsim export`` (-> NIR)."""

from __future__ import annotations

import click

from snnsim.commands.common import TIMESTEPS, FiniteFloat, parse_int_list
from snnsim.errors import SnnsimError
from snnsim.interop.nir_io import DEFAULT_DT, RESETS


@click.command("import")
@click.argument("source", type=click.Path(dir_okay=False), required=False)
@click.option("--torch", "torch_spec", metavar="FILE.py:FACTORY", default=None,
              help="Import a PyTorch module instead of a NIR file: FACTORY() in FILE.py returns it (snnTorch, "
                   "SpikingJelly or an nn.Module built from their neurons) [default: none; SOURCE is a NIR file].")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="With --torch: a state_dict file (torch.save) to load into the module (weights_only=True, "
                   "strict) [default: the factory's own weights].")
@click.option("--input-shape", "input_shape", metavar="C,H,W", default=None,
              help="With --torch: the shape of one input sample without batch or time, e.g. 1,28,28 "
                   "[default: none; required with --torch].")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the snnsim checkpoint (.pt).")
@click.option("--timesteps", type=TIMESTEPS, default=None,
              help="Timesteps T to run the network for [default: the NIR file's snnsim metadata; required otherwise "
                   "and with --torch].")
@click.option("--dt", type=FiniteFloat(0.0, None, low_open=True), default=None,
              help="NIR only: time step in seconds for discretising NIR's continuous-time neurons (forward Euler: "
                   "leak = 1 - dt/tau, input gain r*dt/tau) [default: the file's 'dt' metadata, else 1e-4].")
@click.option("--reset", type=click.Choice(RESETS), default=None,
              help="NIR only: value: NIR's hard reset to v_reset; subtract: subtract the threshold (soft reset) "
                   "[default: value, or what snnsim wrote in the node's metadata].")
def import_cmd(source: str | None, torch_spec: str | None, weights: str | None, input_shape: str | None, out: str,
               timesteps: int | None, dt: float | None, reset: str | None) -> None:
    """Build an snnsim SNN checkpoint from a NIR graph file (NIR 1.0, nir.read), or with --torch
    from a PyTorch module.

    NIR: nested graphs are flattened, fan-in edges become an Add, Scale nodes are folded into the
    synapse in front of them, and the neurons are discretised by forward Euler.

    --torch: the module is traced with torch.fx (the frameworks' neurons kept whole), batch norm
    is folded, and the neurons are mapped to snnsim's LIF / IF; `snnsim trace` then records the
    spikes by running your module itself (docs/interop.md). An unsupported node, op or module,
    a recurrent edge, an untraceable forward or weights that do not fit are refused in one line
    and nothing is written.
    """
    from snnsim.checkpoint import save_model

    if (source is None) == (torch_spec is None):
        raise SnnsimError("give a NIR file or --torch FILE.py:FACTORY" if source is None else
                          "a NIR file and --torch both given", "pass one of them")
    if torch_spec is None:
        for flag, value in (("--weights", weights), ("--input-shape", input_shape)):
            if value is not None:
                raise SnnsimError(f"{flag} applies to --torch imports only", f"drop {flag} for a NIR file")
        from snnsim.interop.nir_io import import_nir

        assert source is not None
        result = import_nir(source, timesteps=timesteps, dt=dt, reset=reset)
        warnings, model = result.warnings, result.model
        detail = f"dt={result.dt:g} s ({result.dt_source})"
    else:
        for flag, value in (("--dt", dt), ("--reset", reset)):
            if value is not None:
                raise SnnsimError(f"{flag} applies to NIR files only", "a PyTorch module's neurons are discrete already")
        if input_shape is None:
            raise SnnsimError("--torch needs --input-shape", "pass the shape of one input sample, e.g. --input-shape 1,28,28")
        if timesteps is None:
            raise SnnsimError("--torch needs --timesteps", "pass the number of timesteps T the network runs for")
        shape = parse_int_list(input_shape, "--input-shape", low=1)
        if len(shape) > 3:
            raise SnnsimError(f"--input-shape {input_shape!r} has {len(shape)} sizes; it is one sample's shape (C,H,W), "
                              "without batch or time", "drop the batch (and time) size")
        from snnsim.interop.torch_import import import_torch

        timport = import_torch(torch_spec, tuple(shape), timesteps, weights=weights)
        warnings, model = timport.warnings, timport.model
        detail = f"{timport.framework}, {'multi' if timport.multi_step else 'single'}-step"
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    save_model(model, out)
    pops = [p for p in model.populations if p.spiking]
    click.echo(f"wrote {out}: {model.name} ({len(model.graph.nodes)} nodes, {len(model.layer_infos)} layers, "
               f"{len(pops)} spiking populations), T={model.timesteps}, {detail}")


@click.command("export")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--nir", "nir_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the NIR graph (HDF5, nir.write).")
@click.option("--dt", type=FiniteFloat(0.0, None, low_open=True), default=DEFAULT_DT, show_default=True,
              help="Time step in seconds the NIR time constants are written for (tau = dt / (1 - leak)).")
def export_cmd(model_path: str, nir_path: str, dt: float) -> None:
    """Write an snnsim SNN checkpoint's graph as a NIR graph file.

    Average and sum pooling, convolutions, affines, flatten, LIF / IF and the output integrator
    map one to one; an Add becomes fan-in edges. MaxPool2d and an unfolded BatchNorm2d have no
    NIR node and are refused. What NIR cannot say (soft reset, '>=' firing) is written in the
    node's metadata and warned about.
    """
    from snnsim.checkpoint import load_model
    from snnsim.interop.nir_io import export_nir

    model = load_model(model_path)
    warnings = export_nir(model, nir_path, dt=dt)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {nir_path}: {model.name} as NIR ({len(model.graph.nodes)} snnsim nodes), dt={dt:g} s")
